//! Command-line interface: `pathscope explain` (more commands arrive with later issues).

mod explain;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "pathscope",
    version,
    about = "Path-integral saliency maps for image classifiers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Explain one image: attribution map, heatmap and summary written into a directory.
    Explain(explain::ExplainArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Explain(args) => explain::run(args),
    }
}

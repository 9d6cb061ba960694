//! The headless commands (`explain`, `figure`, `eval`, `sanity`, `converge`, `roar`, `bench`) and the flags
//! of every command; with no command (or `gui`) `main` opens the studio instead.

mod bench;
mod common;
mod converge;
mod eval;
mod explain;
mod figure;
mod roar;
mod sanity;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "pathscope",
    version,
    about = "Path-integral saliency maps for image classifiers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the studio window (the default when no command is given).
    Gui(GuiArgs),
    /// Explain one image: attribution map, heatmap and summary written into a directory.
    Explain(explain::ExplainArgs),
    /// Compose a figure (maps × display modes) and write it as PNG, SVG or PDF.
    Figure(figure::FigureArgs),
    /// Time the gradient oracle and IG on this machine; print a table, write JSON.
    Bench(bench::BenchArgs),
    /// Score maps over a folder of images (insertion, deletion, ...): one row per image ×
    /// method × metric in a CSV/JSON Lines file, resumable, shardable (`eval merge` joins shards).
    Eval(eval::EvalArgs),
    /// Convergence study of one image's straight path: map and completeness error of every
    /// quadrature rule, the tolerance mode and IDGI against gradient evaluations, in both
    /// directions; a CSV, a log–log figure (PNG, SVG, PDF) and a summary.
    Converge(converge::ConvergeArgs),
    /// Sanity check (cascading model randomisation): similarity of each method's map to the
    /// trained model's as blocks are randomised from the top; a table, and a CSV file.
    Sanity(sanity::SanityArgs),
    /// ROAR (remove and retrain, Hooker et al. 2019) and KAR: replace each image's top
    /// pixels by every estimator's ranking, retrain a small CNN from scratch, and compare
    /// test accuracies; the shipped digits or a folder of class subfolders; resumable,
    /// shardable (`roar merge` joins shards); CSV, a summary table and a figure.
    Roar(roar::RoarArgs),
}

#[derive(Args, Debug, Default)]
pub struct GuiArgs {
    /// Model weights (.safetensors or .pth) or an ONNX graph (.onnx); the embedded SqueezeNet-1.1 if omitted.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// A photo to open; a bundled sample if omitted.
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Compute the maps as soon as the model and image are loaded.
    #[arg(long)]
    pub run: bool,
    /// Reopen a saved session (.pathscope): model, image, settings and maps.
    #[arg(long, value_name = "FILE")]
    pub session: Option<PathBuf>,
    /// Do not autosave. By default the studio saves its state after every finished job to
    /// $PATHSCOPE_AUTOSAVE or $XDG_STATE_HOME/pathscope/autosave.pathscope, and offers it
    /// back after a crash.
    #[arg(long)]
    pub no_autosave: bool,
    /// Label file, one class name per line, as many as the model has outputs.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    #[command(flatten)]
    pub preprocess: common::PreprocessArgs,
    /// cpu, cpu:generic (candle's ops and autograd only, the path a GPU takes), or cuda[:N]
    /// in builds with the `cuda` feature; the top bar says which is in use.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Runs a headless command; the studio (`gui`, or no command) is opened by `main`.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Gui(_) => anyhow::bail!("the studio is opened by `pathscope gui`, not as a headless command"),
        Command::Explain(args) => explain::run(args),
        Command::Figure(args) => figure::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Sanity(args) => sanity::run(args),
        Command::Converge(args) => converge::run(args),
        Command::Roar(args) => roar::run(args),
    }
}

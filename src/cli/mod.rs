//! Command-line interface: with no command the studio opens; `explain` is headless.

mod bench;
mod common;
mod eval;
mod explain;
mod figure;
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
    /// Sanity check (cascading model randomisation): similarity of each method's map to the
    /// trained model's as blocks are randomised from the top; a table, and a CSV file.
    Sanity(sanity::SanityArgs),
}

#[derive(Args, Debug, Default)]
pub struct GuiArgs {
    /// Model weights (.safetensors or .pth) or an ONNX graph (.onnx); the embedded SqueezeNet-1.1 if omitted.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// A photo to open; a bundled sample if omitted.
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Compute the maps as soon as the model and image are loaded.
    #[arg(long)]
    run: bool,
    /// Reopen a saved session (.pathscope): model, image, settings and maps.
    #[arg(long, value_name = "FILE")]
    session: Option<PathBuf>,
    /// Do not autosave. By default the studio saves its state after every finished job to
    /// $PATHSCOPE_AUTOSAVE or $XDG_STATE_HOME/pathscope/autosave.pathscope, and offers it
    /// back after a crash.
    #[arg(long)]
    no_autosave: bool,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => gui(GuiArgs::default()),
        Some(Command::Gui(args)) => gui(args),
        Some(Command::Explain(args)) => explain::run(args),
        Some(Command::Figure(args)) => figure::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Sanity(args)) => sanity::run(args),
    }
}

#[cfg(not(feature = "studio"))]
fn gui(_args: GuiArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "this pathscope was built without the studio (cargo's `studio` feature); the commands \
         explain, figure, eval, sanity and bench work; see `pathscope --help`"
    )
}

#[cfg(feature = "studio")]
fn gui(args: GuiArgs) -> anyhow::Result<()> {
    let options = pathscope::ui::StudioOptions {
        model: args.model,
        image: args.image,
        run_on_start: args.run,
        session: args.session,
        autosave: if args.no_autosave {
            None
        } else {
            pathscope::session::default_autosave_path()
        },
    };
    let native = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("Pathscope")
            .with_inner_size([1400.0, 860.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Pathscope",
        native,
        Box::new(move |cc| Ok(Box::new(pathscope::ui::PathscopeApp::new(cc, options)))),
    )
    .map_err(|e| anyhow::anyhow!("could not open the studio window: {e}"))
}

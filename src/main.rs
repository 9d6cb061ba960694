//! The `pathscope` binary: the studio (no command, or `gui`) and the headless commands
//! of [`cli`].

mod cli;

/// Attribution allocates and frees activation buffers of tens of megabytes on every
/// forward/backward pass; glibc returns each to the kernel and faults it back in, which
/// cost as much time as the arithmetic (SqueezeNet IG-50: 3.1 s of 3.8 s in the kernel).
/// mimalloc keeps and reuses them, once its purge delay outlasts a pass.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (libmimalloc-sys 0.1.49).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn keep_freed_memory_for(milliseconds: i64) {
    // SAFETY: setting an allocator option is thread-safe and takes effect lazily.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, milliseconds as _) };
}

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keep_freed_memory_for(10_000);
    let args = cli::Cli::parse();
    let outcome = match args.command {
        None => studio(cli::GuiArgs::default()),
        Some(cli::Command::Gui(gui)) => studio(gui),
        Some(command) => cli::run(command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// One line, the whole cause chain ("context: cause: cause"), skipping a cause whose text
/// the message already contains (our errors often name their cause and also expose it as
/// `source`, which would otherwise print it twice).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(not(feature = "studio"))]
fn studio(_args: cli::GuiArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "this pathscope was built without the studio (cargo's `studio` feature); the commands \
         explain, figure, eval, sanity and bench work; see `pathscope --help`"
    )
}

#[cfg(feature = "studio")]
fn studio(args: cli::GuiArgs) -> anyhow::Result<()> {
    let conventions = args.preprocess.overrides(args.labels.as_deref())?;
    // An unknown device, or CUDA in a build without it, stops here with one line, before
    // a window opens.
    let compute = pathscope::device::select_compute(if args.device.is_empty() { "cpu" } else { &args.device })?;
    let options = pathscope::ui::StudioOptions {
        conventions,
        compute,
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

//! The `pathscope` binary: headless commands (the GUI arrives with the studio).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, the whole cause chain: "context: cause: cause".
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! The `prism` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = prism_explorer::cli::Cli::parse();
    match prism_explorer::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("prism: {err:#}");
            ExitCode::FAILURE
        }
    }
}

//! The demo agent: `cargo run --release -p worker-examples --bin agent -- --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use worker_examples::agent::{self, options::Options};

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{}", agent::options::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("agent: {e}\n\n{}", agent::options::USAGE);
            return ExitCode::from(2);
        }
    };
    // Logs go to stderr; reports go to stdout. RUST_LOG overrides the level.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    match agent::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent: {e}");
            ExitCode::FAILURE
        }
    }
}

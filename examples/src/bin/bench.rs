//! The benchmark program: `bench SCENARIO N [thread|passive|task]` runs one
//! scenario of `BENCHMARKS.md` once and prints one JSON line; `bench all` runs
//! every scenario three times per size, each in a fresh process, and prints
//! the medians as a Markdown table.

use std::process::ExitCode;

use worker_examples::bench::{self, Variant};

fn usage() -> ExitCode {
    eprintln!("usage: bench SCENARIO N [thread|passive|task]\n       bench all [--quick]");
    eprintln!("scenarios: {:?}", bench::SCENARIOS);
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => usage(),
        Some("all") => {
            match worker_examples::bench::all::run_all(args.iter().any(|a| a == "--quick")) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bench all: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(scenario) => {
            let Some(n) = args.get(1).and_then(|n| n.parse::<usize>().ok()) else {
                return usage();
            };
            let variant = match args.get(2).map(|v| Variant::parse(v)).transpose() {
                Ok(v) => v.unwrap_or(Variant::Thread),
                Err(e) => {
                    eprintln!("{e}");
                    return usage();
                }
            };
            match bench::run(scenario, n, variant) {
                Ok(m) => {
                    println!("{}", m.to_json(scenario, n, variant));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench {scenario} {n} {}: {e}", variant.name());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

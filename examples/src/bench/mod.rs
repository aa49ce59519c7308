//! The benchmark scenarios of `BENCHMARKS.md`, one module per supervisor.
//!
//! Each scenario runs once and returns a [`Measurement`]; the `bench`
//! binary prints it as one JSON line. `bench all` runs each scenario in a
//! fresh process (so peak RSS is the scenario's own) three times and prints
//! the medians as a Markdown table.

pub mod all;
pub mod catacomb;
pub mod common;
pub mod engine;
pub mod runner;
pub mod workers;

pub use common::{Measurement, Variant};

/// Every scenario name `bench` accepts, in the order `bench all` runs them.
pub const SCENARIOS: &[&str] = &["B0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "I1"];

/// Runs one scenario once.
pub fn run(scenario: &str, n: usize, variant: Variant) -> Result<Measurement, String> {
    match scenario {
        "B0" | "S1" | "S2" | "S7" => runner::run(scenario, n, variant),
        "S3" => catacomb::run(scenario, n, variant),
        "S4" | "S5" | "I1" => engine::run(scenario, n, variant),
        "S6" => {
            let mut m = runner::run(scenario, n, variant)?;
            let e = engine::run(scenario, n, variant)?;
            m.phases.extend(e.phases);
            m.extra.extend(e.extra);
            Ok(m.finish())
        }
        other => Err(format!(
            "unknown scenario {other:?}; expected one of {SCENARIOS:?}"
        )),
    }
}

//! Benchmark scenarios of the runner (being written; see the project's issues).

use super::{Measurement, Variant};

/// Runs one of this module's scenarios once.
pub fn run(scenario: &str, _n: usize, _variant: Variant) -> Result<Measurement, String> {
    Err(format!("scenario {scenario} is not implemented yet"))
}

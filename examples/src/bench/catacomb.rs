//! Benchmark scenarios of the catacomb.
//!
//! **S3 catacomb-kill N**: one catacomb whose plan's `init` holds N workers.
//! - phase `add`: from making the first worker to `invoke` returning with
//!   all N bound. Making the workers is inside the phase (for the `thread`
//!   variant that is starting N threads), since a caller cannot add workers
//!   it has not made; the part spent making them is also printed on its
//!   own as `create_ns`, so the catacomb's share can be read off.
//! - phase `kill`: `kill_with(None)`, then `wait()`, which returns once
//!   every worker has finished and been waited for.
//!
//! The catacomb waits for each worker before it is dead, so for the
//! `thread` variant the phase includes joining the workers' threads, and
//! for `task` the end of every task. The runtime of the `task` variant is
//! let go after the phase, outside the timing, so `threads_after` shows
//! the process back to its starting thread count.

use std::time::Instant;

use worker_catacomb::{Catacomb, Plan};
use worker_core::{Error, SharedWorker};

use super::common::timed;
use super::workers::Workers;
use super::{Measurement, Variant};

/// Runs one of this module's scenarios once.
pub fn run(scenario: &str, n: usize, variant: Variant) -> Result<Measurement, String> {
    match scenario {
        "S3" => s3(n, variant),
        other => Err(format!("scenario {other} is not a catacomb scenario")),
    }
}

/// The catacomb's work: wait to be told to stop, and say so.
fn work(c: &Catacomb) -> Result<(), Error> {
    let _ = c.dying().recv();
    Err(c.err_dying())
}

fn s3(n: usize, variant: Variant) -> Result<Measurement, String> {
    let mut m = Measurement::default();
    let workers = Workers::new(variant)?;
    let start = Instant::now();
    // Kept, to check their results after the timed phase.
    let init: Vec<SharedWorker> = (0..n).map(|_| workers.blocking("s3-w")).collect();
    let kept = init.clone();
    let created = start.elapsed();
    let catacomb = Catacomb::invoke(Plan::new("bench-s3", work).init(init))
        .map_err(|e| format!("invoke: {e}"))?;
    m.phase("add", start.elapsed());
    m.extra
        .push(("create_ns".into(), created.as_nanos() as f64));
    if catacomb.worker_count() != n {
        return Err(format!(
            "{} workers bound, expected {n}",
            catacomb.worker_count()
        ));
    }

    let (result, kill) = timed(|| {
        catacomb.kill_with(None);
        catacomb.wait()
    });
    m.phase("kill", kill);
    result.map_err(|e| format!("the catacomb failed: {e}"))?;

    for w in &kept {
        w.wait().map_err(|e| format!("a worker failed: {e}"))?;
    }
    drop(kept);
    workers.shutdown();
    Ok(m.finish())
}

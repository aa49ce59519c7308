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
//! For the `thread` variant that includes joining the workers' threads:
//! the catacomb waits for each worker, which joins its thread, before it is
//! dead. (Before it did so, the threads were joined after the phase; the
//! loop at the end now finds them joined.) `threads_after` shows the process
//! back to its starting thread count.

use std::sync::Arc;
use std::time::Instant;

use worker_catacomb::{Catacomb, Plan};
use worker_core::{Error, Passive, SharedWorker, ThreadWorker, Worker, spawn};

use super::common::timed;
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
    let start = Instant::now();
    // The thread variant keeps its workers to check their results later; the
    // passive one keeps nothing beyond what the catacomb holds.
    let mut threads: Vec<Arc<ThreadWorker>> = Vec::new();
    let init: Vec<SharedWorker> = match variant {
        Variant::Passive => (0..n)
            .map(|_| Arc::new(Passive::new()) as SharedWorker)
            .collect(),
        Variant::Thread => {
            threads = (0..n)
                .map(|i| {
                    Arc::new(spawn(format!("s3-w{i}"), |tomb| {
                        let _ = tomb.dying().recv();
                        Ok(())
                    }))
                })
                .collect();
            threads.iter().map(|w| w.clone() as SharedWorker).collect()
        }
    };
    let created = start.elapsed();
    let catacomb = Catacomb::invoke(Plan::new("bench-s3", work).with_init(init))
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

    for w in &threads {
        w.wait().map_err(|e| format!("a worker failed: {e}"))?;
    }
    drop(threads);
    Ok(m.finish())
}

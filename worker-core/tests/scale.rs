//! 100,000 passive workers: created, watched for completion and killed
//! without a thread per worker.
//!
//! This file is its own test binary, so the thread count it reads is
//! disturbed only by the test harness itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use worker_core::{Passive, Worker, watch};

const N: usize = 100_000;

fn process_threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Threads: line")
}

#[test]
fn a_hundred_thousand_passive_workers_cost_no_threads() {
    let before = process_threads();
    let finished = Arc::new(AtomicUsize::new(0));
    let workers: Vec<Arc<Passive>> = (0..N).map(|_| Arc::new(Passive::new())).collect();
    for w in &workers {
        let finished = finished.clone();
        watch(w, move |outcome| {
            assert!(outcome.is_ok());
            finished.fetch_add(1, Ordering::Relaxed);
        });
    }
    let during = process_threads();
    for w in &workers {
        w.kill();
    }
    for w in &workers {
        assert!(w.wait().is_ok());
    }
    assert_eq!(finished.load(Ordering::Relaxed), N);
    let after = process_threads();
    // The harness may start a thread or two of its own; a thread per
    // worker would add 100,000.
    assert!(
        during <= before + 2 && after <= before + 2,
        "threads: {before} before, {during} while watching, {after} after"
    );
}

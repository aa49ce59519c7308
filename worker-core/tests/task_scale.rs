//! 100,000 task workers on a two-thread runtime: started, watched for
//! completion and killed with no thread per worker, in bounded memory
//! (feature `tokio`).
//!
//! This file is its own test binary, so the thread count and the resident
//! memory it reads are disturbed only by the test harness itself.

#![cfg(feature = "tokio")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use worker_core::task::{self, TaskWorker};
use worker_core::{Worker, watch};

const N: usize = 100_000;

/// A line of /proc/self/status, as a number (`Threads:`, `VmRSS:` in KiB).
fn status(key: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("a {key} line"))
}

#[test]
fn a_hundred_thousand_task_workers_cost_no_threads_and_under_a_kib_each() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    // Start the runtime's threads before counting.
    rt.block_on(async {});
    let threads_before = status("Threads:");
    let rss_before = status("VmRSS:");

    let running = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (all_running_tx, all_running) = crossbeam_channel::bounded(1);
    let workers: Vec<Arc<TaskWorker>> = (0..N)
        .map(|_| {
            let running = running.clone();
            let all_running_tx = all_running_tx.clone();
            Arc::new(task::spawn_on(rt.handle(), move |tomb| async move {
                if running.fetch_add(1, Ordering::SeqCst) + 1 == N {
                    all_running_tx.send(()).unwrap();
                }
                tomb.until_dying().await;
                Ok(())
            }))
        })
        .collect();
    let (all_finished_tx, all_finished) = crossbeam_channel::bounded(1);
    for w in &workers {
        let finished = finished.clone();
        let all_finished_tx = all_finished_tx.clone();
        watch(w, move |outcome| {
            assert!(outcome.is_ok());
            if finished.fetch_add(1, Ordering::SeqCst) + 1 == N {
                all_finished_tx.send(()).unwrap();
            }
        });
    }
    all_running
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("every task ran");
    let threads_during = status("Threads:");
    let rss_during = status("VmRSS:");

    for w in &workers {
        w.kill();
    }
    for w in &workers {
        assert!(w.wait().is_ok());
    }
    // The callbacks run on the threads that finished the tasks, just after
    // `wait` is released: every one is called.
    all_finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("every completion callback ran");

    let per_worker = (rss_during.saturating_sub(rss_before) * 1024) / N;
    eprintln!("{N} task workers: {per_worker} bytes of resident memory each");
    // The harness may start a thread or two of its own; a thread per
    // worker would add 100,000.
    assert!(
        threads_during <= threads_before + 2,
        "threads: {threads_before} before, {threads_during} with the workers"
    );
    assert!(per_worker < 1024, "{per_worker} bytes per task worker");
}

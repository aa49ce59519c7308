//! The thread pool that runs supervisors' start functions.

use std::time::Duration;

use worker_core::ThreadPool;
use worker_core::threads::live_threads_with_prefix;

const LONG: Duration = Duration::from_secs(10);

#[test]
fn sequential_jobs_reuse_one_thread() {
    let pool = ThreadPool::new("pool-test-reuse");
    for i in 0..50 {
        let (tx, rx) = crossbeam_channel::bounded(1);
        pool.execute(move || tx.send(i).unwrap()).unwrap();
        assert_eq!(rx.recv_timeout(LONG).unwrap(), i);
    }
    // A thread may be about to mark itself idle when the next job comes, so
    // allow one spare; never one per job.
    assert!(
        pool.threads() <= 2,
        "{} threads for 50 jobs",
        pool.threads()
    );
    pool.join();
    assert_eq!(live_threads_with_prefix("pool-test-reuse"), 0);
}

#[test]
fn a_blocked_job_does_not_hold_up_the_next() {
    let pool = ThreadPool::new("pool-test-blocked");
    let (release_tx, release) = crossbeam_channel::bounded::<()>(0);
    pool.execute(move || {
        let _ = release.recv();
    })
    .unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    pool.execute(move || tx.send("ran").unwrap()).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "ran");
    assert_eq!(pool.threads(), 2);
    drop(release_tx);
    pool.join();
    assert_eq!(live_threads_with_prefix("pool-test-blocked"), 0);
}

#[test]
fn a_panicking_job_leaves_the_pool_working() {
    let pool = ThreadPool::new("pool-test-panic");
    pool.execute(|| panic!("job failed")).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    pool.execute(move || tx.send(1).unwrap()).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), 1);
    pool.join();
}

#[test]
fn join_waits_for_running_jobs_and_refuses_new_ones() {
    let pool = ThreadPool::new("pool-test-join");
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..4 {
        let tx = tx.clone();
        pool.execute(move || tx.send(i).unwrap()).unwrap();
    }
    pool.join();
    assert_eq!(rx.try_iter().count(), 4);
    assert_eq!(live_threads_with_prefix("pool-test-join"), 0);
    let err = pool.execute(|| {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        "thread pool \"pool-test-join\" has been shut down"
    );
    pool.join();
}

#[test]
fn dropping_the_pool_joins_its_threads() {
    let pool = ThreadPool::new("pool-test-drop");
    pool.execute(|| {}).unwrap();
    drop(pool);
    assert_eq!(live_threads_with_prefix("pool-test-drop"), 0);
}

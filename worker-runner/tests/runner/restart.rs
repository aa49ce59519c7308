//! Restarts (Go: TestOneWorkerRestart, TestOneWorkerRestartDelay,
//! TestOneWorkerShouldRestart, TestWorkerConcurrent), and a fixed weak
//! point of Go's runner: a restart delay that only killing the runner
//! interrupts (a stop during the delay still runs the start function).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use worker_core::{Error, NotFound, Panicked, SharedWorker, Worker};
use worker_runner::RestartPolicy;
use worker_testing::dead_worker;

use crate::common::*;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn a_failed_worker_is_restarted_after_the_delay_again_and_again() {
    let (r, clock) = clocked_runner("rt-one-worker-restart", |p| p);
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    for _ in 0..3 {
        starter.die(Some(Error::msg("an error")));
        starter.assert_started(false);
        clock.wait_advance(SECOND, LONG, 1).unwrap();
        starter.assert_started(true);
    }
    assert_eq!(starter.calls(), 4);
    assert!(finish(&r).is_ok());
    starter.assert_started(false);
}

#[test]
fn the_restart_waits_for_the_whole_delay() {
    let (r, clock) = clocked_runner("rt-restart-delay", |p| p);
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    starter.die(Some(Error::msg("non-fatal error")));
    starter.assert_started(false);
    clock
        .wait_advance(Duration::from_millis(999), LONG, 1)
        .unwrap();
    // The runner's only timer is still waiting: nothing restarts before it.
    assert_eq!(clock.waiting(), vec![Duration::from_millis(1)]);
    assert_eq!(starter.calls(), 1);
    clock.advance(Duration::from_millis(1));
    starter.assert_started(true);
    assert!(finish(&r).is_ok());
}

#[test]
fn should_restart_false_removes_the_worker() {
    let (r, clock) = clocked_runner("rt-should-restart", |p| p.should_restart(|_| false));
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    let w = r.worker("id", None).unwrap();
    starter.die(Some(Error::msg("non-fatal error")));
    starter.assert_started(false);
    assert!(w.wait().is_err());
    assert_is::<NotFound>(&err_of(r.worker("id", None)));
    assert!(clock.waiting().is_empty());
    assert!(finish(&r).is_ok());
}

#[test]
fn stop_during_the_restart_delay_never_calls_start_again() {
    // Go wakes the sleeping restart only on Kill: StopWorker during the
    // delay still calls start() once the delay is over.
    let (r, clock) = clocked_runner("rt-stop-during-delay", |p| p);
    let mut s = Starter::new(r.name());
    s.start_err = Some(Error::msg("cannot start"));
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(false);
    clock.wait_timers(1, LONG).unwrap();
    r.stop_worker("id").unwrap();
    // Requests are handled in order: the stop has removed the id.
    assert!(r.worker_names().is_empty());
    assert_is::<NotFound>(&err_of(r.worker("id", None)));
    clock.advance(SECOND * 10);
    assert!(finish(&r).is_ok());
    assert_eq!(starter.calls(), 1);
}

#[test]
fn a_failing_start_function_is_retried_after_the_delay() {
    let (r, clock) = clocked_runner("rt-start-retry", |p| p);
    let mut s = Starter::new(r.name());
    s.start_err = Some(Error::msg("cannot start"));
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    for _ in 0..3 {
        starter.assert_started(false);
        clock.wait_advance(SECOND, LONG, 1).unwrap();
    }
    starter.assert_started(false);
    assert_eq!(starter.calls(), 4);
    assert!(finish(&r).is_ok());
}

#[test]
fn a_panicking_start_function_is_a_failed_start() {
    let (r, clock) = clocked_runner("rt-start-panics-restart", |p| p);
    let calls = Arc::new(AtomicUsize::new(0));
    let (started_tx, started) = crossbeam_channel::unbounded();
    let c = calls.clone();
    r.start_worker("id", move || -> Result<SharedWorker, Error> {
        let n = c.fetch_add(1, Ordering::SeqCst);
        started_tx.send(n).unwrap();
        panic!("start number {n}");
    })
    .unwrap();
    assert_eq!(started.recv_timeout(LONG).unwrap(), 0);
    // Followed by a restart like any failure, not a crash.
    clock.wait_advance(SECOND, LONG, 1).unwrap();
    assert_eq!(started.recv_timeout(LONG).unwrap(), 1);
    assert!(finish(&r).is_ok());

    // With every error fatal, the panic is the runner's error.
    let r = runner("rt-start-panics-fatal", |p| p);
    r.start_worker("id", || -> Result<SharedWorker, Error> {
        panic!("no luck")
    })
    .unwrap();
    let err = wait_gone(&r).unwrap_err();
    assert_is::<Panicked>(&err);
    assert_eq!(
        err.to_string(),
        "start function of worker \"id\" panicked: no luck"
    );
}

#[test]
fn a_panicking_worker_body_is_a_worker_error() {
    let (r, clock) = clocked_runner("rt-body-panics", |p| p);
    let (started_tx, started) = crossbeam_channel::unbounded();
    let name = r.name().to_owned();
    r.start_worker("id", move || -> Result<SharedWorker, Error> {
        started_tx.send(()).unwrap();
        Ok(Arc::new(worker_core::spawn(
            format!("{name}-worker"),
            |_| -> Result<(), Error> { panic!("body bug") },
        )))
    })
    .unwrap();
    started.recv_timeout(LONG).unwrap();
    clock.wait_advance(SECOND, LONG, 1).unwrap();
    started.recv_timeout(LONG).unwrap();
    let report = r.report();
    let reason = report.worker("id").unwrap().reason.clone().unwrap();
    assert!(reason.error.unwrap().is::<Panicked>());
    let text = serde_json::to_value(&report).unwrap()["workers"]["id"]["reason"].clone();
    assert!(
        text.as_str().unwrap().contains("panicked: body bug"),
        "reason: {text}"
    );
    assert!(finish(&r).is_ok());
}

#[test]
fn concurrent_lookups_always_get_the_current_instance() {
    // Go's TestWorkerConcurrent: workers that end with an error at once,
    // restarted every microsecond, looked up from several threads.
    let r = Arc::new(runner("rt-worker-concurrent", |p| {
        p.is_fatal(none_fatal)
            .restart_delay(Duration::from_micros(1))
    }));
    let workers: Vec<SharedWorker> = (0..5)
        .map(|i| Arc::new(dead_worker(Some(Error::msg(format!("worker {i} error"))))) as _)
        .collect();
    for (i, w) in workers.iter().enumerate() {
        let w = w.clone();
        r.start_worker(format!("id{i}"), move || Ok(w.clone()))
            .unwrap();
    }
    let threads: Vec<_> = workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let r = r.clone();
            let w = w.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let got = r.worker(&format!("id{i}"), None).unwrap();
                    assert!(Arc::ptr_eq(&got, &w), "worker {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(finish(&r).is_ok());
}

#[test]
fn a_zero_delay_policy_restarts_at_once() {
    let clock = worker_testing::TestClock::new();
    let r = runner("rt-zero-delay", |p| {
        p.clock(clock.clone())
            .is_fatal(none_fatal)
            .restart_policy(RestartPolicy::fixed(Duration::ZERO))
    });
    let (calls_tx, calls) = crossbeam_channel::unbounded();
    let mut n = 0;
    r.start_worker("id", move || {
        n += 1;
        calls_tx.send(n).unwrap();
        let err = (n < 100).then(|| Error::msg("again"));
        Ok(Arc::new(dead_worker(err)) as SharedWorker)
    })
    .unwrap();
    // No clock advance at all: 100 incarnations, the last one ends cleanly.
    for i in 1..=100 {
        assert_eq!(calls.recv_timeout(LONG).unwrap(), i);
    }
    assert!(finish(&r).is_ok());
    assert!(clock.waiting().is_empty());
}

//! OTP's restart strategies, the runner-wide intensity limit and suture's
//! failure backoff, through a real runner on the test clock. (The order of
//! the restarts and every boundary are pinned on the machine, where they
//! are decided; here they are shown to hold end to end.)

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use worker_core::events::EventKind;
use worker_core::{Error, SharedWorker};
use worker_runner::{
    FailureBackoff, RestartType, Runner, RunnerIntensityExceeded, Strategy, WorkerOptions,
};

use crate::common::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Starts one worker per id, in order, each with its own starter, and
/// waits until each runs. The returned receiver gets an id each time its
/// start function is called.
fn start_all(r: &Runner, ids: &[&'static str]) -> (Vec<Arc<Starter>>, Receiver<&'static str>) {
    let (log, calls) = unbounded();
    let starters: Vec<Arc<Starter>> = ids
        .iter()
        .map(|&id| {
            let starter = Arc::new(Starter::new(r.name()));
            let mut start = starter.start_fn();
            let log = log.clone();
            r.start_worker(id, move || -> Result<SharedWorker, Error> {
                log.send(id).unwrap();
                start()
            })
            .unwrap();
            starter.assert_started(true);
            starter
        })
        .collect();
    for _ in ids {
        calls.recv_timeout(LONG).unwrap();
    }
    (starters, calls)
}

/// The ids whose start functions were called, `n` of them, sorted.
fn called(calls: &Receiver<&'static str>, n: usize) -> Vec<&'static str> {
    let mut ids: Vec<_> = (0..n).map(|_| calls.recv_timeout(LONG).unwrap()).collect();
    ids.sort();
    ids
}

#[test]
fn one_for_all_restarts_every_worker_once_all_have_stopped() {
    let (r, clock) = clocked_runner("rt-otp-one-for-all", |p| p.strategy(Strategy::OneForAll));
    let (starters, calls) = start_all(&r, &["a", "b", "c"]);
    starters[1].die(Some(Error::msg("b failed")));
    // Every worker ends: b by itself, a and c killed by the runner.
    for s in &starters {
        s.assert_started(false);
    }
    clock.wait_advance(secs(1), LONG, 1).unwrap();
    assert_eq!(called(&calls, 3), vec!["a", "b", "c"]);
    for s in &starters {
        s.assert_started(true);
    }
    let report = json_report(&r);
    assert_eq!(
        report["workers"]["a"]["reason"],
        "restarted with worker \"b\" (delay 1s)"
    );
    assert!(finish(&r).is_ok());
}

#[test]
fn rest_for_one_restarts_the_failed_worker_and_those_started_after_it() {
    let (r, clock) = clocked_runner("rt-otp-rest-for-one", |p| p.strategy(Strategy::RestForOne));
    let (starters, calls) = start_all(&r, &["a", "b", "c"]);
    let a = r.worker("a", None).unwrap();
    starters[1].die(Some(Error::msg("b failed")));
    starters[1].assert_started(false);
    starters[2].assert_started(false);
    clock.wait_advance(secs(1), LONG, 1).unwrap();
    assert_eq!(called(&calls, 2), vec!["b", "c"]);
    starters[1].assert_started(true);
    starters[2].assert_started(true);
    // a, started before b, ran on untouched.
    starters[0].assert_no_notification();
    assert!(Arc::ptr_eq(&a, &r.worker("a", None).unwrap()));
    assert!(finish(&r).is_ok());
}

#[test]
fn a_temporary_worker_is_not_restarted_by_a_siblings_restart() {
    let (r, clock) = clocked_runner("rt-otp-temporary-sibling", |p| {
        p.strategy(Strategy::OneForAll)
    });
    let (starters, calls) = start_all(&r, &["a"]);
    let temporary = Arc::new(Starter::new(r.name()));
    r.start_worker_with(
        "t",
        WorkerOptions::new().restart_type(RestartType::Temporary),
        temporary.start_fn(),
    )
    .unwrap();
    temporary.assert_started(true);
    starters[0].die(Some(Error::msg("a failed")));
    starters[0].assert_started(false);
    temporary.assert_started(false);
    clock.wait_advance(secs(1), LONG, 1).unwrap();
    assert_eq!(called(&calls, 1), vec!["a"]);
    starters[0].assert_started(true);
    assert_eq!(r.worker_names(), vec!["a".to_owned()]);
    assert_eq!(temporary.calls(), 1);
    assert!(finish(&r).is_ok());
}

#[test]
fn a_fatal_error_in_a_cascade_ends_the_runner() {
    let clock = worker_testing::TestClock::new();
    let r = runner("rt-otp-fatal-cascade", |p| {
        p.clock(clock.clone())
            .strategy(Strategy::OneForAll)
            .is_fatal(|e| e.to_string().contains("fatal"))
    });
    let (starters, _calls) = start_all(&r, &["a", "b"]);
    // b returns a fatal error when the cascade kills it.
    let mut s = Starter::new(r.name());
    s.stop_err = Some(Error::msg("fatal when stopped"));
    let stopper = Arc::new(s);
    r.start_worker("c", stopper.start_fn()).unwrap();
    stopper.assert_started(true);
    starters[0].die(Some(Error::msg("a failed")));
    assert_ends_on_its_own(&r);
    assert_eq!(wait_gone(&r).unwrap_err().to_string(), "fatal when stopped");
    assert_eq!(starters[0].calls(), 1, "nobody was restarted");
}

#[test]
fn the_runner_wide_limit_counts_every_workers_restarts() {
    // One restart allowed in 10 s, across workers: a fails at t = 0 and b
    // at exactly t = 10 s, which still counts a's restart.
    let (r, clock) = clocked_runner("rt-otp-runner-intensity", |p| p.intensity(1, secs(10)));
    let (starters, _calls) = start_all(&r, &["a", "b"]);
    starters[0].die(Some(Error::msg("a failed")));
    starters[0].assert_started(false);
    clock.wait_advance(secs(1), LONG, 1).unwrap();
    starters[0].assert_started(true);
    clock.advance(secs(9));
    starters[1].die(Some(Error::msg("b failed")));
    assert_ends_on_its_own(&r);
    let err = wait_gone(&r).unwrap_err();
    let limit = err.downcast_ref::<RunnerIntensityExceeded>().unwrap();
    assert_eq!((limit.id.as_str(), limit.max_restarts), ("b", 1));
    assert!(err.to_string().ends_with("b failed"), "{err}");
}

#[test]
fn the_failure_backoff_pauses_every_restart_instead_of_ending_the_runner() {
    let (paused_tx, paused) = unbounded();
    let (r, clock) = clocked_runner("rt-otp-failure-backoff", |p| {
        p.failure_backoff(FailureBackoff::new(1.0, secs(30), secs(15)))
            .on_event(move |e| {
                if let EventKind::Paused { failures, backoff } = e.kind {
                    paused_tx.send((failures, backoff)).unwrap();
                }
            })
    });
    let (starters, calls) = start_all(&r, &["a", "b"]);
    for s in &starters {
        s.die(Some(Error::msg("failed")));
        s.assert_started(false);
    }
    // The second failure at t = 0 makes the count 2, over the threshold.
    assert_eq!(paused.recv_timeout(LONG).unwrap(), (2.0, secs(15)));
    // Their restart delays (1 s) pass during the pause (15 s). A request
    // handled after the clock moved sees the deadlines' effects: both are
    // still waiting.
    clock.advance(secs(1));
    let report = json_report(&r);
    assert_eq!(report["workers"]["a"]["state"], "stopped");
    assert_eq!(report["workers"]["b"]["state"], "stopped");
    assert!(calls.try_recv().is_err(), "paused: nothing restarts");
    clock.wait_advance(secs(14), LONG, 1).unwrap();
    assert_eq!(called(&calls, 2), vec!["a", "b"]);
    for s in &starters {
        s.assert_started(true);
    }
    assert!(finish(&r).is_ok());
}

#[test]
fn bad_group_options_are_refused_with_the_reason() {
    let err =
        Runner::new(worker_runner::RunnerParams::new("rt-otp-bad").intensity(1, Duration::ZERO))
            .unwrap_err();
    assert!(err.to_string().contains("intensity period"), "{err}");
    let err = Runner::new(
        worker_runner::RunnerParams::new("rt-otp-bad").failure_backoff(FailureBackoff::new(
            f64::INFINITY,
            secs(1),
            secs(1),
        )),
    )
    .unwrap_err();
    assert!(err.to_string().contains("threshold"), "{err}");
}

//! `stop_within`: a shutdown with a deadline on the runner's clock, which
//! names what still runs and leaves the shutdown going.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded};
use worker_core::{Error, Passive, StopError, WorkerState};
use worker_testing::misbehaving::BlockingKill;

use crate::common::*;

#[test]
fn past_the_deadline_it_names_the_stragglers_and_a_later_wait_still_returns() {
    let (r, clock) = clocked_runner("rt-stop-within-late", |p| p);
    let (stubborn, gate) = BlockingKill::new();
    r.start_worker_once("stubborn", move || Ok(stubborn))
        .unwrap();
    r.start_worker("calm", || Ok(Passive::new())).unwrap();
    r.worker("stubborn", None).unwrap();
    r.worker("calm", None).unwrap();
    let (go_tx, go) = unbounded::<()>();
    r.start_worker("slow", move || {
        let _ = go.recv();
        Ok(Passive::new())
    })
    .unwrap();

    let (tx, answer) = bounded(1);
    let stopper = {
        let r = r.clone();
        std::thread::spawn(move || tx.send(r.stop_within(Duration::from_secs(30))).unwrap())
    };
    gate.wait_entered().unwrap(); // the kill blocks
    clock.wait_timers(1, LONG).unwrap(); // the caller's deadline
    clock.advance(Duration::from_secs(29));
    assert!(answer.try_recv().is_err(), "not before the deadline");
    clock.advance(Duration::from_secs(1));
    let err = answer.recv_timeout(LONG).unwrap().unwrap_err();
    stopper.join().unwrap();
    let timed_out = err.timed_out().expect("a timeout").clone();
    assert_eq!(timed_out.supervisor, r.name());
    assert_eq!(timed_out.timeout, Duration::from_secs(30));
    let named: Vec<(&str, WorkerState)> = timed_out
        .waiting_for
        .iter()
        .map(|s| (s.name.as_str(), s.state))
        .collect();
    assert_eq!(
        named,
        [
            ("slow", WorkerState::Starting),
            ("stubborn", WorkerState::Stopping)
        ],
        "the calm worker has stopped"
    );
    assert_eq!(
        timed_out.waiting_for[1].stopping_for,
        Some(Duration::from_secs(30))
    );
    let text = Error::new(err).to_string();
    assert!(text.contains("\"stubborn\" (stopping for 30s)"), "{text}");

    // The shutdown goes on: released, they end, and `wait` returns.
    gate.open();
    go_tx.send(()).unwrap();
    assert!(wait_gone(&r).is_ok());
    // A later stop_within says so at once.
    assert!(r.stop_within(Duration::ZERO).is_ok());
}

#[test]
fn a_clean_shutdown_within_the_deadline_returns_its_result() {
    let (r, clock) = clocked_runner("rt-stop-within-clean", |p| p);
    r.start_worker("a", || Ok(Passive::new())).unwrap();
    r.worker("a", None).unwrap();
    assert!(r.stop_within(Duration::from_secs(5)).is_ok());
    assert_eq!(clock.elapsed(), Duration::ZERO, "no time had to pass");
    assert!(wait_gone(&r).is_ok());

    // A fatal error within the deadline is `Failed`, with that error.
    let r = runner("rt-stop-within-failed", |p| p.is_fatal(all_fatal));
    let mut s = Starter::new(r.name());
    let boom = Error::msg("boom on kill");
    s.stop_err = Some(boom.clone());
    let starter = Arc::new(s);
    r.start_worker("a", starter.start_fn()).unwrap();
    starter.assert_started(true);
    match r.stop_within(Duration::from_secs(10)) {
        Err(StopError::Failed(e)) => assert!(e.same(&boom)),
        other => panic!("{other:?}"),
    }
    assert!(wait_gone(&r).is_err());
}

#[test]
fn duration_max_is_a_plain_wait() {
    let (r, clock) = clocked_runner("rt-stop-within-max", |p| p);
    let (stubborn, gate) = BlockingKill::new();
    r.start_worker_once("stubborn", move || Ok(stubborn))
        .unwrap();
    r.worker("stubborn", None).unwrap();
    let (tx, answer) = bounded(1);
    let stopper = {
        let r = r.clone();
        std::thread::spawn(move || tx.send(r.stop_within(Duration::MAX)).unwrap())
    };
    gate.wait_entered().unwrap();
    // No deadline to reach: a thousand years change nothing.
    assert!(clock.waiting().is_empty(), "no timer for Duration::MAX");
    clock.advance(Duration::from_secs(1000 * 365 * 24 * 3600));
    assert!(answer.try_recv().is_err());
    gate.open();
    assert!(answer.recv_timeout(LONG).unwrap().is_ok());
    stopper.join().unwrap();
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn from_the_runners_own_thread_it_fails_at_once_and_the_runner_stops() {
    let r = runner("rt-stop-within-own", |p| p.is_fatal(none_fatal));
    let (tx, rx) = unbounded();
    let handle = r.clone();
    r.start_worker_once("self", move || {
        tx.send(handle.stop_within(Duration::MAX)).unwrap();
        Ok(Passive::new())
    })
    .unwrap();
    assert!(matches!(
        rx.recv_timeout(LONG).unwrap(),
        Err(StopError::WouldDeadlock(_))
    ));
    assert!(wait_gone(&r).is_ok(), "killed all the same");
}

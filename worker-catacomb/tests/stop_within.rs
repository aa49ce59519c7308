//! `stop_within`: a catacomb's shutdown with a deadline on its clock,
//! which names what it can (its work, and how many bound workers) and
//! leaves the shutdown going.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Scope, TIMEOUT, until_dying};
use crossbeam_channel::bounded;
use worker_catacomb::{Catacomb, Plan};
use worker_core::{Error, Passive, SharedWorker, StopError, WorkerState};
use worker_testing::TestClock;
use worker_testing::misbehaving::BlockingKill;

#[test]
fn past_the_deadline_it_names_the_work_and_counts_the_workers() {
    let scope = Scope::new("stop-within-late");
    let clock = TestClock::new();
    let (stubborn, gate) = BlockingKill::new();
    let (release, stuck) = bounded::<()>(1);
    let catacomb = Catacomb::invoke(
        Plan::new(scope.name("c"), move |_: &Catacomb| {
            let _ = stuck.recv(); // ignores `dying`
            Ok(())
        })
        .init([Arc::new(stubborn) as SharedWorker])
        .clock(clock.clone()),
    )
    .unwrap();
    let (tx, answer) = bounded(1);
    let stopper = {
        let c = catacomb.clone();
        std::thread::spawn(move || tx.send(c.stop_within(Duration::from_secs(30))).unwrap())
    };
    gate.wait_entered().unwrap();
    clock.wait_timers(1, TIMEOUT).unwrap();
    clock.advance(Duration::from_secs(29));
    assert!(answer.try_recv().is_err(), "not before the deadline");
    clock.advance(Duration::from_secs(1));
    let timed_out = match answer.recv_timeout(TIMEOUT).unwrap() {
        Err(StopError::TimedOut(e)) => e,
        other => panic!("{other:?}"),
    };
    stopper.join().unwrap();
    assert_eq!(timed_out.supervisor, scope.name("c"));
    assert_eq!(timed_out.waiting_for.len(), 1);
    assert_eq!(timed_out.waiting_for[0].name, "work");
    assert_eq!(timed_out.waiting_for[0].state, WorkerState::Stopping);
    assert_eq!(timed_out.unnamed, 1, "the worker whose kill blocks");
    let text = Error::new(timed_out).to_string();
    assert!(
        text.ends_with("waiting for \"work\" (stopping), 1 unnamed worker(s)"),
        "{text}"
    );

    // The shutdown goes on: once released, `wait` returns.
    release.send(()).unwrap();
    gate.open();
    assert!(catacomb.wait().is_ok());
    assert!(catacomb.stop_within(Duration::ZERO).is_ok());
    scope.finish();
}

#[test]
fn within_the_deadline_it_returns_the_catacombs_result() {
    let scope = Scope::new("stop-within-in-time");
    let clock = TestClock::new();
    let helper: SharedWorker = Arc::new(Passive::new());
    let catacomb = Catacomb::invoke(
        Plan::new(scope.name("ok"), until_dying)
            .init([helper])
            .clock(clock.clone()),
    )
    .unwrap();
    assert!(catacomb.stop_within(Duration::from_secs(5)).is_ok());
    assert_eq!(clock.elapsed(), Duration::ZERO, "no time had to pass");

    let catacomb = Catacomb::invoke(
        Plan::new(scope.name("failed"), |c: &Catacomb| {
            let _ = c.dying().recv();
            Err(Error::msg("cleanup failed"))
        })
        .clock(clock.clone()),
    )
    .unwrap();
    match catacomb.stop_within(Duration::from_secs(5)) {
        Err(StopError::Failed(e)) => assert_eq!(e.to_string(), "cleanup failed"),
        other => panic!("{other:?}"),
    }
    scope.finish();
}

#[test]
fn duration_max_is_a_plain_wait() {
    let scope = Scope::new("stop-within-max");
    let clock = TestClock::new();
    let (stubborn, gate) = BlockingKill::new();
    let catacomb = Catacomb::invoke(
        Plan::new(scope.name("c"), until_dying)
            .init([Arc::new(stubborn) as SharedWorker])
            .clock(clock.clone()),
    )
    .unwrap();
    let (tx, answer) = bounded(1);
    let stopper = {
        let c = catacomb.clone();
        std::thread::spawn(move || tx.send(c.stop_within(Duration::MAX)).unwrap())
    };
    gate.wait_entered().unwrap();
    assert!(clock.waiting().is_empty(), "no timer for Duration::MAX");
    clock.advance(Duration::from_secs(1000 * 365 * 24 * 3600));
    assert!(answer.try_recv().is_err());
    gate.open();
    assert!(answer.recv_timeout(TIMEOUT).unwrap().is_ok());
    stopper.join().unwrap();
    scope.finish();
}

#[test]
fn from_its_own_work_it_fails_at_once_and_the_catacomb_dies() {
    let scope = Scope::new("stop-within-own");
    let (tx, rx) = bounded(1);
    let catacomb = Catacomb::invoke(Plan::new(scope.name("c"), move |c: &Catacomb| {
        tx.send(c.stop_within(Duration::MAX)).unwrap();
        Ok(())
    }))
    .unwrap();
    assert!(matches!(
        rx.recv_timeout(TIMEOUT).unwrap(),
        Err(StopError::WouldDeadlock(_))
    ));
    assert!(catacomb.wait().is_ok());
    scope.finish();
}

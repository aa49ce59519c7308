//! The machine's readiness rules, driven by hand: `wait_ready` callers are
//! answered by the transitions themselves (a start registering, an id
//! going away, shutdown, a deadline), never by polling.

use std::time::Duration;

use worker_core::{Error, Names, ReadyError, WorkerState};

use super::tests::{H, TestIo, config, none_fatal, secs, starts};
use super::*;

impl H {
    fn ready(
        &mut self,
        which: impl Into<Names>,
        caller: u32,
        timeout: Duration,
    ) -> Actions<TestIo> {
        let mut out = Vec::new();
        let event = Event::Ready {
            which: Box::new(which.into()),
            waiter: u64::from(caller),
            timeout,
            reply: caller,
        };
        self.m.handle(event, self.now, &mut out);
        out
    }
}

/// The readiness answers in `out`: `Ok`, or the error's text.
fn readies(out: &[Action<TestIo>]) -> Vec<(u32, Result<(), String>)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Ready { to, result } => Some((*to, result.clone().map_err(|e| e.to_string()))),
            _ => None,
        })
        .collect()
}

fn ready_errors(out: &[Action<TestIo>]) -> Vec<(u32, ReadyError)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Ready { to, result: Err(e) } => Some((*to, ReadyError::clone(e))),
            _ => None,
        })
        .collect()
}

#[test]
fn a_wait_is_answered_by_the_start_that_registers_last() {
    let mut h = H::new(none_fatal(config()));
    let a = h.start("a");
    let b = h.start("b");
    let out = h.ready(["a", "b"], 1, Duration::MAX);
    assert!(readies(&out).is_empty(), "neither has started");
    let (_, out) = h.complete(&a[0]);
    assert!(readies(&out).is_empty(), "b has not started");
    let (_, out) = h.complete(&b[0]);
    assert_eq!(readies(&out), vec![(1, Ok(()))]);
    // Started ids answer at once.
    assert_eq!(readies(&h.ready(["a", "b"], 2, secs(1))), vec![(2, Ok(()))]);
}

#[test]
fn all_is_the_set_at_the_time_of_the_call() {
    let mut h = H::new(none_fatal(config()));
    let a = h.start("a");
    let out = h.ready(Names::All, 1, Duration::MAX);
    assert!(readies(&out).is_empty());
    // Started later: not waited for.
    let late = h.start("late");
    let (_, out) = h.complete(&a[0]);
    assert_eq!(readies(&out), vec![(1, Ok(()))]);
    // A new wait for all of them includes it.
    assert!(readies(&h.ready(Names::All, 2, Duration::MAX)).is_empty());
    let (_, out) = h.complete(&late[0]);
    assert_eq!(readies(&out), vec![(2, Ok(()))]);
}

#[test]
fn unknown_and_stopping_ids_fail_at_once() {
    let mut h = H::new(none_fatal(config()));
    let out = h.ready(["nope"], 1, Duration::MAX);
    assert_eq!(
        readies(&out),
        vec![(1, Err("worker \"nope\" not found".into()))]
    );
    let _a = h.start("a");
    h.stop("a");
    let out = h.ready(["a"], 2, Duration::MAX);
    assert!(matches!(&ready_errors(&out)[..], [(2, ReadyError::NotFound(e))] if e.id == "a"));
    // All leaves it out: nothing else to wait for.
    assert_eq!(
        readies(&h.ready(Names::All, 3, Duration::MAX)),
        vec![(3, Ok(()))]
    );
}

#[test]
fn an_id_that_goes_away_before_it_started_fails_its_waiters() {
    let mut h = H::new(none_fatal(config()));
    let a = h.start("a");
    h.fail_start(&a[0], Error::msg("no db yet")); // waits to restart
    assert!(readies(&h.ready(["a"], 1, Duration::MAX)).is_empty());
    let out = h.stop("a");
    assert!(matches!(&ready_errors(&out)[..], [(1, ReadyError::NotFound(e))] if e.id == "a"));
}

#[test]
fn a_restart_that_registers_answers_the_wait() {
    let mut h = H::new(none_fatal(config()));
    let a = h.start("a");
    h.fail_start(&a[0], Error::msg("no db yet"));
    assert!(readies(&h.ready(["a"], 1, Duration::MAX)).is_empty());
    let out = h.advance(secs(1));
    let restart = starts(&out);
    assert_eq!(restart.len(), 1);
    let (_, out) = h.complete(restart[0]);
    assert_eq!(readies(&out), vec![(1, Ok(()))]);
}

#[test]
fn the_deadline_is_the_machines_and_names_what_had_not_started() {
    let mut h = H::new(none_fatal(config()));
    let a = h.start("a");
    let _b = h.start("b");
    h.ready(["a", "b"], 1, secs(5));
    assert_eq!(h.m.next_deadline(), Some(h.now + secs(5)));
    h.complete(&a[0]);
    assert!(readies(&h.advance(secs(4))).is_empty());
    let out = h.advance(secs(1));
    match &ready_errors(&out)[..] {
        [(1, ReadyError::TimedOut(e))] => {
            assert_eq!(e.not_started, ["b"]);
            assert_eq!(e.timeout, secs(5));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.m.next_deadline(), None, "no deadline outlives its waiter");
}

#[test]
fn a_cancelled_wait_is_forgotten() {
    let mut h = H::new(none_fatal(config()));
    let a = h.start("a");
    h.ready(["a"], 1, secs(5));
    let mut out = Vec::new();
    h.m.handle(Event::CancelReady { waiter: 1 }, h.now, &mut out);
    assert_eq!(h.m.next_deadline(), None);
    let (_, out) = h.complete(&a[0]);
    assert!(readies(&out).is_empty());
}

#[test]
fn shutdown_answers_every_wait_with_the_runners_error() {
    // Killed: no error.
    let mut h = H::new(none_fatal(config()));
    let _a = h.start("a");
    h.ready(["a"], 1, Duration::MAX);
    let out = h.kill();
    match &ready_errors(&out)[..] {
        [(1, ReadyError::Stopped(e))] => {
            assert_eq!(e.not_started, ["a"]);
            assert!(e.error.is_none());
        }
        other => panic!("{other:?}"),
    }
    // Asked while dying: at once.
    assert!(matches!(
        &ready_errors(&h.ready(["a"], 2, Duration::MAX))[..],
        [(2, ReadyError::Stopped(_))]
    ));

    // A fatal failure of the very worker waited for: the runner's error,
    // not "not found".
    let mut h = H::new(config());
    let a = h.start("a");
    let _b = h.start("b");
    h.ready(["a", "b"], 1, Duration::MAX);
    let out = h.fail_start(&a[0], Error::msg("bad config"));
    match &ready_errors(&out)[..] {
        [(1, ReadyError::Stopped(e))] => {
            assert_eq!(e.not_started, ["a", "b"]);
            assert_eq!(e.error.as_ref().unwrap().to_string(), "bad config");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn stragglers_are_every_id_still_held_with_where_it_is() {
    let mut c = none_fatal(config());
    c.stop_timeout = Some(secs(2));
    let mut h = H::new(c);
    h.run("running");
    let _starting = h.start("starting");
    h.kill();
    h.advance(secs(3));
    let list = h.m.stragglers(h.now);
    let names: Vec<(&str, WorkerState, bool)> = list
        .iter()
        .map(|s| (s.name.as_str(), s.state, s.stuck))
        .collect();
    assert_eq!(
        names,
        [
            ("running", WorkerState::Stopping, true),
            ("starting", WorkerState::Starting, true),
        ]
    );
    assert_eq!(list[0].stopping_for, Some(secs(3)));
}

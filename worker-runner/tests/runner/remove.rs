//! `stop_and_remove_worker(id, abort)` (Go: TestStopAndWaitWorker,
//! TestStopAndWaitWorkerReturnsWorkerError, TestStopAndWaitWorkerWithAbort),
//! and two fixed weak points of Go's runner: stopping the worker behind
//! the runner's back, and only one remover learning of the removal.

use std::sync::Arc;

use worker_core::{Aborted, Dead, Error, NotFound, Worker};

use crate::common::*;

#[test]
fn it_waits_until_the_worker_is_gone() {
    let r = Arc::new(runner("rt-remove-waits", |p| p.is_fatal(all_fatal)));
    let (release, stop_wait) = crossbeam_channel::unbounded();
    let mut s = Starter::new(r.name());
    s.stop_wait = Some(stop_wait);
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    let remover = {
        let r = r.clone();
        std::thread::spawn(move || {
            let result = r.stop_and_remove_worker("id", None);
            (result, r.worker_names())
        })
    };
    // The worker cannot end before this.
    release.send(()).unwrap();
    let (result, names_after) = remover.join().unwrap();
    assert!(result.is_ok());
    assert!(names_after.is_empty(), "returned only once the id was gone");
    starter.assert_started(false);
    // Again: not found.
    assert_is::<NotFound>(&r.stop_and_remove_worker("id", None).unwrap_err());
    assert!(finish(&r).is_ok());
}

#[test]
fn the_worker_error_goes_to_the_caller_not_to_is_fatal() {
    // In Go the error also reaches IsFatal, so with every error fatal the
    // whole runner dies (its own test passes only because it stops there).
    let r = runner("rt-remove-error", |p| p.is_fatal(all_fatal));
    let mut s = Starter::new(r.name());
    let boom = Error::msg("boom");
    s.kill_err = Some(boom.clone());
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    let err = r.stop_and_remove_worker("id", None).unwrap_err();
    assert!(err.same(&boom));
    // The runner is alive and well.
    let other = Arc::new(Starter::new(r.name()));
    r.start_worker("other", other.start_fn()).unwrap();
    other.assert_started(true);
    assert!(finish(&r).is_ok());
}

#[test]
fn a_non_fatal_stop_error_neither_restarts_nor_hangs() {
    // Go restarts the worker and the call never returns without an abort
    // channel (juju/juju#13717).
    let (r, clock) = clocked_runner("rt-remove-no-hang", |p| p);
    let mut s = Starter::new(r.name());
    s.stop_err = Some(Error::msg("oops"));
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    let err = r.stop_and_remove_worker("id", None).unwrap_err();
    assert_eq!(err.to_string(), "oops");
    assert!(r.worker_names().is_empty());
    assert!(clock.waiting().is_empty());
    assert_eq!(starter.calls(), 1);
    assert!(finish(&r).is_ok());
}

#[test]
fn during_the_restart_delay_it_returns_at_once() {
    // Go blocks until the delay is over and an instance exists.
    let (r, clock) = clocked_runner("rt-remove-during-delay", |p| p);
    let mut s = Starter::new(r.name());
    s.start_err = Some(Error::msg("test error"));
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(false);
    clock.wait_timers(1, LONG).unwrap();
    assert!(r.stop_and_remove_worker("id", None).is_ok());
    assert!(r.worker_names().is_empty());
    assert_eq!(starter.calls(), 1);
    assert!(finish(&r).is_ok());
}

#[test]
fn abort_ends_the_wait_but_not_the_stop() {
    let r = Arc::new(runner("rt-remove-abort", |p| p.is_fatal(none_fatal)));
    let (release, stop_wait) = crossbeam_channel::unbounded();
    let mut s = Starter::new(r.name());
    s.stop_wait = Some(stop_wait);
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    let (fire, abort) = abort_signal();
    let remover = {
        let r = r.clone();
        std::thread::spawn(move || r.stop_and_remove_worker("id", Some(&abort)))
    };
    drop(fire);
    assert_is::<Aborted>(&remover.join().unwrap().unwrap_err());
    // The stop goes on: the worker was killed and ends once released.
    let waiting = r.waiting_for();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].id, "id");
    release.send(()).unwrap();
    starter.assert_started(false);
    assert!(finish(&r).is_ok());
}

#[test]
fn concurrent_removers_never_hang_nor_lose_the_error() {
    let r = Arc::new(runner("rt-remove-many", |p| p.is_fatal(none_fatal)));
    let (release, stop_wait) = crossbeam_channel::unbounded();
    let mut s = Starter::new(r.name());
    s.stop_wait = Some(stop_wait);
    s.stop_err = Some(Error::msg("stopped badly"));
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    r.stop_worker("id").unwrap();
    let removers: Vec<_> = (0..3)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || r.stop_and_remove_worker("id", None))
        })
        .collect();
    release.send(()).unwrap();
    for remover in removers {
        // Each one either saw the removal (with the error) or arrived
        // after it (not found); none hangs.
        match remover.join().unwrap() {
            Err(e) if e.is::<NotFound>() => {}
            Err(e) => assert_eq!(e.to_string(), "stopped badly"),
            Ok(()) => panic!("the stop error was lost"),
        }
    }
    assert!(finish(&r).is_ok());
}

#[test]
fn while_the_runner_dies_it_is_dead() {
    let r = runner("rt-remove-dying", |p| p.is_fatal(none_fatal));
    let (release, stop_wait) = crossbeam_channel::unbounded();
    let mut s = Starter::new(r.name());
    s.stop_wait = Some(stop_wait);
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    r.kill();
    assert_is::<Dead>(&r.stop_and_remove_worker("id", None).unwrap_err());
    release.send(()).unwrap();
    assert!(wait_gone(&r).is_ok());
}

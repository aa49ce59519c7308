//! Starting and stopping single workers (Go's StartWorker and
//! StopWorker; Go: TestOneWorkerStart, TestOneWorkerFinish,
//! TestOneWorkerStartStop, TestWorkerStartWhenRunningOrStopping,
//! TestStartWorkerWhenDead, TestStopWorkerWhenDead).

use std::sync::Arc;

use worker_core::{AlreadyExists, Dead, Error, Worker};
use worker_runner::{Dying, EmptyId};

use crate::common::*;

#[test]
fn one_worker_start() {
    let r = runner("rt-one-worker-started", |p| p.is_fatal(none_fatal));
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    assert!(finish(&r).is_ok());
    starter.assert_started(false);
}

#[test]
fn one_worker_finish_is_removed_and_never_restarted() {
    let (r, clock) = clocked_runner("rt-one-worker-finish", |p| p);
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    let w = r.worker("id", None).unwrap();
    starter.die(None);
    starter.assert_started(false);
    // The worker's wait joins its thread, after which the runner has been
    // told; the next request is handled after that news.
    assert!(w.wait().is_ok());
    assert!(r.worker_names().is_empty());
    assert!(clock.waiting().is_empty(), "no restart is scheduled");
    assert_eq!(starter.calls(), 1);
    assert!(finish(&r).is_ok());
    starter.assert_no_notification();
}

#[test]
fn one_worker_start_stop() {
    let r = runner("rt-one-worker-start-stop", |p| p.is_fatal(all_fatal));
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    r.stop_worker("id").unwrap();
    starter.assert_started(false);
    assert!(finish(&r).is_ok());
}

#[test]
fn stop_of_an_unknown_worker_does_nothing() {
    let r = runner("rt-stop-unknown", |p| p);
    assert!(r.stop_worker("nobody").is_ok());
    assert!(finish(&r).is_ok());
}

#[test]
fn start_when_running_or_stopping_is_already_exists() {
    let r = runner("rt-start-when-running-or-stopping", |p| {
        p.is_fatal(all_fatal)
    });
    let (release, stop_wait) = crossbeam_channel::unbounded();
    let mut s = Starter::new(r.name());
    s.stop_wait = Some(stop_wait);
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    let err = r.start_worker("id", starter.start_fn()).unwrap_err();
    assert_is::<AlreadyExists>(&err);
    assert_eq!(err.to_string(), "worker \"id\" already exists");
    // Stopping: the worker blocks on stop_wait while ending.
    r.stop_worker("id").unwrap();
    let err = r.start_worker("id", starter.start_fn()).unwrap_err();
    assert_is::<AlreadyExists>(&err);
    release.send(()).unwrap();
    starter.assert_started(false);
    assert!(finish(&r).is_ok());
}

#[test]
fn start_and_stop_when_dead_are_dead() {
    let r = runner("rt-when-dead", |p| p.is_fatal(all_fatal));
    assert!(finish(&r).is_ok());
    let err = r
        .start_worker("foo", || -> Result<worker_core::SharedWorker, Error> {
            unreachable!("never called")
        })
        .unwrap_err();
    assert_is::<Dead>(&err);
    assert_is::<Dead>(&r.stop_worker("foo").unwrap_err());
    assert_is::<Dead>(&err_of(r.worker("foo", None)));
    assert_is::<Dead>(&r.stop_and_remove_worker("foo", None).unwrap_err());
    assert!(r.worker_names().is_empty());
    assert!(r.waiting_for().is_empty());
}

#[test]
fn start_while_dying_is_a_typed_error_not_a_silent_no_op() {
    // Go returns nil and never runs the worker: a silent no-op.
    let r = runner("rt-start-while-dying", |p| p.is_fatal(none_fatal));
    let (release, stop_wait) = crossbeam_channel::unbounded();
    let mut s = Starter::new(r.name());
    s.stop_wait = Some(stop_wait);
    let starter = Arc::new(s);
    r.start_worker("slow", starter.start_fn()).unwrap();
    starter.assert_started(true);
    r.kill();
    let other = Arc::new(Starter::new(r.name()));
    let err = r.start_worker("late", other.start_fn()).unwrap_err();
    assert_is::<Dying>(&err);
    assert_eq!(err.to_string(), "worker runner is dying");
    assert_eq!(other.calls(), 0);
    release.send(()).unwrap();
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn empty_id_is_refused() {
    let r = runner("rt-empty-id", |p| p);
    let starter = Arc::new(Starter::new(r.name()));
    assert_is::<EmptyId>(&r.start_worker("", starter.start_fn()).unwrap_err());
    assert_eq!(starter.calls(), 0);
    assert!(finish(&r).is_ok());
}

#[test]
fn worker_names_lists_every_known_id_sorted() {
    let r = runner("rt-names", |p| p.is_fatal(none_fatal));
    let starters: Vec<Arc<Starter>> = (0..3).map(|_| Arc::new(Starter::new(r.name()))).collect();
    for (i, s) in starters.iter().enumerate().rev() {
        r.start_worker(format!("w{i}"), s.start_fn()).unwrap();
    }
    assert_eq!(r.worker_names(), vec!["w0", "w1", "w2"]);
    assert!(finish(&r).is_ok());
}

#[test]
fn a_one_shot_worker_takes_what_it_is_given_and_is_never_restarted() {
    let (r, clock) = clocked_runner("rt-start-once", |p| p);
    // A value moved in, not cloned: the start function runs once.
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let socket = tx;
    r.start_worker_once("conn", move || {
        let socket = socket; // owned by the worker from here on
        Ok(worker_core::spawn("rt-start-once-conn", move |tomb| {
            let _ = tomb.dying().recv();
            drop(socket);
            Err(Error::msg("client reset"))
        }))
    })
    .unwrap();
    let conn = r.worker("conn", None).unwrap();
    conn.kill();
    // The error ends it for good: no restart is scheduled (nothing is
    // fatal here), and the id is gone.
    assert!(rx.recv_timeout(LONG).is_err(), "the socket was dropped");
    let err = r.stop_and_remove_worker("conn", None);
    assert!(err.is_err());
    assert!(clock.waiting().is_empty(), "no restart delay");
    assert!(r.worker_names().is_empty());
    assert!(finish(&r).is_ok());
}

#[test]
fn an_adopted_worker_is_supervised_as_it_is() {
    let r = runner("rt-start-adopt", |p| p.is_fatal(none_fatal));
    let lease = Arc::new(worker_core::Passive::new());
    r.adopt("lease", lease.clone()).unwrap();
    let held = r.worker("lease", None).unwrap();
    assert!(
        worker_core::downcast_worker::<worker_core::Passive>(&held)
            .is_some_and(|p| Arc::ptr_eq(&p, &lease)),
        "what goes in comes out"
    );
    assert!(finish(&r).is_ok());
    assert!(lease.wait().is_ok(), "stopped with the runner");
}

#[test]
fn what_a_start_function_returns_is_what_the_runner_hands_back() {
    // An Arc of a worker is shared as it is: never wrapped a second time.
    let r = runner("rt-start-same-arc", |p| p.is_fatal(none_fatal));
    let mine = Arc::new(worker_core::Passive::new());
    let given = mine.clone();
    r.start_worker("w", move || Ok(given.clone())).unwrap();
    let handed_back = r.worker("w", None).unwrap();
    let back = worker_core::downcast_worker::<worker_core::Passive>(&handed_back)
        .expect("the concrete type is reachable");
    assert!(Arc::ptr_eq(&back, &mine), "the very same worker");
    assert!(std::ptr::addr_eq(
        Arc::as_ptr(&handed_back),
        Arc::as_ptr(&mine)
    ));
    assert!(finish(&r).is_ok());
}

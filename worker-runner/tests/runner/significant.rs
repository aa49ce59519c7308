//! Significant workers and OTP's automatic shutdown, through a real
//! runner: the runner ends on its own, cleanly, when they end by
//! themselves.

use std::sync::Arc;

use worker_core::Error;
use worker_core::events::EventKind;
use worker_runner::{AutoShutdown, InvalidParams, RestartType, WorkerOptions};

use crate::common::*;

fn significant(restart_type: RestartType) -> WorkerOptions {
    WorkerOptions::new()
        .restart_type(restart_type)
        .significant(true)
}

#[test]
fn any_significant_ends_the_runner_when_one_finishes_its_job() {
    let (r, _clock) = clocked_runner("rt-sig-any", |p| {
        p.auto_shutdown(AutoShutdown::AnySignificant)
    });
    let job = Arc::new(Starter::new(r.name()));
    r.start_worker_with("job", significant(RestartType::Transient), job.start_fn())
        .unwrap();
    let helper = Arc::new(Starter::new(r.name()));
    r.start_worker("helper", helper.start_fn()).unwrap();
    job.assert_started(true);
    helper.assert_started(true);
    job.die(None);
    assert_ends_on_its_own(&r);
    helper.assert_started(false);
    assert!(wait_gone(&r).is_ok(), "an automatic shutdown is clean");
}

#[test]
fn all_significant_ends_the_runner_with_the_last_one() {
    let (stopped_tx, stopped) = crossbeam_channel::unbounded();
    let (r, _clock) = clocked_runner("rt-sig-all", |p| {
        p.auto_shutdown(AutoShutdown::AllSignificant)
            .on_event(move |e| {
                if let EventKind::Removed = e.kind {
                    stopped_tx.send(e.worker().unwrap().to_owned()).unwrap();
                }
            })
    });
    let one = Arc::new(Starter::new(r.name()));
    let two = Arc::new(Starter::new(r.name()));
    r.start_worker_with("one", significant(RestartType::Temporary), one.start_fn())
        .unwrap();
    r.start_worker_with("two", significant(RestartType::Temporary), two.start_fn())
        .unwrap();
    one.assert_started(true);
    two.assert_started(true);
    // A temporary worker's error counts as its end too (not fatal here).
    one.die(Some(Error::msg("done, badly")));
    assert_eq!(stopped.recv_timeout(LONG).unwrap(), "one");
    assert_eq!(r.worker_names(), vec!["two".to_owned()], "not shut down");
    two.die(None);
    assert_ends_on_its_own(&r);
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn a_stopped_significant_worker_does_not_end_the_runner() {
    let r = runner("rt-sig-stopped", |p| {
        p.is_fatal(none_fatal)
            .auto_shutdown(AutoShutdown::AnySignificant)
    });
    let job = Arc::new(Starter::new(r.name()));
    r.start_worker_with("job", significant(RestartType::Transient), job.start_fn())
        .unwrap();
    job.assert_started(true);
    assert!(r.stop_and_remove_worker("job", None).is_ok());
    // Still alive: it takes new workers.
    let other = Arc::new(Starter::new(r.name()));
    r.start_worker("other", other.start_fn()).unwrap();
    other.assert_started(true);
    assert!(finish(&r).is_ok());
}

#[test]
fn significant_workers_need_an_auto_shutdown_and_must_not_be_permanent() {
    let r = runner("rt-sig-refused", |p| p.is_fatal(none_fatal));
    let s = Arc::new(Starter::new(r.name()));
    let err = r
        .start_worker_with("job", significant(RestartType::Transient), s.start_fn())
        .unwrap_err();
    assert_is::<InvalidParams>(&err);
    let r2 = runner("rt-sig-permanent-refused", |p| {
        p.auto_shutdown(AutoShutdown::AllSignificant)
    });
    let err = r2
        .start_worker_with("job", significant(RestartType::Permanent), s.start_fn())
        .unwrap_err();
    assert_is::<InvalidParams>(&err);
    assert_eq!(s.calls(), 0);
    assert!(finish(&r).is_ok());
    assert!(finish(&r2).is_ok());
}

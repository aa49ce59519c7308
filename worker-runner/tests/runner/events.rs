//! The event hook: a worker's life in order, in the vocabulary every
//! supervisor shares, off the runner's loop; a hook that panics or blocks
//! cannot hurt the runner. The log speaks the same vocabulary.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::unbounded;
use worker_core::events::{Event, EventKind, ShutdownCause};
use worker_core::{Error, Worker};

use crate::common::*;

/// A hook that sends `(name, worker)` of every event.
fn recorder() -> (
    impl Fn(&Event) + Send + Sync + 'static,
    crossbeam_channel::Receiver<(&'static str, String)>,
) {
    let (tx, rx) = unbounded();
    let hook = move |e: &Event| {
        let _ = tx.send((e.name(), e.worker().unwrap_or_default().to_owned()));
    };
    (hook, rx)
}

#[test]
fn the_hook_sees_a_workers_life_in_order() {
    let (tx, events) = unbounded();
    let (r, clock) = clocked_runner("rt-events-life", |p| {
        p.stop_timeout(Duration::from_secs(5))
            .on_event(move |e| tx.send(e.clone()).unwrap())
    });
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("w", starter.start_fn()).unwrap();
    starter.assert_started(true);
    starter.die(Some(Error::msg("oops")));
    starter.assert_started(false);
    clock.wait_advance(Duration::from_secs(1), LONG, 1).unwrap();
    starter.assert_started(true);
    r.worker("w", None).unwrap();
    assert!(finish(&r).is_ok());
    // `wait` returned: every event has been delivered.
    let seen: Vec<Event> = events.try_iter().collect();
    let names: Vec<(&str, Option<&str>)> = seen.iter().map(|e| (e.name(), e.worker())).collect();
    let w = Some("w");
    assert_eq!(
        names,
        vec![
            ("worker starting", w),
            ("worker started", w),
            ("worker failed", w),
            ("worker restarting", w),
            ("worker starting", w),
            ("worker started", w),
            ("supervisor shutting down", None),
            ("worker stopping", w),
            ("worker stopped", w),
            ("worker removed", w),
        ]
    );
    assert!(seen.iter().all(|e| &*e.supervisor == "rt-events-life"));
    // Two incarnations, each with its own generation from `Starting` on.
    let (first, second) = (seen[0].generation, seen[4].generation);
    assert!(first > 0 && second > first);
    let generations: Vec<u64> = seen.iter().map(|e| e.generation).collect();
    assert_eq!(
        generations,
        [
            first, first, first, first, second, second, 0, second, second, second
        ]
    );
    assert!(matches!(
        &seen[2].kind,
        EventKind::Failed { error, fatal: false, end }
            if error.to_string() == "oops" && end.started && end.stopped_after.is_none() && !end.stuck
    ));
    assert!(matches!(
        seen[3].kind,
        EventKind::Restarting { delay, attempt: 1, because_of: None } if delay == Duration::from_secs(1)
    ));
    assert!(matches!(
        seen[6].kind,
        EventKind::ShuttingDown {
            cause: ShutdownCause::Killed
        }
    ));
    // Stopped at once, by the test clock.
    assert!(matches!(
        &seen[8].kind,
        EventKind::Stopped { end, reason: None }
            if end.started && end.stopped_after == Some(Duration::ZERO) && !end.stuck
    ));
}

#[test]
fn a_panicking_hook_does_not_break_the_runner() {
    let (hook, events) = recorder();
    let r = runner("rt-events-panic", |p| {
        p.is_fatal(none_fatal).on_event(move |e| {
            assert_ne!(e.name(), "worker started", "a hook bug");
            hook(e);
        })
    });
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("w", starter.start_fn()).unwrap();
    starter.assert_started(true);
    assert!(r.stop_and_remove_worker("w", None).is_ok());
    assert!(finish(&r).is_ok());
    // Only the panicking delivery is lost.
    let seen: Vec<&str> = events.try_iter().map(|(name, _)| name).collect();
    assert_eq!(
        seen,
        vec![
            "worker starting",
            "worker stopping",
            "worker stopped",
            "worker removed",
            "supervisor shutting down"
        ]
    );
}

#[test]
fn a_blocking_hook_never_blocks_the_runner() {
    let (hook, events) = recorder();
    let (release, gate) = crossbeam_channel::bounded::<()>(0);
    let (entered_tx, entered) = crossbeam_channel::bounded::<()>(1);
    let r = runner("rt-events-blocking", |p| {
        p.is_fatal(none_fatal).on_event(move |e| {
            if e.worker() == Some("first") && e.name() == "worker started" {
                let _ = entered_tx.try_send(());
                let _ = gate.recv();
            }
            hook(e);
        })
    });
    let first = Arc::new(Starter::new(r.name()));
    r.start_worker("first", first.start_fn()).unwrap();
    first.assert_started(true);
    entered.recv_timeout(LONG).unwrap();
    assert_eq!(events.try_recv().unwrap().0, "worker starting");
    // The hook is stuck in its first event; the runner is not.
    let second = Arc::new(Starter::new(r.name()));
    r.start_worker("second", second.start_fn()).unwrap();
    second.assert_started(true);
    r.worker("second", None).unwrap();
    assert_eq!(json_report(&r)["workers"]["second"]["state"], "started");
    r.stop_worker("second").unwrap();
    second.assert_started(false);
    // Waits for the runner to forget it.
    assert_is::<worker_core::NotFound>(&err_of(r.worker("second", None)));
    assert!(
        events.try_recv().is_err(),
        "nothing overtakes the blocked event"
    );
    drop(release);
    assert!(finish(&r).is_ok());
    let seen: Vec<(&str, String)> = events.try_iter().collect();
    let event = |name, id: &str| (name, id.to_owned());
    assert_eq!(
        seen,
        vec![
            event("worker started", "first"),
            event("worker starting", "second"),
            event("worker started", "second"),
            event("worker stopping", "second"),
            event("worker stopped", "second"),
            event("worker removed", "second"),
            event("supervisor shutting down", ""),
            event("worker stopping", "first"),
            event("worker stopped", "first"),
            event("worker removed", "first"),
        ]
    );
}

#[test]
fn the_log_speaks_the_events_vocabulary() {
    captured_logs();
    let (r, _clock) = clocked_runner("rt-events-log", |p| p);
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("w", starter.start_fn()).unwrap();
    starter.assert_started(true);
    starter.die(Some(Error::msg("oops")));
    starter.assert_started(false);
    r.kill();
    assert!(r.wait().is_ok());
    let log = logged();
    assert!(
        log.lines().any(|l| l.contains("rt-events-log")
            && l.contains("worker failed")
            && l.contains("oops")),
        "{log}"
    );
    assert!(finish(&r).is_ok());
}

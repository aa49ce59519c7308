//! Stopping as OTP does it, through a real runner on the test clock:
//! ordered shutdown, per-worker shutdown timeouts that force what can be
//! forced (and say so of what cannot), start functions that block after a
//! stop, and removals with a timeout.

use std::sync::Arc;
use std::time::Duration;

use worker_core::events::EventKind;
use worker_core::{Error, SharedWorker, Worker};
use worker_runner::{RemoveTimedOut, Shutdown, ShutdownOrder, Stage, WorkerOptions};
use worker_testing::{AbortableWorker, ForeverWorker, TestClock};

use crate::common::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A start function that hands out `worker` (the same one each time).
fn handing_out<W: worker_core::Worker + Clone>(
    worker: &W,
) -> impl FnMut() -> Result<SharedWorker, Error> + Send + 'static + use<W> {
    let worker = worker.clone();
    move || Ok(Arc::new(worker.clone()) as SharedWorker)
}

#[test]
fn reverse_order_stops_the_last_started_first_one_at_a_time() {
    let (stopped_tx, stopped) = crossbeam_channel::unbounded();
    let r = runner("rt-stop-reverse", |p| {
        p.is_fatal(none_fatal)
            .shutdown_order(ShutdownOrder::Reverse)
            .on_event(move |e| {
                if let EventKind::Removed = e.kind {
                    stopped_tx.send(e.worker().unwrap().to_owned()).unwrap();
                }
            })
    });
    let gates: Vec<_> = (0..3)
        .map(|i| {
            let (release, stop_wait) = crossbeam_channel::unbounded::<()>();
            let mut s = Starter::new(r.name());
            s.stop_wait = Some(stop_wait);
            let s = Arc::new(s);
            r.start_worker(format!("w{i}"), s.start_fn()).unwrap();
            s.assert_started(true);
            (s, release)
        })
        .collect();
    r.kill();
    // Only the last started is being stopped; the end of each lets the
    // next one be killed (in the same step: once the runner says one has
    // stopped, the next is already being stopped).
    for i in (0..3).rev() {
        let waiting: Vec<String> = r.waiting_for().into_iter().map(|w| w.id).collect();
        assert_eq!(waiting, vec![format!("w{i}")]);
        gates[i].1.send(()).unwrap();
        gates[i].0.assert_started(false);
        assert_eq!(stopped.recv_timeout(LONG).unwrap(), format!("w{i}"));
    }
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn a_shutdown_timeout_forces_an_abortable_worker_and_moves_on() {
    let clock = TestClock::new();
    let r = runner("rt-stop-timeout-force", |p| {
        p.clock(clock.clone())
            .is_fatal(all_fatal)
            .shutdown_order(ShutdownOrder::Reverse)
            .shutdown(Shutdown::Timeout(secs(5)))
    });
    let first = AbortableWorker::new();
    let last = AbortableWorker::new();
    r.start_worker("first", handing_out(&first)).unwrap();
    r.worker("first", None).unwrap();
    r.start_worker("last", handing_out(&last)).unwrap();
    r.worker("last", None).unwrap();
    r.kill();
    clock.wait_timers(1, LONG).unwrap();
    let waiting: Vec<String> = r.waiting_for().into_iter().map(|w| w.id).collect();
    assert_eq!(waiting, vec!["last"], "one at a time, the last first");
    assert_eq!(first.kills(), 0);
    // 5 s later: reported stuck, forced, and the next one is asked.
    clock.wait_advance(secs(5), LONG, 1).unwrap();
    clock.wait_advance(secs(5), LONG, 1).unwrap();
    assert_ends_on_its_own(&r);
    assert_eq!((last.aborts(), first.kills(), first.aborts()), (1, 1, 1));
    // Every error is fatal, but an aborted worker's error is the abort's.
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn brutal_kill_aborts_at_once_where_it_can_and_kills_a_thread_instead() {
    captured_logs();
    let r = runner("rt-stop-brutal", |p| p.is_fatal(none_fatal));
    let task = AbortableWorker::new();
    let brutal = WorkerOptions::new().shutdown(Shutdown::Abort);
    r.start_worker_with("task", brutal, handing_out(&task))
        .unwrap();
    r.worker("task", None).unwrap();
    assert!(r.stop_and_remove_worker("task", None).is_err(), "aborted");
    assert_eq!((task.kills(), task.aborts()), (0, 1), "not asked: forced");

    // A worker on a thread cannot be forced: it is asked, and the log says
    // that no brutal kill exists for it.
    let thread = Arc::new(Starter::new(r.name()));
    r.start_worker_with("thread", brutal, thread.start_fn())
        .unwrap();
    thread.assert_started(true);
    assert!(r.stop_and_remove_worker("thread", None).is_ok());
    assert!(
        logged()
            .lines()
            .any(|l| l.contains("rt-stop-brutal") && l.contains("cannot be aborted")),
        "no warning logged:\n{}",
        logged()
    );
    assert!(finish(&r).is_ok());
}

#[test]
fn a_thread_past_its_shutdown_timeout_is_reported_not_forced() {
    let clock = TestClock::new();
    let r = runner("rt-stop-timeout-thread", |p| {
        p.clock(clock.clone()).is_fatal(none_fatal)
    });
    let forever = ForeverWorker::new(None);
    let opts = WorkerOptions::new().shutdown(Shutdown::Timeout(secs(5)));
    r.start_worker_with("forever", opts, handing_out(&forever))
        .unwrap();
    r.worker("forever", None).unwrap();
    r.stop_worker("forever").unwrap();
    clock.wait_advance(secs(5), LONG, 1).unwrap();
    let waiting = r.waiting_for();
    assert!(waiting[0].stuck);
    assert_eq!(
        json_report(&r)["workers"]["forever"]["stuck"],
        "not stopped 5s after kill"
    );
    forever.really_kill();
    assert!(finish(&r).is_ok());
}

#[test]
fn a_start_function_that_blocks_after_a_stop_is_reported_stuck() {
    captured_logs();
    let clock = TestClock::new();
    let r = runner("rt-stop-stuck-start", |p| {
        p.clock(clock.clone())
            .is_fatal(none_fatal)
            .stop_timeout(secs(30))
    });
    let (release, gate) = crossbeam_channel::bounded::<()>(0);
    let (entered_tx, entered) = crossbeam_channel::bounded::<()>(1);
    let worker = ForeverWorker::new(None);
    let handed = worker.clone();
    r.start_worker("slow", move || {
        entered_tx.send(()).unwrap();
        let _ = gate.recv();
        Ok(handed.clone())
    })
    .unwrap();
    entered.recv_timeout(LONG).unwrap();
    r.stop_worker("slow").unwrap();
    clock.wait_advance(secs(30), LONG, 1).unwrap();
    let waiting = r.waiting_for();
    assert_eq!(
        (waiting[0].stage, waiting[0].stuck),
        (Stage::Starting, true)
    );
    let report = json_report(&r);
    assert_eq!(report["workers"]["slow"]["state"], "starting");
    assert_eq!(
        report["workers"]["slow"]["stuck"],
        "not stopped 30s after kill"
    );
    assert!(
        logged().lines().any(|l| l.contains("rt-stop-stuck-start")
            && l.contains("worker stuck")
            && l.contains("starting=true")),
        "no warning logged:\n{}",
        logged()
    );
    // It returns at last: its worker is killed (and, ignoring that, still
    // waited for).
    drop(release);
    worker.really_kill();
    assert!(finish(&r).is_ok());
}

#[test]
fn a_removal_with_a_timeout_says_what_happened_and_the_stop_goes_on() {
    let clock = TestClock::new();
    let r = Arc::new(runner("rt-stop-remove-within", |p| {
        p.clock(clock.clone()).is_fatal(all_fatal)
    }));
    let forever = ForeverWorker::new(Some(Error::msg("late error")));
    r.start_worker("forever", handing_out(&forever)).unwrap();
    r.worker("forever", None).unwrap();
    let remover = {
        let r = r.clone();
        std::thread::spawn(move || r.stop_and_remove_worker_within("forever", secs(2), None))
    };
    clock.wait_advance(secs(2), LONG, 1).unwrap();
    let err = remover.join().unwrap().unwrap_err();
    let worker_runner::RemoveError::TimedOut(timed_out) = err else {
        panic!("expected a timeout, got {err}");
    };
    assert_eq!(
        timed_out,
        RemoveTimedOut {
            id: "forever".into(),
            timeout: secs(2),
            stage: Stage::Stopping,
            stuck: false,
            forced: false,
        }
    );
    // The stop goes on; the late error is not fatal.
    assert_eq!(r.waiting_for()[0].id, "forever");
    forever.really_kill();
    // A lookup waits for the stopping worker, then finds it gone.
    assert_is::<worker_core::NotFound>(&err_of(r.worker("forever", None)));
    assert!(finish(&r).is_ok());
}

#[test]
fn a_removal_in_time_returns_the_workers_result() {
    let clock = TestClock::new();
    let r = runner("rt-stop-remove-in-time", |p| {
        p.clock(clock.clone()).is_fatal(none_fatal)
    });
    let mut s = Starter::new(r.name());
    s.stop_err = Some(Error::msg("stopped badly"));
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    let err = r
        .stop_and_remove_worker_within("id", secs(2), None)
        .unwrap_err();
    assert_eq!(err.to_string(), "stopped badly");
    assert!(r.worker_names().is_empty());
    assert!(finish(&r).is_ok());
}

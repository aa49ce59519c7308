//! Shutdown and its ordering guarantees: kill, wait, what is left
//! afterwards, and stuck workers (a worker that ignores kill is reported,
//! and the runner says whom it waits for).

use std::sync::Arc;
use std::time::Duration;

use worker_core::threads::live_threads_with_prefix;
use worker_core::{Error, SharedWorker, Worker, WorkerState};
use worker_runner::Stage;
use worker_testing::{ForeverWorker, TestClock};

use crate::common::*;

#[test]
fn kill_stops_every_worker_and_wait_leaves_no_thread() {
    let r = runner("rt-shutdown-all", |p| p.is_fatal(none_fatal));
    let starters: Vec<Arc<Starter>> = (0..10).map(|_| Arc::new(Starter::new(r.name()))).collect();
    for (i, s) in starters.iter().enumerate() {
        r.start_worker(i.to_string(), s.start_fn()).unwrap();
        r.worker(&i.to_string(), None).unwrap();
    }
    assert!(live_threads_with_prefix(r.name()) >= 11);
    r.kill();
    assert!(r.wait().is_ok());
    // Not "soon": at once. wait() returns after the loop, the start
    // threads and every worker thread (reaped by the runner) are joined.
    assert_eq!(live_threads_with_prefix(r.name()), 0);
    for s in &starters {
        s.assert_started(true);
        s.assert_started(false);
    }
}

#[test]
fn kill_is_idempotent_and_every_wait_gets_the_same_result() {
    let r = Arc::new(runner("rt-shutdown-waits", |p| p.is_fatal(all_fatal)));
    let mut s = Starter::new(r.name());
    s.stop_err = Some(Error::msg("stop error"));
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    r.worker("id", None).unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || r.wait().unwrap_err().to_string())
        })
        .collect();
    r.kill();
    r.kill();
    for w in waiters {
        assert_eq!(w.join().unwrap(), "stop error");
    }
    assert_eq!(finish(&r).unwrap_err().to_string(), "stop error");
}

#[test]
fn dropping_handles_never_stops_the_runner_and_kill_on_drop_does() {
    let r = runner("rt-shutdown-drop", |p| p.is_fatal(none_fatal));
    let starter = Arc::new(Starter::new(r.name()));
    // A worker that holds a clone of its own runner, with no Weak.
    let own = r.clone();
    let start = starter.start_fn();
    r.start_worker("id", start).unwrap();
    starter.assert_started(true);
    let kept = r.clone();
    drop(r);
    drop(own);
    starter.assert_no_notification();
    assert_eq!(kept.worker_names(), vec!["id"], "still running");
    let scoped = kept.clone().kill_on_drop();
    drop(scoped);
    starter.assert_started(false);
    assert!(wait_gone(&kept).is_ok());
}

#[test]
fn the_runner_names_the_workers_it_waits_for() {
    let r = runner("rt-shutdown-waiting-for", |p| p.is_fatal(none_fatal));
    let (release_stop, stop_wait) = crossbeam_channel::unbounded();
    let mut s = Starter::new(r.name());
    s.stop_wait = Some(stop_wait);
    let stubborn = Arc::new(s);
    r.start_worker("stubborn", stubborn.start_fn()).unwrap();
    r.worker("stubborn", None).unwrap();
    let (release_start, gate) = crossbeam_channel::bounded::<()>(0);
    let slow = Arc::new(Starter::new(r.name()));
    let mut start = slow.start_fn();
    r.start_worker("slow-start", move || {
        let _ = gate.recv();
        start()
    })
    .unwrap();
    assert!(r.waiting_for().is_empty());
    r.kill();
    let waiting = r.waiting_for();
    let seen: Vec<(&str, Stage, bool)> = waiting
        .iter()
        .map(|w| (w.id.as_str(), w.stage, w.stuck))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("slow-start", Stage::Starting, false),
            ("stubborn", Stage::Stopping, false),
        ]
    );
    drop(release_start);
    release_stop.send(()).unwrap();
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn a_worker_that_ignores_kill_is_reported_stuck_and_waited_for() {
    let logs = captured_logs();
    let clock = TestClock::new();
    let r = runner("rt-shutdown-stuck", |p| {
        p.clock(clock.clone())
            .is_fatal(none_fatal)
            .stop_timeout(Duration::from_secs(30))
    });
    let forever = Arc::new(ForeverWorker::new(None));
    let w = forever.clone();
    r.start_worker("forever", move || Ok(w.clone() as SharedWorker))
        .unwrap();
    r.worker("forever", None).unwrap();
    r.kill();
    clock
        .wait_advance(Duration::from_secs(29), LONG, 1)
        .unwrap();
    assert!(!r.waiting_for()[0].stuck);
    clock.advance(Duration::from_secs(1));
    // A request handled after the clock passed the deadline sees its
    // effect, so no waiting is needed.
    let waiting = r.waiting_for().remove(0);
    assert!(waiting.stuck);
    assert_eq!(waiting.id, "forever");
    assert_eq!(waiting.elapsed, Duration::from_secs(30));
    let report = r.report();
    let forever_report = report.worker("forever").unwrap();
    assert_eq!(forever_report.stuck, Some(Duration::from_secs(30)));
    assert_eq!(forever_report.state, WorkerState::Stopping);
    assert_eq!(
        serde_json::to_value(&report).unwrap()["workers"]["forever"]["stuck"],
        "not stopped 30s after kill"
    );
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("rt-shutdown-stuck") && l.contains("worker stuck")),
        "no warning logged:\n{text}"
    );
    forever.really_kill();
    assert!(wait_gone(&r).is_ok());
}

/// A worker with only kill and wait: the runner must watch it with a
/// thread of its own. Its `wait` says which thread called it.
struct Foreign {
    worker: ForeverWorker,
    waited_from: crossbeam_channel::Sender<String>,
}

impl Worker for Foreign {
    fn kill(&self) {
        self.worker.really_kill()
    }
    fn wait(&self) -> Result<(), Error> {
        let name = std::thread::current().name().unwrap_or_default().to_owned();
        let _ = self.waited_from.send(name);
        self.worker.wait()
    }
}

#[test]
fn a_foreign_worker_is_watched_by_a_named_thread_that_is_joined() {
    let r = runner("rt-shutdown-foreign", |p| p.is_fatal(none_fatal));
    let (waited_from, watcher) = crossbeam_channel::unbounded();
    r.start_worker("foreign", move || {
        Ok(Arc::new(Foreign {
            worker: ForeverWorker::new(None),
            waited_from: waited_from.clone(),
        }) as SharedWorker)
    })
    .unwrap();
    let name = watcher.recv_timeout(LONG).unwrap();
    assert_eq!(name, format!("{}-watch", r.name()));
    r.kill();
    assert!(r.wait().is_ok());
    assert_eq!(live_threads_with_prefix(r.name()), 0);
}

/// While the runner dies its id index is not kept entry by entry (a
/// quarter of the stop of 100,000 workers went to those removals): what
/// it answers must not show it. Ids already gone are neither named nor
/// found; ids still stopping are.
#[test]
fn during_a_shutdown_ids_already_gone_are_not_named() {
    let (removed_tx, removed) = crossbeam_channel::unbounded();
    let r = runner("rt-shutdown-names", |p| {
        p.is_fatal(none_fatal).on_event(move |e| {
            if let worker_core::events::EventKind::Removed = e.kind {
                let _ = removed_tx.send(e.worker.as_deref().unwrap_or("").to_owned());
            }
        })
    });
    let (stubborn, gate) = worker_testing::misbehaving::BlockingKill::new();
    let stubborn: SharedWorker = Arc::new(stubborn);
    let held = stubborn.clone();
    r.start_worker("stubborn", move || Ok(held.clone()))
        .unwrap();
    for id in ["a", "b", "c"] {
        r.start_worker(id, || Ok(worker_core::Passive::new()))
            .unwrap();
    }
    r.wait_ready(worker_core::Names::All, LONG, None).unwrap();
    r.kill();
    gate.wait_entered().unwrap();
    let mut gone: Vec<String> = (0..3)
        .map(|_| removed.recv_timeout(LONG).unwrap())
        .collect();
    gone.sort();
    assert_eq!(gone, ["a", "b", "c"]);
    assert_eq!(r.worker_names(), vec!["stubborn"]);
    let waiting = r.waiting_for();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].id, "stubborn");
    gate.open();
    assert!(r.wait().is_ok());
    assert!(r.worker_names().is_empty());
    assert!(stubborn.wait().is_ok());
}

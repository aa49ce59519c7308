//! The runner's report (Go: TestRunnerReport), and a fixed weak point of
//! Go's runner: worker reports called under the runner's lock.

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, bounded};
use serde_json::json;
use worker_core::{
    Clock, DoneCallback, Error, NoReport, Passive, Report, Reporter, SharedWorker, Signal, Worker,
    WorkerState,
};
use worker_runner::{Runner, RunnerReport};
use worker_testing::TestClock;

use crate::common::*;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn report_lists_every_worker_with_state_start_time_and_own_report() {
    // 2018-08-07 13:15:42 UTC, as in Go's test.
    let clock = TestClock::starting_at(UNIX_EPOCH + Duration::from_secs(1_533_647_742));
    let r = runner("rt-report-list", |p| {
        p.clock(clock.clone())
            .is_fatal(none_fatal)
            .restart_delay(SECOND)
    });
    for i in 0..5 {
        let mut s = Starter::new(r.name());
        if i % 2 == 0 {
            s.report = Some(Report::new(json!({ "index": i })));
        }
        let id = format!("worker-{i}");
        r.start_worker(&id, Arc::new(s).start_fn()).unwrap();
        r.worker(&id, None).unwrap();
    }
    let started = |report: Option<serde_json::Value>| {
        let mut w = json!({"state": "started", "started": "2018-08-07T13:15:42Z"});
        if let Some(report) = report {
            w["report"] = report;
        }
        w
    };
    assert_eq!(
        serde_json::to_value(r.report()).unwrap(),
        json!({"workers": {
            "worker-0": started(Some(json!({"index": 0}))),
            "worker-1": started(None),
            "worker-2": started(Some(json!({"index": 2}))),
            "worker-3": started(None),
            "worker-4": started(Some(json!({"index": 4}))),
        }})
    );
    assert!(finish(&r).is_ok());
}

#[test]
fn report_shows_every_state_why_it_restarted_and_the_last_start_time() {
    // Go shows "stopped" for a starting worker, "started" for a dead one
    // waiting to restart, and never "stopping"; its start time is the time
    // of StartWorker, never refreshed.
    let clock = TestClock::starting_at(UNIX_EPOCH + Duration::from_secs(1_533_647_742));
    let r = runner("rt-report-states", |p| {
        p.clock(clock.clone())
            .is_fatal(none_fatal)
            .restart_delay(SECOND)
    });
    let state = |id: &str| r.report().worker(id).unwrap().state;

    // starting: a start function that has not returned.
    let (release_start, gate) = bounded::<()>(0);
    let starting = Arc::new(Starter::new(r.name()));
    let mut start = starting.start_fn();
    r.start_worker("starting", move || {
        let _ = gate.recv();
        start()
    })
    .unwrap();
    assert_eq!(state("starting"), WorkerState::Starting);

    // stopping: killed, blocked before it ends.
    let (release_stop, stop_wait) = crossbeam_channel::unbounded();
    let mut s = Starter::new(r.name());
    s.stop_wait = Some(stop_wait);
    let stopping = Arc::new(s);
    r.start_worker("stopping", stopping.start_fn()).unwrap();
    r.worker("stopping", None).unwrap();
    r.stop_worker("stopping").unwrap();
    assert_eq!(state("stopping"), WorkerState::Stopping);

    // stopped: failed, waiting to restart; then started again, later.
    let flaky = Arc::new(Starter::new(r.name()));
    r.start_worker("flaky", flaky.start_fn()).unwrap();
    let w = r.worker("flaky", None).unwrap();
    clock.advance(Duration::from_secs(60));
    flaky.die(Some(Error::msg("connection reset")));
    let _ = w.wait();
    let report = r.report();
    let flaky_report = report.worker("flaky").unwrap();
    assert_eq!(flaky_report.state, WorkerState::Stopped);
    assert_eq!(
        flaky_report.started,
        clock.wall_now() - Duration::from_secs(60)
    );
    let json = serde_json::to_value(&report).unwrap();
    let flaky_json = &json["workers"]["flaky"];
    assert_eq!(flaky_json["state"], "stopped");
    assert_eq!(flaky_json["started"], "2018-08-07T13:15:42Z");
    assert_eq!(
        flaky_json["reason"],
        "restart 1 after error: connection reset (delay 1s)"
    );
    clock.wait_advance(SECOND, LONG, 1).unwrap();
    r.worker("flaky", None).unwrap();
    let json = serde_json::to_value(r.report()).unwrap();
    assert_eq!(json["workers"]["flaky"]["state"], "started");
    assert_eq!(json["workers"]["flaky"]["started"], "2018-08-07T13:16:43Z");

    drop(release_start);
    release_stop.send(()).unwrap();
    assert!(finish(&r).is_ok());
}

/// A worker whose report blocks until released, announcing that it has
/// been entered.
struct SlowReporter {
    inner: Passive,
    entered: Sender<()>,
    release: Receiver<()>,
}

impl Worker for SlowReporter {
    fn kill(&self) {
        self.inner.kill()
    }
    fn wait(&self) -> Result<(), Error> {
        self.inner.wait()
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        self.inner.on_done(callback)
    }
    fn dead_signal(&self) -> Option<Signal> {
        self.inner.dead_signal()
    }
    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

impl Reporter for SlowReporter {
    fn report(&self) -> Report {
        let _ = self.entered.send(());
        let _ = self.release.recv();
        Report::new(json!({"slow": true}))
    }
}

#[test]
fn a_slow_worker_report_does_not_stall_the_runner() {
    let r = Arc::new(runner("rt-report-slow", |p| p.is_fatal(none_fatal)));
    let (entered_tx, entered) = bounded(1);
    let (release, release_rx) = bounded(0);
    let slow: SharedWorker = Arc::new(SlowReporter {
        inner: Passive::new(),
        entered: entered_tx,
        release: release_rx,
    });
    r.start_worker("slow", move || Ok(slow.clone())).unwrap();
    r.worker("slow", None).unwrap();
    let reporting = {
        let r = r.clone();
        std::thread::spawn(move || r.report())
    };
    entered.recv_timeout(LONG).unwrap();
    // While that report is stuck in the worker, the runner works.
    let other = Arc::new(Starter::new(r.name()));
    r.start_worker("other", other.start_fn()).unwrap();
    let w = r.worker("other", None).unwrap();
    r.stop_worker("other").unwrap();
    // Joins the worker's thread, after which the runner knows it ended.
    assert!(w.wait().is_ok());
    other.assert_started(true);
    other.assert_started(false);
    assert_eq!(r.worker_names(), vec!["slow"]);
    release.send(()).unwrap();
    let report = serde_json::to_value(reporting.join().unwrap()).unwrap();
    assert_eq!(report["workers"]["slow"]["report"], json!({"slow": true}));
    assert!(finish(&r).is_ok());
}

struct PanickyReporter(Passive);

impl Worker for PanickyReporter {
    fn kill(&self) {
        self.0.kill()
    }
    fn wait(&self) -> Result<(), Error> {
        self.0.wait()
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        self.0.on_done(callback)
    }
    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

impl Reporter for PanickyReporter {
    fn report(&self) -> Report {
        panic!("report bug")
    }
}

#[test]
fn a_panicking_worker_report_shows_as_an_error() {
    let r = runner("rt-report-panics", |p| p.is_fatal(none_fatal));
    r.start_worker("p", || {
        Ok(Arc::new(PanickyReporter(Passive::new())) as SharedWorker)
    })
    .unwrap();
    r.worker("p", None).unwrap();
    let report = r.report();
    let own = report.worker("p").unwrap().report.as_ref().unwrap();
    assert_eq!(
        own.downcast_ref::<NoReport>(),
        Some(&NoReport::Panicked(
            "worker report panicked: report bug".into()
        ))
    );
    assert_eq!(
        serde_json::to_value(&report).unwrap()["workers"]["p"]["report"],
        json!({"error": "worker report panicked: report bug"})
    );
    assert!(finish(&r).is_ok());
}

#[test]
fn runners_nest_as_workers_and_reporters() {
    let outer = runner("rt-report-nested", |p| p.is_fatal(none_fatal));
    let inner_name = format!("{}-inner", outer.name());
    let inner_starter = Arc::new(Starter::new(&inner_name));
    let (inner_tx, inner_rx) = bounded(1);
    let starter = inner_starter.clone();
    outer
        .start_worker("inner", move || {
            let inner = runner(&inner_name, |p| p.is_fatal(none_fatal));
            inner.start_worker("leaf", starter.start_fn())?;
            let inner = Arc::new(inner);
            let _ = inner_tx.send(inner.clone());
            Ok(inner as SharedWorker)
        })
        .unwrap();
    let inner = inner_rx.recv_timeout(LONG).unwrap();
    inner.worker("leaf", None).unwrap();
    outer.worker("inner", None).unwrap();
    let report = outer.report();
    let inner_entry = report.worker("inner").unwrap();
    assert_eq!(inner_entry.state, WorkerState::Started);
    // The inner runner's report nests as it is, typed.
    let inner_report = inner_entry.report.as_ref().unwrap();
    let inner_report = inner_report.downcast_ref::<RunnerReport>().unwrap();
    assert_eq!(
        inner_report.worker("leaf").unwrap().state,
        WorkerState::Started
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["workers"]["inner"]["report"]["workers"]["leaf"]["state"],
        "started"
    );
    drop(inner);
    // Killing the outer runner stops the inner one and its worker; the
    // prefix check covers both runners' threads.
    assert!(finish(&outer).is_ok());
    inner_starter.assert_started(true);
    inner_starter.assert_started(false);
}

#[test]
fn the_report_of_a_finished_runner_is_empty() {
    let r = runner("rt-report-dead", |p| p);
    assert!(finish(&r).is_ok());
    assert_eq!(
        serde_json::to_value(r.report()).unwrap(),
        json!({"workers": {}})
    );
}

/// A worker whose report is the report of the runner that runs it.
struct ReportsItsRunner {
    passive: Passive,
    runner: Arc<OnceLock<Weak<Runner>>>,
}

impl Worker for ReportsItsRunner {
    worker_core::delegate_worker!(passive);

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

impl Reporter for ReportsItsRunner {
    fn report(&self) -> Report {
        match self.runner.get().and_then(Weak::upgrade) {
            Some(runner) => Reporter::report(&*runner),
            None => Report::new(json!({"runner": "gone"})),
        }
    }
}

#[test]
fn a_report_that_includes_its_own_runner_does_not_recurse_forever() {
    // Without the guard this recursed until the stack overflowed, which
    // aborts the whole process: hence the child process. Go deadlocks.
    in_child_process(
        "report::a_report_that_includes_its_own_runner_does_not_recurse_forever",
        || {
            let r = Arc::new(runner("rt-report-recursive", |p| p.is_fatal(none_fatal)));
            let cell = Arc::new(OnceLock::new());
            cell.set(Arc::downgrade(&r)).unwrap();
            r.start_worker("self", move || {
                Ok(ReportsItsRunner {
                    passive: Passive::new(),
                    runner: cell.clone(),
                })
            })
            .unwrap();
            r.worker("self", None).unwrap();
            let report = r.report();
            // The worker's report is the runner's, once; in that one, the
            // worker's place shows the marker.
            let own = report.worker("self").unwrap().report.as_ref().unwrap();
            let again = own.downcast_ref::<RunnerReport>().unwrap();
            let marker = again.worker("self").unwrap().report.as_ref().unwrap();
            assert_eq!(
                marker.downcast_ref::<NoReport>(),
                Some(&NoReport::Recursive)
            );
            let json = serde_json::to_value(&report).unwrap();
            let inner = &json["workers"]["self"]["report"]["workers"]["self"];
            assert_eq!(inner["state"], "started");
            assert!(
                inner["report"]["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("recursive report")
            );
            // The guard is released: a second report is the same.
            assert_eq!(serde_json::to_value(r.report()).unwrap(), json);
            assert!(finish(&r).is_ok());
        },
    );
}

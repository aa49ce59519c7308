//! Stopping the engine: dependents before their inputs, stuck workers,
//! and nothing left behind (beyond Go, whose engine stops everything at
//! once and can leak the self manifold's goroutine on shutdown).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use worker_core::{DoneCallback, Error, Signal, Tomb, Worker};
use worker_dependency::{Manifold, self_manifold};
use worker_testing::ForeverWorker;

use crate::common::*;

/// A worker that logs its name when killed, then ends.
struct Logged {
    name: String,
    log: Arc<Mutex<Vec<String>>>,
    tomb: Tomb,
}

impl Worker for Logged {
    fn kill(&self) {
        self.log.lock().unwrap().push(self.name.clone());
        self.tomb.kill(None);
        self.tomb.done(Ok(()));
    }
    fn wait(&self) -> Result<(), Error> {
        self.tomb.wait()
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Worker::on_done(&self.tomb, callback)
    }
    fn dead_signal(&self) -> Option<Signal> {
        Some(self.tomb.dead())
    }
}

fn logged(log: &Arc<Mutex<Vec<String>>>, inputs: &[&str]) -> Manifold {
    let log = log.clone();
    let names: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
    Manifold::new(move |ctx| {
        for input in &names {
            ctx.require(input)?;
        }
        Ok(Logged {
            name: ctx.name().to_owned(),
            log: log.clone(),
            tomb: Tomb::new(),
        })
    })
    .inputs(inputs)
}

#[test]
fn dependents_stop_before_the_inputs_they_use() {
    let h = Harness::new("dep-shutdown-order");
    let log = Arc::new(Mutex::new(Vec::new()));
    h.engine
        .install_all([
            ("a", logged(&log, &[])),
            ("b", logged(&log, &["a"])),
            ("c", logged(&log, &["b"])),
            ("d", logged(&log, &["a"])),
        ])
        .unwrap();
    h.expect_started(&["a"]);
    h.expect_stopped(&["b", "c", "d"]); // missing their inputs
    h.sync();
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["b", "d"]);
    h.sync();
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["c"]);
    log.lock().unwrap().clear();
    h.stop().unwrap();
    let log = log.lock().unwrap().clone();
    let pos = |n: &str| log.iter().position(|x| x == n).unwrap();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(pos("c") < pos("b"), "{log:?}");
    assert!(pos("b") < pos("a"), "{log:?}");
    assert!(pos("d") < pos("a"), "{log:?}");
}

#[test]
fn a_stuck_worker_is_reported_and_waited_for_but_does_not_hold_up_the_rest() {
    let _ = logs(); // capture warnings from now on
    let h = Harness::with("dep-shutdown-stuck", |c| {
        c.stop_timeout = Duration::from_secs(5)
    });
    h.install("a", &[]);
    h.expect_started(&["a"]);
    let a = h.call_of("a").unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let stubborn = Manifold::new(move |ctx| {
        ctx.require("a")?;
        let w = Arc::new(ForeverWorker::new(None));
        tx.send(w.clone()).unwrap();
        Ok(w)
    })
    .inputs(["a"]);
    h.engine.install("stubborn", stubborn).unwrap();
    h.expect_started(&["stubborn"]);
    let w = rx.recv_timeout(LONG).unwrap();
    h.engine.kill();
    // a waits for its dependent...
    assert_eq!(
        h.engine.waiting_for(),
        vec!["a".to_owned(), "stubborn".to_owned()]
    );
    assert_eq!(h.state("stubborn"), "stopping");
    assert!(!is_dead(&*a));
    // ...until the stop timeout: then it is reported stuck, and a stops.
    h.advance(Duration::from_secs(5), 1);
    h.expect_stopped(&["a"]);
    assert!(is_dead(&*a));
    let report = h.manifold_report("stubborn");
    assert_eq!(report["stuck"], true);
    let warned = logs().lines().any(|l| {
        l.contains("worker stuck") && l.contains("dep-shutdown-stuck") && l.contains("stubborn")
    });
    assert!(warned, "no warning in {}", logs());
    assert_eq!(report["stopping-for"], "5s");
    assert_eq!(h.engine.waiting_for(), vec!["stubborn".to_owned()]);
    assert!(h.engine.dead_signal().unwrap().try_recv().is_err());
    w.really_kill();
    h.stop().unwrap();
}

#[test]
fn every_worker_has_ended_when_wait_returns() {
    let h = Harness::new("dep-shutdown-all");
    let names: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    h.engine
        .install_all(names.iter().enumerate().map(|(i, n)| {
            let inputs: Vec<&str> = if i == 0 { vec![] } else { vec!["m0"] };
            (n.clone(), h.manifold(&inputs))
        }))
        .unwrap();
    h.expect_started(&["m0"]);
    let others: Vec<&str> = names[1..].iter().map(String::as_str).collect();
    h.expect_stopped(&others);
    h.sync();
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&others);
    let mut all: Vec<&str> = vec!["m0"];
    all.extend(&others);
    let workers = h.workers_of(&all);
    h.stop().unwrap();
    for (name, w) in workers {
        assert!(is_dead(&*w), "{name} still running");
    }
}

#[test]
fn the_self_manifold_stops_cleanly_even_when_every_error_is_fatal() {
    // Go's self manifold could leave a goroutine blocked, and its ErrDying
    // could become the engine's error under an all-fatal policy.
    // (Missing goes through is_fatal too, as in Go: keep it out.)
    let h = Harness::with("dep-shutdown-self", |c| {
        c.is_fatal = Arc::new(|e| !e.is::<worker_dependency::Missing>())
    });
    h.engine.install("self", self_manifold(&h.engine)).unwrap();
    h.expect_started(&["self"]);
    h.install("user", &["self"]);
    h.expect_started(&["user"]);
    h.stop().unwrap();
}

#[test]
fn waiting_for_lists_what_has_not_stopped() {
    let h = Harness::new("dep-shutdown-waiting");
    h.install("a", &[]);
    h.expect_started(&["a"]);
    assert_eq!(h.engine.waiting_for(), vec!["a".to_owned()]);
    h.engine.kill();
    h.engine.wait().unwrap();
    assert!(h.engine.waiting_for().is_empty());
    h.stop().unwrap();
}

#[test]
fn dropping_handles_never_stops_the_engine_and_kill_on_drop_does() {
    let h = Harness::new("dep-shutdown-drop");
    h.install("a", &[]);
    h.expect_started(&["a"]);
    let a = h.call_of("a").unwrap();
    let kept = h.engine.clone();
    let Harness { engine, .. } = h;
    // A manifold may hold its engine (self_manifold): dropping handles,
    // even all but one, leaves it running.
    drop(engine);
    // A round trip after the drop: a kill sent by the drop would have been
    // handled (and the worker killed) before this answer.
    assert_eq!(
        kept.report().state,
        worker_core::WorkerState::Started,
        "still running and answering"
    );
    assert!(
        worker_core::Worker::dead_signal(&*a)
            .unwrap()
            .try_recv()
            .is_err_and(|e| e.is_empty()),
        "the worker still runs"
    );
    // A handle held through kill_on_drop stops it when it goes.
    let scoped = kept.clone().kill_on_drop();
    drop(scoped);
    assert!(a.wait().is_ok());
    assert!(kept.wait().is_ok());
    worker_testing::assert_threads_gone("dep-shutdown-drop");
    assert!(
        kept.install("b", Manifold::new(|_| Ok(worker_core::Passive::new())))
            .is_err()
    );
}

/// A worker whose thread, after reporting its end, lingers until `gate`
/// opens; `wait` joins the thread.
struct Lingering {
    tomb: Tomb,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Worker for Lingering {
    fn kill(&self) {
        self.tomb.kill(None);
    }
    fn wait(&self) -> Result<(), Error> {
        let result = self.tomb.wait();
        if let Some(thread) = self.thread.lock().unwrap().take() {
            let _ = thread.join();
        }
        result
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Worker::on_done(&self.tomb, callback)
    }
}

#[test]
fn when_wait_returns_the_workers_threads_are_gone() {
    // The engine learns of a worker's end from its completion callback,
    // which may run well before the worker's thread returns; it waits for
    // every ended worker before its own wait returns.
    let h = Harness::new("dep-shutdown-joined");
    let (ended_tx, ended) = crossbeam_channel::unbounded();
    let (gate_tx, gate) = crossbeam_channel::bounded::<()>(0);
    let m = Manifold::new(move |_| {
        let tomb = Tomb::new();
        let body = tomb.clone();
        let (ended_tx, gate) = (ended_tx.clone(), gate.clone());
        let thread =
            worker_core::threads::spawn_named("dep-shutdown-joined-w".into(), move || {
                let _ = body.dying().recv();
                body.done(Ok(()));
                ended_tx.send(()).unwrap();
                let _ = gate.recv();
            })?;
        Ok(Lingering {
            tomb,
            thread: Mutex::new(Some(thread)),
        })
    });
    h.engine.install("lingering", m).unwrap();
    h.expect_started(&["lingering"]);
    h.engine.kill();
    ended.recv_timeout(LONG).unwrap();
    let dead = h.engine.dead_signal().unwrap();
    crossbeam_channel::select! {
        recv(dead) -> _ => panic!("the engine finished while a worker's thread still ran"),
        default(Duration::from_millis(200)) => {}
    }
    drop(gate_tx);
    h.engine.wait().unwrap();
    assert_eq!(
        worker_core::threads::live_threads_with_prefix("dep-shutdown-joined-w"),
        0
    );
    h.stop().unwrap();
}

/// A worker that cannot report its end by callback (only kill and wait).
struct Foreign(Tomb);

impl Worker for Foreign {
    fn kill(&self) {
        self.0.kill(None);
        self.0.done(Ok(()));
    }
    fn wait(&self) -> Result<(), Error> {
        self.0.wait()
    }
}

#[test]
fn foreign_workers_are_watched_by_a_named_thread_that_is_joined() {
    let h = Harness::new("dep-shutdown-foreign");
    let (tx, rx) = crossbeam_channel::unbounded();
    let m = Manifold::new(move |_| {
        let tomb = Tomb::new();
        tx.send(tomb.clone()).unwrap();
        Ok(Foreign(tomb))
    });
    h.engine.install("f", m).unwrap();
    h.expect_started(&["f"]);
    assert_eq!(
        worker_core::threads::live_threads_with_prefix("dep-shutdown-foreign-watch"),
        1
    );
    // Its end is noticed like any other.
    let tomb = rx.recv_timeout(LONG).unwrap();
    tomb.done(Err(Error::msg("foreign failure")));
    assert_eq!(
        h.expect_stopped(&["f"]),
        vec![Some("foreign failure".to_owned())]
    );
    h.stop().unwrap();
}

#[test]
fn a_worker_bouncing_without_delay_cannot_keep_the_engine_from_stopping() {
    let h = Harness::with("dep-shutdown-flood", |c| c.bounce_delay = Duration::ZERO);
    let m = Manifold::new(|_| {
        let w = worker_core::Passive::new();
        w.finish(Err(Error::new(worker_dependency::Bounce)));
        Ok(w)
    });
    h.engine.install("flood", m).unwrap();
    h.expect_started(&["flood"]);
    h.stop().unwrap();
}

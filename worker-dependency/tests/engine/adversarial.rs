//! Manifolds that break the rules cannot break the engine (issue 9): an
//! output value or a worker whose `Drop` panics, a blocking `kill`, a slow
//! `Drop`, start functions and worker bodies that call back into their own
//! engine, `Duration::MAX` settings, and a tree of supervisors full of such
//! workers. Each test failed (hung, crashed or lost an error) while the
//! engine ran user code on its loop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crossbeam_channel::{Sender, bounded, unbounded};
use worker_catacomb::{Catacomb, Plan};
use worker_core::{Error, Passive, SharedWorker, Worker, WouldDeadlock, spawn, stop};
use worker_dependency::{
    Bounce, Engine, EngineConfig, Manifold, Metrics, Outputs, UninstallError, self_manifold,
};
use worker_runner::{Runner, RunnerParams};
use worker_testing::assert_threads_gone;
use worker_testing::misbehaving::{BlockingKill, PanicOnDrop, SlowDrop, SlowReport, WaitsInReport};

use crate::common::*;

/// Runs `f` on a thread of its own and returns its answer; fails the test
/// if that takes longer than [`LONG`] (the engine froze) instead of
/// hanging it.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = bounded(1);
    let thread = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    let answer = rx
        .recv_timeout(LONG)
        .unwrap_or_else(|_| panic!("{what} did not return within {LONG:?}: the engine froze"));
    thread.join().unwrap();
    answer
}

/// An output value whose `Drop` panics: the one the start function made
/// (clones handed to dependents are quiet), after saying so. (Not while
/// the thread unwinds already: a second panic would abort the process,
/// which no library can contain.)
struct Bomb {
    armed: Option<Sender<()>>,
}

impl Clone for Bomb {
    fn clone(&self) -> Self {
        Bomb { armed: None }
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if let Some(dropped) = self.armed.take() {
            let _ = dropped.send(());
            if !std::thread::panicking() {
                panic!("an output value exploded when dropped");
            }
        }
    }
}

#[test]
fn an_output_whose_drop_panics_at_uninstall_leaves_the_engine_working() {
    let h = Harness::new("dep-adv-output-drop");
    let (dropped_tx, dropped) = bounded(1);
    let bomb = Mutex::new(Some(dropped_tx));
    let m = Manifold::offering(move |_| {
        let armed = bomb.lock().unwrap().take();
        Ok((Passive::new(), Outputs::new().with(Bomb { armed })))
    });
    h.engine.install("bomb", m).unwrap();
    h.expect_started(&["bomb"]);
    h.install("other", &[]);
    h.expect_started(&["other"]);
    let other = h.call_of("other").unwrap();
    // Uninstalling lets go of the output: its Drop panics.
    h.engine.uninstall("bomb").unwrap();
    dropped.recv_timeout(LONG).unwrap();
    // The engine goes on: it is not stopped, it installs and uninstalls.
    let handle = h.engine.clone();
    let report = within("a report", move || {
        serde_json::to_value(handle.report()).unwrap()
    });
    assert_eq!(report["state"], "started");
    assert!(report["manifolds"].get("bomb").is_none());
    h.install("later", &[]);
    h.expect_started(&["later"]);
    h.engine.uninstall("later").unwrap();
    assert!(!is_dead(&*other));
    // And when it stops, it stops the other manifold too, cleanly.
    h.stop().unwrap();
    assert!(is_dead(&*other));
}

#[test]
fn workers_whose_drop_panics_change_neither_the_run_nor_the_result() {
    let h = Harness::new("dep-adv-worker-drop");
    h.engine
        .install_all([
            ("early", Manifold::new(|_| Ok(PanicOnDrop::new()))),
            ("late", Manifold::new(|_| Ok(PanicOnDrop::new()))),
        ])
        .unwrap();
    h.expect_started(&["early", "late"]);
    // One is let go of while the engine runs...
    h.engine.uninstall("early").unwrap();
    h.install("next", &[]);
    h.expect_started(&["next"]);
    // ...the other after a clean stop: the result stays clean.
    h.stop().unwrap();
    assert_eq!(h.engine.report().state, worker_core::WorkerState::Stopped);
}

#[test]
fn a_blocking_kill_freezes_nothing_but_its_own_stop() {
    let h = Harness::with("dep-adv-blocking-kill-one", |c| {
        c.stop_timeout = Duration::from_secs(5)
    });
    let (bad, gate) = BlockingKill::new();
    let bad: SharedWorker = Arc::new(bad);
    let w = bad.clone();
    h.engine
        .install("bad", Manifold::new(move |_| Ok(w.clone())))
        .unwrap();
    h.expect_started(&["bad"]);
    h.install("other", &[]);
    h.expect_started(&["other"]);
    let other = h.call_of("other").unwrap();
    // Uninstalling waits for bad to stop; its kill blocks.
    let handle = h.engine.clone();
    let uninstalling = std::thread::spawn(move || handle.uninstall("bad"));
    gate.wait_entered().unwrap();
    // The engine goes on: queries, installs, other manifolds' stops.
    let handle = h.engine.clone();
    let report = within("a report", move || {
        serde_json::to_value(handle.report()).unwrap()
    });
    assert_eq!(report["manifolds"]["bad"]["state"], "stopping");
    assert_eq!(
        h.engine.waiting_for(),
        vec!["bad".to_owned(), "other".to_owned()]
    );
    h.install("fresh", &[]);
    h.expect_started(&["fresh"]);
    h.engine.uninstall("other").unwrap();
    assert!(is_dead(&*other));
    // After the stop timeout, it is reported stuck.
    h.advance(Duration::from_secs(5), 1);
    let report = h.manifold_report("bad");
    assert_eq!(report["stuck"], true);
    assert_eq!(report["stopping-for"], "5s");
    gate.open();
    assert_eq!(uninstalling.join().unwrap(), Ok(()));
    h.stop().unwrap();
    assert!(bad.wait().is_ok());
}

#[test]
fn a_blocking_kill_during_shutdown_delays_only_itself() {
    let h = Harness::new("dep-adv-blocking-kill-all");
    let (bad, gate) = BlockingKill::new();
    let bad: SharedWorker = Arc::new(bad);
    let w = bad.clone();
    // Installed first, so its kill comes first.
    h.engine
        .install("a-bad", Manifold::new(move |_| Ok(w.clone())))
        .unwrap();
    h.expect_started(&["a-bad"]);
    let names: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    h.engine
        .install_all(names.iter().map(|n| (n.clone(), h.manifold(&[]))))
        .unwrap();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let workers = h.workers_of(&names);
    h.engine.kill();
    gate.wait_entered().unwrap();
    // Every other worker is killed and ends, although one kill blocks.
    for (name, worker) in workers {
        within("a worker's end", move || worker.wait()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let handle = h.engine.clone();
    let waiting = within("waiting_for", move || handle.waiting_for());
    assert!(waiting.contains(&"a-bad".to_owned()), "{waiting:?}");
    assert!(!is_dead(&h.engine));
    gate.open();
    h.stop().unwrap();
}

#[test]
fn a_slow_drop_stalls_no_query() {
    let h = Harness::new("dep-adv-slow-drop");
    let (slow, gate) = SlowDrop::new();
    h.engine.install("slow", once(slow)).unwrap();
    h.expect_started(&["slow"]);
    h.engine.uninstall("slow").unwrap();
    // The engine lets go of the worker at once, off its loop: the Drop
    // blocks meanwhile, and the engine goes on.
    gate.wait_entered().unwrap();
    let handle = h.engine.clone();
    let report = within("a report", move || {
        serde_json::to_value(handle.report()).unwrap()
    });
    assert!(report["manifolds"].get("slow").is_none());
    h.install("next", &[]);
    h.expect_started(&["next"]);
    h.engine.uninstall("next").unwrap();
    // Stopping waits for the drop; queries still answer meanwhile.
    h.engine.kill();
    let handle = h.engine.clone();
    let waiting = within("waiting_for", move || handle.waiting_for());
    assert!(waiting.is_empty(), "{waiting:?}");
    gate.open();
    h.stop().unwrap();
}

#[test]
fn a_start_function_that_uninstalls_its_own_manifold_gets_an_error_not_a_deadlock() {
    let h = Harness::new("dep-adv-self-uninstall");
    let (tx, rx) = unbounded();
    let me = Manifold::new(move |ctx| {
        let engine: Engine = ctx.get("self")?;
        tx.send(engine.uninstall(ctx.name())).unwrap();
        Ok(Passive::new())
    })
    .inputs(["self"]);
    h.engine
        .install_all([("self", self_manifold(&h.engine)), ("me", me)])
        .unwrap();
    h.expect_started(&["self"]);
    h.advance(BOUNCE_DELAY, 1);
    let result = rx.recv_timeout(LONG).expect("the start function returned");
    match result {
        Err(UninstallError::WouldDeadlock(e)) => {
            assert_eq!(e.call, "uninstall");
            assert_eq!(e.supervisor, "dep-adv-self-uninstall");
        }
        other => panic!("expected WouldDeadlock, got {other:?}"),
    }
    h.expect_started(&["me"]);
    // The engine goes on, and can be stopped; others may uninstall it.
    h.engine.uninstall("me").unwrap();
    h.stop().unwrap();
}

#[test]
fn waiting_for_the_engine_from_its_own_threads_fails_instead_of_deadlocking() {
    let name = "dep-adv-self-wait";
    let mut config = EngineConfig::new(name);
    config.jitter = Arc::new(worker_dependency::NoJitter);
    let engine = Arc::new(Engine::new(config).unwrap());
    let weak: Weak<Engine> = Arc::downgrade(&engine);
    let (tx, rx) = unbounded();
    let body_name = format!("{name}-body");
    engine
        .install(
            "waiter",
            Manifold::new(move |_| {
                let engine = weak.upgrade().expect("alive");
                tx.send(("start function", engine.wait())).unwrap();
                // A worker body started here runs for the engine too.
                let (weak, tx) = (weak.clone(), tx.clone());
                Ok(spawn(body_name.clone(), move |tomb| {
                    let engine = weak.upgrade().expect("alive");
                    tx.send(("worker body", stop(&*engine))).unwrap();
                    let _ = tomb.dying().recv();
                    Ok(())
                }))
            }),
        )
        .unwrap();
    for _ in 0..2 {
        let (who, result) = rx.recv_timeout(LONG).expect("no deadlock");
        let err = result.unwrap_err();
        assert!(err.is::<WouldDeadlock>(), "{who}: {err}");
    }
    // The body's stop killed the engine; its owner can wait for it.
    assert!(engine.wait().is_ok());
    assert_threads_gone(name);
}

#[test]
fn duration_max_in_every_setting_means_never_and_breaks_nothing() {
    let never = Duration::MAX;
    let h = Harness::with("dep-adv-duration-max", |c| {
        c.error_delay = never;
        c.bounce_delay = never;
        c.max_delay = never;
        c.stop_timeout = never;
        c.backoff_reset_time = never;
        c.backoff_factor = 2.0;
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let failing = Manifold::new(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Err::<Passive, _>(Error::msg("down"))
    });
    h.engine.install("failing", failing).unwrap();
    h.expect_stopped(&["failing"]);
    h.clock.wait_timers(1, LONG).unwrap();
    assert!(h.clock.waiting()[0] > Duration::from_secs(50 * 365 * 24 * 3600));
    // Ten years later it still waits: "never" is not "now".
    h.clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    h.sync();
    h.assert_quiet();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.state("failing"), "starting");
    // A bounce waits as long, for the bounced manifold and its dependent.
    let [a, _] = h.start_chain(["a", "b"]);
    end(&a, Some(Error::new(Bounce)));
    h.expect_stopped(&["a", "b"]);
    h.clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    h.sync();
    h.assert_quiet();
    // Stopping works, with a "never" stop timeout.
    h.stop().unwrap();
}

/// Metrics that say which manifolds started.
struct Started(Mutex<Sender<String>>);

impl Metrics for Started {
    fn record_start(&self, name: &str) {
        let _ = self.0.lock().unwrap().send(name.to_owned());
    }
}

#[test]
fn a_tree_of_misbehaving_workers_stops_cleanly_and_leaves_no_thread() {
    // A catacomb owns an engine; a manifold of the engine is a runner.
    // Each level holds a worker whose Drop panics, and the engine an
    // output whose Drop panics: the tree still stops cleanly, with every
    // thread joined.
    let name = "dep-adv-tree";
    let mut config = EngineConfig::new(format!("{name}-engine"));
    config.jitter = Arc::new(worker_dependency::NoJitter);
    let (started_tx, started) = unbounded();
    let config = config.metrics(Started(Mutex::new(started_tx)));
    let engine = Arc::new(Engine::new(config).unwrap());
    let runner_name = format!("{name}-runner");
    let runner = Manifold::new(move |_| {
        let runner = Runner::new(RunnerParams::new(runner_name.clone()).is_fatal(|_| false))?;
        runner.start_worker("bad", || Ok(PanicOnDrop::new()))?;
        runner.start_worker("good", || Ok(Passive::new()))?;
        runner.worker("bad", None)?;
        runner.worker("good", None)?;
        Ok(runner)
    });
    let (dropped_tx, dropped) = bounded(1);
    let bomb = Mutex::new(Some(dropped_tx));
    let output = Manifold::offering(move |_| {
        let armed = bomb.lock().unwrap().take();
        Ok((PanicOnDrop::new(), Outputs::new().with(Bomb { armed })))
    });
    engine
        .install_all([("runner", runner), ("bomb", output)])
        .unwrap();
    let mut names = vec![
        started.recv_timeout(LONG).unwrap(),
        started.recv_timeout(LONG).unwrap(),
    ];
    names.sort();
    assert_eq!(names, ["bomb", "runner"]);
    let owned = engine.clone();
    let catacomb = Catacomb::invoke(
        Plan::new(format!("{name}-catacomb"), move |c: &Catacomb| {
            let _ = c.dying().recv();
            // The engine is bound, so it is killed with the catacomb; the
            // work also waits for it, joining its threads.
            let _ = owned.wait();
            Err(c.err_dying())
        })
        .init([engine.clone() as SharedWorker]),
    )
    .unwrap();
    let report = serde_json::to_value(engine.report()).unwrap();
    let runner = report["manifolds"]["runner"]["report"]["workers"].clone();
    assert_eq!(runner["bad"]["state"], "started", "{runner}");
    assert_eq!(runner["good"]["state"], "started", "{runner}");
    catacomb.kill();
    assert!(catacomb.wait().is_ok());
    dropped.recv_timeout(LONG).unwrap();
    assert!(engine.wait().is_ok());
    assert_eq!(engine.report().state, worker_core::WorkerState::Stopped);
    assert_threads_gone(name);
}

/// Found by the chaos test: a report holds the workers it reports on
/// (their reports are taken on the caller's thread). When the engine let
/// go of a worker meanwhile and stopped, the report held the last
/// reference: the worker's `Drop` ran on the caller's thread (a slow one
/// stalled `report()`), after the engine's `wait` had returned. The
/// report now gives its workers back, and the engine waits for them.
#[test]
fn an_engine_waits_for_the_workers_lent_to_a_report_and_drops_them_itself() {
    let h = Harness::new("dep-adv-report-lent");
    let (worker, gate, dropped) = SlowReport::new();
    h.engine.install("slow", once(worker)).unwrap();
    h.expect_started(&["slow"]);
    let reporter = {
        let engine = h.engine.clone();
        std::thread::spawn(move || engine.report())
    };
    gate.wait_entered().unwrap();
    // The engine lets go of the worker while its report is taken; it
    // said so (and, without the fix, ended) before the report goes on.
    h.engine.kill();
    h.expect_stopped(&["slow"]);
    let waiter = {
        let engine = h.engine.clone();
        std::thread::spawn(move || (engine.wait(), dropped.thread()))
    };
    gate.open();
    let report = reporter.join().unwrap();
    assert_eq!(report.manifolds.len(), 1);
    let (result, dropped_on) = waiter.join().unwrap();
    assert!(result.is_ok());
    let thread = dropped_on.expect("the engine's wait returned before its worker was dropped");
    assert!(
        thread.starts_with(&h.name),
        "the worker was dropped on {thread}"
    );
    assert!(h.stop().is_ok());
}

/// A worker's report that waits for its own engine would wait forever (the
/// engine waits for the workers lent to that report): it gets
/// [`WouldDeadlock`] at once.
#[test]
fn a_workers_report_that_waits_for_its_own_engine_gets_a_typed_error() {
    let h = Harness::new("dep-adv-report-waits");
    let (worker, waited) = WaitsInReport::new(Arc::new(h.engine.clone()));
    h.engine.install("waits", once(worker)).unwrap();
    h.expect_started(&["waits"]);
    let reporter = {
        let engine = h.engine.clone();
        std::thread::spawn(move || engine.report())
    };
    let e = waited.recv_timeout(LONG).unwrap().unwrap_err();
    assert_eq!(reporter.join().unwrap().manifolds.len(), 1);
    assert!(e.is::<WouldDeadlock>(), "{e:?}");
    assert!(h.stop().is_ok());
}

/// A manifold that starts `worker` once; a restart fails.
fn once<W: Worker>(worker: W) -> Manifold {
    let worker = Mutex::new(Some(worker));
    Manifold::new(move |_| {
        worker
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| Error::msg("started once only"))
    })
}

//! The engine with tokio task workers (issue 11): every scenario the other
//! modules pin with thread and passive workers holds for tasks too
//! (restart, bounce, fatal errors, ordered shutdown, stuck reporting), and
//! a runner of tasks nests inside an engine inside a catacomb.
//!
//! A manifold's start function runs on one of the engine's start threads,
//! which is not a runtime thread: the manifolds here name their runtime
//! by its handle (`task::spawn_on`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::oneshot;
use worker_core::task::{self, RuntimeShutDown, TaskWorker};
use worker_core::{Error, Panicked, Worker};
use worker_dependency::Manifold;

use crate::common::*;

/// A 2-thread runtime, as a service would have.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

/// A task worker a manifold started, as the test sees it.
struct Started {
    name: String,
    worker: Arc<TaskWorker>,
    /// Ends the task with this result (dropping it leaves the task
    /// running until killed).
    end: oneshot::Sender<Result<(), Error>>,
}

/// The body of the tasks here: runs until killed (then logs its name and
/// ends cleanly) or until the test ends it.
async fn body(
    name: String,
    tomb: worker_core::Tomb,
    end: oneshot::Receiver<Result<(), Error>>,
    log: Arc<Mutex<Vec<String>>>,
) -> Result<(), Error> {
    tokio::select! {
        _ = tomb.until_dying() => {
            log.lock().unwrap().push(name);
            Ok(())
        }
        Ok(result) = end => result,
    }
}

/// Manifolds of task workers on one runtime, which report every start.
struct Tasks {
    handle: Handle,
    started_tx: Sender<Started>,
    started: Receiver<Started>,
    /// The names of the tasks that saw their dying signal, in that order.
    log: Arc<Mutex<Vec<String>>>,
}

impl Tasks {
    fn new(rt: &Runtime) -> Self {
        let (started_tx, started) = unbounded();
        Tasks {
            handle: rt.handle().clone(),
            started_tx,
            started,
            log: Arc::default(),
        }
    }

    /// A manifold whose start function fails with `Missing` unless every
    /// input runs, and otherwise starts a task worker.
    fn manifold(&self, inputs: &[&str]) -> Manifold {
        let handle = self.handle.clone();
        let started = self.started_tx.clone();
        let log = self.log.clone();
        let names: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        Manifold::new(move |ctx| {
            for input in &names {
                ctx.require(input)?;
            }
            let (end, end_rx) = oneshot::channel();
            let name = ctx.name().to_owned();
            let log = log.clone();
            let worker = Arc::new(task::spawn_on(&handle, move |tomb| {
                body(name, tomb, end_rx, log)
            }));
            let _ = started.send(Started {
                name: ctx.name().to_owned(),
                worker: worker.clone(),
                end,
            });
            Ok(worker)
        })
        .inputs(inputs)
    }

    /// The next task a manifold started, which must be `name`'s.
    fn next(&self, name: &str) -> Started {
        let started = self.started.recv_timeout(LONG).expect("a task started");
        assert_eq!(started.name, name);
        started
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// Fails unless the task worker has ended, with a failure timeout.
fn ended(worker: &TaskWorker) -> Result<(), Error> {
    worker_testing::check_killed(worker)
}

#[test]
fn a_failing_task_restarts_after_the_error_delay_and_its_dependent_is_bounced() {
    let rt = runtime();
    let tasks = Tasks::new(&rt);
    let h = Harness::new("dep-tasks-restart");
    h.engine.install("a", tasks.manifold(&[])).unwrap();
    h.expect_started(&["a"]);
    let a = tasks.next("a");
    h.engine.install("b", tasks.manifold(&["a"])).unwrap();
    h.expect_started(&["b"]);
    let b = tasks.next("b");

    // a's task fails: b's task is killed (bounced) and ends cleanly.
    a.end.send(Err(err("a broke"))).unwrap();
    let errors = h.expect_stopped(&["a", "b"]);
    assert_eq!(errors, vec![Some("a broke".to_owned()), None]);
    assert_eq!(ended(&a.worker).unwrap_err().to_string(), "a broke");
    assert!(ended(&b.worker).is_ok());
    assert_eq!(tasks.log(), vec!["b".to_owned()], "b saw its dying signal");

    // b retries after the bounce delay and finds a missing; a comes back
    // after the error delay as a new task, then b after a bounce.
    h.advance(BOUNCE_DELAY, 1);
    h.expect_stopped(&["b"]);
    h.advance(ERROR_DELAY - BOUNCE_DELAY, 1);
    h.expect_started(&["a"]);
    let a2 = tasks.next("a");
    assert!(a2.worker.tomb().is_alive());
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["b"]);
    let b2 = tasks.next("b");
    assert_eq!(
        h.manifold_report("b")["why"],
        "input \"a\" started; restarted after 10ms"
    );
    h.stop().unwrap();
    assert!(ended(&a2.worker).is_ok());
    assert!(ended(&b2.worker).is_ok());
}

#[test]
fn a_fatal_task_error_stops_the_engine_and_every_other_task() {
    let rt = runtime();
    let tasks = Tasks::new(&rt);
    let h = Harness::with("dep-tasks-fatal", |c| {
        c.is_fatal = Arc::new(|e| e.to_string() == "fatal");
    });
    h.engine
        .install_all([("a", tasks.manifold(&[])), ("b", tasks.manifold(&[]))])
        .unwrap();
    h.expect_started(&["a", "b"]);
    let mut started = [
        tasks.started.recv_timeout(LONG).unwrap(),
        tasks.started.recv_timeout(LONG).unwrap(),
    ];
    started.sort_by(|x, y| x.name.cmp(&y.name));
    let [a, b] = started;
    b.end.send(Err(err("fatal"))).unwrap();
    assert_eq!(h.engine.wait().unwrap_err().to_string(), "fatal");
    assert!(ended(&a.worker).is_ok(), "a was stopped, cleanly");
    assert!(!a.worker.tomb().is_alive());
    assert_eq!(h.stop().unwrap_err().to_string(), "fatal");
}

#[test]
fn a_panicking_task_is_the_manifolds_error_and_is_restarted() {
    let rt = runtime();
    let h = Harness::new("dep-tasks-panic");
    let handle = rt.handle().clone();
    let starts = Arc::new(AtomicUsize::new(0));
    let counted = starts.clone();
    let (workers_tx, workers) = unbounded();
    let panicky = Manifold::new(move |_| {
        let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
        let worker = Arc::new(task::spawn_on(&handle, move |tomb| async move {
            if first {
                panic!("task blew up");
            }
            tomb.until_dying().await;
            Ok(())
        }));
        workers_tx.send(worker.clone()).unwrap();
        Ok(worker)
    });
    h.engine.install("p", panicky).unwrap();
    h.expect_started(&["p"]);
    let error = h.expect_stopped(&["p"]).remove(0).expect("an error");
    let first: Arc<TaskWorker> = workers.recv_timeout(LONG).unwrap();
    let panicked = first.wait().unwrap_err();
    let panicked = panicked.downcast_ref::<Panicked>().expect("Panicked");
    assert_eq!(panicked.message, "task blew up");
    assert!(error.contains("task blew up"), "{error}");
    h.advance(ERROR_DELAY, 1);
    h.expect_started(&["p"]);
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    h.stop().unwrap();
}

#[test]
fn a_runtime_shut_down_under_a_task_is_its_error_and_not_a_hang() {
    let rt = runtime();
    let tasks = Tasks::new(&rt);
    let h = Harness::new("dep-tasks-runtime-gone");
    h.engine.install("a", tasks.manifold(&[])).unwrap();
    h.expect_started(&["a"]);
    let a = tasks.next("a");
    drop(rt);
    let error = h.expect_stopped(&["a"]).remove(0).expect("an error");
    assert_eq!(error, RuntimeShutDown.to_string());
    assert!(a.worker.wait().unwrap_err().is::<RuntimeShutDown>());
    // The restart finds the runtime gone too: the same typed error, again
    // without a hang.
    h.advance(ERROR_DELAY, 1);
    h.expect_started(&["a"]);
    assert_eq!(
        h.expect_stopped(&["a"]).remove(0).as_deref(),
        Some(RuntimeShutDown.to_string().as_str())
    );
    h.stop().unwrap();
}

#[test]
fn tasks_stop_before_the_tasks_they_use() {
    let rt = runtime();
    let tasks = Tasks::new(&rt);
    let h = Harness::new("dep-tasks-order");
    h.engine
        .install_all([
            ("a", tasks.manifold(&[])),
            ("b", tasks.manifold(&["a"])),
            ("c", tasks.manifold(&["b"])),
            ("d", tasks.manifold(&["a"])),
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
    let workers: Vec<Started> = tasks.started.try_iter().collect();
    assert_eq!(workers.len(), 4);
    assert!(tasks.log().is_empty());
    h.stop().unwrap();
    for w in &workers {
        assert!(!w.worker.tomb().is_alive(), "{} still running", w.name);
    }
    // Each task saw its dying signal only once its dependents had ended.
    let log = tasks.log();
    let pos = |n: &str| log.iter().position(|x| x == n).unwrap();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(pos("c") < pos("b"), "{log:?}");
    assert!(pos("b") < pos("a"), "{log:?}");
    assert!(pos("d") < pos("a"), "{log:?}");
}

#[test]
fn a_task_that_ignores_kill_is_reported_stuck_and_waited_for() {
    let rt = runtime();
    let tasks = Tasks::new(&rt);
    let h = Harness::with("dep-tasks-stuck", |c| {
        c.stop_timeout = Duration::from_secs(5)
    });
    h.engine.install("a", tasks.manifold(&[])).unwrap();
    h.expect_started(&["a"]);
    let a = tasks.next("a");
    let handle = rt.handle().clone();
    let (release_tx, release) = unbounded::<oneshot::Sender<()>>();
    let deaf = Manifold::new(move |ctx| {
        ctx.require("a")?;
        let (tx, rx) = oneshot::channel::<()>();
        release_tx.send(tx).unwrap();
        // Never looks at its tomb: ends only when released.
        Ok(task::spawn_on(&handle, move |_tomb| async move {
            let _ = rx.await;
            Ok(())
        }))
    })
    .inputs(["a"]);
    h.engine.install("deaf", deaf).unwrap();
    h.expect_started(&["deaf"]);
    let release = release.recv_timeout(LONG).unwrap();
    h.engine.kill();
    // a waits for its dependent...
    assert_eq!(
        h.engine.waiting_for(),
        vec!["a".to_owned(), "deaf".to_owned()]
    );
    assert_eq!(h.state("deaf"), "stopping");
    assert!(a.worker.tomb().is_alive());
    // ...until the stop timeout: then deaf is reported stuck, and a stops.
    h.advance(Duration::from_secs(5), 1);
    h.expect_stopped(&["a"]);
    assert!(ended(&a.worker).is_ok());
    assert_eq!(h.manifold_report("deaf")["stuck"], true);
    assert_eq!(h.engine.waiting_for(), vec!["deaf".to_owned()]);
    assert!(h.engine.dead_signal().unwrap().try_recv().is_err());
    release.send(()).unwrap();
    h.stop().unwrap();
}

/// Issue 11's nesting: a runner of tasks is a manifold of an engine, the
/// engine is bound to a catacomb, and a task manifold uses the runner.
/// Killing the catacomb stops them in order: the user of the runner, then
/// the runner's tasks, then the engine, then the catacomb; no thread and
/// no task is left.
#[test]
fn a_runner_of_tasks_in_an_engine_in_a_catacomb_stops_in_order_and_leaves_nothing() {
    use worker_catacomb::{Catacomb, Plan};
    use worker_runner::{Runner, RunnerParams};

    const PREFIX: &str = "dep-tasks-nest";
    const TASKS: usize = 50;
    let rt = runtime();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    // Each task body holds one of these, made by its start function: the
    // count of bodies not yet dropped (a task's future is dropped before
    // its worker is seen dead).
    let live = Arc::new(AtomicUsize::new(0));

    let catacomb = Catacomb::invoke(Plan::new(format!("{PREFIX}-catacomb"), |c: &Catacomb| {
        let _ = c.dying().recv();
        Err(c.err_dying())
    }))
    .unwrap();
    let h = Harness::new(&format!("{PREFIX}-engine"));
    catacomb.add(h.engine.clone()).unwrap();

    let (runner_tx, runner_rx) = unbounded::<Runner>();
    let handle = rt.handle().clone();
    let (task_log, task_live) = (log.clone(), live.clone());
    let runner = Manifold::new(move |_| {
        let runner = Runner::new(RunnerParams::new(format!("{PREFIX}-runner")))?;
        for i in 0..TASKS {
            let (handle, log, live) = (handle.clone(), task_log.clone(), task_live.clone());
            runner.start_worker(format!("t{i}"), move || {
                let (log, body) = (log.clone(), Live::new(live.clone()));
                Ok(task::spawn_on(&handle, move |tomb| async move {
                    let _body = body;
                    tomb.until_dying().await;
                    log.lock().unwrap().push(format!("t{i}"));
                    Ok(())
                }))
            })?;
        }
        runner_tx.send(runner.clone()).unwrap();
        Ok(runner)
    })
    .output(|runner: &Runner, out| out.put(runner.clone()));
    let handle = rt.handle().clone();
    let (user_log, user_live) = (log.clone(), live.clone());
    let (ready_tx, ready) = unbounded::<()>();
    let user = Manifold::new(move |ctx| {
        let runner: Runner = ctx.get("runner")?;
        let (log, body, ready) = (
            user_log.clone(),
            Live::new(user_live.clone()),
            ready_tx.clone(),
        );
        Ok(task::spawn_on(&handle, move |tomb| async move {
            let _body = body;
            // Uses the runner from async code, without blocking the runtime.
            runner.worker_async("t0", None).await?;
            let _ = ready.send(());
            tomb.until_dying().await;
            log.lock().unwrap().push("user".to_owned());
            Ok(())
        }))
    })
    .inputs(["runner"]);
    h.engine
        .install_all([("runner", runner), ("user", user)])
        .unwrap();
    h.expect_started(&["runner"]);
    let runner = runner_rx.recv_timeout(LONG).unwrap();
    for i in 0..TASKS {
        runner.worker(&format!("t{i}"), None).unwrap();
    }
    h.expect_stopped(&["user"]); // started before the runner was up
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["user"]);
    ready.recv_timeout(LONG).expect("the user found t0");
    assert_eq!(live.load(Ordering::SeqCst), TASKS + 1);

    catacomb.kill();
    assert!(catacomb.wait().is_ok());
    assert!(is_dead(&h.engine), "the engine ended before the catacomb");
    assert!(runner.wait().is_ok(), "the runner ended cleanly");
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), TASKS + 1, "{log:?}");
    assert_eq!(log[0], "user", "the runner's user stopped first: {log:?}");
    assert_eq!(live.load(Ordering::SeqCst), 0, "a task body is left");
    drop(rt);
    worker_testing::assert_threads_gone(PREFIX);
}

/// Counts itself in `live` while it exists.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(live: Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Live(live)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

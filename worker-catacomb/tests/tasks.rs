//! A catacomb with tokio task workers bound to it (issue 11): the rules the
//! other files pin with thread and passive workers hold for tasks too. A
//! failing or panicking task kills the catacomb and its other tasks; the
//! catacomb is dead only once every task's future is gone; a task that
//! ignores kill keeps it dying and is counted until forced; a runner
//! restarts a catacomb of tasks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use tokio::runtime::{Handle, Runtime};
use worker_catacomb::{Catacomb, Plan};
use worker_core::task::{self, RuntimeShutDown, TaskAborted, TaskWorker};
use worker_core::{Error, Panicked, TombState, Worker};

/// A 2-thread runtime, as a service would have.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

/// Counts itself in `live` while it exists: a task body holds one, so the
/// count is of task futures not yet dropped.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Live(live.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A task worker that runs until killed, then ends cleanly.
fn until_killed(handle: &Handle, live: &Arc<AtomicUsize>) -> Arc<TaskWorker> {
    let body = Live::new(live);
    Arc::new(task::spawn_on(handle, move |tomb| async move {
        let _body = body;
        tomb.until_dying().await;
        Ok(())
    }))
}

/// A task worker that ends with `result` as soon as `go` fires.
fn ends_with(
    handle: &Handle,
    result: Result<(), Error>,
) -> (tokio::sync::oneshot::Sender<()>, Arc<TaskWorker>) {
    let (go, gone) = tokio::sync::oneshot::channel::<()>();
    let worker = Arc::new(task::spawn_on(handle, move |tomb| async move {
        tokio::select! {
            _ = tomb.until_dying() => Ok(()),
            _ = gone => result,
        }
    }));
    (go, worker)
}

#[test]
fn a_failing_task_kills_the_catacomb_and_its_other_tasks() {
    let scope = Scope::new("tasks_fail");
    let rt = runtime();
    let live = Arc::new(AtomicUsize::new(0));
    let others: Vec<_> = (0..10).map(|_| until_killed(rt.handle(), &live)).collect();
    let (go, failing) = ends_with(rt.handle(), Err(Error::msg("task broke")));
    let c = invoke_until_dying(
        scope.name("c"),
        others
            .iter()
            .map(shared)
            .chain([shared(&failing)])
            .collect(),
    );
    assert_eq!(c.worker_count(), 11);
    go.send(()).unwrap();
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "task broke");
    for other in &others {
        assert!(
            other.tomb().try_result().unwrap().is_ok(),
            "killed, cleanly"
        );
    }
    assert_eq!(live.load(Ordering::SeqCst), 0, "a task body is left");
    scope.finish();
}

#[test]
fn a_panicking_task_is_the_catacombs_error() {
    let scope = Scope::new("tasks_panic");
    let rt = runtime();
    let live = Arc::new(AtomicUsize::new(0));
    let other = until_killed(rt.handle(), &live);
    let c = invoke_until_dying(scope.name("c"), vec![shared(&other)]);
    c.add(task::spawn_on(rt.handle(), |_tomb| async {
        panic!("task blew up");
    }))
    .unwrap();
    let err = wait_for(&c).unwrap_err();
    let panicked = err.downcast_ref::<Panicked>().expect("Panicked");
    assert_eq!(panicked.message, "task blew up");
    assert!(other.tomb().try_result().unwrap().is_ok());
    assert_eq!(live.load(Ordering::SeqCst), 0);
    scope.finish();
}

#[test]
fn the_catacomb_is_dead_only_once_every_task_future_is_gone() {
    let scope = Scope::new("tasks_all_gone");
    let rt = runtime();
    let live = Arc::new(AtomicUsize::new(0));
    let c = invoke_until_dying(scope.name("c"), vec![]);
    // Tasks that take a while to stop: each yields many times first.
    let tasks: Vec<Arc<TaskWorker>> = (0..100)
        .map(|_| {
            let body = Live::new(&live);
            let worker = Arc::new(task::spawn_on(rt.handle(), move |tomb| async move {
                let _body = body;
                tomb.until_dying().await;
                for _ in 0..50 {
                    tokio::task::yield_now().await;
                }
                Ok(())
            }));
            c.add(worker.clone()).unwrap();
            worker
        })
        .collect();
    assert_eq!(c.report().workers, 100);
    c.kill();
    assert!(wait_for(&c).is_ok());
    assert_eq!(live.load(Ordering::SeqCst), 0, "a task body outlived wait");
    for t in &tasks {
        assert!(!t.tomb().is_alive());
    }
    assert_eq!(c.report().workers, 0);
    scope.finish();
}

#[test]
fn a_task_that_ignores_kill_keeps_the_catacomb_dying_until_it_is_forced() {
    let scope = Scope::new("tasks_deaf");
    let rt = runtime();
    let live = Arc::new(AtomicUsize::new(0));
    let polite = until_killed(rt.handle(), &live);
    let body = Live::new(&live);
    let deaf = Arc::new(task::spawn_on(rt.handle(), move |_tomb| async move {
        let _body = body;
        std::future::pending::<()>().await; // never looks at its tomb
        Ok(())
    }));
    let c = invoke_until_dying(scope.name("c"), vec![shared(&polite), shared(&deaf)]);
    c.kill();
    worker_testing::check_killed(&*polite).unwrap();
    // The deaf task holds the catacomb: dying, with its worker counted
    // (the polite one's end may not have been let go of yet).
    assert_eq!(live.load(Ordering::SeqCst), 1, "only the deaf body is left");
    let report = c.report();
    assert_eq!(report.state, TombState::Dying);
    assert!((1..=2).contains(&report.workers), "{report:?}");
    assert!(c.dead().try_recv().is_err());
    // Forcing it (OTP's brutal kill) lets the catacomb finish, with the
    // forced end as its first real error.
    deaf.abort_task();
    let err = wait_for(&c).unwrap_err();
    assert!(err.is::<TaskAborted>(), "{err}");
    assert_eq!(live.load(Ordering::SeqCst), 0);
    scope.finish();
}

#[test]
fn a_runtime_shut_down_under_bound_tasks_ends_the_catacomb_with_a_typed_error() {
    let scope = Scope::new("tasks_runtime_gone");
    let rt = runtime();
    let live = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..5).map(|_| until_killed(rt.handle(), &live)).collect();
    let c = invoke_until_dying(scope.name("c"), tasks.iter().map(shared).collect());
    drop(rt);
    let err = wait_for(&c).unwrap_err();
    assert!(err.is::<RuntimeShutDown>(), "{err}");
    assert_eq!(live.load(Ordering::SeqCst), 0);
    scope.finish();
}

#[test]
fn a_runner_restarts_a_catacomb_whose_task_failed() {
    use worker_runner::{Runner, RunnerParams};
    use worker_testing::TestClock;

    let scope = Scope::new("tasks_restart");
    let rt = runtime();
    let clock = TestClock::new();
    let runner = Runner::new(
        RunnerParams::new(scope.name("runner"))
            .clock(clock.clone())
            .is_fatal(|_| false)
            .restart_delay(Duration::from_secs(1)),
    )
    .unwrap();
    let (incarnations_tx, incarnations) = crossbeam_channel::unbounded();
    let handle = rt.handle().clone();
    let live = Arc::new(AtomicUsize::new(0));
    let task_live = live.clone();
    let (names, mut n) = (scope.name("c"), 0);
    runner
        .start_worker("owner", move || {
            n += 1;
            let (go, failing) = ends_with(&handle, Err(Error::msg(format!("broke #{n}"))));
            let other = until_killed(&handle, &task_live);
            let c = Catacomb::invoke(
                Plan::new(format!("{names}{n}"), until_dying)
                    .init([shared(&failing), shared(&other)]),
            )?;
            incarnations_tx.send((go, other)).unwrap();
            Ok(c)
        })
        .unwrap();
    let (go, first) = incarnations.recv_timeout(TIMEOUT).unwrap();
    go.send(()).unwrap();
    worker_testing::check_killed(&*first).unwrap();
    // Restarted after the delay, on the test clock: a new catacomb with new
    // tasks.
    clock
        .wait_advance(Duration::from_secs(1), TIMEOUT, 1)
        .unwrap();
    let (_go, second) = incarnations.recv_timeout(TIMEOUT).unwrap();
    assert!(second.tomb().is_alive());
    let owner = runner.worker("owner", None).unwrap();
    assert!(owner.dead_signal().unwrap().try_recv().is_err(), "running");
    runner.kill();
    assert!(runner.wait().is_ok());
    assert!(!second.tomb().is_alive());
    assert_eq!(live.load(Ordering::SeqCst), 0);
    scope.finish();
}

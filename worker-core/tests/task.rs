//! Tokio tasks as workers (feature `tokio`): how they end, from which
//! threads they start, and the std-only futures under tokio.

#![cfg(feature = "tokio")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};
use worker_core::task::{self, NoRuntime, RuntimeShutDown, TaskAborted, TaskWorker};
use worker_core::{AbortSignal, Error, Panicked, Passive, TombState, Worker, finished, spawn};

const LONG: Duration = Duration::from_secs(10);

fn runtime() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A task worker that returns when killed; `started` fires once it runs.
fn until_killed(rt: &Runtime) -> (TaskWorker, crossbeam_channel::Receiver<()>) {
    let (started_tx, started) = crossbeam_channel::bounded(1);
    let worker = task::spawn_on(rt.handle(), move |tomb| async move {
        started_tx.send(()).unwrap();
        tomb.until_dying().await;
        Ok(())
    });
    (worker, started)
}

/// Whether `worker` finishes within `timeout`, seen through its signal.
fn finishes_within(worker: &TaskWorker, timeout: Duration) -> bool {
    let dead = worker
        .dead_signal()
        .expect("task workers have a dead signal");
    !matches!(
        dead.recv_timeout(timeout),
        Err(crossbeam_channel::RecvTimeoutError::Timeout)
    )
}

#[test]
fn a_kill_is_seen_at_the_next_await_from_a_thread_outside_the_runtime() {
    let rt = runtime();
    let (worker, started) = until_killed(&rt);
    started.recv_timeout(LONG).unwrap();
    assert!(!finishes_within(&worker, Duration::from_millis(10)));
    worker.kill();
    assert!(worker.wait().is_ok());
}

#[test]
fn the_bodys_result_is_the_workers() {
    let rt = runtime();
    let worker = task::spawn_on(rt.handle(), |_tomb| async { Err(Error::msg("no disk")) });
    assert_eq!(worker.wait().unwrap_err().to_string(), "no disk");
    let worker = task::spawn_on(rt.handle(), |tomb| async move {
        tomb.until_dying().await;
        Err(Error::msg("late"))
    });
    worker.tomb().kill(Some(Error::msg("first")));
    assert_eq!(worker.wait().unwrap_err().to_string(), "first");
}

#[test]
fn spawn_uses_the_current_runtime_inside_one() {
    let rt = runtime();
    let worker = rt.block_on(async {
        task::spawn(|tomb| async move {
            tomb.until_dying().await;
            Ok(())
        })
    });
    assert!(worker.tomb().is_alive());
    worker.kill();
    assert!(worker.wait().is_ok());
}

#[test]
fn spawn_outside_a_runtime_gives_a_dead_worker_saying_why() {
    let worker = task::spawn(|_tomb| async { Ok(()) });
    let err = worker.wait().unwrap_err();
    assert!(err.is::<NoRuntime>(), "{err}");
    assert!(err.to_string().contains("task::spawn_on"), "{err}");
}

#[test]
fn a_panic_in_the_body_or_its_closure_becomes_panicked() {
    let rt = runtime();
    let worker = task::spawn_on(rt.handle(), |tomb| async move {
        if tomb.is_alive() {
            panic!("body exploded");
        }
        Ok(())
    });
    let err = worker.wait().unwrap_err();
    assert!(err.is::<Panicked>(), "{err}");
    assert!(err.to_string().contains("body exploded"), "{err}");

    #[allow(unreachable_code)]
    let worker = task::spawn_on(rt.handle(), |_tomb| {
        panic!("closure exploded");
        async { Ok(()) }
    });
    let err = worker.wait().unwrap_err();
    assert!(err.to_string().contains("closure exploded"), "{err}");

    // The runtime is unharmed.
    let (worker, started) = until_killed(&rt);
    started.recv_timeout(LONG).unwrap();
    worker.kill();
    assert!(worker.wait().is_ok());
}

/// Sets a flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn the_bodys_future_is_dropped_before_the_worker_is_seen_dead() {
    let rt = runtime();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let worker = task::spawn_on(rt.handle(), move |tomb| async move {
        let _held = flag;
        tomb.until_dying().await;
        Ok(())
    });
    worker.kill();
    assert!(worker.wait().is_ok());
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn a_runtime_shut_down_under_a_task_ends_it_with_a_typed_error() {
    let rt = runtime();
    let (worker, started) = until_killed(&rt);
    started.recv_timeout(LONG).unwrap();
    drop(rt);
    let err = worker.wait().unwrap_err();
    assert!(err.is::<RuntimeShutDown>(), "{err}");
}

#[test]
fn a_task_spawned_on_a_shut_down_runtime_ends_at_once() {
    let rt = runtime();
    let handle = rt.handle().clone();
    rt.shutdown_background();
    let worker = task::spawn_on(&handle, |tomb| async move {
        tomb.until_dying().await;
        Ok(())
    });
    assert!(finishes_within(&worker, LONG), "never a hang");
    assert!(worker.wait().unwrap_err().is::<RuntimeShutDown>());
}

#[test]
fn a_task_that_ignores_kill_goes_on_until_aborted() {
    let rt = runtime();
    let (started_tx, started) = crossbeam_channel::bounded(1);
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let worker = task::spawn_on(rt.handle(), move |_tomb| async move {
        let _held = flag;
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await; // never looks at its tomb
        Ok(())
    });
    started.recv_timeout(LONG).unwrap();
    worker.kill();
    assert!(
        !finishes_within(&worker, Duration::from_millis(20)),
        "stuck"
    );
    assert_eq!(worker.tomb().state(), TombState::Dying);
    worker.abort_task();
    let err = worker.wait().unwrap_err();
    assert!(err.is::<TaskAborted>(), "{err}");
    assert!(dropped.load(Ordering::SeqCst), "the future was dropped");
}

#[test]
fn aborting_a_finished_task_changes_nothing() {
    let rt = runtime();
    let worker = task::spawn_on(rt.handle(), |_tomb| async { Ok(()) });
    assert!(worker.wait().is_ok());
    worker.abort_task();
    assert!(worker.wait().is_ok());
}

#[test]
fn completion_callbacks_report_a_task_workers_end_without_a_thread() {
    let rt = runtime();
    let (worker, started) = until_killed(&rt);
    let (done_tx, done) = crossbeam_channel::bounded(1);
    assert!(
        worker
            .on_done(Box::new(move |outcome| done_tx
                .send(outcome.clone())
                .unwrap()))
            .is_ok()
    );
    started.recv_timeout(LONG).unwrap();
    worker.tomb().kill(Some(Error::msg("bye")));
    let outcome = done.recv_timeout(LONG).unwrap();
    assert_eq!(outcome.unwrap_err().to_string(), "bye");
}

#[test]
fn works_on_a_current_thread_runtime_driven_elsewhere() {
    let rt = Builder::new_current_thread().build().unwrap();
    let worker = task::spawn_on(rt.handle(), |tomb| async move {
        tomb.until_dying().await;
        Ok(())
    });
    let tomb = worker.tomb().clone();
    let killer = std::thread::spawn(move || tomb.kill(None));
    // The runtime's only thread drives the task until it is dead.
    let result = rt.block_on(worker.tomb().until_dead());
    assert!(result.is_ok());
    killer.join().unwrap();
}

#[test]
fn the_std_futures_work_under_tokio() {
    let rt = runtime();
    rt.block_on(async {
        // A thread worker, awaited without blocking the runtime.
        let thread = Arc::new(spawn("task-test-thread", |tomb| {
            let _ = tomb.dying().recv();
            Ok(())
        }));
        let passive = Arc::new(Passive::new());
        let (trigger, abort) = AbortSignal::pair();
        let waiter = tokio::spawn({
            let thread = thread.clone();
            let passive = passive.clone();
            async move {
                let (a, b) = tokio::join!(finished(&thread), passive.tomb().until_dead());
                abort.until_fired().await;
                (a, b)
            }
        });
        thread.kill();
        passive.finish(Err(Error::msg("passive failed")));
        trigger.fire();
        let (a, b) = waiter.await.unwrap();
        assert!(a.is_ok());
        assert_eq!(b.unwrap_err().to_string(), "passive failed");
    });
}

#[test]
fn tokio_select_on_dying_in_a_loop_leaves_the_tomb_clean() {
    let rt = runtime();
    let (ticks_tx, ticks) = crossbeam_channel::unbounded();
    let worker = task::spawn_on(rt.handle(), move |tomb| async move {
        let mut interval = tokio::time::interval(Duration::from_millis(1));
        loop {
            tokio::select! {
                _ = tomb.until_dying() => return Ok(()),
                _ = interval.tick() => { let _ = ticks_tx.send(()); }
            }
        }
    });
    // Many rounds, each making and dropping a dying future.
    for _ in 0..20 {
        ticks.recv_timeout(LONG).unwrap();
    }
    worker.kill();
    assert!(worker.wait().is_ok());
}

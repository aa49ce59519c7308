//! The runner with tokio task workers and from async code: every rule
//! that the thread-worker tests pin holds for tasks too (restart, fatal
//! errors, stop, stuck reporting), and the async calls wait without a
//! thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::unbounded;
use worker_core::{AbortSignal, Error, SharedWorker, Worker, finished, task};
use worker_runner::Stage;

use crate::common::*;

/// A 2-thread runtime, as a service would have.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

/// A start function of task workers that run until killed, and report
/// each start on `started`.
fn task_start(
    handle: tokio::runtime::Handle,
    started: crossbeam_channel::Sender<usize>,
) -> impl FnMut() -> Result<SharedWorker, Error> + Send + 'static {
    let count = Arc::new(AtomicUsize::new(0));
    move || {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = started.send(n);
        Ok(Arc::new(task::spawn_on(&handle, |tomb| async move {
            tomb.until_dying().await;
            Ok(())
        })))
    }
}

#[test]
fn a_failing_task_worker_is_restarted_and_a_fatal_one_stops_the_runner() {
    let rt = runtime();
    let (r, clock) = clocked_runner("rt-tasks-restart", |p| {
        p.is_fatal(|e: &Error| e.to_string().contains("fatal"))
    });
    let (started_tx, started) = unbounded();
    let handle = rt.handle().clone();
    let fail_with = Arc::new(std::sync::Mutex::new(vec!["fatal", "oops"]));
    r.start_worker("t", move || {
        let _ = started_tx.send(());
        let error = fail_with.lock().unwrap().pop();
        Ok(task::spawn_on(&handle, move |tomb| async move {
            match error {
                Some(e) => Err(Error::msg(e)),
                None => {
                    tomb.until_dying().await;
                    Ok(())
                }
            }
        }))
    })
    .unwrap();
    started.recv_timeout(LONG).unwrap();
    // "oops" is not fatal: restarted after the delay, on the test clock.
    clock.wait_advance(Duration::from_secs(1), LONG, 1).unwrap();
    started.recv_timeout(LONG).unwrap();
    // "fatal" ends the runner with it.
    let err = wait_gone(&r).unwrap_err();
    assert_eq!(err.to_string(), "fatal");
}

#[test]
fn a_task_that_ignores_kill_is_reported_stuck_and_waited_for() {
    let rt = runtime();
    let (r, clock) = clocked_runner("rt-tasks-stuck", |p| p.stop_timeout(Duration::from_secs(2)));
    let (release_tx, release) = tokio::sync::oneshot::channel::<()>();
    let handle = rt.handle().clone();
    let release = std::sync::Mutex::new(Some(release));
    r.start_worker("deaf", move || {
        let release = release.lock().unwrap().take();
        Ok(task::spawn_on(&handle, move |_tomb| async move {
            // Ignores its dying signal until released.
            if let Some(release) = release {
                let _ = release.await;
            }
            Ok(())
        }))
    })
    .unwrap();
    r.worker("deaf", None).unwrap();
    r.kill();
    clock.wait_advance(Duration::from_secs(2), LONG, 1).unwrap();
    let waiting = r.waiting_for();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].stage, Stage::Stopping);
    assert!(waiting[0].stuck, "reported stuck after the stop timeout");
    release_tx.send(()).unwrap();
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn async_calls_wait_for_a_task_worker_without_blocking_the_runtime() {
    let rt = runtime();
    // One thread drives every task here: a call that blocked it would
    // never let the test's own task go on.
    let one_thread = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let r = Arc::new(runner("rt-tasks-async", |p| p.is_fatal(none_fatal)));
    let (started_tx, started) = unbounded();
    let (gate_tx, gate) = crossbeam_channel::bounded::<()>(0);
    let mut start = task_start(rt.handle().clone(), started_tx);
    r.start_worker("t", move || {
        // The start function holds the lookup up until the test lets go.
        let _ = gate.recv();
        start()
    })
    .unwrap();
    let runner = r.clone();
    one_thread
        .block_on(async move {
            let lookup = tokio::spawn(async move { runner.worker_async("t", None).await });
            // The lookup waits on this very thread, and yet we run.
            tokio::task::yield_now().await;
            assert!(!lookup.is_finished());
            drop(gate_tx);
            lookup.await.expect("joined")
        })
        .unwrap();
    assert_eq!(started.recv_timeout(LONG).unwrap(), 1);
    let runner = r.clone();
    one_thread
        .block_on(async move { runner.stop_and_remove_worker_async("t", None).await })
        .unwrap();
    r.kill();
    one_thread.block_on(finished(&*r)).unwrap();
    assert!(finish(&r).is_ok());
}

#[test]
fn an_async_lookup_gives_up_when_its_abort_fires() {
    let rt = runtime();
    let r = Arc::new(runner("rt-tasks-abort", |p| p.is_fatal(none_fatal)));
    let (gate_tx, gate) = crossbeam_channel::bounded::<()>(0);
    r.start_worker("slow", move || {
        let _ = gate.recv();
        Ok(worker_core::Passive::new())
    })
    .unwrap();
    let (trigger, abort) = AbortSignal::pair();
    let runner = r.clone();
    let lookup =
        rt.spawn(async move { runner.worker_async("slow", Some(&abort)).await.map(|_| ()) });
    trigger.fire();
    let err = rt.block_on(lookup).unwrap().unwrap_err();
    assert_is::<worker_core::Aborted>(&err);
    drop(gate_tx);
    r.worker("slow", None).unwrap();
    assert!(finish(&r).is_ok());
}

#[test]
fn a_task_that_ignores_kill_is_forced_after_its_shutdown_timeout() {
    // OTP's shutdown timeout, then brutal_kill: a task can be forced.
    let rt = runtime();
    let (r, clock) = clocked_runner("rt-tasks-forced", |p| p);
    let handle = rt.handle().clone();
    let options = worker_runner::WorkerOptions::new()
        .shutdown(worker_runner::Shutdown::Timeout(Duration::from_secs(5)));
    r.start_worker_with("deaf", options, move || {
        Ok(task::spawn_on(&handle, |_tomb| async {
            std::future::pending::<()>().await; // never looks at its tomb
            Ok(())
        }))
    })
    .unwrap();
    let deaf = r.worker("deaf", None).unwrap();
    r.kill();
    clock.wait_advance(Duration::from_secs(5), LONG, 1).unwrap();
    let err = deaf.wait().unwrap_err();
    assert_is::<worker_core::task::TaskAborted>(&err);
    assert!(wait_gone(&r).is_ok());
}

//! The checks on task workers, and the two clocks of a task worker test
//! (feature `tokio`).

#![cfg(feature = "tokio")]

use std::time::Duration;

use tokio::runtime::{Builder, Runtime};
use worker_core::task::{self, TaskAborted, TaskWorker};
use worker_core::{Clock, Error, Worker};
use worker_testing::{
    TestClock, check_alive, check_kill, check_killed, check_nil_or_kill, clean_kill, dirty_kill,
};

fn runtime() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn until_killed(rt: &Runtime, on_kill: Option<Error>) -> TaskWorker {
    task::spawn_on(rt.handle(), move |tomb| async move {
        tomb.until_dying().await;
        on_kill.map_or(Ok(()), Err)
    })
}

/// The message of the panic `f` raises; fails if it does not panic.
fn panic_message(f: impl FnOnce()) -> String {
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("expected a panic");
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast::<&str>().map(|s| s.to_string()).unwrap(),
    }
}

#[test]
fn the_checks_pass_on_task_workers_that_behave() {
    let rt = runtime();
    let worker = until_killed(&rt, None);
    check_alive(&worker);
    clean_kill(&worker);

    let worker = until_killed(&rt, Some(Error::msg("dirty")));
    check_alive(&worker);
    assert_eq!(check_kill(&worker).unwrap_err().to_string(), "dirty");

    let worker = until_killed(&rt, Some(Error::msg("dirty")));
    dirty_kill(&worker);
    assert!(!worker.tomb().is_alive());

    check_nil_or_kill(None::<TaskWorker>);
}

#[test]
fn the_checks_fail_on_task_workers_that_do_not() {
    let rt = runtime();
    let failed = task::spawn_on(rt.handle(), |_tomb| async { Err(Error::msg("boom")) });
    let msg = panic_message(|| check_alive(&failed));
    assert_eq!(msg, "expected an alive worker; it ended with error: boom");

    let worker = until_killed(&rt, Some(Error::msg("dirty")));
    let msg = panic_message(|| clean_kill(&worker));
    assert_eq!(
        msg,
        "expected the worker to stop cleanly; it ended with error: dirty"
    );

    let rogue = until_killed(&rt, None);
    let tomb = rogue.tomb().clone();
    let msg = panic_message(|| check_nil_or_kill(Some(rogue)));
    assert_eq!(msg, "expected no worker, got one (it has been stopped)");
    assert!(tomb.try_result().unwrap().is_ok());
}

#[test]
fn a_task_that_ignores_kill_stays_alive_until_aborted() {
    let rt = runtime();
    let worker = task::spawn_on(rt.handle(), |_tomb| async {
        std::future::pending::<()>().await;
        Ok(())
    });
    worker.kill();
    check_alive(&worker); // stuck: killed, and still running
    worker.abort_task();
    assert!(check_killed(&worker).unwrap_err().is::<TaskAborted>());
}

#[test]
fn a_task_bodys_tokio_time_runs_on_tokios_paused_clock() {
    // An hour of tokio time passes at once: the paused clock jumps to the
    // next timer whenever every task is idle.
    let rt = Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let worker = task::spawn_on(rt.handle(), |tomb| async move {
        tokio::select! {
            _ = tomb.until_dying() => Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(3600)) => Err(Error::msg("an hour passed")),
        }
    });
    let real = std::time::Instant::now();
    let result = rt.block_on(worker.tomb().until_dead());
    assert_eq!(result.unwrap_err().to_string(), "an hour passed");
    assert!(real.elapsed() < Duration::from_secs(10), "no real hour");
}

#[test]
fn a_test_clock_does_not_move_tokio_time_nor_tokio_time_a_test_clock() {
    let rt = Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let clock = TestClock::new();
    let timer = clock.after(Duration::from_secs(60));
    let started = rt.block_on(async { tokio::time::Instant::now() });
    // Tokio's clock jumps an hour...
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(3600)).await });
    // ...and the test clock's timer has not fired.
    assert!(timer.try_recv().is_err());
    // The test clock moves only when told; tokio's stays where it was.
    clock.advance(Duration::from_secs(60));
    assert!(timer.try_recv().is_ok());
    let now = rt.block_on(async { tokio::time::Instant::now() });
    assert_eq!(now - started, Duration::from_secs(3600));
}

//! Fatal errors and the runner's final error (Go:
//! TestOneWorkerStartFatalError, TestOneWorkerDieFatalError,
//! TestOneWorkerStopFatalError, TestErrorImportance,
//! TestAllWorkersStoppedWhenOneDiesWithFatalError,
//! TestFatalErrorWhileStarting, TestFatalErrorWhileSelfStartWorker), and
//! the fixed weak points of Go's fatal shutdown: it waits out restart
//! delays, looks alive to callers until every worker is gone, and lets
//! stop errors become the runner's error.

use std::sync::{Arc, Weak};
use std::time::Duration;

use worker_core::{Dead, Error, SharedWorker};
use worker_runner::{Dying, Runner};

use crate::common::*;

#[derive(Debug, thiserror::Error)]
#[error("error with importance {0}")]
struct Level(u32);

fn level(e: &Error) -> u32 {
    e.downcast_ref::<Level>().map_or(0, |l| l.0)
}

#[test]
fn a_fatal_start_error_is_the_runner_error() {
    let r = runner("rt-start-fatal", |p| p.is_fatal(all_fatal));
    let mut s = Starter::new(r.name());
    let start_err = Error::msg("cannot start test task");
    s.start_err = Some(start_err.clone());
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    let err = wait_gone(&r).unwrap_err();
    assert!(err.same(&start_err));
}

#[test]
fn a_fatal_run_error_is_the_runner_error() {
    let r = runner("rt-die-fatal", |p| p.is_fatal(all_fatal));
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    let die_err = Error::msg("error when running");
    starter.die(Some(die_err.clone()));
    assert!(wait_gone(&r).unwrap_err().same(&die_err));
    starter.assert_started(false);
}

#[test]
fn an_error_on_stop_goes_to_is_fatal_as_in_go() {
    let r = runner("rt-stop-fatal", |p| p.is_fatal(all_fatal));
    let mut s = Starter::new(r.name());
    let stop_err = Error::msg("stop error");
    s.stop_err = Some(stop_err.clone());
    let starter = Arc::new(s);
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    r.stop_worker("id").unwrap();
    assert!(wait_gone(&r).unwrap_err().same(&stop_err));
}

#[test]
fn more_important_ranks_the_errors_seen_during_shutdown() {
    let r = runner("rt-error-importance", |p| {
        p.is_fatal(all_fatal)
            .more_important(|a, b| level(a) > level(b))
    });
    let starters: Vec<Arc<Starter>> = (0..10)
        .map(|i| {
            let mut s = Starter::new(r.name());
            s.stop_err = Some(Level(i).into());
            Arc::new(s)
        })
        .collect();
    for (i, s) in starters.iter().enumerate() {
        r.start_worker(i.to_string(), s.start_fn()).unwrap();
        s.assert_started(true);
    }
    r.stop_worker("4").unwrap();
    let err = wait_gone(&r).unwrap_err();
    assert_eq!(level(&err), 9);
}

#[test]
fn the_first_fatal_error_wins_by_default() {
    // Go documents this, but its code keeps the *last* fatal error.
    let r = runner("rt-first-fatal-wins", |p| p.is_fatal(all_fatal));
    let first = Arc::new(Starter::new(r.name()));
    let mut s = Starter::new(r.name());
    s.stop_err = Some(Error::msg("second, while stopping"));
    let second = Arc::new(s);
    r.start_worker("first", first.start_fn()).unwrap();
    r.start_worker("second", second.start_fn()).unwrap();
    first.assert_started(true);
    second.assert_started(true);
    first.die(Some(Error::msg("first")));
    assert_eq!(wait_gone(&r).unwrap_err().to_string(), "first");
}

#[test]
fn all_workers_stop_when_one_dies_with_a_fatal_error() {
    let r = runner("rt-all-stopped", |p| p.is_fatal(all_fatal));
    let starters: Vec<Arc<Starter>> = (0..10).map(|_| Arc::new(Starter::new(r.name()))).collect();
    for (i, s) in starters.iter().enumerate() {
        r.start_worker(i.to_string(), s.start_fn()).unwrap();
    }
    for s in &starters {
        s.assert_started(true);
    }
    let die_err = Error::msg("fatal error");
    starters[4].die(Some(die_err.clone()));
    assert!(wait_gone(&r).unwrap_err().same(&die_err));
    for s in &starters {
        s.assert_started(false);
    }
}

/// A start function that blocks until `release` fires, then starts
/// through `starter`.
fn gated(
    starter: &Arc<Starter>,
) -> (
    crossbeam_channel::Sender<()>,
    impl FnMut() -> Result<SharedWorker, Error> + Send + 'static + use<>,
) {
    let (release, gate) = crossbeam_channel::bounded::<()>(1);
    let mut start = starter.start_fn();
    (release, move || {
        let _ = gate.recv();
        start()
    })
}

#[test]
fn a_worker_that_finishes_starting_during_a_fatal_shutdown_is_killed() {
    let r = runner("rt-fatal-while-starting", |p| p.is_fatal(all_fatal));
    let slow = Arc::new(Starter::new(r.name()));
    let (release, slow_start) = gated(&slow);
    r.start_worker("slow starter", slow_start).unwrap();
    let mut f = Starter::new(r.name());
    let fatal = Error::msg("a fatal error");
    f.start_err = Some(fatal.clone());
    let fatal_starter = Arc::new(f);
    r.start_worker("fatal worker", fatal_starter.start_fn())
        .unwrap();
    // Waiting for the slow worker ends with Dead once the runner is dying.
    assert_is::<Dead>(&err_of(r.worker("slow starter", None)));
    release.send(()).unwrap();
    slow.assert_started(true);
    slow.assert_started(false);
    assert!(wait_gone(&r).unwrap_err().same(&fatal));
}

#[test]
fn a_start_function_can_call_start_worker_during_a_fatal_shutdown() {
    let r = Arc::new(runner("rt-fatal-while-self-start", |p| {
        p.is_fatal(all_fatal)
    }));
    let (hook_tx, hook_rx) = crossbeam_channel::unbounded();
    let weak: Weak<Runner> = Arc::downgrade(&r);
    let mut s = Starter::new(r.name());
    s.hook = Some(Box::new(move || {
        let runner = weak.upgrade().expect("runner alive");
        let result = runner.start_worker("another", || -> Result<SharedWorker, Error> {
            Err(Error::msg("no worker started"))
        });
        hook_tx.send(result).unwrap();
    }));
    let self_starter = Arc::new(s);
    let (release, self_start) = gated(&self_starter);
    r.start_worker("self starter", self_start).unwrap();
    let mut f = Starter::new(r.name());
    let fatal = Error::msg("a fatal error");
    f.start_err = Some(fatal.clone());
    r.start_worker("fatal worker", Arc::new(f).start_fn())
        .unwrap();
    assert_is::<Dead>(&err_of(r.worker("self starter", None)));
    release.send(()).unwrap();
    self_starter.assert_started(true);
    self_starter.assert_started(false);
    // No deadlock, and a clear answer rather than a silent no-op.
    assert_is::<Dying>(&hook_rx.recv_timeout(LONG).unwrap().unwrap_err());
    assert!(wait_gone(&r).unwrap_err().same(&fatal));
}

#[test]
fn a_fatal_error_makes_the_runner_dying_for_everyone_at_once() {
    // Go keeps accepting (and ignoring) starts, and makes Worker() block
    // then say NotFound, until the last worker is gone.
    let r = runner("rt-fatal-is-dying", |p| p.is_fatal(all_fatal));
    let (release, stop_wait) = crossbeam_channel::unbounded();
    let mut s = Starter::new(r.name());
    s.stop_wait = Some(stop_wait);
    let lingering = Arc::new(s);
    let failing = Arc::new(Starter::new(r.name()));
    r.start_worker("lingering", lingering.start_fn()).unwrap();
    r.start_worker("failing", failing.start_fn()).unwrap();
    lingering.assert_started(true);
    failing.assert_started(true);
    let w = r.worker("failing", None).unwrap();
    failing.die(Some(Error::msg("fatal")));
    let _ = worker_core::Worker::wait(&w);
    assert_is::<Dying>(
        &r.start_worker("new", Arc::new(Starter::new(r.name())).start_fn())
            .unwrap_err(),
    );
    assert_is::<Dead>(&err_of(r.worker("lingering", None)));
    let waiting = r.waiting_for();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].id, "lingering");
    release.send(()).unwrap();
    assert_eq!(wait_gone(&r).unwrap_err().to_string(), "fatal");
}

#[test]
fn a_fatal_shutdown_does_not_wait_out_restart_delays() {
    let clock = worker_testing::TestClock::new();
    let r = runner("rt-fatal-skips-delay", |p| {
        p.clock(clock.clone())
            .is_fatal(|e| e.to_string().contains("fatal"))
            .restart_delay(Duration::from_secs(3600))
    });
    let flaky = Arc::new(Starter::new(r.name()));
    let doomed = Arc::new(Starter::new(r.name()));
    r.start_worker("flaky", flaky.start_fn()).unwrap();
    r.start_worker("doomed", doomed.start_fn()).unwrap();
    flaky.assert_started(true);
    doomed.assert_started(true);
    flaky.die(Some(Error::msg("transient")));
    clock.wait_timers(1, LONG).unwrap();
    doomed.die(Some(Error::msg("fatal")));
    // Finishes without the clock moving at all.
    assert_eq!(wait_gone(&r).unwrap_err().to_string(), "fatal");
    assert_eq!(flaky.calls(), 1);
}

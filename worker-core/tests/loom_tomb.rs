//! Model checks of the `Tomb`'s synchronisation with loom: every
//! interleaving of the operations below is explored.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p worker-core --release --test loom_tomb`
//! (CI does; `.ci/run` uses a separate target directory for it).

#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use worker_core::{Error, Tomb, TombState};

#[test]
fn concurrent_kills_and_done_agree_on_one_result() {
    loom::model(|| {
        let tomb = Tomb::new();
        let a = Error::msg("a");
        let b = Error::msg("b");
        let t1 = {
            let tomb = tomb.clone();
            let a = a.clone();
            thread::spawn(move || tomb.kill(Some(a)))
        };
        let t2 = {
            let tomb = tomb.clone();
            thread::spawn(move || tomb.kill(None))
        };
        let t3 = {
            let tomb = tomb.clone();
            let b = b.clone();
            thread::spawn(move || tomb.done(Err(b)))
        };
        let seen = tomb.wait().unwrap_err();
        t1.join().unwrap();
        t2.join().unwrap();
        t3.join().unwrap();
        // A real error always wins over the nil kill, and the result never
        // changes once dead, whatever came after.
        assert!(seen.same(&a) || seen.same(&b));
        assert!(tomb.wait().unwrap_err().same(&seen));
        assert!(tomb.err().unwrap().same(&seen));
        assert_eq!(tomb.state(), TombState::Dead);
    });
}

#[test]
fn wait_returns_once_done_from_another_thread() {
    loom::model(|| {
        let tomb = Tomb::new();
        let waiter = {
            let tomb = tomb.clone();
            thread::spawn(move || tomb.wait())
        };
        tomb.kill(None);
        tomb.done(Ok(()));
        assert!(waiter.join().unwrap().is_ok());
    });
}

#[test]
fn a_callback_registered_during_done_runs_exactly_once() {
    loom::model(|| {
        let tomb = Tomb::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let registrar = {
            let tomb = tomb.clone();
            let calls = calls.clone();
            thread::spawn(move || {
                tomb.on_done(move |outcome| {
                    assert!(outcome.is_err());
                    calls.fetch_add(1, Ordering::SeqCst);
                })
            })
        };
        tomb.done(Err(Error::msg("x")));
        registrar.join().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_future_awaiting_dying_is_woken_by_a_concurrent_kill() {
    loom::model(|| {
        let tomb = Tomb::new();
        let killer = {
            let tomb = tomb.clone();
            thread::spawn(move || tomb.kill(None))
        };
        // Registers and parks, or finds the tomb dying: either way it
        // completes, whatever the interleaving with the kill.
        loom::future::block_on(tomb.until_dying());
        killer.join().unwrap();
    });
}

#[test]
fn a_future_awaiting_dead_sees_the_result_through_dying() {
    loom::model(|| {
        let tomb = Tomb::new();
        let finisher = {
            let tomb = tomb.clone();
            thread::spawn(move || {
                tomb.kill(None);
                tomb.done(Err(Error::msg("x")));
            })
        };
        let result = loom::future::block_on(tomb.until_dead());
        assert_eq!(result.unwrap_err().to_string(), "x");
        finisher.join().unwrap();
    });
}

#[test]
fn a_dying_hook_runs_exactly_once_when_kill_and_done_race() {
    loom::model(|| {
        let tomb = Tomb::new();
        let calls = Arc::new(AtomicUsize::new(0));
        {
            let calls = calls.clone();
            tomb.on_dying(move || {
                calls.fetch_add(1, Ordering::SeqCst);
            });
        }
        let killer = {
            let tomb = tomb.clone();
            thread::spawn(move || tomb.kill(None))
        };
        tomb.done(Ok(()));
        killer.join().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_hook_registered_during_a_kill_runs_exactly_once() {
    loom::model(|| {
        let tomb = Tomb::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let registrar = {
            let tomb = tomb.clone();
            let calls = calls.clone();
            thread::spawn(move || {
                tomb.on_dying(move || {
                    calls.fetch_add(1, Ordering::SeqCst);
                })
            })
        };
        tomb.kill(None);
        registrar.join().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

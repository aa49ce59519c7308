//! The lifetime primitive's rules: states, the first real error, waiting
//! from many threads, signals in `select!`, completion callbacks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, select};
use worker_core::{Error, Tomb, TombState, Worker};

const LONG: Duration = Duration::from_secs(10);

#[test]
fn a_new_tomb_is_alive_with_no_reason() {
    let tomb = Tomb::new();
    assert_eq!(tomb.state(), TombState::Alive);
    assert!(tomb.is_alive());
    assert!(tomb.err().is_none());
    assert!(tomb.try_result().is_none());
    assert_eq!(
        tomb.dying().recv_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
fn kill_then_done_ends_cleanly() {
    let tomb = Tomb::new();
    tomb.kill(None);
    assert_eq!(tomb.state(), TombState::Dying);
    assert!(tomb.err().is_none());
    tomb.done(Ok(()));
    assert_eq!(tomb.state(), TombState::Dead);
    assert!(tomb.wait().is_ok());
}

#[test]
fn done_without_kill_goes_straight_to_dead() {
    let tomb = Tomb::new();
    tomb.done(Err(Error::msg("failed alone")));
    assert_eq!(tomb.state(), TombState::Dead);
    assert_eq!(tomb.wait().unwrap_err().to_string(), "failed alone");
}

#[test]
fn the_first_real_error_wins_over_a_nil_kill_and_later_errors() {
    let tomb = Tomb::new();
    tomb.kill(None);
    let first = Error::msg("first");
    tomb.kill(Some(first.clone()));
    tomb.kill(Some(Error::msg("second")));
    tomb.kill(None);
    tomb.done(Err(Error::msg("third")));
    assert!(tomb.err().unwrap().same(&first));
    assert!(tomb.wait().unwrap_err().same(&first));
}

#[test]
fn a_body_error_replaces_a_nil_kill() {
    let tomb = Tomb::new();
    tomb.kill(None);
    tomb.done(Err(Error::msg("while stopping")));
    assert_eq!(tomb.wait().unwrap_err().to_string(), "while stopping");
}

#[test]
fn kill_after_completion_changes_nothing() {
    let tomb = Tomb::new();
    tomb.done(Ok(()));
    tomb.kill(Some(Error::msg("too late")));
    tomb.done(Err(Error::msg("also too late")));
    assert_eq!(tomb.state(), TombState::Dead);
    assert!(tomb.wait().is_ok());
    assert!(tomb.err().is_none());
}

#[test]
fn wait_from_eight_threads_returns_the_same_error_to_all() {
    let tomb = Tomb::new();
    let (started_tx, started) = crossbeam_channel::unbounded();
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let tomb = tomb.clone();
            let started_tx = started_tx.clone();
            std::thread::spawn(move || {
                started_tx.send(()).unwrap();
                tomb.wait()
            })
        })
        .collect();
    for _ in 0..8 {
        started.recv_timeout(LONG).unwrap();
    }
    let err = Error::msg("shared");
    tomb.kill(Some(err.clone()));
    tomb.done(Ok(()));
    for waiter in waiters {
        assert!(waiter.join().unwrap().unwrap_err().same(&err));
    }
    assert!(tomb.wait().unwrap_err().same(&err));
}

#[test]
fn dying_and_dead_signals_fire_in_select() {
    let tomb = Tomb::new();
    let dying = tomb.dying();
    let dead = tomb.dead();
    tomb.kill(None);
    select! {
        recv(dying) -> _ => {}
        default(LONG) => panic!("dying signal did not fire after kill"),
    }
    assert_eq!(
        dead.recv_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Timeout),
        "dead fired before done"
    );
    tomb.done(Ok(()));
    select! {
        recv(dead) -> _ => {}
        default(LONG) => panic!("dead signal did not fire after done"),
    }
    // Signals asked for afterwards are already fired.
    assert!(tomb.dying().recv().is_err());
    assert!(tomb.dead().recv().is_err());
}

#[test]
fn callbacks_run_once_with_the_result_even_if_registered_late() {
    let tomb = Tomb::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = crossbeam_channel::unbounded();
    {
        let calls = calls.clone();
        let tx = tx.clone();
        tomb.on_done(move |outcome| {
            calls.fetch_add(1, Ordering::SeqCst);
            tx.send(outcome.clone()).unwrap();
        });
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    tomb.done(Err(Error::msg("x")));
    tomb.done(Ok(()));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Registered after the end: runs at once, on this thread.
    tomb.on_done(move |outcome| tx.send(outcome.clone()).unwrap());
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .all(|o| o.as_ref().unwrap_err().to_string() == "x")
    );
}

#[test]
fn a_panicking_callback_does_not_stop_the_others() {
    let tomb = Tomb::new();
    let calls = Arc::new(AtomicUsize::new(0));
    tomb.on_done(|_| panic!("bad callback"));
    let c = calls.clone();
    tomb.on_done(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    tomb.done(Ok(()));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(tomb.wait().is_ok());
}

#[test]
fn a_tomb_is_a_worker() {
    let tomb = Tomb::new();
    let w: &dyn Worker = &tomb;
    w.kill();
    assert_eq!(tomb.state(), TombState::Dying);
    assert!(w.dead_signal().is_some());
    tomb.done(Ok(()));
    assert!(w.wait().is_ok());
    assert!(w.reporter().is_none());
}

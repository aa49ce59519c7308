//! Thread-backed and passive workers made by the core.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::select;
use worker_core::threads::{live_threads_with_prefix, wait_threads_gone};
use worker_core::{
    Error, Panicked, Passive, SharedWorker, TombState, Worker, dead, downcast_worker, spawn, stop,
};

const LONG: Duration = Duration::from_secs(10);

#[test]
fn a_body_that_returns_ok_on_kill_ends_cleanly_and_its_thread_is_gone() {
    let w = spawn("spawn-test-clean", |tomb| {
        let _ = tomb.dying().recv();
        Ok(())
    });
    assert_eq!(live_threads_with_prefix("spawn-test-clean"), 1);
    assert!(stop(&w).is_ok());
    // `wait` joins the thread.
    assert_eq!(live_threads_with_prefix("spawn-test-clean"), 0);
}

#[test]
fn the_kill_reason_survives_a_body_that_returns_ok() {
    let w = spawn("spawn-test-reason", |tomb| {
        let _ = tomb.dying().recv();
        Ok(())
    });
    w.tomb().kill(Some(Error::msg("asked to fail")));
    assert_eq!(w.wait().unwrap_err().to_string(), "asked to fail");
}

#[test]
fn a_panic_in_the_body_becomes_the_workers_error() {
    let w = spawn("spawn-test-panic", |_| -> Result<(), Error> {
        panic!("index {} out of range", 7)
    });
    let err = w.wait().unwrap_err();
    let panicked = err.downcast_ref::<Panicked>().expect("a Panicked error");
    assert_eq!(panicked.message, "index 7 out of range");
    assert_eq!(
        err.to_string(),
        "body of worker \"spawn-test-panic\" panicked: index 7 out of range"
    );
    // Every waiter sees the same error, and nothing is poisoned.
    assert!(w.wait().unwrap_err().same(&err));
    assert!(stop(&w).unwrap_err().same(&err));
    wait_threads_gone("spawn-test-panic", LONG).unwrap();
}

#[test]
fn kill_before_and_after_completion() {
    let w = spawn("spawn-test-early", |tomb| {
        let _ = tomb.dying().recv();
        Err(Error::msg("stopped with an error"))
    });
    w.kill();
    w.kill();
    let err = w.wait().unwrap_err();
    assert_eq!(err.to_string(), "stopped with an error");
    w.kill();
    w.tomb().kill(Some(Error::msg("after the end")));
    assert!(w.wait().unwrap_err().same(&err));
}

#[test]
fn wait_from_eight_threads_on_a_thread_worker() {
    let w = Arc::new(spawn("spawn-test-eight", |tomb| {
        let _ = tomb.dying().recv();
        Err(Error::msg("one error for all"))
    }));
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let w = w.clone();
            std::thread::spawn(move || w.wait())
        })
        .collect();
    w.kill();
    let errors: Vec<Error> = waiters
        .into_iter()
        .map(|t| t.join().unwrap().unwrap_err())
        .collect();
    assert!(errors.iter().all(|e| e.same(&errors[0])));
    assert_eq!(live_threads_with_prefix("spawn-test-eight"), 0);
}

#[test]
fn a_body_may_wait_for_its_own_worker_after_finishing() {
    // The worker hands itself to its body; waiting from inside after the
    // body has ended must not try to join the current thread.
    let (tx, rx) = crossbeam_channel::bounded::<Arc<worker_core::ThreadWorker>>(1);
    let w = Arc::new(spawn("spawn-test-self", move |tomb| {
        let me = rx.recv().unwrap();
        tomb.done(Ok(()));
        me.wait()
    }));
    tx.send(w.clone()).unwrap();
    assert!(w.wait().is_ok());
    wait_threads_gone("spawn-test-self", LONG).unwrap();
}

#[test]
fn dead_works_inside_select() {
    let w: SharedWorker = Arc::new(spawn("spawn-test-dead", |tomb| {
        let _ = tomb.dying().recv();
        Ok(())
    }));
    let signal = dead(&w);
    select! {
        recv(signal) -> _ => panic!("dead fired while the worker runs"),
        default(Duration::from_millis(5)) => {}
    }
    w.kill();
    select! {
        recv(signal) -> _ => {}
        default(LONG) => panic!("dead did not fire after kill"),
    }
    assert!(w.wait().is_ok());
}

#[test]
fn passive_workers_end_on_kill_or_finish() {
    let w = Passive::new();
    assert_eq!(w.tomb().state(), TombState::Alive);
    w.kill();
    assert!(w.wait().is_ok());

    let failed = Passive::new();
    failed.finish(Err(Error::msg("lease lost")));
    failed.kill();
    assert_eq!(failed.wait().unwrap_err().to_string(), "lease lost");
}

#[test]
fn shared_workers_downcast_to_their_type() {
    let w: SharedWorker = Arc::new(Passive::new());
    let passive = downcast_worker::<Passive>(&w).expect("a Passive");
    passive.finish(Ok(()));
    assert!(w.wait().is_ok());
    assert!(downcast_worker::<worker_core::ThreadWorker>(&w).is_none());
}

/// What a supervisor's lookup returns: a worker, or why there is none.
fn lookup(found: bool) -> Result<SharedWorker, Error> {
    if found {
        Ok(Arc::new(Passive::new()))
    } else {
        Err(Error::msg("no worker"))
    }
}

#[test]
fn a_shared_worker_result_can_be_unwrapped_and_printed() {
    assert_eq!(format!("{:?}", lookup(true)), "Ok(Worker { .. })");
    assert_eq!(lookup(false).unwrap_err().to_string(), "no worker");
}

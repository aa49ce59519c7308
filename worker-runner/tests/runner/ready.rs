//! `wait_ready`: waiting until workers have started (Go's test-only
//! `NewRunnerWithNotify`, for everyone), on the runner's clock, from
//! threads and from async code.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use worker_core::{Error, Names, Passive, ReadyError, WorkerState};
use worker_runner::Runner;

use crate::common::*;

/// A start function that blocks until `go` gets a value (or is dropped),
/// then returns a passive worker.
fn held_start(go: Receiver<()>) -> impl FnMut() -> Result<Passive, Error> + Send + 'static {
    move || {
        let _ = go.recv();
        Ok(Passive::new())
    }
}

/// Runs `wait_ready` on another thread; its answer comes on the channel.
fn wait_in_thread(
    r: &Runner,
    which: impl Into<Names>,
    timeout: Duration,
    abort: Option<worker_core::AbortSignal>,
) -> (
    Receiver<Result<(), ReadyError>>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = bounded(1);
    let r = r.clone();
    let which = which.into();
    let thread = std::thread::spawn(move || {
        let answer = r.wait_ready(which, timeout, abort.as_ref());
        // What the caller can rely on once it returns Ok: registered.
        if answer.is_ok() {
            assert_eq!(
                r.report().worker("slow").map(|w| w.state),
                Some(WorkerState::Started),
                "answered before the start registered"
            );
        }
        tx.send(answer).unwrap();
    });
    (rx, thread)
}

#[test]
fn it_waits_until_the_start_registers() {
    let (r, clock) = clocked_runner("rt-ready-waits", |p| p);
    let (go_tx, go) = unbounded();
    r.start_worker("slow", held_start(go)).unwrap();
    let (answer, thread) = wait_in_thread(&r, ["slow"], Duration::from_secs(5), None);
    // Its deadline is the only timer: the caller waits.
    clock.wait_timers(1, LONG).unwrap();
    assert!(answer.try_recv().is_err(), "nothing has started");
    go_tx.send(()).unwrap();
    assert!(answer.recv_timeout(LONG).unwrap().is_ok());
    thread.join().unwrap();
    assert!(finish(&r).is_ok());
}

#[test]
fn it_times_out_on_the_runners_clock_naming_what_did_not_start() {
    let (r, clock) = clocked_runner("rt-ready-timeout", |p| p);
    let (go_tx, go) = unbounded();
    r.start_worker("quick", || Ok(Passive::new())).unwrap();
    r.start_worker("slow", held_start(go)).unwrap();
    // Started for sure before the deadline fires: only "slow" is late.
    r.worker("quick", None).unwrap();
    let (answer, thread) = wait_in_thread(&r, Names::All, Duration::from_secs(5), None);
    clock.wait_timers(1, LONG).unwrap();
    clock.advance(Duration::from_secs(4));
    assert!(answer.try_recv().is_err(), "not yet");
    clock.advance(Duration::from_secs(1));
    match answer.recv_timeout(LONG).unwrap() {
        Err(ReadyError::TimedOut(e)) => {
            assert_eq!(e.not_started, ["slow"]);
            assert_eq!(e.timeout, Duration::from_secs(5));
        }
        other => panic!("{other:?}"),
    }
    thread.join().unwrap();
    drop(go_tx);
    assert!(finish(&r).is_ok());
}

#[test]
fn the_abort_signal_ends_the_wait() {
    let (r, clock) = clocked_runner("rt-ready-abort", |p| p);
    let (go_tx, go) = unbounded();
    r.start_worker("slow", held_start(go)).unwrap();
    let (fire, abort) = abort_signal();
    let (answer, thread) = wait_in_thread(&r, ["slow"], Duration::from_secs(5), Some(abort));
    clock.wait_timers(1, LONG).unwrap();
    fire.fire();
    assert!(matches!(
        answer.recv_timeout(LONG).unwrap(),
        Err(ReadyError::Aborted(_))
    ));
    thread.join().unwrap();
    // The runner goes on as usual; a new wait sees the start.
    go_tx.send(()).unwrap();
    r.wait_ready("slow", Duration::MAX, None).unwrap();
    assert!(finish(&r).is_ok());
}

#[test]
fn a_runner_that_dies_while_one_waits_says_why() {
    let (r, clock) = clocked_runner("rt-ready-dies", |p| p.is_fatal(all_fatal));
    let (go_tx, go) = unbounded();
    r.start_worker("slow", held_start(go)).unwrap();
    let (answer, thread) = wait_in_thread(&r, ["slow"], Duration::from_secs(5), None);
    clock.wait_timers(1, LONG).unwrap();
    let fatal = Error::msg("bad config");
    let err = fatal.clone();
    r.start_worker("bad", move || Err::<Passive, _>(err.clone()))
        .unwrap();
    match answer.recv_timeout(LONG).unwrap() {
        Err(ReadyError::Stopped(e)) => {
            assert_eq!(e.not_started, ["slow"]);
            assert!(e.error.unwrap().same(&fatal), "carries the fatal error");
        }
        other => panic!("{other:?}"),
    }
    thread.join().unwrap();
    // Once it has finished, at once, with its final error.
    go_tx.send(()).unwrap();
    assert!(wait_gone(&r).is_err());
    match r.wait_ready(["slow"], Duration::MAX, None) {
        Err(ReadyError::Stopped(e)) => {
            assert_eq!(e.error.unwrap().to_string(), "bad config");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_ids_fail_at_once_and_converted_errors_stay_matchable() {
    let r = runner("rt-ready-unknown", |p| p.is_fatal(none_fatal));
    r.start_worker("known", || Ok(Passive::new())).unwrap();
    let err = r
        .wait_ready(["known", "typo"], Duration::MAX, None)
        .unwrap_err();
    assert!(matches!(&err, ReadyError::NotFound(e) if e.id == "typo"));
    let err: Error = err.into();
    assert!(err.is::<worker_core::NotFound>());
    assert!(finish(&r).is_ok());
}

#[test]
fn a_start_function_waiting_for_itself_fails_at_once() {
    let r = runner("rt-ready-own", |p| p.is_fatal(none_fatal));
    let (tx, rx) = unbounded();
    let handle = r.clone();
    r.start_worker_once("self", move || {
        let own = handle.wait_ready("self", Duration::MAX, None);
        let all = handle.wait_ready(Names::All, Duration::MAX, None);
        tx.send((own, all)).unwrap();
        Ok(Passive::new())
    })
    .unwrap();
    let (own, all) = rx.recv_timeout(LONG).unwrap();
    assert!(matches!(own, Err(ReadyError::WouldDeadlock(_))));
    assert!(matches!(all, Err(ReadyError::WouldDeadlock(_))));
    assert!(finish(&r).is_ok());
}

/// A waker that says when it is woken: the "minimal executor".
struct Flag(Sender<()>);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        let _ = self.0.send(());
    }
}

#[test]
fn the_async_wait_is_woken_by_the_runner_on_no_runtime() {
    let (r, _clock) = clocked_runner("rt-ready-async", |p| p);
    let (go_tx, go) = unbounded();
    r.start_worker("slow", held_start(go)).unwrap();
    let (woken_tx, woken) = unbounded();
    let waker = Waker::from(Arc::new(Flag(woken_tx)));
    let mut cx = Context::from_waker(&waker);
    let mut wait = Box::pin(r.wait_ready_async(["slow"], Duration::MAX, None));
    assert!(wait.as_mut().poll(&mut cx).is_pending());
    // Acknowledged (the request waits), then answered by the start.
    woken.recv_timeout(LONG).unwrap();
    assert!(wait.as_mut().poll(&mut cx).is_pending(), "not started yet");
    go_tx.send(()).unwrap();
    let answer = loop {
        woken.recv_timeout(LONG).expect("the runner wakes the task");
        if let Poll::Ready(answer) = wait.as_mut().poll(&mut cx) {
            break answer;
        }
    };
    assert!(answer.is_ok());
    assert!(finish(&r).is_ok());
}

#[test]
fn the_async_wait_times_out_and_aborts_on_tokio() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (r, clock) = clocked_runner("rt-ready-tokio", |p| p);
    let (go_tx, go) = unbounded();
    r.start_worker("slow", held_start(go)).unwrap();
    let timing_out = {
        let r = r.clone();
        std::thread::spawn(move || {
            runtime.block_on(async {
                let timed_out = r
                    .wait_ready_async("slow", Duration::from_secs(3), None)
                    .await;
                let (fire, abort) = worker_core::AbortSignal::pair();
                let aborted = {
                    let wait = r.wait_ready_async("slow", Duration::MAX, Some(&abort));
                    let fire = async move {
                        tokio::task::yield_now().await;
                        fire.fire();
                    };
                    let (answer, ()) = tokio::join!(wait, fire);
                    answer
                };
                (timed_out, aborted)
            })
        })
    };
    clock.wait_timers(1, LONG).unwrap();
    clock.advance(Duration::from_secs(3));
    let (timed_out, aborted) = timing_out.join().unwrap();
    assert!(matches!(timed_out, Err(ReadyError::TimedOut(e)) if e.not_started == ["slow"]));
    assert!(matches!(aborted, Err(ReadyError::Aborted(_))));
    drop(go_tx);
    assert!(finish(&r).is_ok());
}

//! `wait_ready` and `stop_within`: waiting until manifolds have started
//! (the sync point Go's tests make of `Install` plus polling), and a
//! shutdown with a deadline, both on the engine's clock.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use worker_core::{Error, Names, Passive, ReadyError, StopError, WorkerState};
use worker_dependency::Manifold;
use worker_testing::misbehaving::BlockingKill;

use crate::common::*;

/// Runs `wait_ready` on another thread; its answer comes on the channel.
fn wait_in_thread(
    h: &Harness,
    which: impl Into<Names>,
    timeout: Duration,
) -> Receiver<Result<(), ReadyError>> {
    let (tx, rx) = bounded(1);
    let engine = h.engine.clone();
    let which = which.into();
    std::thread::spawn(move || tx.send(engine.wait_ready(which, timeout, None)).unwrap());
    rx
}

#[test]
fn it_waits_until_the_manifold_starts_once_its_input_runs() {
    // "b" restarts as soon as its input starts: the deadline below is
    // the only timer.
    let h = Harness::with("eng-ready-waits", |c| c.bounce_delay = Duration::ZERO);
    h.install("b", &["a"]); // Missing until "a" runs
    assert!(h.call_of("b").is_none());
    let answer = wait_in_thread(&h, ["b"], Duration::from_secs(5));
    h.clock.wait_timers(1, LONG).unwrap(); // the caller's deadline
    assert!(answer.try_recv().is_err());
    h.install("a", &[]);
    h.expect_started(&["a", "b"]);
    assert!(answer.recv_timeout(LONG).unwrap().is_ok());
    assert_eq!(h.state("b"), "started", "answered once registered");
    // Running now: answered at once, with no time to wait.
    h.engine
        .wait_ready(Names::All, Duration::ZERO, None)
        .unwrap();
    assert!(h.stop().is_ok());
}

#[test]
fn it_times_out_on_the_engines_clock_naming_what_did_not_start() {
    let h = Harness::new("eng-ready-timeout");
    h.install("up", &[]);
    h.install("down", &["never-installed"]);
    h.expect_started(&["up"]);
    let answer = wait_in_thread(&h, Names::All, Duration::from_secs(5));
    h.clock.wait_timers(1, LONG).unwrap();
    h.clock.advance(Duration::from_secs(5));
    match answer.recv_timeout(LONG).unwrap() {
        Err(ReadyError::TimedOut(e)) => assert_eq!(e.not_started, ["down"]),
        other => panic!("{other:?}"),
    }
    assert!(h.stop().is_ok());
}

#[test]
fn unknown_or_uninstalled_names_are_not_found() {
    let h = Harness::new("eng-ready-unknown");
    h.install("b", &["a"]);
    // "a" is only declared as an input: not installed.
    let err = h
        .engine
        .wait_ready(["b", "a"], Duration::MAX, None)
        .unwrap_err();
    assert!(matches!(&err, ReadyError::NotFound(e) if e.id == "a"));
    let answer = wait_in_thread(&h, ["b"], Duration::from_secs(5));
    h.clock.wait_timers(1, LONG).unwrap();
    h.engine.uninstall("b").unwrap();
    assert!(matches!(
        answer.recv_timeout(LONG).unwrap(),
        Err(ReadyError::NotFound(e)) if e.id == "b"
    ));
    assert!(h.stop().is_ok());
}

#[test]
fn an_engine_that_stops_while_one_waits_says_why() {
    let h = Harness::with("eng-ready-fatal", |c| {
        c.is_fatal = Arc::new(|e: &Error| e.to_string() == "fatal");
    });
    h.install("waits", &["nothing"]);
    h.install("fails", &[]);
    h.expect_started(&["fails"]);
    let (_, worker) = h.workers_of(&["fails"]).pop().unwrap();
    let answer = wait_in_thread(&h, ["waits"], Duration::from_secs(5));
    h.clock.wait_timers(1, LONG).unwrap();
    end(&worker, Some(err("fatal")));
    match answer.recv_timeout(LONG).unwrap() {
        Err(ReadyError::Stopped(e)) => {
            assert_eq!(e.not_started, ["waits"]);
            assert_eq!(e.error.unwrap().to_string(), "fatal");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.stop().is_err());
    // Stopped: at once.
    assert!(matches!(
        h.engine.wait_ready(["waits"], Duration::MAX, None),
        Err(ReadyError::Stopped(_))
    ));
}

struct Flag(Sender<()>);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        let _ = self.0.send(());
    }
}

#[test]
fn the_async_wait_is_woken_by_the_engine_and_can_be_aborted() {
    let h = Harness::new("eng-ready-async");
    h.install("b", &["a"]);
    let (woken_tx, woken) = unbounded();
    let waker = Waker::from(Arc::new(Flag(woken_tx)));
    let mut cx = Context::from_waker(&waker);
    let (fire, abort) = worker_core::AbortSignal::pair();
    let mut aborted = Box::pin(h.engine.wait_ready_async("b", Duration::MAX, Some(&abort)));
    let mut ready = Box::pin(h.engine.wait_ready_async("b", Duration::MAX, None));
    assert!(aborted.as_mut().poll(&mut cx).is_pending());
    assert!(ready.as_mut().poll(&mut cx).is_pending());
    fire.fire();
    let answer = loop {
        woken.recv_timeout(LONG).expect("woken");
        if let Poll::Ready(answer) = aborted.as_mut().poll(&mut cx) {
            break answer;
        }
    };
    assert!(matches!(answer, Err(ReadyError::Aborted(_))));
    h.install("a", &[]);
    h.advance(BOUNCE_DELAY, 1);
    let answer = loop {
        woken.recv_timeout(LONG).expect("woken");
        if let Poll::Ready(answer) = ready.as_mut().poll(&mut cx) {
            break answer;
        }
    };
    assert!(answer.is_ok());
    assert!(h.stop().is_ok());
}

#[test]
fn stop_within_names_the_manifolds_still_running_and_wait_still_returns() {
    let h = Harness::new("eng-stop-late");
    let (stubborn, gate) = BlockingKill::new();
    let stubborn = Arc::new(stubborn);
    h.install("base", &[]);
    // Started before its dependent is installed: a start of "base" that
    // lands while the dependent's start function runs would bounce it, and
    // its restart would wait on the test clock.
    h.expect_started(&["base"]);
    let held = stubborn.clone();
    h.engine
        .install(
            "stubborn",
            Manifold::new(move |_| Ok(held.clone())).inputs(["base"]),
        )
        .unwrap();
    h.expect_started(&["stubborn"]);
    let (tx, answer) = bounded(1);
    let engine = h.engine.clone();
    std::thread::spawn(move || {
        tx.send(engine.stop_within(Duration::from_secs(30)))
            .unwrap()
    });
    gate.wait_entered().unwrap();
    h.clock.wait_timers(1, LONG).unwrap();
    h.clock.advance(Duration::from_secs(30));
    let timed_out = match answer.recv_timeout(LONG).unwrap() {
        Err(StopError::TimedOut(e)) => e,
        other => panic!("{other:?}"),
    };
    let named: Vec<(&str, WorkerState)> = timed_out
        .waiting_for
        .iter()
        .map(|s| (s.name.as_str(), s.state))
        .collect();
    assert_eq!(
        named,
        [
            ("base", WorkerState::Started), // waits for its dependent
            ("stubborn", WorkerState::Stopping),
        ]
    );
    assert_eq!(
        timed_out.waiting_for[1].stopping_for,
        Some(Duration::from_secs(30))
    );
    gate.open();
    assert!(h.stop().is_ok(), "the shutdown went on");
    assert!(h.engine.stop_within(Duration::ZERO).is_ok());
}

#[test]
fn stop_within_returns_the_engines_result_in_time_and_max_is_a_wait() {
    let h = Harness::new("eng-stop-within-ok");
    h.install("a", &[]);
    h.expect_started(&["a"]);
    assert!(h.engine.stop_within(Duration::from_secs(5)).is_ok());
    assert_eq!(h.clock.elapsed(), Duration::ZERO);
    assert!(h.stop().is_ok());

    let h = Harness::new("eng-stop-within-max");
    let (stubborn, gate) = BlockingKill::new();
    let stubborn = Arc::new(stubborn);
    h.engine
        .install("stubborn", Manifold::new(move |_| Ok(stubborn.clone())))
        .unwrap();
    h.expect_started(&["stubborn"]);
    let (tx, answer) = bounded(1);
    let engine = h.engine.clone();
    std::thread::spawn(move || tx.send(engine.stop_within(Duration::MAX)).unwrap());
    gate.wait_entered().unwrap();
    assert!(h.clock.waiting().is_empty(), "no deadline");
    h.clock.advance(Duration::from_secs(1000 * 365 * 24 * 3600));
    assert!(answer.try_recv().is_err());
    gate.open();
    assert!(answer.recv_timeout(LONG).unwrap().is_ok());
    assert!(h.stop().is_ok());
}

#[test]
fn a_start_function_waiting_for_itself_fails_at_once() {
    let h = Harness::new("eng-ready-own");
    let (tx, rx) = unbounded();
    let engine = h.engine.clone();
    h.engine
        .install(
            "self",
            Manifold::new(move |_| {
                tx.send(engine.wait_ready("self", Duration::MAX, None))
                    .unwrap();
                Ok(Passive::new())
            }),
        )
        .unwrap();
    assert!(matches!(
        rx.recv_timeout(LONG).unwrap(),
        Err(ReadyError::WouldDeadlock(_))
    ));
    assert!(h.stop().is_ok());
}

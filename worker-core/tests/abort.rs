//! Abort signals: fired by a trigger, by dropping it, or by a tomb's
//! dying; seen by a check, in `select!`, and as a future.

mod common;

use std::time::Duration;

use common::{Counter, block_on, copies, poll_once};
use crossbeam_channel::{RecvTimeoutError, select};
use worker_core::{AbortSignal, Aborted, Tomb};

fn fires_in_select(abort: &AbortSignal, within: Duration) -> bool {
    select! {
        recv(abort.receiver()) -> _ => true,
        default(within) => false,
    }
}

#[test]
fn a_trigger_fires_every_clone_of_its_signal() {
    let (trigger, abort) = AbortSignal::pair();
    let clone = abort.clone();
    let another = trigger.signal();
    assert!(!abort.is_fired() && !clone.is_fired() && !another.is_fired());
    assert!(abort.check().is_ok());
    trigger.fire();
    trigger.fire(); // idempotent
    for signal in [&abort, &clone, &another] {
        assert!(signal.is_fired());
        assert!(signal.check().unwrap_err().is::<Aborted>());
        assert!(fires_in_select(signal, Duration::ZERO));
    }
}

#[test]
fn dropping_the_trigger_fires() {
    let (trigger, abort) = AbortSignal::pair();
    let receiver = abort.receiver();
    drop(trigger);
    assert!(abort.is_fired());
    assert_eq!(
        receiver.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn a_receiver_taken_before_the_fire_disconnects_on_it() {
    let (trigger, abort) = AbortSignal::pair();
    let receiver = abort.receiver();
    assert_eq!(
        receiver.recv_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Timeout)
    );
    let firing = std::thread::spawn(move || trigger.fire());
    assert_eq!(
        receiver.recv_timeout(common::LONG),
        Err(RecvTimeoutError::Disconnected)
    );
    firing.join().unwrap();
}

#[test]
fn never_never_fires_and_is_the_default() {
    for abort in [AbortSignal::never(), AbortSignal::default()] {
        assert!(!abort.is_fired());
        assert!(abort.check().is_ok());
        assert!(!fires_in_select(&abort, Duration::from_millis(1)));
        let (counter, waker) = Counter::new();
        let mut fired = abort.until_fired();
        assert!(poll_once(&mut fired, &waker).is_pending());
        assert_eq!(
            copies(&counter),
            0,
            "nothing will wake it, so nothing keeps the waker"
        );
        assert_eq!(format!("{abort:?}"), "AbortSignal(never)");
    }
}

#[test]
fn already_fired_has_fired() {
    let abort = AbortSignal::already_fired();
    assert!(abort.is_fired());
    assert!(fires_in_select(&abort, Duration::ZERO));
    block_on(abort.until_fired());
    assert_eq!(format!("{abort:?}"), "AbortSignal(fired)");
}

#[test]
fn until_fired_completes_when_fired_from_another_thread() {
    let (trigger, abort) = AbortSignal::pair();
    assert_eq!(format!("{abort:?}"), "AbortSignal(not fired)");
    let firing = std::thread::spawn(move || trigger.fire());
    block_on(abort.until_fired());
    firing.join().unwrap();
}

#[test]
fn a_dropped_until_fired_leaves_nothing_behind() {
    let (trigger, abort) = AbortSignal::pair();
    let (counter, waker) = Counter::new();
    for _ in 0..100 {
        let mut fired = abort.until_fired();
        assert!(poll_once(&mut fired, &waker).is_pending());
    }
    assert_eq!(copies(&counter), 0);
    trigger.fire();
    assert_eq!(counter.wakes(), 0);
}

#[test]
fn a_tombs_abort_signal_fires_when_it_starts_dying() {
    let tomb = Tomb::new();
    let abort = tomb.abort_signal();
    assert!(!abort.is_fired());
    tomb.kill(None);
    assert!(abort.is_fired());
    assert!(fires_in_select(&abort, Duration::ZERO));
    // Dying is enough: the tomb need not be dead.
    assert!(tomb.try_result().is_none());

    let finished_alone = Tomb::new();
    let abort = finished_alone.abort_signal();
    finished_alone.done(Ok(()));
    assert!(abort.is_fired());
}

#[test]
fn signals_are_cheap() {
    assert_eq!(std::mem::size_of::<AbortSignal>(), 8);
}

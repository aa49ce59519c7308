//! `Tomb::on_dying`: a hook run once when the tomb stops being alive, on
//! the thread that made it so, outside any lock, with panics contained.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use worker_core::{Error, Panicked, Tomb, TombState, spawn, stop};

const LONG: Duration = Duration::from_secs(10);

fn counting_hook(count: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let count = count.clone();
    move || {
        count.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_hook_runs_once_on_the_killing_thread() {
    let tomb = Tomb::new();
    let (ran_on_tx, ran_on) = crossbeam_channel::unbounded();
    tomb.on_dying(move || ran_on_tx.send(std::thread::current().id()).unwrap());
    let killer = tomb.clone();
    let killer_id = std::thread::spawn(move || {
        killer.kill(None);
        // By the time kill returns, the hook has run.
        killer.kill(Some(Error::msg("again")));
        std::thread::current().id()
    })
    .join()
    .unwrap();
    assert_eq!(ran_on.try_recv(), Ok(killer_id));
    tomb.done(Ok(()));
    assert!(ran_on.try_recv().is_err(), "ran once");
}

#[test]
fn every_hook_runs_in_the_order_given() {
    let tomb = Tomb::new();
    let (order_tx, order) = crossbeam_channel::unbounded();
    for i in 0..3 {
        let order_tx = order_tx.clone();
        tomb.on_dying(move || order_tx.send(i).unwrap());
    }
    tomb.kill(None);
    assert_eq!(order.try_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
}

#[test]
fn a_hook_given_after_dying_runs_at_once() {
    let count = Arc::new(AtomicUsize::new(0));
    let tomb = Tomb::new();
    tomb.kill(None);
    tomb.on_dying(counting_hook(&count));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    tomb.done(Ok(()));
    tomb.on_dying(counting_hook(&count));
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn finishing_while_alive_runs_the_hook_too() {
    let count = Arc::new(AtomicUsize::new(0));
    let tomb = Tomb::new();
    tomb.on_dying(counting_hook(&count));
    tomb.done(Ok(()));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn the_hook_may_use_its_tomb() {
    // No lock is held while it runs, so this cannot deadlock.
    let tomb = Tomb::new();
    let inside = tomb.clone();
    let (seen_tx, seen) = crossbeam_channel::unbounded();
    tomb.on_dying(move || {
        inside.kill(Some(Error::msg("from the hook")));
        seen_tx.send(inside.state()).unwrap();
    });
    tomb.kill(None);
    assert_eq!(seen.try_recv(), Ok(TombState::Dying));
    assert_eq!(tomb.err().unwrap().to_string(), "from the hook");
}

#[test]
fn a_panicking_hook_is_recorded_and_does_not_reach_the_killer() {
    let count = Arc::new(AtomicUsize::new(0));
    let tomb = Tomb::new();
    tomb.on_dying(|| panic!("hook exploded"));
    tomb.on_dying(counting_hook(&count));
    tomb.kill(None); // does not panic
    assert_eq!(count.load(Ordering::SeqCst), 1, "the other hooks still ran");
    tomb.done(Ok(()));
    let err = tomb.wait().unwrap_err();
    assert!(err.is::<Panicked>(), "{err}");
    assert!(err.to_string().contains("hook exploded"), "{err}");
}

#[test]
fn a_panicking_hook_does_not_replace_a_real_error() {
    let tomb = Tomb::new();
    tomb.on_dying(|| panic!("hook exploded"));
    tomb.kill(Some(Error::msg("the real reason")));
    tomb.done(Ok(()));
    assert_eq!(tomb.wait().unwrap_err().to_string(), "the real reason");
}

#[test]
fn a_hook_wakes_a_worker_blocked_where_no_signal_reaches() {
    // The worker blocks in a call that knows nothing of its tomb; the hook
    // is the only thing that can wake it.
    let (unblock_tx, unblock) = crossbeam_channel::bounded::<()>(0);
    let (blocked_tx, blocked) = crossbeam_channel::bounded(1);
    let worker = spawn("dying-hook-blocked", move |tomb| {
        tomb.on_dying(move || drop(unblock_tx));
        blocked_tx.send(()).unwrap();
        let _ = unblock.recv(); // blocked until the hook drops the sender
        Ok(())
    });
    blocked.recv_timeout(LONG).unwrap();
    assert!(stop(&worker).is_ok());
}

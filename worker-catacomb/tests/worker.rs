//! The catacomb as a worker: kill/wait, completion notification, nesting,
//! reports. (Go's catacomb is not a worker; its owners wrap it.)

mod common;

use std::sync::Arc;

use common::*;
use crossbeam_channel::select;
use worker_catacomb::{Catacomb, CatacombReport, Plan};
use worker_core::threads::live_threads_with_prefix;
use worker_core::{Error, Outcome, Passive, SharedWorker, TombState, Worker, downcast_worker};
use worker_testing::{check_alive, clean_kill};

/// Issue 10: the inherent `kill(Option<Error>)` shadowed `Worker::kill`,
/// so `c.kill()` did not compile on a catacomb (only on an `Arc` of one).
/// The reason-taking kill is now `kill_with`.
#[test]
fn kill_is_a_kill_without_reason() {
    let scope = Scope::new("worker_kill");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    check_alive(&c);
    clean_kill(&c);
    let c = invoke_until_dying(scope.name("c2"), vec![]);
    c.kill_with(Some(Error::msg("real")));
    c.kill();
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "real");
    let c = invoke_until_dying(scope.name("c3"), vec![]);
    c.kill();
    assert_eq!(c.state(), worker_core::TombState::Dying);
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn wait_returns_the_same_error_to_every_caller() {
    let scope = Scope::new("wait_many");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let waiters: Vec<_> = (0..4)
        .map(|i| {
            let c = c.clone();
            worker_core::threads::spawn_named(scope.name(&format!("waiter{i}")), move || c.wait())
                .unwrap()
        })
        .collect();
    let reason = Error::msg("the reason");
    c.kill_with(Some(reason.clone()));
    for waiter in waiters {
        assert!(waiter.join().unwrap().unwrap_err().same(&reason));
    }
    assert!(wait_for(&c).unwrap_err().same(&reason));
    scope.finish();
}

#[test]
fn completion_is_notified_without_a_thread() {
    let scope = Scope::new("on_done");
    let name = scope.name("c");
    let c = invoke_until_dying(name.clone(), vec![]);
    let (tx, rx) = crossbeam_channel::bounded::<Outcome>(1);
    let registered = Worker::on_done(&c, Box::new(move |o: &Outcome| tx.send(o.clone()).unwrap()));
    assert!(registered.is_ok(), "a catacomb supports on_done");
    // Only the work thread: no watcher.
    assert_eq!(live_threads_with_prefix(&name), 1);
    assert!(rx.try_recv().is_err());
    c.kill_with(Some(Error::msg("bye")));
    assert_eq!(
        rx.recv_timeout(TIMEOUT).unwrap().unwrap_err().to_string(),
        "bye"
    );
    // A callback registered once dead runs at once.
    let (tx, rx) = crossbeam_channel::bounded::<Outcome>(1);
    assert!(wait_for(&c).is_err());
    let registered = Worker::on_done(&c, Box::new(move |o: &Outcome| tx.send(o.clone()).unwrap()));
    assert!(registered.is_ok());
    assert!(rx.try_recv().unwrap().is_err());
    scope.finish();
}

#[test]
fn wait_inside_a_completion_callback_does_not_deadlock() {
    // The callback runs on the work thread, which cannot join itself.
    let scope = Scope::new("wait_in_callback");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let inner = c.clone();
    let registered = Worker::on_done(
        &c,
        Box::new(move |_: &Outcome| tx.send(inner.wait()).unwrap()),
    );
    assert!(registered.is_ok());
    c.kill_with(None);
    assert!(rx.recv_timeout(TIMEOUT).unwrap().is_ok());
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn dying_and_dead_are_signals_for_select() {
    let scope = Scope::new("signals");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    let dying = c.dying();
    let dead = c.dead();
    let dead_too = worker_core::dead(&Arc::new(c.clone()));
    select! {
        recv(dying) -> _ => panic!("dying before the kill"),
        default => {}
    }
    c.kill_with(None);
    fired(&dying);
    select! {
        recv(dead) -> _ => panic!("dead before the work returned"),
        default => {}
    }
    finish_work.send(Ok(())).unwrap();
    fired(&dead);
    fired(&dead_too);
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn catacombs_nest() {
    let scope = Scope::new("nesting");
    let parent = invoke_until_dying(scope.name("parent"), vec![]);
    let child = invoke_until_dying(scope.name("child"), vec![]);
    let grandchild_worker = Arc::new(Passive::new());
    child.add(shared(&grandchild_worker)).unwrap();
    parent.add(Arc::new(child.clone())).unwrap();
    assert_eq!(parent.worker_count(), 1);
    // The parent's death goes down the tree...
    parent.kill_with(None);
    assert!(wait_for(&parent).is_ok());
    assert!(wait_for(&child).is_ok());
    assert!(finished(grandchild_worker.tomb()));

    // ...and a failure deep down comes up.
    let parent = invoke_until_dying(scope.name("parent2"), vec![]);
    let child = invoke_until_dying(scope.name("child2"), vec![]);
    let failing = Arc::new(Passive::new());
    child.add(shared(&failing)).unwrap();
    parent.add(Arc::new(child.clone())).unwrap();
    failing.finish(Err(Error::msg("deep failure")));
    assert_eq!(wait_for(&child).unwrap_err().to_string(), "deep failure");
    assert_eq!(wait_for(&parent).unwrap_err().to_string(), "deep failure");
    scope.finish();
}

#[test]
fn a_child_catacomb_ending_cleanly_is_forgotten_by_its_parent() {
    let scope = Scope::new("child_clean_end");
    let parent = invoke_until_dying(scope.name("parent"), vec![]);
    let child = Catacomb::invoke(Plan::new(scope.name("child"), |_: &Catacomb| Ok(()))).unwrap();
    parent.add(Arc::new(child.clone())).unwrap();
    assert!(wait_for(&child).is_ok());
    // The child's `wait` joined its thread: exactly nothing is left. The
    // parent's release ran there, after the child was dead, so it is done
    // too.
    worker_testing::assert_threads_gone(&scope.name("child"));
    assert_eq!(parent.worker_count(), 0);
    check_alive(&parent);
    parent.kill_with(None);
    assert!(wait_for(&parent).is_ok());
    scope.finish();
}

#[test]
fn a_shared_catacomb_can_be_downcast() {
    let scope = Scope::new("downcast");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let w: SharedWorker = Arc::new(c.clone());
    let back = downcast_worker::<Catacomb>(&w).unwrap();
    assert_eq!(back.name(), c.name());
    clean_kill(&*back);
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn report_and_debug_show_state_error_and_workers() {
    let scope = Scope::new("report");
    let name = scope.name("c");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(name.clone(), work)).unwrap();
    let stubborn = Stubborn::new();
    c.add(shared(&stubborn)).unwrap();
    let reporter = Worker::reporter(&c).expect("a catacomb reports");
    let report = c.report();
    assert_eq!(
        (report.state, report.error.is_none(), report.workers),
        (TombState::Alive, true, 1)
    );
    // As a reporter, the same value, typed.
    let nested = reporter.report();
    assert_eq!(nested.downcast_ref::<CatacombReport>().unwrap().workers, 1);
    assert_eq!(
        serde_json::to_value(reporter.report()).unwrap(),
        serde_json::json!({"state": "alive", "workers": 1})
    );
    c.kill_with(Some(Error::msg("boom")));
    assert_eq!(
        serde_json::to_value(reporter.report()).unwrap(),
        serde_json::json!({"state": "dying", "error": "boom", "workers": 1})
    );
    assert_eq!(
        format!("{c:?}"),
        format!(
            "Catacomb {{ name: {name:?}, state: Dying, err: Some(Error(\"boom\")), workers: 1 }}"
        )
    );
    stubborn.release(Ok(()));
    finish_work.send(Ok(())).unwrap();
    assert!(wait_for(&c).is_err());
    assert_eq!(
        serde_json::to_value(reporter.report()).unwrap(),
        serde_json::json!({"state": "dead", "error": "boom", "workers": 0})
    );
    scope.finish();
}

/// A helper that keeps a handle on its own catacomb (to add siblings or
/// kill its owner, say).
struct HoldsItsOwner {
    lease: Passive,
    _owner: Catacomb,
}

impl Worker for HoldsItsOwner {
    worker_core::delegate_worker!(lease);
}

/// Issue 10: one handle model. Clones are one catacomb, dropping handles
/// stops nothing, and a bound worker holding a handle on its catacomb
/// does not keep either alive once the catacomb is dead.
#[test]
fn clones_are_one_catacomb_and_dropping_them_stops_nothing() {
    let scope = Scope::new("clones_are_one");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let helper = Arc::new(HoldsItsOwner {
        lease: Passive::new(),
        _owner: c.clone(),
    });
    let helper_gone = Arc::downgrade(&helper);
    c.add(helper).unwrap();
    let other = c.clone();
    drop(c);
    check_alive(&other);
    assert_eq!(other.worker_count(), 1);
    other.kill();
    assert!(wait_for(&other).is_ok());
    // The dead catacomb let go of its helper, and with it the helper's
    // handle on the catacomb: no cycle outlives it.
    assert!(helper_gone.upgrade().is_none(), "the helper was kept alive");
    scope.finish();
}

//! Kill, err, err_dying and the dying-error algebra (Go's `Kill` and
//! `ErrDying` rules).

mod common;

use std::sync::Arc;

use common::*;
use worker_catacomb::{AddError, Catacomb, Dying, ForeignDying, Plan, StillAlive};
use worker_core::{Error, Passive, TombState, Worker};

#[test]
fn err_is_none_while_alive_and_after_a_kill_without_reason() {
    let scope = Scope::new("err_none");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    assert!(c.err().is_none());
    assert_eq!(c.state(), TombState::Alive);
    c.kill_with(None);
    assert!(c.err().is_none());
    assert_eq!(c.state(), TombState::Dying);
    fired(&c.dying());
    finish_work.send(Ok(())).unwrap();
    assert!(wait_for(&c).is_ok());
    assert!(c.err().is_none());
    scope.finish();
}

#[test]
fn the_first_real_error_wins() {
    let scope = Scope::new("first_error_wins");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    let first = Error::msg("first");
    c.kill_with(Some(first.clone()));
    c.kill_with(Some(Error::msg("second")));
    c.kill_with(None);
    assert!(c.err().unwrap().same(&first));
    finish_work.send(Err(Error::msg("work's own"))).unwrap();
    let err = wait_for(&c).unwrap_err();
    assert!(err.same(&first));
    scope.finish();
}

#[test]
fn an_error_replaces_a_kill_without_reason() {
    let scope = Scope::new("error_replaces_none");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    c.kill_with(None);
    c.kill_with(Some(Error::msg("late but real")));
    assert_eq!(c.err().unwrap().to_string(), "late but real");
    finish_work.send(Ok(())).unwrap();
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "late but real");
    scope.finish();
}

#[test]
fn the_work_error_replaces_a_kill_without_reason() {
    let scope = Scope::new("work_error_replaces_none");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    c.kill_with(None);
    finish_work.send(Err(Error::msg("cleanup failed"))).unwrap();
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "cleanup failed");
    scope.finish();
}

#[test]
fn kill_after_dead_changes_nothing() {
    let scope = Scope::new("kill_after_dead");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    c.kill_with(Some(Error::msg("too late")));
    assert!(c.wait().is_ok());
    assert!(c.err().is_none());
    scope.finish();
}

#[test]
fn the_own_dying_error_never_overwrites() {
    let scope = Scope::new("own_dying");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    c.kill_with(None);
    let dying = c.err_dying();
    assert_eq!(
        dying.to_string(),
        format!("catacomb {:?} is dying", c.name())
    );
    c.kill_with(Some(dying.clone()));
    // Also through wrapping, as Go's errors.As.
    c.kill_with(Some(dying.context("loop stopped")));
    assert!(c.err().is_none(), "still no reason: {:?}", c.err());
    // The work returning it keeps the kill's reason (none).
    finish_work.send(Err(c.err_dying())).unwrap();
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn the_intended_loop_keeps_the_kill_reason() {
    let scope = Scope::new("intended_loop");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    c.kill_with(Some(Error::msg("shutting down: disk full")));
    assert_eq!(
        wait_for(&c).unwrap_err().to_string(),
        "shutting down: disk full"
    );
    scope.finish();
}

#[test]
fn err_dying_is_the_same_error_each_time() {
    let scope = Scope::new("err_dying_equal");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let other = invoke_until_dying(scope.name("other"), vec![]);
    c.kill_with(None);
    other.kill_with(None);
    let a = c.err_dying();
    let b = c.err_dying();
    let a = a.downcast_ref::<Dying>().unwrap();
    assert_eq!(Some(a), b.downcast_ref::<Dying>());
    assert_eq!(a.catacomb(), c.name());
    let o = other.err_dying();
    assert_ne!(Some(a), o.downcast_ref::<Dying>());
    assert!(wait_for(&c).is_ok());
    // Still the same once dead.
    assert_eq!(Some(a), c.err_dying().downcast_ref::<Dying>());
    assert!(wait_for(&other).is_ok());
    scope.finish();
}

#[test]
fn err_dying_while_alive_is_still_alive_and_is_recorded_if_used() {
    let scope = Scope::new("err_dying_alive");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let err = c.err_dying();
    assert_eq!(
        err.downcast_ref::<StillAlive>(),
        Some(&StillAlive {
            catacomb: c.name().to_owned()
        })
    );
    assert_eq!(
        err.to_string(),
        format!(
            "bad catacomb err_dying: catacomb {:?} is still alive",
            c.name()
        )
    );
    c.kill_with(Some(err.clone()));
    assert!(wait_for(&c).unwrap_err().same(&err));
    scope.finish();
}

#[test]
fn another_catacombs_dying_error_becomes_a_bad_kill() {
    let scope = Scope::new("foreign_dying");
    let other = invoke_until_dying(scope.name("other"), vec![]);
    other.kill_with(None);
    for (i, foreign) in [other.err_dying(), other.err_dying().context("wrapped")]
        .into_iter()
        .enumerate()
    {
        let c = invoke_until_dying(scope.name(&format!("c{i}")), vec![]);
        c.kill_with(Some(foreign));
        let err = wait_for(&c).unwrap_err();
        assert_eq!(
            err.downcast_ref::<ForeignDying>(),
            Some(&ForeignDying {
                receiver: c.name().to_owned(),
                owner: other.name().to_owned(),
            })
        );
        assert!(!err.is::<Dying>());
    }
    assert!(wait_for(&other).is_ok());
    scope.finish();
}

#[test]
fn a_worker_ending_with_another_catacombs_dying_error_is_a_bad_kill() {
    // juju/juju#16187: a worker handed its parent's dying error on.
    let scope = Scope::new("worker_foreign_dying");
    let other = invoke_until_dying(scope.name("other"), vec![]);
    other.kill_with(None);
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let w = Arc::new(Passive::new());
    c.add(shared(&w)).unwrap();
    w.finish(Err(other.err_dying()));
    let err = wait_for(&c).unwrap_err();
    assert!(err.is::<ForeignDying>(), "{err}");
    assert!(wait_for(&other).is_ok());
    scope.finish();
}

#[test]
fn a_worker_ending_with_the_catacombs_own_dying_error_changes_nothing() {
    let scope = Scope::new("worker_own_dying");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    let stubborn = Stubborn::new();
    c.add(shared(&stubborn)).unwrap();
    c.kill_with(None);
    stubborn.release(Err(c.err_dying()));
    finish_work.send(Ok(())).unwrap();
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn a_bad_kill_is_not_swallowed_by_the_catacomb_whose_dying_error_it_was() {
    // `inner` is wrongly killed with `outer`'s dying error; its failure
    // then travels back to `outer`, which must see a real error rather
    // than mistake it for its own dying error.
    let scope = Scope::new("bad_kill_travels");
    let (finish_outer, work) = controlled();
    let outer = Catacomb::invoke(Plan::new(scope.name("outer"), work)).unwrap();
    let inner = invoke_until_dying(scope.name("inner"), vec![]);
    outer.kill_with(None);
    inner.kill_with(Some(outer.err_dying()));
    let inner_err = wait_for(&inner).unwrap_err();
    outer.kill_with(Some(inner_err));
    assert!(outer.err().unwrap().is::<ForeignDying>());
    finish_outer.send(Ok(())).unwrap();
    assert!(wait_for(&outer).unwrap_err().is::<ForeignDying>());
    scope.finish();
}

#[test]
fn the_add_error_of_a_dying_catacomb_passed_on_keeps_the_kill_reason() {
    let scope = Scope::new("add_error_passed_on");
    let c = Catacomb::invoke(Plan::new(scope.name("c"), |c: &Catacomb| {
        loop {
            // A work that only notices dying when an add fails, and passes
            // the error on with `?`.
            c.add(Arc::new(Passive::new()))?;
            if c.worker_count() > 1000 {
                let _ = c.dying().recv();
            }
        }
    }))
    .unwrap();
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    let refused = c.add(Arc::new(Passive::new())).unwrap_err();
    assert!(matches!(refused, AddError::Dying(_)));
    scope.finish();
}

/// A bound worker's failure is told before the shutdown it causes, that
/// shutdown says it is fatal, and the dying catacomb tells that worker no
/// `stopping`. (It once raced: the
/// work, woken by the recorded error, shut the catacomb down before the
/// failure was told; seen under load, in the `Plan::on_event` doctest.)
/// Repeated, since the wrong order needs the work's thread to win a race.
#[test]
fn a_failure_is_told_before_the_shutdown_it_causes() {
    let scope = Scope::new("told_order");
    for round in 0..200 {
        let (tx, events) = crossbeam_channel::unbounded();
        let c = Catacomb::invoke(
            Plan::new(scope.name(&format!("c{round}")), |c: &Catacomb| {
                let _ = c.dying().recv();
                Err(c.err_dying())
            })
            .on_event(move |e| {
                // The shutdown's cause is the worker's error, whichever
                // thread said so first (the woken work, or the worker's
                // own end).
                let fatal = matches!(
                    e.kind,
                    worker_core::events::EventKind::ShuttingDown {
                        cause: worker_core::events::ShutdownCause::Fatal { .. }
                    }
                );
                let _ = tx.send(if fatal { "fatal shutdown" } else { e.name() });
            }),
        )
        .unwrap();
        let helper = Passive::new();
        c.add(helper.clone()).unwrap();
        helper.finish(Err(Error::msg("lost the lease")));
        assert!(wait_for(&c).is_err());
        let seen: Vec<&str> = events.try_iter().collect();
        assert_eq!(
            seen,
            ["worker started", "worker failed", "fatal shutdown"],
            "round {round}"
        );
    }
}

/// The library's own thread-free workers are killed by `kill` itself: it
/// runs no user code, so it needs no thread of the catacomb's (a thread
/// start and a hop for each worker's news, most of the kill's time when
/// 10,000 passive workers were bound). Passive workers are dead by the
/// time it returns; the tomb of a spawned thread has been told to die.
#[test]
fn kill_kills_the_librarys_own_workers_itself() {
    let scope = Scope::new("kill_here");
    let name = scope.name("c");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(name.clone(), work)).unwrap();
    let passives: Vec<Arc<Passive>> = (0..100).map(|_| Arc::new(Passive::new())).collect();
    for p in &passives {
        c.add(p.clone()).unwrap();
    }
    let thread = Arc::new(worker_core::spawn(scope.name("t"), |tomb| {
        let _ = tomb.dying().recv();
        Ok(())
    }));
    c.add(thread.clone()).unwrap();
    c.kill_with(None);
    assert!(passives.iter().all(|p| p.tomb().state() == TombState::Dead));
    assert_ne!(thread.tomb().state(), TombState::Alive);
    assert_eq!(
        worker_core::threads::live_threads_with_prefix(&format!("{name}-stop")),
        0,
        "no kill thread was needed"
    );
    finish_work.send(Ok(())).unwrap();
    assert!(wait_for(&c).is_ok());
    assert!(Worker::wait(&*thread).is_ok());
    scope.finish();
}

//! Invoke, the work's lifetime, and ownership of the init workers (Go's
//! `Invoke`).

mod common;

use std::sync::Arc;

use common::*;
use worker_catacomb::{Catacomb, InvokeError, Plan};
use worker_core::{Error, Panicked, Passive, SharedWorker, TombState, spawn};
use worker_testing::{check_alive, dead_worker, error_worker};

#[test]
fn work_runs_on_a_thread_named_after_the_catacomb() {
    let scope = Scope::new("work_thread_name");
    let name = scope.name("c");
    let (tx, rx) = crossbeam_channel::bounded(1);
    let c = Catacomb::invoke(Plan::new(name.clone(), move |c: &Catacomb| {
        tx.send(std::thread::current().name().map(str::to_owned))
            .unwrap();
        until_dying(c)
    }))
    .unwrap();
    assert_eq!(c.name(), name);
    assert_eq!(
        rx.recv_timeout(TIMEOUT).unwrap().as_deref(),
        Some(&name[..])
    );
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    // `wait` joined the work thread: nothing is left, without waiting.
    assert_eq!(worker_core::threads::live_threads_with_prefix(&name), 0);
    scope.finish();
}

#[test]
fn work_returning_ok_ends_the_catacomb_and_stops_its_workers() {
    let scope = Scope::new("work_returns_ok");
    let helper = Arc::new(Passive::new());
    let c =
        Catacomb::invoke(Plan::new(scope.name("c"), |_: &Catacomb| Ok(())).init([shared(&helper)]))
            .unwrap();
    assert!(wait_for(&c).is_ok());
    assert_eq!(c.state(), TombState::Dead);
    assert!(finished(helper.tomb()));
    scope.finish();
}

#[test]
fn work_returning_an_error_is_the_catacomb_error() {
    let scope = Scope::new("work_returns_err");
    let helper = Arc::new(Passive::new());
    let c = Catacomb::invoke(
        Plan::new(scope.name("c"), |_: &Catacomb| {
            Err(Error::msg("work failed"))
        })
        .init([shared(&helper)]),
    )
    .unwrap();
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "work failed");
    assert!(finished(helper.tomb()));
    scope.finish();
}

#[test]
fn a_panic_in_work_becomes_the_error_with_its_message() {
    let scope = Scope::new("work_panics");
    let name = scope.name("c");
    let helper = Arc::new(Passive::new());
    let c = Catacomb::invoke(
        Plan::new(name.clone(), |_: &Catacomb| -> Result<(), Error> {
            panic!("the work broke at step {}", 3)
        })
        .init([shared(&helper)]),
    )
    .unwrap();
    let err = wait_for(&c).unwrap_err();
    let panicked = err.downcast_ref::<Panicked>().expect("a Panicked error");
    assert_eq!(panicked.message, "the work broke at step 3");
    assert_eq!(panicked.what, format!("work of catacomb {name:?}"));
    assert!(finished(helper.tomb()));
    scope.finish();
}

#[test]
fn init_workers_are_bound_and_the_catacomb_waits_for_them() {
    let scope = Scope::new("init_bound");
    let passive = Arc::new(Passive::new());
    let stubborn = Stubborn::new();
    let c = invoke_until_dying(scope.name("c"), vec![shared(&passive), shared(&stubborn)]);
    assert_eq!(c.worker_count(), 2);
    check_alive(&c);
    c.kill_with(None);
    // Every init worker was killed...
    stubborn.killed.recv_timeout(TIMEOUT).unwrap();
    assert!(finished(passive.tomb()));
    // ...but the catacomb is not dead while one of them runs.
    check_alive(&c);
    assert_eq!(c.state(), TombState::Dying);
    assert_eq!(c.worker_count(), 1);
    stubborn.release(Ok(()));
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn an_init_worker_that_already_failed_kills_the_catacomb() {
    let scope = Scope::new("init_already_failed");
    let before = Arc::new(Passive::new());
    let failed = Arc::new(dead_worker(Some(Error::msg("failed before invoke"))));
    let after = Stubborn::new();
    let c = invoke_until_dying(
        scope.name("c"),
        vec![shared(&before), shared(&failed), shared(&after)],
    );
    // The work still runs, and sees the catacomb dying at once.
    fired(&c.dying());
    fired(&before.tomb().dead());
    // A worker given after the failure is bound all the same: killed, and
    // waited for.
    after.killed.recv_timeout(TIMEOUT).unwrap();
    check_alive(&c);
    after.release(Ok(()));
    assert_eq!(
        wait_for(&c).unwrap_err().to_string(),
        "failed before invoke"
    );
    scope.finish();
}

#[test]
fn a_refused_plan_stops_every_init_worker() {
    let scope = Scope::new("refused_plan");
    let passive = Arc::new(Passive::new());
    let failing = Arc::new(error_worker(Some(Error::msg("dirty stop"))));
    let thread = Arc::new(spawn(scope.name("helper"), |tomb| {
        let _ = tomb.dying().recv();
        Ok(())
    }));
    let (ran_tx, ran) = crossbeam_channel::unbounded::<()>();
    let plan = Plan::new("  ", move |_: &Catacomb| {
        ran_tx.send(()).unwrap();
        Ok(())
    })
    .init([shared(&passive), shared(&failing), shared(&thread)]);
    let err = Catacomb::invoke(plan).unwrap_err();
    assert!(matches!(err, InvokeError::EmptyName));
    assert_eq!(err.to_string(), "invalid catacomb plan: the name is empty");
    // Stopped means finished when invoke returns, not merely killed: the
    // thread worker ends on its own thread, after the kill.
    assert!(finished(passive.tomb()));
    assert!(finished(failing.tomb()));
    assert!(finished(thread.tomb()));
    // The work never ran (its closure was dropped unrun).
    assert!(ran.recv().is_err());
    scope.finish();
}

#[test]
fn a_refused_plan_kills_every_init_worker_before_waiting_for_any() {
    // `first` finishes only once `second` has been killed: stopping them
    // one after the other (kill, wait, kill, wait) would never get there.
    let scope = Scope::new("refused_plan_kills_first");
    let first = Stubborn::new();
    let second = Stubborn::new();
    let releaser = {
        let (first, second) = (first.clone(), second.clone());
        worker_core::threads::spawn_named(scope.name("releaser"), move || {
            let in_time = second.killed.recv_timeout(TIMEOUT).is_ok();
            first.release(Ok(()));
            second.release(Ok(()));
            in_time
        })
        .unwrap()
    };
    let plan = Plan::new("", |_: &Catacomb| Ok(())).init([shared(&first), shared(&second)]);
    assert!(matches!(
        Catacomb::invoke(plan),
        Err(InvokeError::EmptyName)
    ));
    assert!(
        releaser.join().unwrap(),
        "the second worker was not killed while the first ran"
    );
    assert!(finished(&first.tomb) && finished(&second.tomb));
    scope.finish();
}

#[test]
fn init_workers_may_be_added_in_any_number() {
    let scope = Scope::new("many_init");
    let workers: Vec<Arc<Passive>> = (0..1000).map(|_| Arc::new(Passive::new())).collect();
    let init: Vec<SharedWorker> = workers.iter().map(shared).collect();
    let c = invoke_until_dying(scope.name("c"), init);
    assert_eq!(c.worker_count(), 1000);
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    assert!(workers.iter().all(|w| finished(w.tomb())));
    assert_eq!(c.worker_count(), 0);
    scope.finish();
}

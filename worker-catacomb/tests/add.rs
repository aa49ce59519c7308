//! Add, and how an added worker's life is bound to the catacomb (Go's
//! `Add`).

mod common;

use std::sync::Arc;

use common::*;
use worker_catacomb::{AddError, Catacomb, Dying, Plan};
use worker_core::threads::live_threads_with_prefix;
use worker_core::{
    DoneCallback, Error, Panicked, Passive, SharedWorker, Tomb, TombState, Worker, spawn,
};
use worker_testing::{ForeverWorker, check_alive, dead_worker, error_worker};

#[test]
fn added_workers_are_killed_when_the_catacomb_dies() {
    let scope = Scope::new("added_killed");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let passive = Arc::new(Passive::new());
    let quiet = Arc::new(error_worker(None));
    let thread = Arc::new(spawn(scope.name("helper"), |tomb| {
        let _ = tomb.dying().recv();
        Ok(())
    }));
    c.add(shared(&passive)).unwrap();
    c.add(shared(&quiet)).unwrap();
    c.add(shared(&thread)).unwrap();
    assert_eq!(c.worker_count(), 3);
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    assert!(finished(passive.tomb()));
    assert!(finished(quiet.tomb()));
    assert!(finished(thread.tomb()));
    assert_eq!(c.worker_count(), 0);
    scope.finish();
}

/// Issue 10: `add` demanded a `SharedWorker`, so every caller wrote
/// `Arc::new(w)`; it takes any worker now.
#[test]
fn add_takes_any_worker() {
    let scope = Scope::new("add_any");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let kept: SharedWorker = Arc::new(Passive::new());
    c.add(Passive::new()).unwrap(); // a value, owned by the catacomb
    c.add(Arc::new(Passive::new())).unwrap(); // an Arc
    c.add(kept.clone()).unwrap(); // a shared worker, kept by the caller too
    c.add(invoke_until_dying(scope.name("nested"), vec![]))
        .unwrap(); // a catacomb
    assert_eq!(c.worker_count(), 4);
    c.kill();
    assert!(wait_for(&c).is_ok());
    assert!(kept.wait().is_ok(), "killed with the catacomb");
    scope.finish();
}

#[test]
fn a_worker_failing_kills_the_catacomb_with_its_error() {
    let scope = Scope::new("worker_fails");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let failing = Arc::new(Passive::new());
    let sibling = Arc::new(Passive::new());
    c.add(shared(&failing)).unwrap();
    c.add(shared(&sibling)).unwrap();
    failing.finish(Err(Error::msg("lost the lease")));
    // The failure killed the catacomb, which killed the sibling.
    fired(&c.dying());
    fired(&sibling.tomb().dead());
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "lost the lease");
    scope.finish();
}

#[test]
fn errors_of_workers_stopped_by_the_catacomb_are_kept() {
    // As in Go: a worker that fails while being stopped reports that
    // failure, which replaces a kill without reason.
    let scope = Scope::new("dirty_stop");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    c.add(Arc::new(error_worker(Some(Error::msg("dirty")))))
        .unwrap();
    c.kill_with(None);
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "dirty");
    scope.finish();
}

/// A worker that ends when its tomb is done, and disconnects `dropped`
/// when it is dropped.
struct Announced {
    tomb: Tomb,
    _dropped: crossbeam_channel::Sender<()>,
}

impl Worker for Announced {
    worker_core::delegate_worker!(tomb);
}

#[test]
fn a_worker_ending_cleanly_is_forgotten() {
    let scope = Scope::new("clean_end_forgotten");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let tomb = Tomb::new();
    let (dropped_tx, dropped) = crossbeam_channel::bounded::<()>(0);
    c.add(Announced {
        tomb: tomb.clone(),
        _dropped: dropped_tx,
    })
    .unwrap();
    assert_eq!(c.worker_count(), 1);
    tomb.done(Ok(()));
    // Released at once: no longer counted...
    assert_eq!(c.worker_count(), 0);
    // ...then waited for on a thread of the catacomb, and let go of: its
    // memory is released...
    assert_eq!(
        dropped.recv_timeout(TIMEOUT),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected)
    );
    // ...and the catacomb carries on.
    assert_eq!(c.state(), TombState::Alive);
    check_alive(&c);
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn dead_only_once_the_work_and_every_worker_have_finished() {
    let scope = Scope::new("dead_when_all_done");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    let stubborn = Stubborn::new();
    c.add(shared(&stubborn)).unwrap();
    c.kill_with(None);
    stubborn.killed.recv_timeout(TIMEOUT).unwrap();
    // Neither the work nor the worker has finished.
    check_alive(&c);
    stubborn.release(Ok(()));
    assert_eq!(c.worker_count(), 0);
    // The worker has finished; the work has not.
    check_alive(&c);
    finish_work.send(Ok(())).unwrap();
    assert!(wait_for(&c).is_ok());

    // And the other way round: the work returns first.
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c2"), work)).unwrap();
    let stubborn = Stubborn::new();
    c.add(shared(&stubborn)).unwrap();
    finish_work.send(Ok(())).unwrap();
    stubborn.killed.recv_timeout(TIMEOUT).unwrap();
    check_alive(&c);
    stubborn.release(Ok(()));
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn add_to_a_dying_catacomb_kills_the_worker_and_returns_at_once() {
    // Go stops the worker inside Add and waits for it; a worker
    // that ignores kill would hang the caller. Here add returns at once.
    let scope = Scope::new("add_dying");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    c.kill_with(None);
    let forever = Arc::new(ForeverWorker::new(None));
    let err = c.add(shared(&forever)).unwrap_err();
    assert!(matches!(&err, AddError::Dying(d) if d.catacomb() == c.name()));
    // The error's source is the catacomb's own dying error.
    let err = Error::new(err);
    let own = c.err_dying();
    assert_eq!(err.downcast_ref::<Dying>(), own.downcast_ref::<Dying>());
    // Nothing was bound, so the catacomb does not wait for it.
    assert_eq!(c.worker_count(), 0);
    let killed = Arc::new(error_worker(None));
    assert!(c.add(shared(&killed)).is_err());
    assert!(finished(killed.tomb()), "a refused worker is killed");
    finish_work.send(Ok(())).unwrap();
    assert!(wait_for(&c).is_ok());
    assert!(
        forever.tomb().is_alive(),
        "it ignores kill; add did not wait"
    );
    forever.really_kill();
    scope.finish();
}

#[test]
fn add_to_a_dead_catacomb_kills_the_worker() {
    let scope = Scope::new("add_dead");
    let c = Catacomb::invoke(Plan::new(scope.name("c"), |_: &Catacomb| Ok(()))).unwrap();
    assert!(wait_for(&c).is_ok());
    let w = Arc::new(Passive::new());
    assert!(matches!(c.add(shared(&w)), Err(AddError::Dying(_))));
    assert!(finished(w.tomb()));
    assert!(wait_for(&c).is_ok(), "a refused add changes nothing");
    scope.finish();
}

#[test]
fn adding_a_catacomb_to_itself_is_refused() {
    // Go deadlocks the catacomb's shutdown.
    let scope = Scope::new("add_itself");
    let (tx, rx) = crossbeam_channel::bounded(1);
    let c = Catacomb::invoke(Plan::new(scope.name("c"), move |c: &Catacomb| {
        tx.send(c.add(Arc::new(c.clone()))).unwrap();
        until_dying(c)
    }))
    .unwrap();
    let err = rx.recv_timeout(TIMEOUT).unwrap().unwrap_err();
    assert!(matches!(&err, AddError::ItSelf { catacomb } if catacomb == c.name()));
    assert_eq!(
        err.to_string(),
        format!(
            "cannot add catacomb {:?} to itself: its shutdown would wait for itself",
            c.name()
        )
    );
    // Nothing bound, nothing killed: the catacomb lives on, and still dies.
    assert_eq!(c.worker_count(), 0);
    check_alive(&c);
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn adding_an_owner_that_wraps_the_catacomb_is_refused() {
    let scope = Scope::new("add_owner_itself");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    for forward_on_done in [true, false] {
        let owner = Arc::new(Owner {
            catacomb: c.clone(),
            forward_on_done,
        });
        assert!(
            matches!(c.add(owner), Err(AddError::ItSelf { .. })),
            "forward_on_done: {forward_on_done}"
        );
    }
    assert_eq!(c.worker_count(), 0);
    check_alive(&c);
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn adding_the_same_worker_twice_binds_it_twice() {
    let scope = Scope::new("add_twice");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let w = Arc::new(Passive::new());
    c.add(shared(&w)).unwrap();
    c.add(shared(&w)).unwrap();
    assert_eq!(c.worker_count(), 2);
    w.kill();
    assert_eq!(c.worker_count(), 0, "both bindings are released");
    check_alive(&c);

    let failing = Arc::new(Passive::new());
    c.add(shared(&failing)).unwrap();
    c.add(shared(&failing)).unwrap();
    failing.finish(Err(Error::msg("once")));
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "once");
    scope.finish();
}

#[test]
fn a_worker_that_already_failed_kills_the_catacomb_when_added() {
    let scope = Scope::new("add_failed");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    c.add(Arc::new(dead_worker(Some(Error::msg("already broken")))))
        .unwrap();
    // The catacomb was killed before add returned.
    assert_eq!(c.state(), TombState::Dying);
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "already broken");

    let c = invoke_until_dying(scope.name("c2"), vec![]);
    c.add(Arc::new(dead_worker(None))).unwrap();
    assert_eq!(
        c.worker_count(),
        0,
        "an already finished worker is forgotten"
    );
    assert_eq!(c.state(), TombState::Alive);
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

#[test]
fn added_workers_cost_no_thread() {
    // Go spends two goroutines per added worker.
    let scope = Scope::new("no_thread_per_worker");
    let name = scope.name("c");
    let c = invoke_until_dying(name.clone(), vec![]);
    let workers: Vec<Arc<Passive>> = (0..2000).map(|_| Arc::new(Passive::new())).collect();
    for w in &workers {
        c.add(shared(w)).unwrap();
    }
    let nested = invoke_until_dying(scope.name("nested"), vec![]);
    c.add(Arc::new(nested.clone())).unwrap();
    assert_eq!(c.worker_count(), 2001);
    // The work thread, and the nested catacomb's; nothing per worker.
    assert_eq!(live_threads_with_prefix(&name), 1);
    assert_eq!(live_threads_with_prefix(&scope.name("")), 2);
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    assert!(workers.iter().all(|w| finished(w.tomb())));
    assert!(wait_for(&nested).is_ok());
    scope.finish();
}

#[test]
fn a_foreign_worker_is_watched_by_a_named_thread_joined_before_dead() {
    let scope = Scope::new("foreign_watched");
    let name = scope.name("c");
    let c = invoke_until_dying(name.clone(), vec![]);
    let foreign = Foreign::new(Ok(()));
    c.add(shared(&foreign)).unwrap();
    let watcher = format!("{name}-watcher");
    assert_eq!(live_threads_with_prefix(&watcher), 1);
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    assert!(finished(&foreign.tomb));
    // Joined before the catacomb was dead: gone without waiting.
    assert_eq!(live_threads_with_prefix(&name), 0);
    scope.finish();
}

#[test]
fn a_foreign_worker_failing_kills_the_catacomb() {
    let scope = Scope::new("foreign_fails");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let foreign = Foreign::new(Ok(()));
    c.add(shared(&foreign)).unwrap();
    foreign.tomb.done(Err(Error::msg("foreign failure")));
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "foreign failure");
    scope.finish();
}

#[test]
fn a_foreign_worker_ending_early_ends_its_watcher_thread_and_binding() {
    let scope = Scope::new("watchers_reaped");
    let name = scope.name("c");
    let c = invoke_until_dying(name.clone(), vec![]);
    let watcher = format!("{name}-watcher");
    for _ in 0..5 {
        let foreign = Foreign::new(Ok(()));
        c.add(shared(&foreign)).unwrap();
        Worker::kill(&*foreign);
        // Nothing joins a watcher while the catacomb lives (it is reaped
        // later, and joined before the catacomb is dead): it ends on its
        // own, hence the grace period here.
        worker_testing::assert_threads_gone_within(&watcher, TIMEOUT);
    }
    assert_eq!(c.worker_count(), 0);
    check_alive(&c);
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

/// A worker whose `kill` panics; `finish` ends it.
struct PanicOnKill(Tomb);

impl Worker for PanicOnKill {
    fn kill(&self) {
        panic!("kill exploded");
    }
    fn wait(&self) -> Result<(), Error> {
        self.0.wait()
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Worker::on_done(&self.0, callback)
    }
}

#[test]
fn a_panicking_kill_becomes_the_catacomb_error() {
    let scope = Scope::new("kill_panics");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let bad = Arc::new(PanicOnKill(Tomb::new()));
    let good = Arc::new(Passive::new());
    c.add(shared(&bad)).unwrap();
    c.add(shared(&good)).unwrap();
    c.kill_with(None);
    // The panic did not stop the other workers from being killed.
    fired(&good.tomb().dead());
    bad.0.done(Ok(()));
    let err = wait_for(&c).unwrap_err();
    let panicked = err.downcast_ref::<Panicked>().unwrap();
    assert_eq!(panicked.message, "kill exploded");
    assert!(panicked.what.contains(c.name()));
    scope.finish();
}

/// A worker whose `on_done` panics after dropping the callback.
struct PanicOnDone(Tomb);

impl Worker for PanicOnDone {
    fn kill(&self) {
        self.0.done(Ok(()));
    }
    fn wait(&self) -> Result<(), Error> {
        self.0.wait()
    }
    fn on_done(&self, _: DoneCallback) -> Result<(), DoneCallback> {
        panic!("on_done exploded");
    }
}

#[test]
fn a_panicking_on_done_kills_the_catacomb_and_the_worker_is_still_waited_for() {
    let scope = Scope::new("on_done_panics");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let bad = Arc::new(PanicOnDone(Tomb::new()));
    c.add(shared(&bad)).unwrap();
    let err = wait_for(&c).unwrap_err();
    assert_eq!(
        err.downcast_ref::<Panicked>().unwrap().message,
        "on_done exploded"
    );
    assert!(finished(&bad.0));
    scope.finish();
}

/// A foreign worker whose `wait` panics once it has been killed.
struct PanicOnWait(Tomb);

impl Worker for PanicOnWait {
    fn kill(&self) {
        self.0.done(Ok(()));
    }
    fn wait(&self) -> Result<(), Error> {
        let _ = self.0.wait();
        panic!("wait exploded");
    }
}

#[test]
fn a_panicking_wait_of_a_foreign_worker_becomes_the_catacomb_error() {
    let scope = Scope::new("wait_panics");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    c.add(Arc::new(PanicOnWait(Tomb::new()))).unwrap();
    c.kill_with(None);
    let err = wait_for(&c).unwrap_err();
    assert_eq!(
        err.downcast_ref::<Panicked>().unwrap().message,
        "wait exploded"
    );
    scope.finish();
}

#[test]
fn concurrent_adds_racing_a_kill_leave_no_worker_running() {
    let scope = Scope::new("adds_race_kill");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let adders: Vec<_> = (0..4)
        .map(|i| {
            let c = c.clone();
            worker_core::threads::spawn_named(scope.name(&format!("adder{i}")), move || {
                let mut workers = Vec::new();
                let mut refused = 0;
                for _ in 0..500 {
                    let w = Arc::new(Passive::new());
                    if c.add(shared(&w)).is_err() {
                        refused += 1;
                    }
                    workers.push(w);
                }
                (workers, refused)
            })
            .unwrap()
        })
        .collect();
    c.kill_with(None);
    assert!(wait_for(&c).is_ok());
    for adder in adders {
        let (workers, _refused) = adder.join().unwrap();
        // Bound or refused, every worker was killed.
        assert!(workers.iter().all(|w| finished(w.tomb())));
    }
    assert_eq!(c.worker_count(), 0);
    scope.finish();
}

/// A worker whose `kill` asks to be told when a catacomb finishes.
struct WatchesOnKill {
    tomb: Tomb,
    catacomb: Catacomb,
    registered: crossbeam_channel::Sender<bool>,
}

impl Worker for WatchesOnKill {
    fn kill(&self) {
        let ok = Worker::on_done(&self.catacomb, Box::new(|_: &worker_core::Outcome| {})).is_ok();
        let _ = self.registered.send(ok);
        self.tomb.done(Ok(()));
    }
    fn wait(&self) -> Result<(), Error> {
        self.tomb.wait()
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Worker::on_done(&self.tomb, callback)
    }
}

#[test]
fn code_run_by_an_adds_completion_callback_is_not_taken_for_a_self_add() {
    // Adding an already failed worker kills the catacomb from inside `add`;
    // the kills that follow run user code, which may legitimately ask the
    // catacomb for a completion callback.
    let scope = Scope::new("not_a_self_add");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let (tx, rx) = crossbeam_channel::unbounded();
    c.add(Arc::new(WatchesOnKill {
        tomb: Tomb::new(),
        catacomb: c.clone(),
        registered: tx,
    }))
    .unwrap();
    let added = c.add(Arc::new(dead_worker(Some(Error::msg("failed")))));
    assert!(added.is_ok(), "{added:?}");
    assert!(rx.recv_timeout(TIMEOUT).unwrap(), "on_done was refused");
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "failed");
    scope.finish();
}

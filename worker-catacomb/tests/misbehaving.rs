//! Bound workers that break the contract (a `Drop`, `wait` or callback that
//! panics, a `kill` that blocks), and code that calls back into its own
//! catacomb. None of them may freeze the catacomb, crash it, or keep it
//! from finishing once the misbehaving code has returned (issue 9).

mod common;

use std::sync::Arc;

use common::*;
use crossbeam_channel::{Receiver, Sender};
use worker_catacomb::{AddError, Catacomb, Plan, WaitError};
use worker_core::threads::live_threads_with_prefix;
use worker_core::{
    DoneCallback, Error, Outcome, Panicked, Passive, Tomb, TombState, Worker, delegate_worker,
};
use worker_testing::check_alive;

/// A worker that finishes when killed (or when its tomb is finished from
/// outside), and whose `Drop` panics.
struct PanicOnDrop {
    tomb: Tomb,
}

impl Worker for PanicOnDrop {
    fn kill(&self) {
        self.tomb.done(Ok(()));
    }
    delegate_worker!(tomb, except kill);
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("drop exploded");
    }
}

/// Fails unless `err` is the panic of a [`PanicOnDrop`] seen by catacomb
/// `c`.
fn assert_drop_panic(err: &Error, c: &Catacomb) {
    let panicked = err
        .downcast_ref::<Panicked>()
        .unwrap_or_else(|| panic!("not a panic: {err}"));
    assert_eq!(panicked.message, "drop exploded");
    assert!(panicked.what.contains("drop"), "{}", panicked.what);
    assert!(panicked.what.contains(c.name()), "{}", panicked.what);
}

/// Issue 9: a bound worker whose `Drop` panicked on the work thread (where
/// the catacomb dropped its last reference while finishing) killed that
/// thread before it marked the catacomb dead: `Dying` forever, every
/// `wait` hung.
#[test]
fn a_drop_that_panics_while_the_catacomb_finishes_becomes_its_error() {
    let scope = Scope::new("drop_panics_finishing");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    // The catacomb holds the only reference.
    c.add(PanicOnDrop { tomb: Tomb::new() }).unwrap();
    finish_work.send(Ok(())).unwrap();
    let err = wait_for(&c).unwrap_err();
    assert_drop_panic(&err, &c);
    scope.finish();
}

/// A worker that ended cleanly on its own, but whose `Drop` panics when
/// the catacomb lets go of it, failed nothing: the panic was only logged
/// (by the worker's tomb, which ran the catacomb's completion callback).
/// It is that worker's failure, so it is the catacomb's.
#[test]
fn a_drop_that_panics_after_the_worker_ended_on_its_own_becomes_the_error() {
    let scope = Scope::new("drop_panics_alive");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let tomb = Tomb::new();
    c.add(PanicOnDrop { tomb: tomb.clone() }).unwrap();
    tomb.done(Ok(()));
    fired(&c.dying());
    assert_drop_panic(&wait_for(&c).unwrap_err(), &c);
    scope.finish();
}

#[test]
fn a_refused_worker_whose_drop_panics_does_not_panic_the_caller() {
    let scope = Scope::new("drop_panics_refused");
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    c.kill();
    let refused = c.add(PanicOnDrop { tomb: Tomb::new() });
    assert!(matches!(refused, Err(AddError::Dying(_))), "{refused:?}");
    finish_work.send(Ok(())).unwrap();
    // Killed without a reason: the panic is the first real error.
    assert_drop_panic(&wait_for(&c).unwrap_err(), &c);
    scope.finish();
}

/// A worker whose `wait` panics, although it reports its end through its
/// tomb: the catacomb waits for every bound worker before it is dead.
struct PanicOnWait(Tomb);

impl Worker for PanicOnWait {
    fn kill(&self) {
        self.0.done(Ok(()));
    }
    fn wait(&self) -> Result<(), Error> {
        panic!("wait exploded");
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Worker::on_done(&self.0, callback)
    }
}

#[test]
fn a_wait_that_panics_becomes_the_error() {
    let scope = Scope::new("wait_panics");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    c.add(PanicOnWait(Tomb::new())).unwrap();
    c.kill();
    let err = wait_for(&c).unwrap_err();
    let panicked = err.downcast_ref::<Panicked>().unwrap();
    assert_eq!(panicked.message, "wait exploded");
    assert!(panicked.what.contains(c.name()), "{}", panicked.what);
    scope.finish();
}

#[test]
fn a_completion_callback_that_panics_does_not_keep_the_catacomb_alive() {
    let scope = Scope::new("callback_panics");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let registered = Worker::on_done(&c, Box::new(|_: &Outcome| panic!("callback exploded")));
    assert!(registered.is_ok());
    let (tx, rx) = crossbeam_channel::bounded(1);
    let registered = Worker::on_done(&c, Box::new(move |o: &Outcome| tx.send(o.clone()).unwrap()));
    assert!(registered.is_ok());
    c.kill_with(Some(Error::msg("bye")));
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "bye");
    // The next callback still ran.
    assert!(rx.try_recv().unwrap().is_err());
    scope.finish();
}

/// State a work owns, whose `Drop` panics when the work has returned.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("captured state exploded");
    }
}

#[test]
fn work_whose_captured_state_panics_on_drop_fails_with_that_panic() {
    let scope = Scope::new("work_state_panics");
    let bomb = Bomb;
    let c = Catacomb::invoke(Plan::new(scope.name("c"), move |_: &Catacomb| {
        let _bomb = bomb;
        Ok(())
    }))
    .unwrap();
    let err = wait_for(&c).unwrap_err();
    let panicked = err.downcast_ref::<Panicked>().unwrap();
    assert_eq!(panicked.message, "captured state exploded");
    scope.finish();
}

/// A worker whose `kill` blocks until the test lets it go (or its
/// [`Unblock`] guard is dropped), then finishes it.
struct BlockingKill {
    tomb: Tomb,
    entered: Sender<()>,
    unblock: Receiver<()>,
}

/// Lets every [`BlockingKill`] made with it go when dropped, so that a
/// failing test does not leave threads blocked behind it.
struct Unblock(#[allow(dead_code)] Sender<()>);

impl BlockingKill {
    /// `n` workers sharing one [`Unblock`], and the channel on which each
    /// says that its kill has started blocking.
    fn many(n: usize) -> (Vec<Arc<BlockingKill>>, Unblock, Receiver<()>) {
        let (unblock_tx, unblock) = crossbeam_channel::bounded(0);
        let (entered, entered_rx) = crossbeam_channel::unbounded();
        let workers = (0..n)
            .map(|_| {
                Arc::new(BlockingKill {
                    tomb: Tomb::new(),
                    entered: entered.clone(),
                    unblock: unblock.clone(),
                })
            })
            .collect();
        (workers, Unblock(unblock_tx), entered_rx)
    }
}

impl Worker for BlockingKill {
    fn kill(&self) {
        let _ = self.entered.send(());
        let _ = self.unblock.recv();
        self.tomb.done(Ok(()));
    }
    delegate_worker!(tomb, except kill);
}

/// Runs `f` on a thread of its own and fails unless it returns within
/// [`TIMEOUT`]: proof that it does not block.
fn returns_promptly(scope: &Scope, what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let thread = worker_core::threads::spawn_named(scope.name(what), move || {
        f();
        let _ = tx.send(());
    })
    .unwrap();
    assert!(rx.recv_timeout(TIMEOUT).is_ok(), "{what} blocked");
    thread.join().unwrap();
}

/// Issue 9: the catacomb's kill called every bound worker's `kill` on the
/// caller's thread, so a worker whose `kill` blocks blocked whoever killed
/// the catacomb: an engine's or a runner's thread, or a sibling's
/// completion callback.
#[test]
fn kill_returns_while_a_bound_workers_kill_blocks() {
    let scope = Scope::new("kill_blocks");
    let name = scope.name("c");
    let c = invoke_until_dying(name.clone(), vec![]);
    let (blockers, unblock, entered) = BlockingKill::many(1);
    c.add(blockers[0].clone()).unwrap();
    let killer = c.clone();
    returns_promptly(&scope, "killer", move || killer.kill());
    let other = c.clone();
    returns_promptly(&scope, "worker-killer", move || {
        Worker::kill(&other);
        other.kill_with(Some(Error::msg("again")));
    });
    entered.recv_timeout(TIMEOUT).unwrap();
    // The kill runs on a thread named after the catacomb.
    assert_eq!(live_threads_with_prefix(&format!("{name}-stop")), 1);
    check_alive(&c);
    drop(unblock);
    assert_eq!(wait_for(&c).unwrap_err().to_string(), "again");
    // The thread was joined before the catacomb was dead.
    scope.finish();
}

/// Kills run on a few threads; when none of them makes progress, the
/// finishing catacomb adds another after a short stall, so blocked kills
/// hold up the others only that long.
#[test]
fn kills_that_block_do_not_hold_up_the_other_kills() {
    let scope = Scope::new("kills_block_others");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let (blockers, unblock, entered) = BlockingKill::many(3);
    for b in &blockers {
        c.add(b.clone()).unwrap();
    }
    let passives: Vec<Arc<Passive>> = (0..50).map(|_| Arc::new(Passive::new())).collect();
    for p in &passives {
        c.add(p.clone()).unwrap();
    }
    // Killed from a thread of its own, so that this test fails rather than
    // hangs where kill blocks.
    let killer = c.clone();
    let killer =
        worker_core::threads::spawn_named(scope.name("killer"), move || killer.kill()).unwrap();
    for _ in &blockers {
        entered.recv_timeout(TIMEOUT).unwrap();
    }
    for p in &passives {
        fired(&p.dead_signal().unwrap());
    }
    assert!(blockers.iter().all(|b| b.tomb.is_alive()), "still blocked");
    check_alive(&c);
    drop(unblock);
    killer.join().unwrap();
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

/// Issue 9: work that stops its own catacomb (kill, then wait) deadlocked:
/// the catacomb cannot be dead before its work returns.
#[test]
fn work_that_waits_for_its_own_catacomb_gets_a_typed_error_at_once() {
    let scope = Scope::new("work_waits_itself");
    let (tx, rx) = crossbeam_channel::bounded(1);
    let c = Catacomb::invoke(Plan::new(scope.name("c"), move |c: &Catacomb| {
        c.kill();
        tx.send(c.wait()).unwrap();
        Ok(())
    }))
    .unwrap();
    let err = rx
        .recv_timeout(TIMEOUT)
        .expect("wait deadlocked")
        .unwrap_err();
    assert!(
        matches!(err.downcast_ref::<WaitError>(), Some(WaitError::OwnThread { catacomb, .. }) if catacomb == c.name()),
        "{err}"
    );
    // Not recorded: the catacomb ends as the work said.
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

/// A worker whose `kill` waits for the catacomb it is bound to.
struct WaitsOnKill {
    tomb: Tomb,
    catacomb: Catacomb,
    waited: Sender<Result<(), Error>>,
}

impl Worker for WaitsOnKill {
    fn kill(&self) {
        let _ = self.waited.send(self.catacomb.wait());
        self.tomb.done(Ok(()));
    }
    delegate_worker!(tomb, except kill);
}

#[test]
fn a_bound_workers_kill_that_waits_for_the_catacomb_gets_a_typed_error() {
    let scope = Scope::new("kill_waits_catacomb");
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let (tx, rx) = crossbeam_channel::bounded(1);
    c.add(WaitsOnKill {
        tomb: Tomb::new(),
        catacomb: c.clone(),
        waited: tx,
    })
    .unwrap();
    let killer = c.clone();
    returns_promptly(&scope, "killer", move || killer.kill());
    let err = rx
        .recv_timeout(TIMEOUT)
        .expect("wait deadlocked")
        .unwrap_err();
    assert!(err.is::<WaitError>(), "{err}");
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

/// What a bound worker's completion callback saw when it called into the
/// catacomb.
#[derive(Debug)]
struct Seen {
    added: Result<(), AddError>,
    err: Option<String>,
    state: TombState,
}

/// Registers on `w` a callback that adds a fresh worker to `c`, reads its
/// error, then kills it with `reason`; returns where it says what it saw.
fn call_back_into(c: &Catacomb, w: &Passive, reason: &str) -> Receiver<Seen> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let c = c.clone();
    let reason = reason.to_owned();
    let registered = Worker::on_done(
        w,
        Box::new(move |_: &Outcome| {
            let added = c.add(Passive::new());
            let err = c.err().map(|e| e.to_string());
            let state = c.state();
            c.kill_with(Some(Error::msg(reason)));
            tx.send(Seen { added, err, state }).unwrap();
        }),
    );
    assert!(registered.is_ok());
    rx
}

#[test]
fn completion_callbacks_of_bound_workers_may_call_add_kill_and_err() {
    let scope = Scope::new("callbacks_call_in");
    let c = invoke_until_dying(scope.name("c"), vec![]);

    // Ending on its own, while the catacomb is alive: the callback runs on
    // this thread.
    let early = Arc::new(Passive::new());
    c.add(early.clone()).unwrap();
    let first = call_back_into(&c, &early, "from the first callback");
    // Killed by the catacomb: the callback runs on the catacomb's thread.
    let late = Arc::new(Passive::new());
    c.add(late.clone()).unwrap();
    let second = call_back_into(&c, &late, "from the second callback");
    // Killed by the first callback's kill, on this thread, inside that
    // callback (it has no code of the user's: no thread hop for it).
    let plain = Arc::new(Passive::new());
    c.add(plain.clone()).unwrap();

    early.kill();
    assert_eq!(plain.tomb().state(), TombState::Dead);
    let first = first.recv_timeout(TIMEOUT).unwrap();
    assert!(first.added.is_ok(), "{first:?}");
    assert_eq!(first.err, None);
    assert_eq!(first.state, TombState::Alive);

    // That kill made the catacomb kill the rest, `late` included.
    let second = second.recv_timeout(TIMEOUT).unwrap();
    assert!(
        matches!(second.added, Err(AddError::Dying(_))),
        "{second:?}"
    );
    assert_eq!(second.err.as_deref(), Some("from the first callback"));
    assert_ne!(second.state, TombState::Alive);
    assert_eq!(
        wait_for(&c).unwrap_err().to_string(),
        "from the first callback"
    );
    scope.finish();
}

/// The library's own workers are killed on the killer's thread (see the
/// next test), but only while that runs no user code: a passive worker
/// the user gave a dying hook, or a completion callback of their own, is
/// killed by the catacomb's kill thread, where its hook and callback run.
#[test]
fn user_hooks_and_callbacks_of_passive_workers_do_not_run_on_the_killers_thread() {
    let scope = Scope::new("quiet_refused");
    let name = scope.name("c");
    let c = invoke_until_dying(name.clone(), vec![]);
    let (ran, where_) = crossbeam_channel::unbounded::<(&str, Option<String>)>();
    let this_thread = || std::thread::current().name().map(str::to_owned);
    let hooked = Arc::new(Passive::new());
    let told = ran.clone();
    hooked.tomb().on_dying(move || {
        let _ = told.send(("hook", this_thread()));
    });
    let called = Arc::new(Passive::new());
    let told = ran.clone();
    called.tomb().on_done(move |_| {
        let _ = told.send(("callback", this_thread()));
    });
    let plain = Arc::new(Passive::new());
    for worker in [&hooked, &called, &plain] {
        c.add(worker.clone()).unwrap();
    }
    let killer = scope.name("killer");
    let handle = {
        let c = c.clone();
        worker_core::threads::spawn_named(killer.clone(), move || c.kill()).unwrap()
    };
    handle.join().unwrap();
    let mut seen: Vec<(&str, Option<String>)> = (0..2)
        .map(|_| where_.recv_timeout(TIMEOUT).unwrap())
        .collect();
    seen.sort();
    for (what, thread) in &seen {
        let thread = thread.as_deref().unwrap_or("");
        assert!(
            thread.starts_with(&format!("{name}-stop")),
            "the {what} ran on {thread:?}, not on a kill thread"
        );
    }
    assert_eq!(seen[0].0, "callback");
    assert_eq!(seen[1].0, "hook");
    assert!(wait_for(&c).is_ok());
    scope.finish();
}

//! The library's own workers, which a supervisor's loop may kill itself.
//!
//! The loop runs no user code, so a kill is ordinarily work for the
//! executor: a thread hop for each, and another for the news of the end.
//! The thread-free workers of this library ([`Passive`], and the tombs of
//! [`ThreadWorker`]s and task workers) are killed by code of this library
//! alone, unless someone gave them a dying hook or a completion callback
//! of their own: [`Tomb::kill_quietly`](crate::Tomb) checks that under the
//! tomb's lock and kills only then. Supervisors register their completion
//! callbacks with [`watch`], which marks them as the library's: such a
//! callback may run on the loop, and must then run no user code (it
//! [defers](super::offloop::defer) the asking of user policies).

use std::any::Any;
use std::thread::JoinHandle;

use crate::worker::{DoneCallback, Outcome};
use crate::{Passive, SharedWorker, ThreadWorker, Tomb, watch_named};

/// The tomb of a worker whose `kill` is exactly its tomb's, and whether
/// the kill also finishes it (a [`Passive`] worker's does).
fn tomb_of(worker: &SharedWorker) -> Option<(&Tomb, bool)> {
    let any: &dyn Any = &**worker;
    if let Some(w) = any.downcast_ref::<Passive>() {
        return Some((w.tomb(), true));
    }
    if let Some(w) = any.downcast_ref::<ThreadWorker>() {
        return Some((w.tomb(), false));
    }
    #[cfg(feature = "tokio")]
    if let Some(w) = any.downcast_ref::<crate::task::TaskWorker>() {
        return Some((w.tomb(), false));
    }
    if let Some(tomb) = any.downcast_ref::<Tomb>() {
        return Some((tomb, false));
    }
    None
}

/// Whether dropping `worker` here (and skipping its `wait`) runs no code
/// but the library's: a [`Passive`] worker that has finished holds no
/// user code any more (its callbacks and hooks ran and are gone) and has
/// no thread to join. A supervisor's loop then lets go of it itself.
///
/// What it still holds is its error, if it failed: data, whose last handle
/// may be dropped anywhere, as the loop drops the errors in the news it
/// handles (the same error, shared: the outcome a completion callback
/// reports is a clone of it). So this does not wait for a clean finish: a
/// worker that fails and restarts every microsecond would otherwise cost
/// the executor a job for each ending, and the runner a second start
/// thread.
pub(crate) fn is_spent(worker: &SharedWorker) -> bool {
    let any: &dyn Any = &**worker;
    any.downcast_ref::<Passive>()
        .is_some_and(|w| w.tomb().is_spent())
}

/// How a [`kill_quietly`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuietKill {
    /// The worker is killed, and has finished: a [`Passive`] worker, which
    /// has no thread, so there is nothing to wait for, and dropping it
    /// runs no user code.
    Finished,
    /// The worker is killed and may still be running (its thread or task
    /// sees the kill next): wait for it as usual.
    Killed,
    /// Not killed: not one of the library's own, or its kill would run
    /// user code (a dying hook, or a completion callback of the user's
    /// that finishing it would run). Kill it the ordinary way.
    Refused,
}

/// Whether `worker` is one of the library's own, which [`kill_quietly`]
/// may kill (it still checks, when it kills, that no user code would
/// run). A look at its type, nothing more.
pub fn can_kill_quietly(worker: &SharedWorker) -> bool {
    tomb_of(worker).is_some()
}

/// Kills `worker` on this thread if that runs no code but the library's:
/// the quiet kill a supervisor's loop makes of the library's thread-free
/// workers ([`Passive`], and the tombs of [`ThreadWorker`]s and task
/// workers), for a supervisor that must not run user code on the calling
/// thread (a catacomb killed from any thread, say).
///
/// The completion callbacks registered with [`on_done_quietly`] (and
/// [`watch`]) may run here, on this thread; others make it refuse.
pub fn kill_quietly(worker: &SharedWorker) -> QuietKill {
    match tomb_of(worker) {
        Some((tomb, finish)) => match tomb.kill_quietly(finish) {
            Some(spent) if finish && spent => QuietKill::Finished,
            Some(_) => QuietKill::Killed,
            None => QuietKill::Refused,
        },
        None => QuietKill::Refused,
    }
}

/// Registers `callback` as a supervisor's own completion callback of
/// `worker`, if it is one of the library's thread-free workers: one that
/// leaves [`kill_quietly`] free to kill it, and that must therefore run no
/// user code wherever it runs (the killer's thread, a supervisor's loop).
/// Gives the callback back for any other worker, to be registered with
/// its [`on_done`](crate::Worker::on_done) as usual.
pub fn on_done_quietly(worker: &SharedWorker, callback: DoneCallback) -> Result<(), DoneCallback> {
    match tomb_of(worker) {
        Some((tomb, _)) => {
            tomb.on_done_supervised(callback);
            Ok(())
        }
        None => Err(callback),
    }
}

/// [`kill_quietly`] for a supervisor's loop, which then lets go of the
/// worker: here if that runs no user code (a [`Passive`] worker its kill
/// finished), else by [burying](super::offloop::bury) it. Gives it back if
/// it did not kill it.
pub(crate) fn kill(worker: SharedWorker) -> Result<(), SharedWorker> {
    match kill_quietly(&worker) {
        QuietKill::Finished => Ok(()),
        QuietKill::Killed => {
            super::offloop::bury(worker);
            Ok(())
        }
        QuietKill::Refused => Err(worker),
    }
}

/// [`watch_named`] for supervisors: `callback` is told of `worker`'s end
/// through its completion callback (or a watcher thread named
/// `thread_name` for a worker that cannot notify, whose handle is
/// returned to be joined).
///
/// For the library's own workers the callback is registered as a
/// supervisor's, which lets the supervisor's loop kill the worker itself
/// (a "quiet kill": it runs no user code): the callback may then run on the loop
/// thread, and must run no user code there. Check
/// [`on_loop`](super::offloop::on_loop) and [`defer`](super::offloop::defer)
/// whatever asks the user's code.
pub fn watch<C>(
    worker: &SharedWorker,
    thread_name: impl std::fmt::Display,
    callback: C,
) -> Option<JoinHandle<()>>
where
    C: FnOnce(&Outcome) + Clone + Send + 'static,
{
    match tomb_of(worker) {
        Some((tomb, _)) => {
            tomb.on_done_supervised(Box::new(callback));
            None
        }
        None => watch_named(worker, thread_name, callback),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::{Error, Worker, spawn};

    /// A worker of the user's: its kill is user code.
    #[derive(Debug)]
    struct Users(Tomb);

    impl Worker for Users {
        fn kill(&self) {
            self.0.kill(None);
            self.0.done(Ok(()));
        }
        crate::delegate_worker!(0, except kill);
    }

    #[test]
    fn a_quiet_kill_kills_only_where_no_user_code_runs() {
        let passive: SharedWorker = Arc::new(Passive::new());
        assert!(can_kill_quietly(&passive));
        assert_eq!(kill_quietly(&passive), QuietKill::Finished);
        assert!(passive.wait().is_ok());

        let thread: SharedWorker = Arc::new(spawn("quiet-kill-test", |tomb| {
            let _ = tomb.dying().recv();
            Ok(())
        }));
        assert_eq!(kill_quietly(&thread), QuietKill::Killed);
        assert!(thread.wait().is_ok());

        let own = Arc::new(Users(Tomb::new()));
        let users: SharedWorker = own.clone();
        assert!(!can_kill_quietly(&users));
        assert_eq!(kill_quietly(&users), QuietKill::Refused);
        assert!(own.0.is_alive());

        // The user's own hook or callback would run: refused, untouched.
        let hooked = Arc::new(Passive::new());
        hooked.tomb().on_dying(|| {});
        let hooked_shared: SharedWorker = hooked.clone();
        assert_eq!(kill_quietly(&hooked_shared), QuietKill::Refused);
        assert!(hooked.tomb().is_alive());
        let called = Arc::new(Passive::new());
        called.tomb().on_done(|_| {});
        let called_shared: SharedWorker = called.clone();
        assert_eq!(kill_quietly(&called_shared), QuietKill::Refused);
        assert!(called.tomb().is_alive());
        let (hooked, called) = (hooked_shared, called_shared);
        for worker in [&users, &hooked, &called] {
            worker.kill();
            assert!(worker.wait().is_ok());
        }
    }

    #[test]
    fn a_quiet_callback_runs_inside_the_quiet_kill() {
        let passive: SharedWorker = Arc::new(Passive::new());
        let told = Arc::new(AtomicBool::new(false));
        let flag = told.clone();
        let callback: DoneCallback = Box::new(move |outcome: &Outcome| {
            flag.store(outcome.is_ok(), Ordering::SeqCst);
        });
        assert!(on_done_quietly(&passive, callback).is_ok());
        assert_eq!(kill_quietly(&passive), QuietKill::Finished);
        assert!(
            told.load(Ordering::SeqCst),
            "ran before kill_quietly returned"
        );

        // Any other worker gives the callback back.
        let users: SharedWorker = Arc::new(Users(Tomb::new()));
        let callback: DoneCallback = Box::new(|_: &Outcome| {});
        assert!(on_done_quietly(&users, callback).is_err());
        users.kill();
        let _: Result<(), Error> = users.wait();
    }
}

//! `Tomb`: the lifetime of one worker, as a small state machine.
//!
//! A tomb goes `Alive -> Dying -> Dead`, never back. [`Tomb::kill`] moves it
//! to `Dying` (recording why), [`Tomb::done`] to `Dead` (recording how the
//! work ended). The *reason* it keeps is the first real error it was given:
//! a kill without an error is overwritten by the first error that follows,
//! and nothing overwrites an error. Once `Dead`, the result is frozen.
//!
//! Everything that waits on a tomb waits without a thread of its own:
//! [`Tomb::wait`] blocks the caller, [`Tomb::dying`] and [`Tomb::dead`] hand
//! out [`Signal`]s for `select!`, [`Tomb::until_dying`] and
//! [`Tomb::until_dead`] are futures for async code, and [`Tomb::on_done`]
//! registers a callback that the finishing thread calls. [`Tomb::on_dying`]
//! registers a hook that the killing thread calls, to wake work that is
//! blocked where no signal reaches it (a `read`, an `accept`).
//!
//! A tomb is the unit a supervisor holds a million of, so it is small and
//! lazy: the channels behind the signals and the hooks live in a box made
//! only when someone asks for them, a single callback needs no vector, and
//! the wakers of waiting futures take room only while they wait. An idle
//! tomb is one allocation of 120 bytes (a test pins it).

mod futures;
mod hooks;
mod lists;

use std::convert::Infallible;
use std::sync::LazyLock;

use crossbeam_channel::Sender;

use crate::sync::{Arc, Condvar, Mutex, MutexGuard};
use crate::worker::{DoneCallback, Outcome, Signal, Worker};
use crate::{Error, Panicked, Reporter};

pub use futures::{UntilDead, UntilDying};
use lists::{Few, Wakers};

/// Where a [`Tomb`] is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TombState {
    /// Running; nobody has asked it to stop.
    Alive,
    /// Asked to stop (or failed), and not finished yet.
    Dying,
    /// Finished; the result is final.
    Dead,
}

/// The lifetime primitive (Go's `tomb`): tracks whether a worker is alive,
/// dying or dead, and the first real error it met.
///
/// A `Tomb` is a cheap handle: clones share the same lifetime, so the
/// worker's own thread and every observer can each hold one.
///
/// Rules (see the module docs for the whole model):
/// - [`kill(reason)`](Tomb::kill) starts dying. The first kill records its
///   reason, which may be `None`; a later `Some` replaces a `None`, and
///   nothing replaces a `Some` ("the first real error wins").
/// - [`done(result)`](Tomb::done) finishes: an `Err` counts as one more kill
///   reason, then the tomb is dead and its result, the recorded reason, is
///   frozen. Only the first `done` counts.
/// - [`wait`](Tomb::wait) returns that result, to every caller.
///
/// ```
/// use worker_core::{Error, Tomb, TombState};
///
/// let tomb = Tomb::new();
/// tomb.kill(None);                       // asked to stop, no error yet
/// assert_eq!(tomb.state(), TombState::Dying);
/// tomb.kill(Some(Error::msg("disk full")));   // the first real error wins
/// tomb.done(Err(Error::msg("late")));         // ...over later ones
/// assert_eq!(tomb.wait().unwrap_err().to_string(), "disk full");
/// ```
#[derive(Clone)]
pub struct Tomb {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Mutex<Inner>,
    dead: Condvar,
}

struct Inner {
    state: TombState,
    /// Threads blocked in `wait`; `done` only wakes the condition variable
    /// when there are some (a wake-up is a syscall, and most tombs die
    /// with nobody waiting).
    waiters: u32,
    /// Whether anyone but a supervisor of this family registered a
    /// completion callback (see [`Tomb::kill_quietly`]).
    foreign_callbacks: bool,
    /// The first real error, or `None`.
    reason: Option<Error>,
    callbacks: Few<DoneCallback>,
    /// Futures waiting for the next change of state.
    wakers: Wakers,
    /// What most tombs never need; made on first use, dropped when dead.
    extras: Option<Box<Extras>>,
}

#[derive(Default)]
struct Extras {
    /// Dropped (disconnecting the receivers) when dying starts.
    dying: Option<(Sender<Infallible>, Signal)>,
    /// Dropped when the tomb is dead.
    dead: Option<(Sender<Infallible>, Signal)>,
    /// Run once, when the tomb stops being alive.
    hooks: Few<Hook>,
}

/// A dying hook (see [`Tomb::on_dying`]).
type Hook = Box<dyn FnOnce() + Send + 'static>;

/// What a change of state leaves to do once the lock is released: hooks,
/// callbacks and wakers run outside it, and so do the drops of what the
/// tomb no longer needs.
#[derive(Default)]
struct Aftermath {
    notify_waiters: bool,
    hooks: Few<Hook>,
    /// The futures waiting for the tomb to leave `Alive`...
    wakers: Wakers,
    /// ...and those waiting, while it was dying, for it to be dead.
    dying_wakers: Wakers,
    finished: Option<(Outcome, Few<DoneCallback>)>,
    extras: Option<Box<Extras>>,
}

/// A receiver whose channel is already disconnected: handed out for events
/// that have already happened.
static CLOSED: LazyLock<Signal> = LazyLock::new(|| crossbeam_channel::bounded(0).1);

fn closed() -> Signal {
    CLOSED.clone()
}

impl Default for Tomb {
    fn default() -> Self {
        Tomb::new()
    }
}

impl Tomb {
    /// A new, alive tomb.
    #[must_use]
    pub fn new() -> Self {
        Tomb {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    state: TombState::Alive,
                    waiters: 0,
                    foreign_callbacks: false,
                    reason: None,
                    callbacks: Few::None,
                    wakers: Wakers::default(),
                    extras: None,
                }),
                dead: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No user code ever runs under this lock, so a poisoned lock can
        // only come from a bug in this module; the state is still valid.
        self.shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the tomb's worker to stop, recording `reason` if it is the first
    /// real error. Returns once the [dying hooks](Tomb::on_dying) have run
    /// (there are none unless the worker registered some). Ignored once
    /// dead.
    pub fn kill(&self, reason: Option<Error>) {
        let after = self.lock().record(reason);
        after.run(self);
    }

    /// Marks the work as finished with `result`: an `Err` is recorded as a
    /// kill reason (subject to "first real error wins"), then the tomb is
    /// dead. Wakes every waiter and runs the [`on_done`](Tomb::on_done)
    /// callbacks on this thread, outside any lock (and the dying hooks
    /// first, if the tomb was still alive). Calls after the first are
    /// ignored.
    pub fn done(&self, result: Result<(), Error>) {
        let after = {
            let mut inner = self.lock();
            if inner.state == TombState::Dead {
                return;
            }
            inner.finish(result)
        };
        after.run(self);
    }

    /// Kills the tomb (and with `finish`, then marks it done cleanly, as a
    /// [`Passive`](crate::Passive) worker's kill does) if doing so runs no
    /// code but this library's: no [dying hook](Tomb::on_dying) is
    /// registered and, with `finish`, no completion callback but those of
    /// the library's supervisors. Otherwise it changes nothing, and the
    /// caller kills the worker the ordinary way.
    ///
    /// This is how a supervisor's loop, which must run no user code, still
    /// kills the library's own thread-free workers at once rather than a
    /// thread hop away. Wakers of waiting futures are woken (waking must
    /// not block, by the contract of `Waker`).
    ///
    /// Returns `None` if it did not kill, else whether the tomb is then
    /// spent (see [`Tomb::is_spent`]).
    pub(crate) fn kill_quietly(&self, finish: bool) -> Option<bool> {
        let (after, spent) = {
            let mut inner = self.lock();
            let hooks = inner
                .extras
                .as_ref()
                .is_some_and(|extras| !extras.hooks.is_empty());
            if (inner.state == TombState::Alive && hooks) || (finish && inner.foreign_callbacks) {
                return None;
            }
            if finish
                && inner.state == TombState::Alive
                && inner.waiters == 0
                && inner.extras.is_none()
                && matches!(inner.wakers, Wakers::Empty)
            {
                // The commonest case by far (a supervisor stopping its
                // passive workers): nobody waits, nothing was asked for but
                // the callbacks, so the tomb goes straight to dead with no
                // aftermath to gather.
                inner.state = TombState::Dead;
                let callbacks = std::mem::take(&mut inner.callbacks);
                drop(inner);
                let outcome = Ok(());
                for callback in callbacks {
                    run_callback(callback, &outcome);
                }
                return Some(true);
            }
            let mut after = inner.record(None);
            if finish && inner.state != TombState::Dead {
                let finished = inner.finish(Ok(()));
                after.absorb(finished);
            }
            let spent = inner.state == TombState::Dead;
            (after, spent)
        };
        after.run(self);
        Some(spent)
    }

    /// Registers a completion callback of one of the library's
    /// supervisors: a callback that runs no user code on a supervisor's
    /// loop thread (see [`Tomb::kill_quietly`]).
    pub(crate) fn on_done_supervised(&self, callback: DoneCallback) {
        self.register_callback(callback, false);
    }

    /// Where the tomb is in its life.
    #[must_use]
    pub fn state(&self) -> TombState {
        self.lock().state
    }

    /// Whether the tomb is still alive (not yet killed or finished).
    pub fn is_alive(&self) -> bool {
        self.state() == TombState::Alive
    }

    /// The reason recorded so far: `None` while alive, or when it was killed
    /// without an error and no error has come since.
    #[must_use]
    pub fn err(&self) -> Option<Error> {
        self.lock().reason.clone()
    }

    /// Blocks until the tomb is dead, and returns its result: `Err` with the
    /// first real error, else `Ok`. Every call returns the same result.
    ///
    /// In async code, await [`until_dead`](Tomb::until_dead) instead: this
    /// blocks the executor's thread.
    pub fn wait(&self) -> Result<(), Error> {
        let mut inner = self.lock();
        while inner.state != TombState::Dead {
            // Counted under the lock before sleeping, so `done` (which reads
            // the count under the same lock) cannot miss this waiter.
            inner.waiters += 1;
            inner = self
                .shared
                .dead
                .wait(inner)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            inner.waiters -= 1;
        }
        inner.outcome()
    }

    /// Whether the tomb is dead: it then holds nothing of the user's but
    /// its error, if any (see `supervisor::quiet::is_spent`). Cheaper than
    /// [`try_result`](Self::try_result), which clones the result.
    pub(crate) fn is_spent(&self) -> bool {
        self.lock().state == TombState::Dead
    }

    /// The result if the tomb is dead, without blocking.
    #[must_use]
    pub fn try_result(&self) -> Option<Result<(), Error>> {
        let inner = self.lock();
        (inner.state == TombState::Dead).then(|| inner.outcome())
    }

    /// A [`Signal`] that disconnects when the tomb starts dying (or at once,
    /// if it already has). The body of a worker selects on it to learn that
    /// it should stop.
    #[must_use]
    pub fn dying(&self) -> Signal {
        let mut inner = self.lock();
        if inner.state != TombState::Alive {
            return closed();
        }
        inner
            .extras()
            .dying
            .get_or_insert_with(|| crossbeam_channel::bounded(0))
            .1
            .clone()
    }

    /// A [`Signal`] that disconnects when the tomb is dead.
    #[must_use]
    pub fn dead(&self) -> Signal {
        let mut inner = self.lock();
        if inner.state == TombState::Dead {
            return closed();
        }
        inner
            .extras()
            .dead
            .get_or_insert_with(|| crossbeam_channel::bounded(0))
            .1
            .clone()
    }

    /// A future that completes when the tomb starts dying: the async
    /// counterpart of [`dying`](Tomb::dying), for `.await` or a
    /// `select!` of any executor.
    ///
    /// It needs no thread and no channel: the tomb wakes it. It is
    /// cancel-safe, so making a new one in every round of a loop is fine.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl std::task::Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } std::thread::park() }
    /// # }
    /// use worker_core::{Error, Tomb};
    ///
    /// let tomb = Tomb::new();
    /// let killer = tomb.clone();
    /// std::thread::spawn(move || killer.kill(Some(Error::msg("enough"))));
    /// block_on(tomb.until_dying()); // any executor: tokio, smol, your own
    /// assert_eq!(tomb.err().unwrap().to_string(), "enough");
    /// ```
    pub fn until_dying(&self) -> UntilDying {
        UntilDying::new(self.clone())
    }

    /// A future that completes when the tomb is dead, with its result: the
    /// async counterpart of [`wait`](Tomb::wait). Cancel-safe, like
    /// [`until_dying`](Tomb::until_dying).
    pub fn until_dead(&self) -> UntilDead {
        UntilDead::new(self.clone())
    }

    /// Registers `callback` to be called once, with the result, when the tomb
    /// is dead; if it already is, the callback runs now, on this thread. A
    /// panicking callback is logged and does not disturb the others.
    pub fn on_done(&self, callback: impl FnOnce(&Outcome) + Send + 'static) {
        self.on_done_boxed(Box::new(callback));
    }

    fn on_done_boxed(&self, callback: DoneCallback) {
        self.register_callback(callback, true);
    }

    fn register_callback(&self, callback: DoneCallback, foreign: bool) {
        let outcome = {
            let mut inner = self.lock();
            if inner.state != TombState::Dead {
                inner.callbacks.push(callback);
                inner.foreign_callbacks |= foreign;
                return;
            }
            inner.outcome()
        };
        run_callback(callback, &outcome);
    }
}

impl Inner {
    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Applies a kill `reason`; what leaving `Alive` triggers is returned,
    /// to be run once the lock is released.
    fn record(&mut self, reason: Option<Error>) -> Aftermath {
        let mut after = Aftermath::default();
        match self.state {
            TombState::Dead => {}
            TombState::Alive => {
                self.state = TombState::Dying;
                self.reason = reason;
                if let Some(extras) = &mut self.extras {
                    extras.dying = None;
                    after.hooks = std::mem::take(&mut extras.hooks);
                }
                after.wakers = std::mem::take(&mut self.wakers);
            }
            TombState::Dying => {
                if self.reason.is_none() {
                    self.reason = reason;
                }
            }
        }
        after
    }

    /// Marks the tomb dead with `result` (the caller checked that it was
    /// not); what that triggers is returned, to be run once the lock is
    /// released.
    fn finish(&mut self, result: Result<(), Error>) -> Aftermath {
        let mut after = self.record(result.err());
        self.state = TombState::Dead;
        after.dying_wakers = std::mem::take(&mut self.wakers);
        after.extras = self.extras.take();
        after.finished = Some((self.outcome(), std::mem::take(&mut self.callbacks)));
        self.foreign_callbacks = false;
        after.notify_waiters = self.waiters > 0;
        after
    }

    fn outcome(&self) -> Outcome {
        match &self.reason {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl Aftermath {
    /// Adds what a second change of state (dead, right after dying) left
    /// to do.
    fn absorb(&mut self, later: Aftermath) {
        self.notify_waiters |= later.notify_waiters;
        for hook in later.hooks {
            self.hooks.push(hook);
        }
        self.dying_wakers = later.dying_wakers;
        self.finished = later.finished;
        self.extras = later.extras;
    }

    /// Hooks first, while the tomb is dying (so a panicking hook's error
    /// is recorded before anyone is woken), then wakers, then callbacks.
    fn run(self, tomb: &Tomb) {
        if self.notify_waiters {
            tomb.shared.dead.notify_all();
        }
        for hook in self.hooks {
            tomb.run_hook(hook);
        }
        self.wakers.wake_all();
        self.dying_wakers.wake_all();
        if let Some((outcome, callbacks)) = self.finished {
            for callback in callbacks {
                run_callback(callback, &outcome);
            }
        }
        drop(self.extras);
    }
}

fn run_callback(callback: DoneCallback, outcome: &Outcome) {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(outcome)));
    if let Err(payload) = caught {
        let panicked = Panicked::from_payload("a completion callback", &*payload);
        tracing::error!(error = %panicked, "completion callback panicked");
    }
}

impl std::fmt::Debug for Tomb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Tomb")
            .field("state", &inner.state)
            .field("reason", &inner.reason)
            .finish()
    }
}

/// A tomb is itself a worker: `kill` is `kill(None)`, `wait` waits for
/// `done`. Embed one in your worker type and delegate to it.
impl Worker for Tomb {
    fn kill(&self) {
        Tomb::kill(self, None)
    }

    fn wait(&self) -> Result<(), Error> {
        Tomb::wait(self)
    }

    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        self.on_done_boxed(callback);
        Ok(())
    }

    fn dead_signal(&self) -> Option<Signal> {
        Some(self.dead())
    }

    fn reporter(&self) -> Option<&dyn Reporter> {
        None
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_kill_runs_no_code_but_the_librarys() {
        // Nothing registered: killed (and finished) at once.
        let tomb = Tomb::new();
        assert_eq!(tomb.kill_quietly(true), Some(true));
        assert!(tomb.try_result().unwrap().is_ok());

        // A supervisor's callback does not count.
        let tomb = Tomb::new();
        let (tx, rx) = crossbeam_channel::bounded(1);
        tomb.on_done_supervised(Box::new(move |o: &Outcome| {
            let _ = tx.send(o.is_ok());
        }));
        assert_eq!(tomb.kill_quietly(true), Some(true));
        assert_eq!(rx.try_recv(), Ok(true), "ran, here");

        // Someone else's callback does, when the kill finishes the tomb.
        let tomb = Tomb::new();
        tomb.on_done(|_| {});
        assert_eq!(tomb.kill_quietly(true), None);
        assert!(tomb.is_alive(), "nothing changed");
        assert_eq!(
            tomb.kill_quietly(false),
            Some(false),
            "a kill alone runs no callback"
        );
        assert_eq!(tomb.state(), TombState::Dying);

        // A dying hook always does, while alive.
        let tomb = Tomb::new();
        tomb.on_dying(|| {});
        assert_eq!(tomb.kill_quietly(false), None);
        assert!(tomb.is_alive());
        tomb.kill(None);
        assert_eq!(
            tomb.kill_quietly(true),
            Some(true),
            "the hook has run already"
        );
        assert_eq!(tomb.state(), TombState::Dead);

        // A recorded error is the result of a finishing quiet kill; the
        // tomb is spent all the same (an error is data).
        let tomb = Tomb::new();
        tomb.kill(Some(Error::msg("failing")));
        assert_eq!(tomb.kill_quietly(true), Some(true));
        assert!(tomb.is_spent());
        assert_eq!(tomb.wait().unwrap_err().to_string(), "failing");
    }

    #[test]
    fn a_quiet_kill_still_tells_whoever_listens() {
        // Signals taken before the kill: they disconnect, as with `kill`.
        let tomb = Tomb::new();
        let (dying, dead) = (tomb.dying(), tomb.dead());
        assert_eq!(tomb.kill_quietly(true), Some(true));
        assert_eq!(
            dying.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        );
        assert_eq!(
            dead.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        );
        // A thread blocked in `wait` is woken.
        let tomb = Tomb::new();
        let (started_tx, started) = crossbeam_channel::bounded(0);
        let waiter = {
            let tomb = tomb.clone();
            std::thread::spawn(move || {
                started_tx.send(()).unwrap();
                tomb.wait()
            })
        };
        started.recv().unwrap();
        assert_eq!(tomb.kill_quietly(true), Some(true));
        assert!(waiter.join().unwrap().is_ok());
    }

    /// The unit a supervisor holds a million of: keep it small. An idle
    /// tomb is one allocation: the `Arc` header (16 bytes) and `Shared`.
    #[test]
    fn an_idle_tomb_stays_small() {
        let shared = std::mem::size_of::<Shared>();
        eprintln!(
            "Shared: {shared} bytes; Extras: {} bytes",
            std::mem::size_of::<Extras>()
        );
        assert!(shared <= 104, "Shared grew to {shared} bytes");
        assert_eq!(std::mem::size_of::<Tomb>(), 8);
    }
}

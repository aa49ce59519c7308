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
//! out [`Signal`]s for `select!`, and [`Tomb::on_done`] registers a callback
//! that the finishing thread calls. The signals' channels are only created
//! when someone asks for them, so an idle tomb costs about 100 bytes.

use std::convert::Infallible;
use std::sync::LazyLock;

use crossbeam_channel::Sender;

use crate::sync::{Arc, Condvar, Mutex, MutexGuard};
use crate::worker::{DoneCallback, Outcome, Signal, Worker};
use crate::{Error, Reporter};

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
    /// The first real error, or `None`.
    reason: Option<Error>,
    /// Lazily made; dropped (disconnecting the receivers) when dying starts.
    dying: Option<(Sender<Infallible>, Signal)>,
    /// Lazily made; dropped when the tomb is dead.
    dead: Option<(Sender<Infallible>, Signal)>,
    callbacks: Vec<DoneCallback>,
    /// Threads blocked in `wait`; `done` only wakes the condition variable
    /// when there are some (a wake-up is a syscall, and most tombs die
    /// with nobody waiting).
    waiters: usize,
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
    pub fn new() -> Self {
        Tomb {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    state: TombState::Alive,
                    reason: None,
                    dying: None,
                    dead: None,
                    callbacks: Vec::new(),
                    waiters: 0,
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
    /// real error. Returns at once. Ignored once dead.
    pub fn kill(&self, reason: Option<Error>) {
        let mut inner = self.lock();
        inner.record(reason);
    }

    /// Marks the work as finished with `result`: an `Err` is recorded as a
    /// kill reason (subject to "first real error wins"), then the tomb is
    /// dead. Wakes every waiter and runs the [`on_done`](Tomb::on_done)
    /// callbacks on this thread, outside any lock. Calls after the first are
    /// ignored.
    pub fn done(&self, result: Result<(), Error>) {
        let (outcome, callbacks, waiters) = {
            let mut inner = self.lock();
            if inner.state == TombState::Dead {
                return;
            }
            inner.record(result.err());
            inner.state = TombState::Dead;
            inner.dead = None;
            let outcome = inner.outcome();
            (outcome, std::mem::take(&mut inner.callbacks), inner.waiters)
        };
        if waiters > 0 {
            self.shared.dead.notify_all();
        }
        for callback in callbacks {
            run_callback(callback, &outcome);
        }
    }

    /// Where the tomb is in its life.
    pub fn state(&self) -> TombState {
        self.lock().state
    }

    /// Whether the tomb is still alive (not yet killed or finished).
    pub fn is_alive(&self) -> bool {
        self.state() == TombState::Alive
    }

    /// The reason recorded so far: `None` while alive, or when it was killed
    /// without an error and no error has come since.
    pub fn err(&self) -> Option<Error> {
        self.lock().reason.clone()
    }

    /// Blocks until the tomb is dead, and returns its result: `Err` with the
    /// first real error, else `Ok`. Every call returns the same result.
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

    /// The result if the tomb is dead, without blocking.
    pub fn try_result(&self) -> Option<Result<(), Error>> {
        let inner = self.lock();
        (inner.state == TombState::Dead).then(|| inner.outcome())
    }

    /// A [`Signal`] that disconnects when the tomb starts dying (or at once,
    /// if it already has). The body of a worker selects on it to learn that
    /// it should stop.
    pub fn dying(&self) -> Signal {
        let mut inner = self.lock();
        if inner.state != TombState::Alive {
            return closed();
        }
        inner
            .dying
            .get_or_insert_with(|| crossbeam_channel::bounded(0))
            .1
            .clone()
    }

    /// A [`Signal`] that disconnects when the tomb is dead.
    pub fn dead(&self) -> Signal {
        let mut inner = self.lock();
        if inner.state == TombState::Dead {
            return closed();
        }
        inner
            .dead
            .get_or_insert_with(|| crossbeam_channel::bounded(0))
            .1
            .clone()
    }

    /// Registers `callback` to be called once, with the result, when the tomb
    /// is dead; if it already is, the callback runs now, on this thread. A
    /// panicking callback is logged and does not disturb the others.
    pub fn on_done(&self, callback: impl FnOnce(&Outcome) + Send + 'static) {
        self.on_done_boxed(Box::new(callback));
    }

    fn on_done_boxed(&self, callback: DoneCallback) {
        let outcome = {
            let mut inner = self.lock();
            if inner.state != TombState::Dead {
                // Most tombs get one callback (their supervisor's): room for
                // one, not the four a first push would reserve.
                inner.callbacks.reserve_exact(1);
                inner.callbacks.push(callback);
                return;
            }
            inner.outcome()
        };
        run_callback(callback, &outcome);
    }
}

impl Inner {
    fn record(&mut self, reason: Option<Error>) {
        match self.state {
            TombState::Dead => {}
            TombState::Alive => {
                self.state = TombState::Dying;
                self.reason = reason;
                self.dying = None;
            }
            TombState::Dying => {
                if self.reason.is_none() {
                    self.reason = reason;
                }
            }
        }
    }

    fn outcome(&self) -> Outcome {
        match &self.reason {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

fn run_callback(callback: DoneCallback, outcome: &Outcome) {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(outcome)));
    if let Err(payload) = caught {
        let panicked = crate::Panicked::from_payload("a completion callback", &*payload);
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

//! Abort signals: how a caller gives up on a call that waits.
//!
//! Calls that wait (for a worker to start, for one to stop) take an abort
//! signal: when it fires, they return [`Aborted`](crate::Aborted) instead
//! of waiting on. One type serves every way of waiting: an
//! [`AbortSignal`] can be checked without blocking, selected on among
//! crossbeam channels, and awaited as a future on any executor.
//!
//! An abort signal is a [`Tomb`]'s dying moment seen from outside, and is
//! built on one: [`AbortSignal::pair`] makes a fresh one with its
//! [`AbortTrigger`], and [`Tomb::abort_signal`] gives one that fires when a
//! worker starts dying, so a worker's body can hand its own lifetime to
//! the calls it makes.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use crossbeam_channel::Sender;

use crate::tomb::UntilDying;
use crate::worker::Signal;
use crate::{Error, Tomb, TombState};

/// A signal that a caller has given up; cheap to clone (a pointer), and
/// every clone fires together.
///
/// Three ways to look at it, whatever kind of code waits:
/// - [`is_fired`](AbortSignal::is_fired): a check that never blocks;
/// - [`receiver`](AbortSignal::receiver): a [`Signal`] for
///   `crossbeam_channel::select!`, which disconnects when it fires;
/// - [`until_fired`](AbortSignal::until_fired): a future for async code.
///
/// ```
/// use crossbeam_channel::{never, select};
/// use worker_core::AbortSignal;
///
/// let (trigger, abort) = AbortSignal::pair();
/// assert!(!abort.is_fired());
/// trigger.fire();
/// assert!(abort.is_fired());
/// select! {
///     recv(abort.receiver()) -> _ => {} // fires at once now
///     recv(never::<()>()) -> _ => unreachable!(),
/// }
/// ```
#[derive(Clone, Default)]
pub struct AbortSignal {
    /// Fires when this tomb stops being alive; `None` never fires.
    tomb: Option<Tomb>,
}

/// Fires its [`AbortSignal`]s: explicitly with [`fire`](AbortTrigger::fire),
/// or when it is dropped.
///
/// Dropping fires because a trigger that nobody holds can never fire
/// again, and a caller waiting on its signal would otherwise wait forever
/// (the same rule as a channel whose senders are gone). Keep the trigger
/// for as long as the calls it guards should be able to go on; for a
/// signal that never fires, use [`AbortSignal::never`].
///
/// ```
/// use worker_core::AbortSignal;
///
/// let (trigger, abort) = AbortSignal::pair();
/// drop(trigger);
/// assert!(abort.is_fired());
/// ```
#[must_use = "dropping the trigger fires its signal at once"]
#[derive(Debug)]
pub struct AbortTrigger {
    tomb: Tomb,
}

/// The sender that keeps [`AbortSignal::never`]'s receiver connected
/// forever, and that receiver.
static NEVER: LazyLock<(Sender<std::convert::Infallible>, Signal)> =
    LazyLock::new(|| crossbeam_channel::bounded(0));

impl AbortSignal {
    /// A new signal and the trigger that fires it.
    pub fn pair() -> (AbortTrigger, AbortSignal) {
        let tomb = Tomb::new();
        let signal = AbortSignal {
            tomb: Some(tomb.clone()),
        };
        (AbortTrigger { tomb }, signal)
    }

    /// A signal that never fires: for calls that should wait as long as
    /// it takes. Costs no allocation. Also what `AbortSignal::default()`
    /// gives.
    pub fn never() -> Self {
        AbortSignal { tomb: None }
    }

    /// A signal that has already fired: calls given it give up at once
    /// if they would have to wait.
    pub fn already_fired() -> Self {
        let (trigger, signal) = AbortSignal::pair();
        trigger.fire();
        signal
    }

    /// Whether the signal has fired. Never blocks.
    pub fn is_fired(&self) -> bool {
        self.tomb
            .as_ref()
            .is_some_and(|tomb| tomb.state() != TombState::Alive)
    }

    /// A crossbeam [`Signal`] that disconnects when this fires, for
    /// `select!` with `recv(abort.receiver()) -> _ => ...`. Made on first
    /// use and shared by every clone.
    pub fn receiver(&self) -> Signal {
        match &self.tomb {
            Some(tomb) => tomb.dying(),
            None => NEVER.1.clone(),
        }
    }

    /// A future that completes when this fires; it needs no thread, and
    /// dropping it leaves nothing behind, so it can be made afresh in
    /// every round of a `select!` loop.
    pub fn until_fired(&self) -> UntilFired {
        UntilFired {
            dying: self.tomb.as_ref().map(Tomb::until_dying),
        }
    }

    /// `Err(`[`Aborted`](crate::Aborted)`)` if the signal has fired, else
    /// `Ok(())`: for a `?` at the points where a long operation can give up.
    pub fn check(&self) -> Result<(), Error> {
        if self.is_fired() {
            Err(Error::new(crate::Aborted))
        } else {
            Ok(())
        }
    }
}

impl std::fmt::Debug for AbortSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tomb {
            None => f.write_str("AbortSignal(never)"),
            Some(_) if self.is_fired() => f.write_str("AbortSignal(fired)"),
            Some(_) => f.write_str("AbortSignal(not fired)"),
        }
    }
}

impl AbortTrigger {
    /// Fires the signal: every clone of it reports fired, its receivers
    /// disconnect and its futures complete. Idempotent.
    pub fn fire(&self) {
        self.tomb.kill(None);
    }

    /// Another signal fired by this trigger (the same as cloning the one
    /// [`AbortSignal::pair`] returned).
    pub fn signal(&self) -> AbortSignal {
        AbortSignal {
            tomb: Some(self.tomb.clone()),
        }
    }
}

impl Drop for AbortTrigger {
    fn drop(&mut self) {
        self.fire();
    }
}

impl Tomb {
    /// An [`AbortSignal`] that fires when this tomb starts dying: a worker
    /// passes it to the calls it makes, so that they give up when the
    /// worker is killed.
    ///
    /// ```
    /// use worker_core::Tomb;
    ///
    /// let tomb = Tomb::new();
    /// let abort = tomb.abort_signal();
    /// assert!(abort.check().is_ok());
    /// tomb.kill(None);
    /// assert!(abort.check().unwrap_err().is::<worker_core::Aborted>());
    /// ```
    pub fn abort_signal(&self) -> AbortSignal {
        AbortSignal {
            tomb: Some(self.clone()),
        }
    }
}

/// A future that completes when an [`AbortSignal`] fires; made by
/// [`AbortSignal::until_fired`]. For [`AbortSignal::never`] it stays
/// pending forever.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct UntilFired {
    dying: Option<UntilDying>,
}

impl Future for UntilFired {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.get_mut().dying {
            Some(dying) => Pin::new(dying).poll(cx),
            None => Poll::Pending,
        }
    }
}

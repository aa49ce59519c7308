//! Awaiting a tomb's dying and dead moments, on any executor.
//!
//! The futures here keep their waker in the tomb itself, so waiting costs
//! no thread and no channel; the tomb wakes them when it changes state,
//! outside its lock. Dropping a future takes its waker back out, so they
//! are cancel-safe and may be made afresh in every round of a `select!`
//! loop without the tomb growing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::lists::WakerKey;
use super::{Tomb, TombState};
use crate::worker::Outcome;

impl Tomb {
    /// Polls for the tomb having reached `until` (`Dying` means "no longer
    /// alive"); while it has not, keeps the task's waker under `key`.
    fn poll_until(
        &self,
        until: TombState,
        key: &mut Option<WakerKey>,
        cx: &mut Context<'_>,
    ) -> Poll<Outcome> {
        let mut inner = self.lock();
        let reached = match until {
            TombState::Dead => inner.state == TombState::Dead,
            _ => inner.state != TombState::Alive,
        };
        if reached {
            // The key was taken in an earlier state, whose wakers are gone.
            *key = None;
            return Poll::Ready(inner.outcome());
        }
        let epoch = inner.state;
        inner.wakers.register(key, epoch, cx.waker());
        Poll::Pending
    }

    /// Takes the waker of a future that is dropped before it completed.
    fn forget_waker(&self, key: WakerKey) {
        let mut inner = self.lock();
        let epoch = inner.state;
        inner.wakers.forget(key, epoch);
    }
}

/// A future that completes when a [`Tomb`] starts dying (or at once, if it
/// already has); made by [`Tomb::until_dying`].
///
/// It resolves to `()`: the reason, if any, is [`Tomb::err`]. Dropping it
/// before it completes leaves nothing behind in the tomb.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct UntilDying {
    tomb: Tomb,
    key: Option<WakerKey>,
}

/// A future that completes when a [`Tomb`] is dead, with its result (what
/// [`Tomb::wait`] returns); made by [`Tomb::until_dead`].
///
/// Dropping it before it completes leaves nothing behind in the tomb.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct UntilDead {
    tomb: Tomb,
    key: Option<WakerKey>,
}

impl UntilDying {
    pub(super) fn new(tomb: Tomb) -> Self {
        UntilDying { tomb, key: None }
    }
}

impl UntilDead {
    pub(super) fn new(tomb: Tomb) -> Self {
        UntilDead { tomb, key: None }
    }
}

impl Future for UntilDying {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.tomb
            .poll_until(TombState::Dying, &mut this.key, cx)
            .map(|_| ())
    }
}

impl Future for UntilDead {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        this.tomb.poll_until(TombState::Dead, &mut this.key, cx)
    }
}

impl Drop for UntilDying {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.tomb.forget_waker(key);
        }
    }
}

impl Drop for UntilDead {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.tomb.forget_waker(key);
        }
    }
}

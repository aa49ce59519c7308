//! The `Clock` seam: the only source of time in the library.

use std::convert::Infallible;
use std::ops::Deref;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};

use crate::Signal;

/// Where supervisors get the time from.
///
/// Every delay in the library (restart delays, backoff, stop timeouts) goes
/// through a `Clock`, so tests can swap in the fake clock of
/// `worker-testing` and move time forward by hand instead of sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current monotonic time; all delays are measured with it.
    fn now(&self) -> Instant;

    /// The current wall-clock time, used only to show times in reports.
    fn wall_now(&self) -> SystemTime;

    /// A receiver that yields one value, the firing time, once `delay` has
    /// passed; a zero delay fires at once. Dropping the receiver abandons
    /// the timer, but nobody can tell: a crossbeam receiver does not tell
    /// its sender that it was dropped, so a fake clock that counts its
    /// waiting timers counts this one until it is due. Code that replaces
    /// its timers should use [`Clock::timer`].
    #[must_use = "dropping the receiver abandons the timer"]
    fn after(&self, delay: Duration) -> Receiver<Instant>;

    /// A timer like [`after`](Clock::after)'s whose abandonment the clock
    /// can see: dropping the [`Timer`] abandons it, and a clock that counts
    /// its waiting timers (`worker-testing`'s `TestClock`) stops counting
    /// it at once. That is what lets a test wait for "the timer the code
    /// armed last" when the code re-arms a timer for a new deadline.
    ///
    /// The default wraps [`after`](Clock::after); a clock that tracks its
    /// timers overrides it with [`Timer::tracked`].
    #[must_use = "dropping a timer abandons it"]
    fn timer(&self, delay: Duration) -> Timer {
        Timer::new(self.after(delay))
    }
}

/// A one-shot timer made by [`Clock::timer`]: it derefs to a receiver that
/// yields the firing time once, so it goes straight into `select!`.
/// Dropping it abandons the timer, and the clock that made it can tell.
///
/// ```
/// use crossbeam_channel::select;
/// use std::time::Duration;
/// use worker_core::{Clock, WallClock};
///
/// let timer = WallClock.timer(Duration::ZERO);
/// select! {
///     recv(timer) -> fired => assert!(fired.is_ok()),
/// }
/// ```
#[must_use = "dropping a timer abandons it"]
#[derive(Debug)]
pub struct Timer {
    fired: Receiver<Instant>,
    /// Dropped with the timer, which disconnects the clock's [`Signal`].
    _alive: Option<Sender<Infallible>>,
}

impl Timer {
    /// A timer that is only its receiver: nobody learns that it was
    /// dropped.
    pub fn new(fired: Receiver<Instant>) -> Self {
        Timer {
            fired,
            _alive: None,
        }
    }

    /// A timer, and a [`Signal`] that disconnects when the timer is
    /// dropped: the clock keeps the signal to tell live timers from
    /// abandoned ones.
    ///
    /// ```
    /// use worker_core::Timer;
    ///
    /// let (timer, abandoned) = Timer::tracked(crossbeam_channel::never());
    /// assert!(abandoned.try_recv().unwrap_err().is_empty()); // still live
    /// drop(timer);
    /// assert!(abandoned.try_recv().unwrap_err().is_disconnected());
    /// ```
    pub fn tracked(fired: Receiver<Instant>) -> (Self, Signal) {
        let (alive, abandoned) = crossbeam_channel::bounded(0);
        let timer = Timer {
            fired,
            _alive: Some(alive),
        };
        (timer, abandoned)
    }

    /// The receiver that yields the firing time.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.fired
    }
}

impl Deref for Timer {
    type Target = Receiver<Instant>;

    fn deref(&self) -> &Receiver<Instant> {
        &self.fired
    }
}

/// The real clock: `Instant::now`, `SystemTime::now` and crossbeam's timer
/// channels, which cost no thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall_now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn after(&self, delay: Duration) -> Receiver<Instant> {
        crossbeam_channel::after(delay)
    }
}

/// The longest delay the library ever waits for: 100 years, which is
/// "never" for a service. A longer delay (`Duration::MAX` included) means
/// the same: practically never.
pub const PRACTICALLY_NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + delay`, saturating: a delay beyond what an [`Instant`] can
/// represent, or beyond [`PRACTICALLY_NEVER`], gives the instant
/// [`PRACTICALLY_NEVER`] from now (or as far as the platform can count).
/// Never panics and never wraps, so no delay a user can configure turns
/// into "now".
///
/// ```
/// use std::time::{Duration, Instant};
/// use worker_core::{deadline, PRACTICALLY_NEVER};
///
/// let now = Instant::now();
/// assert_eq!(deadline(now, Duration::from_secs(1)), now + Duration::from_secs(1));
/// assert!(deadline(now, Duration::MAX) >= now + Duration::from_secs(365 * 24 * 3600));
/// assert_eq!(deadline(now, Duration::MAX), deadline(now, PRACTICALLY_NEVER));
/// ```
pub fn deadline(now: Instant, delay: Duration) -> Instant {
    let mut delay = delay.min(PRACTICALLY_NEVER);
    loop {
        if let Some(at) = now.checked_add(delay) {
            return at;
        }
        // Only on a platform whose clock cannot count a century ahead.
        delay /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_saturate() {
        let now = Instant::now();
        assert_eq!(deadline(now, Duration::ZERO), now);
        let far = deadline(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(50 * 365 * 24 * 3600));
        assert_eq!(
            far,
            deadline(now, PRACTICALLY_NEVER + Duration::from_secs(1))
        );
    }

    #[test]
    fn zero_delay_fires_at_once() {
        let fired = WallClock.after(Duration::ZERO);
        assert!(fired.recv_timeout(Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn a_timer_fires_like_after_and_derefs_to_its_receiver() {
        let timer = WallClock.timer(Duration::ZERO);
        assert!(timer.recv_timeout(Duration::from_secs(10)).is_ok());
        let timer = WallClock.timer(Duration::from_secs(3600));
        assert!(timer.receiver().try_recv().is_err());
    }

    #[test]
    fn now_moves_forward() {
        let a = WallClock.now();
        let b = WallClock.now();
        assert!(b >= a);
    }
}

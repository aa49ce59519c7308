//! The `Clock` seam: the only source of time in the library.

use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Receiver;

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
    /// the timer.
    fn after(&self, delay: Duration) -> Receiver<Instant>;
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
    fn now_moves_forward() {
        let a = WallClock.now();
        let b = WallClock.now();
        assert!(b >= a);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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

//! `TestClock`: a clock that only moves when the test says so.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use worker_core::{Clock, Error};

/// A fake [`Clock`] for tests: time stands still until [`advance`] moves
/// it, and timers fire exactly when time passes their deadline.
///
/// The classic race of clock-driven tests is advancing before the code
/// under test has registered its timer: the advance is then lost and the
/// test hangs or passes by luck. [`wait_advance`] closes it: it waits (on a
/// condition variable, not by polling) until `n` timers are waiting, then
/// advances. [`wait_timers`] waits without advancing, and [`waiting`] shows
/// the remaining time of every waiting timer.
///
/// As in Go's `testclock`, a timer whose receiver was dropped still counts
/// as waiting until time passes its deadline.
///
/// [`advance`]: TestClock::advance
/// [`wait_advance`]: TestClock::wait_advance
/// [`wait_timers`]: TestClock::wait_timers
/// [`waiting`]: TestClock::waiting
///
/// ```
/// use std::time::Duration;
/// use worker_core::Clock;
/// use worker_testing::TestClock;
///
/// let clock = TestClock::new();
/// let timer = clock.after(Duration::from_secs(5));
/// clock.advance(Duration::from_secs(4));
/// assert!(timer.try_recv().is_err());
/// clock.wait_advance(Duration::from_secs(1), Duration::from_secs(10), 1).unwrap();
/// assert!(timer.try_recv().is_ok());
/// ```
#[derive(Clone)]
pub struct TestClock {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// Time advanced since creation.
    elapsed: Duration,
    base: Instant,
    wall_base: SystemTime,
    timers: Vec<Timer>,
    next_seq: u64,
}

struct Timer {
    deadline: Duration,
    seq: u64,
    fire: Sender<Instant>,
}

impl Default for TestClock {
    fn default() -> Self {
        TestClock::new()
    }
}

impl TestClock {
    /// A clock whose wall time starts at 2000-01-01 00:00:00 UTC.
    pub fn new() -> Self {
        TestClock::starting_at(UNIX_EPOCH + Duration::from_secs(946_684_800))
    }

    /// A clock whose wall time starts at `wall`.
    pub fn starting_at(wall: SystemTime) -> Self {
        TestClock {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    elapsed: Duration::ZERO,
                    base: Instant::now(),
                    wall_base: wall,
                    timers: Vec::new(),
                    next_seq: 0,
                }),
                changed: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time forward by `d`, firing every timer whose deadline has
    /// passed, earliest first.
    pub fn advance(&self, d: Duration) {
        let mut state = self.lock();
        state.elapsed += d;
        let now = state.elapsed;
        let base = state.base;
        let (mut due, waiting): (Vec<Timer>, Vec<Timer>) = std::mem::take(&mut state.timers)
            .into_iter()
            .partition(|t| t.deadline <= now);
        state.timers = waiting;
        drop(state);
        due.sort_by_key(|t| (t.deadline, t.seq));
        for t in due {
            // The receiver may have been dropped: an abandoned timer.
            let _ = t.fire.try_send(base + t.deadline);
        }
        self.shared.changed.notify_all();
    }

    /// Waits (up to `timeout` of real time) until at least `n` timers are
    /// waiting, then advances by `d`. Fails, without advancing, if the
    /// timers did not appear in time; the error says how many there were.
    pub fn wait_advance(&self, d: Duration, timeout: Duration, n: usize) -> Result<(), Error> {
        self.wait_timers(n, timeout)?;
        self.advance(d);
        Ok(())
    }

    /// Waits (up to `timeout` of real time) until at least `n` timers are
    /// waiting.
    pub fn wait_timers(&self, n: usize, timeout: Duration) -> Result<(), Error> {
        let state = self.lock();
        let (state, result) = self
            .shared
            .changed
            .wait_timeout_while(state, timeout, |s| s.timers.len() < n)
            .unwrap_or_else(|e| e.into_inner());
        if result.timed_out() && state.timers.len() < n {
            return Err(Error::msg(format!(
                "got {} timers waiting after {timeout:?}: wanted {n}",
                state.timers.len()
            )));
        }
        Ok(())
    }

    /// The remaining time of every waiting timer, soonest first.
    pub fn waiting(&self) -> Vec<Duration> {
        let state = self.lock();
        let mut left: Vec<Duration> = state
            .timers
            .iter()
            .map(|t| t.deadline - state.elapsed)
            .collect();
        left.sort();
        left
    }

    /// How much time has been advanced since the clock was made.
    pub fn elapsed(&self) -> Duration {
        self.lock().elapsed
    }
}

impl Clock for TestClock {
    fn now(&self) -> Instant {
        let state = self.lock();
        state.base + state.elapsed
    }

    fn wall_now(&self) -> SystemTime {
        let state = self.lock();
        state.wall_base + state.elapsed
    }

    fn after(&self, delay: Duration) -> Receiver<Instant> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut state = self.lock();
        if delay.is_zero() {
            let _ = tx.try_send(state.base + state.elapsed);
            return rx;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let deadline = state.elapsed + delay;
        state.timers.push(Timer {
            deadline,
            seq,
            fire: tx,
        });
        drop(state);
        self.shared.changed.notify_all();
        rx
    }
}

impl std::fmt::Debug for TestClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("TestClock")
            .field("elapsed", &state.elapsed)
            .field("waiting", &state.timers.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn timers_fire_in_deadline_order_when_due() {
        let clock = TestClock::new();
        let late = clock.after(Duration::from_secs(3));
        let early = clock.after(Duration::from_secs(1));
        assert_eq!(
            clock.waiting(),
            vec![Duration::from_secs(1), Duration::from_secs(3)]
        );
        clock.advance(Duration::from_secs(2));
        let t0 = clock.now();
        assert_eq!(early.try_recv().unwrap() + Duration::from_secs(1), t0);
        assert!(late.try_recv().is_err());
        assert_eq!(clock.waiting(), vec![Duration::from_secs(1)]);
        clock.advance(Duration::from_secs(1));
        assert!(late.try_recv().is_ok());
        assert!(clock.waiting().is_empty());
    }

    #[test]
    fn zero_delay_fires_at_once_and_is_never_waiting() {
        let clock = TestClock::new();
        assert!(clock.after(Duration::ZERO).try_recv().is_ok());
        assert!(clock.waiting().is_empty());
    }

    #[test]
    fn wait_advance_waits_for_a_timer_from_another_thread() {
        let clock = TestClock::new();
        let c2 = clock.clone();
        let t = std::thread::spawn(move || c2.after(Duration::from_secs(1)).recv().unwrap());
        clock.wait_advance(Duration::from_secs(1), LONG, 1).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn wait_advance_fails_without_advancing() {
        let clock = TestClock::new();
        let _t = clock.after(Duration::from_secs(1));
        let err = clock
            .wait_advance(Duration::from_secs(1), Duration::from_millis(1), 2)
            .unwrap_err();
        assert_eq!(err.to_string(), "got 1 timers waiting after 1ms: wanted 2");
        assert_eq!(clock.elapsed(), Duration::ZERO);
    }

    #[test]
    fn abandoned_timers_stay_waiting_until_due() {
        let clock = TestClock::new();
        drop(clock.after(Duration::from_secs(1)));
        assert_eq!(clock.waiting().len(), 1);
        clock.advance(Duration::from_secs(1));
        assert!(clock.waiting().is_empty());
    }

    #[test]
    fn wall_time_moves_with_advance() {
        let clock = TestClock::new();
        assert_eq!(
            worker_core::format_time(clock.wall_now()),
            "2000-01-01T00:00:00Z"
        );
        clock.advance(Duration::from_secs(61));
        assert_eq!(
            worker_core::format_time(clock.wall_now()),
            "2000-01-01T00:01:01Z"
        );
    }
}

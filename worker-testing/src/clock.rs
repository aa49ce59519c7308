//! `TestClock`: a clock that only moves when the test says so.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use worker_core::{Clock, Error, Signal, Timer};

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
/// Only live timers wait. A [`Timer`] from [`Clock::timer`] stops waiting
/// the moment it is dropped, so code that re-arms a timer for a new
/// deadline leaves nothing behind for [`wait_timers`] to count too early.
/// A receiver from [`Clock::after`] cannot be seen dropped (crossbeam
/// does not tell a sender that its receiver is gone), so it waits until
/// time passes its deadline, as every timer does in Go's `testclock`.
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
    timers: Vec<Waiting>,
    next_seq: u64,
}

/// A timer the clock has handed out and not yet fired.
struct Waiting {
    deadline: Duration,
    seq: u64,
    fire: Sender<Instant>,
    /// Disconnects when the [`Timer`] is dropped; `None` for a receiver
    /// from `after`, whose drop cannot be seen.
    abandoned: Option<Signal>,
}

impl Waiting {
    fn is_live(&self) -> bool {
        self.abandoned
            .as_ref()
            .is_none_or(|signal| signal.try_recv() != Err(TryRecvError::Disconnected))
    }
}

impl State {
    fn live(&self) -> impl Iterator<Item = &Waiting> {
        self.timers.iter().filter(|t| t.is_live())
    }

    fn live_count(&self) -> usize {
        self.live().count()
    }

    /// Registers a timer that fires through `fire`; a zero delay fires at
    /// once and never waits.
    fn arm(&mut self, delay: Duration, fire: Sender<Instant>, abandoned: Option<Signal>) {
        if delay.is_zero() {
            let _ = fire.try_send(self.base + self.elapsed);
            return;
        }
        // Forget abandoned timers here, so memory follows live timers.
        self.timers.retain(Waiting::is_live);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.timers.push(Waiting {
            deadline: self.elapsed + delay,
            seq,
            fire,
            abandoned,
        });
    }
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
        let (mut due, waiting): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut state.timers)
            .into_iter()
            .filter(Waiting::is_live)
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

    /// Waits (up to `timeout` of real time) until at least `n` live timers
    /// are waiting, then advances by `d`. Fails, without advancing, if the
    /// timers did not appear in time; the error says how many there were.
    pub fn wait_advance(&self, d: Duration, timeout: Duration, n: usize) -> Result<(), Error> {
        self.wait_timers(n, timeout)?;
        self.advance(d);
        Ok(())
    }

    /// Waits (up to `timeout` of real time) until at least `n` live timers
    /// are waiting. (A timer dropped meanwhile only lowers the count, so
    /// only new timers need to wake the wait.)
    pub fn wait_timers(&self, n: usize, timeout: Duration) -> Result<(), Error> {
        let state = self.lock();
        let (state, result) = self
            .shared
            .changed
            .wait_timeout_while(state, timeout, |s| s.live_count() < n)
            .unwrap_or_else(|e| e.into_inner());
        let live = state.live_count();
        if result.timed_out() && live < n {
            return Err(Error::msg(format!(
                "got {live} timers waiting after {timeout:?}: wanted {n}"
            )));
        }
        Ok(())
    }

    /// The remaining time of every live waiting timer, soonest first.
    pub fn waiting(&self) -> Vec<Duration> {
        let state = self.lock();
        let mut left: Vec<Duration> = state.live().map(|t| t.deadline - state.elapsed).collect();
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
        let (fire, fired) = crossbeam_channel::bounded(1);
        self.lock().arm(delay, fire, None);
        self.shared.changed.notify_all();
        fired
    }

    /// Like `after`, but the timer stops waiting as soon as it is dropped.
    fn timer(&self, delay: Duration) -> Timer {
        let (fire, fired) = crossbeam_channel::bounded(1);
        let (timer, abandoned) = Timer::tracked(fired);
        self.lock().arm(delay, fire, Some(abandoned));
        self.shared.changed.notify_all();
        timer
    }
}

impl std::fmt::Debug for TestClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("TestClock")
            .field("elapsed", &state.elapsed)
            .field("waiting", &state.live_count())
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
    fn a_dropped_after_receiver_waits_until_due_since_nobody_can_see_the_drop() {
        let clock = TestClock::new();
        drop(clock.after(Duration::from_secs(1)));
        assert_eq!(clock.waiting().len(), 1);
        clock.advance(Duration::from_secs(1));
        assert!(clock.waiting().is_empty());
    }

    #[test]
    fn a_dropped_timer_stops_waiting_at_once() {
        let clock = TestClock::new();
        let kept = clock.timer(Duration::from_secs(2));
        let dropped = clock.timer(Duration::from_secs(1));
        assert_eq!(
            clock.waiting(),
            vec![Duration::from_secs(1), Duration::from_secs(2)]
        );
        drop(dropped);
        assert_eq!(clock.waiting(), vec![Duration::from_secs(2)]);
        assert_eq!(
            format!("{clock:?}"),
            "TestClock { elapsed: 0ns, waiting: 1 }"
        );
        clock.advance(Duration::from_secs(2));
        assert!(kept.try_recv().is_ok());
        assert!(clock.waiting().is_empty());
    }

    /// The race: the code under test abandons a timer and arms its
    /// replacement a moment later. A wait that counted the abandoned timer
    /// would return at once and advance before the replacement exists,
    /// which then never fires.
    #[test]
    fn wait_timers_does_not_count_an_abandoned_timer() {
        let clock = TestClock::new();
        drop(clock.timer(Duration::from_secs(5)));
        // No real time passes: a zero timeout checks the count once.
        let err = clock.wait_timers(1, Duration::ZERO).unwrap_err();
        assert_eq!(err.to_string(), "got 0 timers waiting after 0ns: wanted 1");
        let c2 = clock.clone();
        let rearmed = std::thread::spawn(move || {
            let replacement = c2.timer(Duration::from_secs(1));
            replacement.recv_timeout(LONG)
        });
        clock.wait_advance(Duration::from_secs(1), LONG, 1).unwrap();
        let fired = rearmed.join().unwrap().expect("the replacement fired");
        assert_eq!(fired, clock.now());
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

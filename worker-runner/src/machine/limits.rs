//! The two rules that limit how often the runner restarts: OTP's
//! intensity (at most N restarts in a sliding window, then give up) and
//! suture's failure backoff (a decaying failure count that, past a
//! threshold, pauses every restart for a while). Pure arithmetic on the
//! times the machine hands in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::policy::Intensity;
use crate::supervision::FailureBackoff;

/// Records a restart at `now` in `recent` (the times of earlier restarts,
/// oldest first) if `limit` allows it, and says whether it did.
///
/// OTP's rule: the restarts in the window are those at most `period` old
/// (a restart exactly `period` ago still counts); with this one, they must
/// not be more than `max_restarts`.
pub(crate) fn admit(recent: &mut VecDeque<Instant>, limit: &Intensity, now: Instant) -> bool {
    while recent
        .front()
        .is_some_and(|&t| now.saturating_duration_since(t) > limit.period)
    {
        recent.pop_front();
    }
    if recent.len() >= limit.max_restarts as usize {
        return false;
    }
    recent.push_back(now);
    true
}

/// Suture's failure count, and whether restarts are paused; see
/// [`FailureBackoff`].
#[derive(Debug)]
pub(crate) struct Throttle {
    rule: FailureBackoff,
    failures: f64,
    last_failure: Option<Instant>,
    paused_until: Option<Instant>,
}

impl Throttle {
    pub(crate) fn new(rule: FailureBackoff) -> Self {
        Throttle {
            rule,
            failures: 0.0,
            last_failure: None,
            paused_until: None,
        }
    }

    /// Counts a failure at `now`. Returns the end of a pause that starts
    /// (or starts again) now, with the count.
    pub(crate) fn fail(&mut self, now: Instant) -> Option<(Instant, f64)> {
        self.failures = match self.last_failure {
            None => 1.0,
            Some(last) => {
                let intervals = now.saturating_duration_since(last).as_secs_f64()
                    / self.rule.decay.as_secs_f64();
                self.failures * 0.5f64.powf(intervals) + 1.0
            }
        };
        self.last_failure = Some(now);
        if self.failures > self.rule.threshold {
            let until = worker_core::deadline(now, self.rule.backoff);
            self.paused_until = Some(until);
            return Some((until, self.failures));
        }
        None
    }

    /// Whether restarts are paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused_until.is_some()
    }

    /// The pause is over: the count starts again from zero.
    pub(crate) fn resume(&mut self) {
        self.paused_until = None;
        self.failures = 0.0;
    }

    /// The backoff, for events.
    pub(crate) fn backoff(&self) -> Duration {
        self.rule.backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_window_keeps_a_restart_exactly_period_old() {
        let t0 = Instant::now();
        let limit = Intensity {
            max_restarts: 2,
            period: secs(10),
        };
        let mut recent = VecDeque::new();
        assert!(admit(&mut recent, &limit, t0));
        assert!(admit(&mut recent, &limit, t0 + secs(5)));
        // t0 is exactly 10 s old: still in the window.
        assert!(!admit(&mut recent, &limit, t0 + secs(10)));
        assert_eq!(recent.len(), 2, "a refused restart is not recorded");
        // A nanosecond later it has left.
        assert!(admit(
            &mut recent,
            &limit,
            t0 + secs(10) + Duration::from_nanos(1)
        ));
    }

    #[test]
    fn the_failure_count_decays_by_half_every_decay() {
        let t0 = Instant::now();
        let mut t = Throttle::new(FailureBackoff::new(2.5, secs(10), secs(60)));
        assert_eq!(t.fail(t0), None);
        assert_eq!(t.failures, 1.0);
        assert_eq!(t.fail(t0 + secs(10)), None);
        assert_eq!(t.failures, 1.5);
        assert_eq!(t.fail(t0 + secs(20)), None);
        assert_eq!(t.failures, 1.75);
        // 1.75 + 1 > 2.5: paused for 60 s.
        assert_eq!(t.fail(t0 + secs(20)), Some((t0 + secs(80), 2.75)));
        assert!(t.is_paused());
        t.resume();
        assert!(!t.is_paused());
        assert_eq!(t.failures, 0.0);
    }

    #[test]
    fn a_failure_during_the_pause_can_start_it_again() {
        let t0 = Instant::now();
        let mut t = Throttle::new(FailureBackoff::new(1.0, secs(30), secs(15)));
        assert_eq!(t.fail(t0), None);
        assert_eq!(t.fail(t0).map(|p| p.0), Some(t0 + secs(15)));
        assert_eq!(t.fail(t0 + secs(5)).map(|p| p.0), Some(t0 + secs(20)));
    }
}

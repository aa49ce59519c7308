//! Restart delays: the backoff of Go's engine, with its pitfalls fixed.
//! The jitter comes from the configured [`Jitter`](worker_core::jitter::Jitter)
//! source, so tests can make delays exact.
//!
//! A delayed start waits `base * factor^(step - 1)`, where `base` is the
//! engine's error delay and `step` is the number of recent consecutive
//! failures (at least 1). The result is capped by `max_delay` *after* the
//! jitter is applied, so the cap really is a cap, and it is computed in
//! floating point and saturated, so no number of failures can overflow
//! into a negative or tiny delay (Go's hot loop).

use std::time::Duration;

/// The longest delay the engine ever waits when `max_delay` is zero (no
/// cap): one year, which is "never" for a service, and still a valid
/// deadline on every platform.
pub const UNCAPPED_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The numbers the delay rule needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    pub(crate) factor: f64,
    pub(crate) max_delay: Duration,
}

impl Backoff {
    /// The delay before retrying after `step` recent failures (`step` 0 is
    /// treated as 1), with `sample` (in `[0, 1)`) as the jitter.
    pub(crate) fn error_delay(&self, base: Duration, step: u32, sample: f64) -> Duration {
        let exponent = step.max(1) - 1;
        let mut secs = base.as_secs_f64();
        if self.factor > 0.0 {
            // powi saturates to infinity instead of wrapping.
            secs *= self.factor.powi(exponent.min(i32::MAX as u32) as i32);
        }
        self.finish(secs, sample)
    }

    /// A bounce delay: never backed off, only jittered and capped.
    pub(crate) fn bounce_delay(&self, base: Duration, sample: f64) -> Duration {
        self.finish(base.as_secs_f64(), sample)
    }

    fn finish(&self, secs: f64, sample: f64) -> Duration {
        if secs <= 0.0 || secs.is_nan() {
            return Duration::ZERO;
        }
        let sample = if sample.is_nan() {
            0.5
        } else {
            sample.clamp(0.0, 1.0)
        };
        let secs = secs * (0.9 + 0.2 * sample);
        let limit = if self.max_delay.is_zero() {
            UNCAPPED_LIMIT
        } else {
            self.max_delay
        };
        if secs >= limit.as_secs_f64() {
            limit
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    fn backoff(factor: f64, max: Duration) -> Backoff {
        Backoff {
            factor,
            max_delay: max,
        }
    }

    #[test]
    fn steps_multiply_by_the_factor() {
        let b = backoff(2.0, Duration::ZERO);
        assert_eq!(b.error_delay(100 * MS, 1, 0.5), 100 * MS);
        assert_eq!(b.error_delay(100 * MS, 2, 0.5), 200 * MS);
        assert_eq!(b.error_delay(100 * MS, 4, 0.5), 800 * MS);
    }

    #[test]
    fn step_zero_is_step_one_not_a_division() {
        // Go computes factor^(0-1) and divides the delay by the factor.
        let b = backoff(2.0, Duration::ZERO);
        assert_eq!(b.error_delay(100 * MS, 0, 0.5), 100 * MS);
    }

    #[test]
    fn huge_steps_saturate_instead_of_overflowing() {
        // Go overflows time.Duration here and gets a negative delay.
        let b = backoff(2.0, Duration::ZERO);
        assert_eq!(
            b.error_delay(Duration::from_secs(1), 10_000, 0.5),
            UNCAPPED_LIMIT
        );
        assert_eq!(
            b.error_delay(Duration::from_secs(1), u32::MAX, 0.99),
            UNCAPPED_LIMIT
        );
    }

    #[test]
    fn the_cap_holds_after_jitter() {
        let b = backoff(2.0, Duration::from_secs(1));
        assert_eq!(
            b.error_delay(Duration::from_secs(1), 1, 0.999),
            Duration::from_secs(1)
        );
        assert_eq!(
            b.bounce_delay(Duration::from_secs(5), 0.0),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn jitter_spreads_within_ten_percent() {
        let b = backoff(0.0, Duration::ZERO);
        assert_eq!(b.bounce_delay(100 * MS, 0.0), 90 * MS);
        assert_eq!(b.bounce_delay(100 * MS, 1.0), 110 * MS);
        assert_eq!(b.bounce_delay(Duration::ZERO, 0.3), Duration::ZERO);
    }

    proptest! {
        #[test]
        fn delays_are_monotonic_in_steps_and_never_exceed_the_cap(
            base_ms in 0u64..10_000,
            factor in prop_oneof![Just(0.0), 1.0f64..4.0],
            max_ms in prop_oneof![Just(0u64), 1u64..100_000],
            step in 0u32..200,
            sample in 0.0f64..1.0,
        ) {
            let b = backoff(factor, Duration::from_millis(max_ms));
            let base = Duration::from_millis(base_ms);
            let d1 = b.error_delay(base, step, sample);
            let d2 = b.error_delay(base, step + 1, sample);
            prop_assert!(d2 >= d1);
            let limit = if max_ms == 0 { UNCAPPED_LIMIT } else { Duration::from_millis(max_ms) };
            prop_assert!(d2 <= limit);
            if base_ms > 0 && (max_ms == 0 || base_ms < max_ms) {
                prop_assert!(d1 > Duration::ZERO);
            }
        }
    }
}

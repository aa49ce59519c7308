//! Restart delays that grow with consecutive failures: one rule for every
//! supervisor.
//!
//! A worker that fails again and again should be retried less and less
//! often, up to a limit, and workers that fail together should not all
//! come back at the same instant. [`Backoff`] is that rule, as plain
//! arithmetic: no clock, no randomness of its own (the caller draws a
//! [`jitter`](crate::jitter) sample, off its supervisor's loop), and no
//! state (the caller counts the failures and decides when a healthy run
//! resets the count).
//!
//! The n-th consecutive failure waits `base * factor^(n-1)`, spread by the
//! jitter fraction either way, and capped at `max` *after* the spread, so
//! the cap really is the longest delay. The arithmetic is done in floating
//! point and saturates: no number of failures, no factor and no sample can
//! overflow into a short or negative delay (Go's engine spins when its
//! backoff overflows), and a NaN anywhere is read as "no change" rather
//! than passed on.

use std::time::Duration;

/// The delay rule: `base * factor^(step-1)`, spread by `jitter`, capped at
/// `max`; see the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use worker_core::backoff::Backoff;
///
/// let ms = Duration::from_millis;
/// let rule = Backoff { base: ms(100), factor: 2.0, max: ms(1000), jitter: 0.1 };
/// // 0.5 is the middle of the jitter range: no spread.
/// let delays: Vec<Duration> = (1..=5).map(|step| rule.delay(step, 0.5)).collect();
/// assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1000)]);
/// // The lowest sample shortens the delay by the jitter fraction...
/// assert_eq!(rule.delay(1, 0.0), ms(90));
/// // ...and no sample takes it past the cap.
/// assert_eq!(rule.delay(4, 1.0), ms(880));
/// assert_eq!(rule.delay(5, 1.0), ms(1000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub base: Duration,
    /// Growth per consecutive failure. Anything below 1 (or NaN) counts
    /// as 1: the delay never shrinks as failures go on.
    pub factor: f64,
    /// The longest delay, jitter included. [`Duration::MAX`] means no cap
    /// (a supervisor turns the delay into a deadline with
    /// [`deadline`](crate::deadline), which saturates at "practically
    /// never").
    pub max: Duration,
    /// The spread, as a fraction of the delay either way: 0.1 is +-10%.
    /// Clamped to `[0, 1]`; NaN counts as 0.
    pub jitter: f64,
}

impl Backoff {
    /// The same delay every time: no growth, no spread, no cap.
    pub const fn fixed(delay: Duration) -> Self {
        Backoff {
            base: delay,
            factor: 1.0,
            max: Duration::MAX,
            jitter: 0.0,
        }
    }

    /// The delay after `step` consecutive failures (0 counts as 1), with
    /// `sample` (in `[0, 1]`, from a [`Jitter`](crate::jitter::Jitter)
    /// source) placing it in the jitter range: 0 is the shortest, 0.5 the
    /// unspread delay, 1 the longest. A sample outside `[0, 1]` is
    /// clamped; NaN counts as 0.5. Never panics.
    pub fn delay(&self, step: u32, sample: f64) -> Duration {
        let factor = if self.factor >= 1.0 { self.factor } else { 1.0 };
        // powi takes an i32; past 2^31 failures the delay is capped anyway.
        let exponent = i32::try_from(step.max(1) - 1).unwrap_or(i32::MAX);
        let mut secs = self.base.as_secs_f64() * factor.powi(exponent);
        let fraction = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        if fraction > 0.0 {
            let sample = if sample.is_nan() {
                0.5
            } else {
                sample.clamp(0.0, 1.0)
            };
            secs *= 1.0 + fraction * (2.0 * sample - 1.0);
        }
        // A zero base times an infinite factor is NaN: no delay was asked.
        if secs.is_nan() || secs <= 0.0 {
            return Duration::ZERO;
        }
        if secs >= self.max.as_secs_f64() {
            return self.max;
        }
        Duration::try_from_secs_f64(secs).map_or(self.max, |d| d.min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    fn rule(base: Duration, factor: f64, max: Duration) -> Backoff {
        Backoff {
            base,
            factor,
            max,
            jitter: 0.1,
        }
    }

    #[test]
    fn steps_multiply_by_the_factor() {
        let b = rule(100 * MS, 2.0, Duration::MAX);
        assert_eq!(b.delay(1, 0.5), 100 * MS);
        assert_eq!(b.delay(2, 0.5), 200 * MS);
        assert_eq!(b.delay(4, 0.5), 800 * MS);
    }

    #[test]
    fn step_zero_is_step_one_not_a_division() {
        // Go computes factor^(0-1) and divides the delay by the factor.
        let b = rule(100 * MS, 2.0, Duration::MAX);
        assert_eq!(b.delay(0, 0.5), 100 * MS);
    }

    #[test]
    fn huge_steps_saturate_at_the_cap_instead_of_overflowing() {
        // Go overflows time.Duration here and gets a negative delay.
        let year = Duration::from_secs(365 * 24 * 3600);
        let b = rule(Duration::from_secs(1), 2.0, year);
        assert_eq!(b.delay(10_000, 0.5), year);
        assert_eq!(b.delay(u32::MAX, 0.99), year);
        let uncapped = rule(Duration::from_secs(1), 2.0, Duration::MAX);
        assert_eq!(uncapped.delay(u32::MAX, 0.5), Duration::MAX);
    }

    #[test]
    fn the_cap_holds_after_jitter() {
        let b = rule(Duration::from_secs(1), 2.0, Duration::from_secs(1));
        assert_eq!(b.delay(1, 0.999), Duration::from_secs(1));
        let b = rule(Duration::from_secs(5), 1.0, Duration::from_secs(1));
        assert_eq!(b.delay(1, 0.0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_by_its_fraction() {
        let b = rule(100 * MS, 1.0, Duration::MAX);
        assert_eq!(b.delay(1, 0.0), 90 * MS);
        assert_eq!(b.delay(1, 1.0), 110 * MS);
        let wide = Backoff {
            jitter: 0.5,
            ..Backoff::fixed(100 * MS)
        };
        assert_eq!(wide.delay(1, 0.0), 50 * MS);
        assert_eq!(wide.delay(1, 1.0), 150 * MS);
        assert_eq!(
            rule(Duration::ZERO, 2.0, Duration::MAX).delay(3, 0.3),
            Duration::ZERO
        );
    }

    #[test]
    fn bad_numbers_are_tamed() {
        let b = rule(100 * MS, 2.0, Duration::MAX);
        assert_eq!(b.delay(1, f64::NAN), 100 * MS);
        assert_eq!(b.delay(1, 7.0), 110 * MS);
        assert_eq!(b.delay(1, -7.0), 90 * MS);
        for factor in [f64::NAN, 0.0, 0.5, -3.0, f64::NEG_INFINITY] {
            assert_eq!(
                rule(100 * MS, factor, Duration::MAX).delay(5, 0.5),
                100 * MS
            );
        }
        let nan_jitter = Backoff {
            jitter: f64::NAN,
            ..Backoff::fixed(100 * MS)
        };
        assert_eq!(nan_jitter.delay(1, 0.0), 100 * MS);
        let infinite = rule(Duration::from_secs(1), f64::INFINITY, Duration::MAX);
        assert_eq!(infinite.delay(1, 0.5), Duration::from_secs(1));
        assert_eq!(infinite.delay(2, 0.5), Duration::MAX);
    }

    #[test]
    fn a_fixed_delay_is_the_same_every_time() {
        let b = Backoff::fixed(3 * MS);
        for step in [0, 1, 2, 100, u32::MAX] {
            assert_eq!(b.delay(step, 0.0), 3 * MS);
            assert_eq!(b.delay(step, 1.0), 3 * MS);
        }
        assert_eq!(Backoff::fixed(Duration::MAX).delay(9, 1.0), Duration::MAX);
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            proptest::num::f64::ANY,
            Just(f64::NAN),
            Just(f64::INFINITY),
            0.0f64..1.0,
        ]
    }

    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::MAX),
            (0u64..1_000_000_000_000).prop_map(Duration::from_nanos),
            any::<u64>().prop_map(Duration::from_secs),
        ]
    }

    proptest! {
        /// Whatever the numbers, the delay is at most the cap, and grows
        /// (never shrinks) with the number of failures.
        #[test]
        fn capped_and_monotonic_whatever_the_numbers(
            base in any_duration(),
            max in any_duration(),
            factor in any_f64(),
            jitter in any_f64(),
            sample in any_f64(),
            step in any::<u32>(),
        ) {
            let b = Backoff { base, factor, max, jitter };
            let d = b.delay(step, sample);
            prop_assert!(d <= max);
            prop_assert!(b.delay(step.saturating_add(1), sample) >= d);
        }

        /// Below the cap, the spread stays within the jitter fraction of
        /// the unspread delay (up to rounding).
        #[test]
        fn the_spread_stays_within_the_fraction(
            base_ms in 1u64..100_000,
            factor in 1.0f64..4.0,
            step in 1u32..20,
            jitter in 0.0f64..=1.0,
            sample in 0.0f64..=1.0,
        ) {
            let b = Backoff { base: Duration::from_millis(base_ms), factor, max: Duration::MAX, jitter };
            let middle = Backoff { jitter: 0.0, ..b }.delay(step, sample).as_secs_f64();
            let d = b.delay(step, sample).as_secs_f64();
            let rounding = middle * 1e-12 + 1e-9;
            prop_assert!(d >= middle * (1.0 - jitter) - rounding);
            prop_assert!(d <= middle * (1.0 + jitter) + rounding);
            // A larger sample never gives a shorter delay.
            prop_assert!(b.delay(step, (sample + 0.1).min(1.0)).as_secs_f64() >= d);
        }
    }
}

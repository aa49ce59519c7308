//! Restart delays: the backoff of Go's engine, with its pitfalls fixed, and
//! the injectable jitter source that makes it deterministic in tests.
//!
//! A delayed start waits `base * factor^(step - 1)`, where `base` is the
//! engine's error delay and `step` is the number of recent consecutive
//! failures (at least 1). The result is capped by `max_delay` *after* the
//! jitter is applied, so the cap really is a cap, and it is computed in
//! floating point and saturated, so no number of failures can overflow
//! into a negative or tiny delay (Go's hot loop).

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The longest delay the engine ever waits when `max_delay` is zero (no
/// cap): one year, which is "never" for a service, and still a valid
/// deadline on every platform.
pub const UNCAPPED_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where the engine gets the randomness that spreads restarts apart.
///
/// Each delayed start multiplies its delay by `0.9 + 0.2 * sample()`, so a
/// fleet of manifolds that failed together does not restart in lockstep.
/// Inject [`NoJitter`] (or your own seeded source) in tests to make delays
/// exact.
pub trait Jitter: Send + Sync + 'static {
    /// A number in `[0, 1)`; values outside are clamped.
    fn sample(&self) -> f64;
}

/// No jitter at all: every delay is exactly what the backoff rule says.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJitter;

impl Jitter for NoJitter {
    fn sample(&self) -> f64 {
        0.5
    }
}

/// A small seeded pseudo-random generator (SplitMix64): the default jitter
/// source, seeded from the process's random hasher keys unless a seed is
/// given. Not for cryptography.
pub struct SeededJitter {
    state: AtomicU64,
}

impl SeededJitter {
    /// A generator with a fixed seed: the same seed gives the same delays.
    pub fn new(seed: u64) -> Self {
        SeededJitter {
            state: AtomicU64::new(seed),
        }
    }

    /// A generator seeded from the standard library's per-process random
    /// keys (no extra dependency, different on every run).
    pub fn from_entropy() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x5eed);
        SeededJitter::new(hasher.finish())
    }

    fn next_u64(&self) -> u64 {
        const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .state
            .fetch_add(GOLDEN, Ordering::Relaxed)
            .wrapping_add(GOLDEN);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Jitter for SeededJitter {
    fn sample(&self) -> f64 {
        // 53 random bits make an exact double in [0, 1).
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl fmt::Debug for SeededJitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededJitter").finish_non_exhaustive()
    }
}

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

    #[test]
    fn seeded_jitter_repeats_and_stays_in_range() {
        let a = SeededJitter::new(7);
        let b = SeededJitter::new(7);
        for _ in 0..1000 {
            let x = a.sample();
            assert_eq!(x, b.sample());
            assert!((0.0..1.0).contains(&x));
        }
        let e = SeededJitter::from_entropy().sample();
        assert!((0.0..1.0).contains(&e));
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

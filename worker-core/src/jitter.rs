//! Jitter: the randomness that spreads restarts apart.
//!
//! When many workers fail together (a database restarts, a network
//! blinks), restarting them all after exactly the same delay makes them hit
//! the recovering service in lockstep. Supervisors therefore stretch or
//! shrink each delay a little at random. The randomness is a seam, a
//! [`Jitter`], so tests can make delays exact ([`NoJitter`]) or repeatable
//! ([`SeededJitter::new`]).

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of samples in `[0, 1)` for spreading delays; `0.5` means "no
/// change". Supervisors clamp what it returns, and read NaN as `0.5`.
///
/// Any `Fn() -> f64` closure is one:
///
/// ```
/// use worker_core::jitter::Jitter;
///
/// let always_low = || 0.0;
/// assert_eq!(always_low.sample(), 0.0);
/// ```
pub trait Jitter: std::any::Any + Send + Sync + 'static {
    /// The next sample, in `[0, 1)`.
    fn sample(&self) -> f64;
}

/// Whether `source` is one of this library's own ([`SeededJitter`],
/// [`NoJitter`]), whose samples run no user code: a supervisor's loop may
/// take them itself.
pub fn is_library_source(source: &dyn Jitter) -> bool {
    let any: &dyn std::any::Any = source;
    any.is::<SeededJitter>() || any.is::<NoJitter>()
}

impl<F: Fn() -> f64 + Send + Sync + 'static> Jitter for F {
    fn sample(&self) -> f64 {
        self()
    }
}

/// No jitter: every sample is `0.5`, so every delay is exactly what the
/// policy says. For tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJitter;

impl Jitter for NoJitter {
    fn sample(&self) -> f64 {
        0.5
    }
}

/// The default jitter source: SplitMix64 (Steele, Lea and Flood), a small
/// seeded generator, lock-free. Jitter only has to spread restarts, so
/// this is not for anything that must be unpredictable.
///
/// ```
/// use worker_core::jitter::{Jitter, SeededJitter};
///
/// let (a, b) = (SeededJitter::new(7), SeededJitter::new(7));
/// let s = a.sample();
/// assert!((0.0..1.0).contains(&s));
/// assert_eq!(s, b.sample()); // the same seed repeats
/// ```
pub struct SeededJitter {
    state: AtomicU64,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SeededJitter {
    /// A generator with a fixed seed: the same seed gives the same samples.
    pub fn new(seed: u64) -> Self {
        SeededJitter {
            state: AtomicU64::new(seed),
        }
    }

    /// A generator seeded from the standard library's per-process random
    /// keys: different on every run, with no extra dependency.
    pub fn from_entropy() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x5eed);
        SeededJitter::new(hasher.finish())
    }

    fn next_u64(&self) -> u64 {
        // Each caller claims its own step of the sequence.
        let mut z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Default for SeededJitter {
    fn default() -> Self {
        SeededJitter::from_entropy()
    }
}

impl Jitter for SeededJitter {
    fn sample(&self) -> f64 {
        // The top 53 bits make an exact double in [0, 1).
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl fmt::Debug for SeededJitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededJitter").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_stay_in_range_and_spread() {
        let j = SeededJitter::new(1);
        let samples: Vec<f64> = (0..10_000).map(|_| j.sample()).collect();
        assert!(samples.iter().all(|s| (0.0..1.0).contains(s)));
        let low = samples.iter().filter(|s| **s < 0.5).count();
        assert!((4_500..5_500).contains(&low), "{low} of 10000 below 0.5");
    }

    #[test]
    fn the_same_seed_repeats_and_another_differs() {
        let (a, b, c) = (
            SeededJitter::new(9),
            SeededJitter::new(9),
            SeededJitter::new(10),
        );
        let sa: Vec<f64> = (0..5).map(|_| a.sample()).collect();
        let sb: Vec<f64> = (0..5).map(|_| b.sample()).collect();
        let sc: Vec<f64> = (0..5).map(|_| c.sample()).collect();
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
    }

    #[test]
    fn the_library_knows_its_own_sources() {
        assert!(is_library_source(&NoJitter));
        assert!(is_library_source(&SeededJitter::new(1)));
        assert!(!is_library_source(&|| 0.5));
    }

    #[test]
    fn no_jitter_is_the_middle() {
        assert_eq!(NoJitter.sample(), 0.5);
    }
}

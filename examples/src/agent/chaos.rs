//! Injected faults: with `--chaos`, workers fail, panic and hang on kill at
//! random (from a seed, so a run can be repeated).

use std::sync::Mutex;

/// Decides, at random but repeatably, when a fault strikes.
#[derive(Debug)]
pub struct Chaos {
    enabled: bool,
    /// xorshift64* state; never zero.
    state: Mutex<u64>,
}

impl Chaos {
    /// Faults strike only if `enabled`; `seed` makes a run repeatable.
    pub fn new(enabled: bool, seed: u64) -> Self {
        Chaos {
            enabled,
            state: Mutex::new(seed | 1),
        }
    }

    /// Whether chaos is on at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// True with probability `p` when chaos is on; never when it is off.
    pub fn strikes(&self, p: f64) -> bool {
        self.enabled && self.uniform() < p
    }

    /// A uniform sample in `[0, 1)` (used for harmless variation too, such
    /// as a fake disk usage, so it runs with chaos off as well).
    pub fn uniform(&self) -> f64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        let x = s.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_never_strikes_and_on_strikes_about_as_often_as_asked() {
        let off = Chaos::new(false, 7);
        assert!((0..1000).all(|_| !off.strikes(1.0)));
        let on = Chaos::new(true, 7);
        let hits = (0..10_000).filter(|_| on.strikes(0.25)).count();
        assert!(
            (2000..3000).contains(&hits),
            "{hits} hits of 10000 at p=0.25"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let a = Chaos::new(true, 42);
        let b = Chaos::new(true, 42);
        assert!((0..100).all(|_| a.uniform() == b.uniform()));
    }
}

//! When a worker is restarted, and after how long.
//!
//! Go's runner has one rule: a worker that fails with a non-fatal error is
//! restarted after a fixed delay, forever. That is the default here too.
//! The types below add what production supervisors need on top, each off
//! until asked for:
//! - [`RestartType`]: whether a clean exit or an error restarts at all
//!   (OTP's permanent / transient / temporary);
//! - [`Backoff`]: a delay that grows with consecutive failures, is capped,
//!   resets after a healthy run, and is spread by jitter from an injectable
//!   [`Jitter`](worker_core::jitter::Jitter);
//! - [`Intensity`]: at most N restarts in a sliding window, after which the
//!   failure is escalated to a fatal one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use worker_core::{DEFAULT_RESTART_DELAY, Error};

use crate::error::InvalidParams;
use crate::supervision::Shutdown;

/// A yes/no question about an error (`is_fatal`, `should_restart`).
pub type ErrorPredicate = Arc<dyn Fn(&Error) -> bool + Send + Sync>;

/// `more_important(a, b)`: whether error `a` matters more than error `b`.
pub type ErrorRanking = Arc<dyn Fn(&Error, &Error) -> bool + Send + Sync>;

/// Which endings of a worker lead to a restart (OTP's restart types).
///
/// In every case a worker that was stopped (by `stop_worker`, by
/// `stop_and_remove_worker` or because the runner is shutting down) is not
/// restarted, and a fatal error stops the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartType {
    /// Restart after an error and after a clean exit.
    Permanent,
    /// Restart after a (non-fatal) error only; a clean exit removes the
    /// worker. This is Go's behaviour and the default.
    #[default]
    Transient,
    /// Never restart: any ending removes the worker.
    Temporary,
}

/// Exponential backoff on top of a [`RestartPolicy`]'s base delay.
///
/// The n-th consecutive restart waits `base * factor^(n-1)`, at most
/// `max_delay`, then spread by `jitter`: multiplied by a factor drawn
/// uniformly from `[1 - jitter, 1 + jitter]` and clamped to `max_delay`
/// again (so the cap is a real cap). A worker whose last incarnation ran
/// for at least `reset_after` starts again from the base delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Growth per consecutive restart; at least 1.
    pub factor: f64,
    /// The longest delay.
    pub max_delay: Duration,
    /// A run at least this long counts as healthy and resets the backoff.
    pub reset_after: Duration,
    /// The spread, as a fraction of the delay, in `[0, 1]`; 0 is none.
    pub jitter: f64,
}

/// At most `max_restarts` restarts of one worker within any `period`; the
/// next failure is escalated to a fatal
/// [`RestartIntensityExceeded`](crate::RestartIntensityExceeded) error.
///
/// The window includes its far end, as OTP's does: a restart made exactly
/// `period` ago still counts, so a worker failing exactly once every
/// `period` with `max_restarts: 1` escalates on its second failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    /// Restarts allowed in the window.
    pub max_restarts: u32,
    /// The sliding window.
    pub period: Duration,
}

/// How long a worker waits before it is restarted, and how often it may
/// be: a base delay, optional [`Backoff`], optional [`Intensity`] limit.
///
/// ```
/// use std::time::Duration;
/// use worker_runner::RestartPolicy;
///
/// // Go's behaviour: 3 s, every time.
/// let go = RestartPolicy::fixed(Duration::from_secs(3));
/// assert_eq!(go.base_delay(), Duration::from_secs(3));
///
/// // 100 ms, 200 ms, 400 ms ... up to 30 s, reset after 1 min of health,
/// // +-10 % jitter, and at most 5 restarts a minute.
/// let careful = RestartPolicy::exponential(Duration::from_millis(100), 2.0, Duration::from_secs(30))
///     .reset_after(Duration::from_secs(60))
///     .jitter(0.1)
///     .intensity(5, Duration::from_secs(60));
/// assert!(careful.backoff().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartPolicy {
    delay: Duration,
    backoff: Option<Backoff>,
    intensity: Option<Intensity>,
}

impl Default for RestartPolicy {
    /// Go's policy: [`DEFAULT_RESTART_DELAY`] (3 s), fixed, unlimited.
    fn default() -> Self {
        RestartPolicy::fixed(DEFAULT_RESTART_DELAY)
    }
}

impl RestartPolicy {
    /// The same delay before every restart. Unlike `RunnerParams`'
    /// `restart_delay`, a zero delay here means "restart at once".
    pub fn fixed(delay: Duration) -> Self {
        RestartPolicy {
            delay,
            backoff: None,
            intensity: None,
        }
    }

    /// A delay starting at `initial` and growing by `factor` per
    /// consecutive restart, up to `max_delay`; no reset and no jitter until
    /// [`reset_after`](Self::reset_after) and [`jitter`](Self::jitter) say
    /// otherwise.
    pub fn exponential(initial: Duration, factor: f64, max_delay: Duration) -> Self {
        RestartPolicy {
            delay: initial,
            backoff: Some(Backoff {
                factor,
                max_delay,
                reset_after: Duration::MAX,
                jitter: 0.0,
            }),
            intensity: None,
        }
    }

    /// With backoff: a run at least `after` long resets the delay to the
    /// base. Without backoff it has no effect.
    pub fn reset_after(mut self, after: Duration) -> Self {
        if let Some(b) = &mut self.backoff {
            b.reset_after = after;
        }
        self
    }

    /// With backoff: spreads each delay by up to `fraction` of it either
    /// way (0.1 is +-10 %). Without backoff it has no effect.
    pub fn jitter(mut self, fraction: f64) -> Self {
        if let Some(b) = &mut self.backoff {
            b.jitter = fraction;
        }
        self
    }

    /// Limits restarts to `max_restarts` in any `period`.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = Some(Intensity {
            max_restarts,
            period,
        });
        self
    }

    /// The delay before the first restart.
    pub fn base_delay(&self) -> Duration {
        self.delay
    }

    /// The backoff, if any.
    pub fn backoff(&self) -> Option<&Backoff> {
        self.backoff.as_ref()
    }

    /// The intensity limit, if any.
    pub fn intensity_limit(&self) -> Option<&Intensity> {
        self.intensity.as_ref()
    }

    pub(crate) fn with_base_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidParams> {
        if let Some(b) = &self.backoff {
            if !(b.factor >= 1.0 && b.factor.is_finite()) {
                return Err(InvalidParams::new(format!(
                    "backoff factor must be a finite number >= 1, not {}",
                    b.factor
                )));
            }
            if !(0.0..=1.0).contains(&b.jitter) {
                return Err(InvalidParams::new(format!(
                    "backoff jitter must be in [0, 1], not {}",
                    b.jitter
                )));
            }
            if b.max_delay < self.delay {
                return Err(InvalidParams::new(format!(
                    "backoff max delay {:?} is shorter than the base delay {:?}",
                    b.max_delay, self.delay
                )));
            }
        }
        if let Some(i) = &self.intensity {
            if i.max_restarts == 0 || i.period.is_zero() {
                return Err(InvalidParams::new(
                    "intensity needs at least one restart and a non-zero period",
                ));
            }
        }
        Ok(())
    }

    /// The delay before restart number `attempt` (1 for the first of a
    /// series of consecutive restarts), drawing from `jitter` only when the
    /// policy has jitter.
    pub(crate) fn delay_for(&self, attempt: u32, jitter: &mut dyn FnMut() -> f64) -> Duration {
        let Some(b) = &self.backoff else {
            return self.delay;
        };
        let max = b.max_delay.as_secs_f64();
        let exponent = attempt.saturating_sub(1).min(1024) as i32;
        // Computed in f64 seconds and capped before converting back, so a
        // long series of failures can neither overflow nor go negative.
        let mut secs = (self.delay.as_secs_f64() * b.factor.powi(exponent)).min(max);
        if b.jitter > 0.0 {
            let u = jitter();
            let u = if u.is_nan() { 0.5 } else { u.clamp(0.0, 1.0) };
            secs *= 1.0 + b.jitter * (2.0 * u - 1.0);
            secs = secs.clamp(0.0, max);
        }
        Duration::try_from_secs_f64(secs).unwrap_or(b.max_delay)
    }
}

/// Per-worker choices that override the runner's defaults; pass them to
/// [`Runner::start_worker_with`](crate::Runner::start_worker_with).
///
/// ```
/// use std::time::Duration;
/// use worker_runner::{RestartPolicy, RestartType, Shutdown, WorkerOptions};
///
/// let opts = WorkerOptions::new()
///     .restart_type(RestartType::Permanent)
///     .restart_policy(RestartPolicy::fixed(Duration::from_millis(10)))
///     .shutdown(Shutdown::Timeout(Duration::from_secs(5)));
/// assert_eq!(opts.restart_type_override(), Some(RestartType::Permanent));
/// assert!(!opts.is_significant());
/// ```
#[derive(Clone, Copy, Default, PartialEq)]
pub struct WorkerOptions {
    restart_type: Option<RestartType>,
    policy: Option<RestartPolicy>,
    shutdown: Option<Shutdown>,
    significant: bool,
}

impl WorkerOptions {
    /// Options that change nothing: the runner's defaults apply.
    pub fn new() -> Self {
        WorkerOptions::default()
    }

    /// This worker's restart type.
    pub fn restart_type(mut self, restart_type: RestartType) -> Self {
        self.restart_type = Some(restart_type);
        self
    }

    /// This worker's restart policy.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// How this worker is stopped (OTP's `shutdown`): wait for it, give it
    /// a timeout after which it is forced (where it can be), or force it at
    /// once. Default: the runner's
    /// [`shutdown`](crate::RunnerParams::shutdown).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Marks the worker significant (OTP): its ending by itself can end the
    /// runner, as the runner's
    /// [`auto_shutdown`](crate::RunnerParams::auto_shutdown) says. A
    /// significant worker must be transient or temporary, and the runner
    /// must have an automatic shutdown; otherwise
    /// [`start_worker_with`](crate::Runner::start_worker_with) refuses it
    /// with [`InvalidParams`], as OTP refuses such a
    /// child spec.
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// The restart type set here, if any.
    pub fn restart_type_override(&self) -> Option<RestartType> {
        self.restart_type
    }

    /// The restart policy set here, if any.
    pub fn restart_policy_override(&self) -> Option<&RestartPolicy> {
        self.policy.as_ref()
    }

    /// The shutdown set here, if any.
    pub fn shutdown_override(&self) -> Option<Shutdown> {
        self.shutdown
    }

    /// Whether the worker is significant.
    pub fn is_significant(&self) -> bool {
        self.significant
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidParams> {
        self.policy.as_ref().map_or(Ok(()), RestartPolicy::validate)
    }
}

impl fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("restart_type", &self.restart_type)
            .field("policy", &self.policy)
            .field("shutdown", &self.shutdown)
            .field("significant", &self.significant)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn fixed_delay_ignores_attempts_and_jitter() {
        let p = RestartPolicy::fixed(ms(500));
        let mut never = || -> f64 { panic!("fixed delay must not draw jitter") };
        assert_eq!(p.delay_for(1, &mut never), ms(500));
        assert_eq!(p.delay_for(50, &mut never), ms(500));
    }

    #[test]
    fn exponential_grows_and_caps() {
        let p = RestartPolicy::exponential(ms(100), 2.0, ms(1000));
        let mut j = || 0.5;
        let got: Vec<Duration> = (1..=6).map(|a| p.delay_for(a, &mut j)).collect();
        assert_eq!(
            got,
            vec![ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        // Huge attempt counts neither overflow nor go negative.
        assert_eq!(p.delay_for(u32::MAX, &mut j), ms(1000));
    }

    #[test]
    fn jitter_spreads_within_bounds_and_respects_the_cap() {
        let p = RestartPolicy::exponential(ms(100), 2.0, ms(1000)).jitter(0.5);
        assert_eq!(p.delay_for(1, &mut || 0.0), ms(50));
        assert_eq!(p.delay_for(1, &mut || 1.0), ms(150));
        assert_eq!(p.delay_for(1, &mut || 0.5), ms(100));
        // At the cap, jitter can only shorten.
        assert_eq!(p.delay_for(10, &mut || 1.0), ms(1000));
        assert_eq!(p.delay_for(10, &mut || 0.0), ms(500));
        // Bad samples are tamed.
        assert_eq!(p.delay_for(1, &mut || f64::NAN), ms(100));
        assert_eq!(p.delay_for(1, &mut || 7.0), ms(150));
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = RestartPolicy::exponential(ms(10), 0.5, ms(100));
        assert!(bad.validate().unwrap_err().reason.contains("factor"));
        let bad = RestartPolicy::exponential(ms(10), 2.0, ms(100)).jitter(1.5);
        assert!(bad.validate().unwrap_err().reason.contains("jitter"));
        let bad = RestartPolicy::exponential(ms(10), 2.0, ms(1));
        assert!(bad.validate().unwrap_err().reason.contains("max delay"));
        let bad = RestartPolicy::fixed(ms(1)).intensity(0, ms(1));
        assert!(bad.validate().unwrap_err().reason.contains("intensity"));
        assert!(RestartPolicy::default().validate().is_ok());
    }
}

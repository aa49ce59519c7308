//! How the runner treats its workers as a group: OTP's restart strategies,
//! shutdown and automatic shutdown, and suture's failure backoff.
//!
//! Go's runner knows only single workers: one fails, that one restarts.
//! Supervisors in Erlang/OTP and in Go's suture add rules about the group,
//! for workers that depend on each other or that together make one unit
//! of work. Each rule here is off by default, so a runner behaves as Go's
//! until asked; the crate docs map every OTP and suture option to these.

use std::time::Duration;

use crate::error::InvalidParams;

/// What a worker's restart does to the other workers of the runner (OTP's
/// restart strategies).
///
/// Only a restart cascades: a worker that is removed (a clean exit of a
/// transient worker, any ending of a temporary one, a stop) or that ends
/// the runner (a fatal error, too many restarts) restarts nobody.
///
/// In a cascade the runner kills the other workers concerned, waits until
/// every one of them has ended, waits out the failed worker's restart
/// delay, then starts them all again in start order. A temporary worker
/// caught in a cascade is stopped and removed, never restarted (as in OTP);
/// permanent and transient ones are restarted whatever they ended with,
/// since the runner stopped them. An error a killed worker returns still
/// goes to `is_fatal`, as every error of a stopped worker does (Go's rule).
/// A cascade is one restart, of the failed worker: it counts once against
/// the runner's [intensity](crate::RunnerParams::intensity) (as in OTP)
/// and against the failed worker's own limit, not against its siblings'.
/// The start functions of a cascade are called in start order, but may
/// run concurrently, as those of `start_worker` do: a worker that needs
/// one started before it waits for it with
/// [`Runner::worker`](crate::Runner::worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the worker that failed is restarted (OTP `one_for_one`, and
    /// Go's runner). The default.
    #[default]
    OneForOne,
    /// Every worker of the runner is restarted with it (OTP `one_for_all`):
    /// for workers that cannot run without each other.
    OneForAll,
    /// The worker and every worker started after it are restarted (OTP
    /// `rest_for_one`): for workers that depend on the ones started before
    /// them. "Started after" is the order of the `start_worker` calls; a
    /// restart keeps a worker's place.
    RestForOne,
}

/// How a worker is stopped (OTP's `shutdown` of a child spec): what the
/// runner does after it has asked the worker to stop and the worker has
/// not finished.
///
/// A worker is forced only if it can be: see
/// [`Worker::abortable`](worker_core::Worker::abortable). An async task
/// can be aborted; a worker running on a thread cannot, because Rust cannot
/// stop a thread from outside. For such a worker the runner can only wait
/// and report it stuck, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shutdown {
    /// Kill it and wait as long as it takes (OTP `infinity`); it is
    /// reported stuck after the runner's
    /// [`stop_timeout`](crate::RunnerParams::stop_timeout), if one is set.
    /// The default.
    #[default]
    Wait,
    /// Kill it; if it has not finished after this long, report it stuck and
    /// abort it if it can be aborted (OTP's integer shutdown timeout, after
    /// which OTP kills the process). An ordered shutdown moves on to the
    /// next worker at that point, forced or not.
    Timeout(Duration),
    /// Abort it at once instead of asking (OTP `brutal_kill`), if it can be
    /// aborted. A worker that cannot be aborted (a thread) is killed
    /// instead, as with [`Wait`](Shutdown::Wait), and a warning says so: no
    /// brutal kill exists for it.
    Abort,
}

/// In which order the runner stops its workers when it shuts down (it is
/// killed, or a worker's error is fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShutdownOrder {
    /// Every worker is killed at once and the runner waits for all of them
    /// (Go's runner). The default, and the fastest.
    #[default]
    AllAtOnce,
    /// One worker at a time, the last started first (OTP): each is killed
    /// and waited for (up to its [`Shutdown`] timeout) before the next is
    /// killed, so a worker never outlives the workers it was started after.
    Reverse,
}

/// When the runner ends on its own because workers marked significant
/// have ended (OTP's `auto_shutdown`, see
/// [`WorkerOptions::significant`](crate::WorkerOptions::significant)).
///
/// A significant worker triggers it only when it ends *by itself*, as OTP
/// defines it: a transient worker that exits cleanly, or a temporary
/// worker that ends in any way. A worker the runner stops (with
/// `stop_worker`, `stop_and_remove_worker`, a cascade of its
/// [`Strategy`], or a shutdown) never triggers it. The runner then shuts
/// down as if killed, and ends with `Ok` unless a fatal error came first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoShutdown {
    /// Never (OTP `never`): significant workers are refused. The default.
    #[default]
    Never,
    /// When any significant worker ends by itself (OTP `any_significant`).
    AnySignificant,
    /// When the last significant worker ends by itself, that is, when one
    /// ends and no other significant worker is left that was not asked to
    /// stop (OTP `all_significant`).
    AllSignificant,
}

/// Suture's alternative to an intensity limit: a decaying count of
/// failures that, past a threshold, pauses every restart of the runner for
/// a while instead of ending it.
///
/// Each restart counts one failure. Between failures the count decays
/// exponentially, halving every `decay`: a failure `t` after the previous
/// one makes the count `count * 0.5^(t / decay) + 1`. When the count is
/// above `threshold`, no worker is restarted for `backoff`: restarts that
/// fall due meanwhile wait, then all of them start (in start order) and
/// the count starts again from zero. A failure during the pause that keeps
/// the count above the threshold starts the pause again from then (as
/// suture does).
///
/// ```
/// use std::time::Duration;
/// use worker_runner::FailureBackoff;
///
/// let suture = FailureBackoff::suture();
/// assert_eq!(suture.threshold, 5.0);
/// assert_eq!(suture.decay, Duration::from_secs(30));
/// assert_eq!(suture.backoff, Duration::from_secs(15));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureBackoff {
    /// The count above which restarts pause (suture's `FailureThreshold`).
    pub threshold: f64,
    /// The count's half-life (suture's `FailureDecay`).
    pub decay: Duration,
    /// How long restarts pause (suture's `FailureBackoff`).
    pub backoff: Duration,
}

impl FailureBackoff {
    /// A failure backoff with these settings.
    pub fn new(threshold: f64, decay: Duration, backoff: Duration) -> Self {
        FailureBackoff {
            threshold,
            decay,
            backoff,
        }
    }

    /// Suture's defaults: a threshold of 5 failures, a 30 s half-life and a
    /// 15 s pause.
    pub fn suture() -> Self {
        FailureBackoff::new(5.0, Duration::from_secs(30), Duration::from_secs(15))
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidParams> {
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(InvalidParams::new(format!(
                "failure backoff threshold must be a finite number >= 0, not {}",
                self.threshold
            )));
        }
        if self.decay.is_zero() {
            return Err(InvalidParams::new("failure backoff decay must not be zero"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_backoff_validation_names_the_problem() {
        assert!(FailureBackoff::suture().validate().is_ok());
        let secs = Duration::from_secs;
        let bad = FailureBackoff::new(f64::NAN, secs(1), secs(1));
        assert!(bad.validate().unwrap_err().reason.contains("threshold"));
        let bad = FailureBackoff::new(-1.0, secs(1), secs(1));
        assert!(bad.validate().unwrap_err().reason.contains("threshold"));
        let bad = FailureBackoff::new(1.0, Duration::ZERO, secs(1));
        assert!(bad.validate().unwrap_err().reason.contains("decay"));
    }
}

//! Why a manifold was (re)started: kept per manifold for the report.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use worker_core::Error;

/// What made the engine (re)start a manifold.
#[derive(Debug, Clone)]
pub(crate) enum Cause {
    /// It was installed.
    Installed,
    /// This input started (got a new worker).
    InputStarted(Arc<str>),
    /// This input stopped.
    InputStopped(Arc<str>),
    /// Its worker returned [`Bounce`](crate::Bounce).
    Bounced,
    /// It failed with this error after `step` consecutive failures.
    Failed { error: Error, step: u32 },
}

/// A cause and the delay the engine waited (or waits) before the start.
#[derive(Debug)]
pub(crate) struct Why {
    pub(crate) cause: Cause,
    pub(crate) delay: Duration,
    /// The text, made by the first report that shows it (on the caller's
    /// thread) and shared by the later ones.
    text: OnceLock<String>,
}

impl Why {
    pub(crate) fn new(cause: Cause, delay: Duration) -> Arc<Self> {
        Arc::new(Why {
            cause,
            delay,
            text: OnceLock::new(),
        })
    }

    /// The text, formatted once.
    pub(crate) fn text(&self) -> &str {
        self.text.get_or_init(|| self.to_string())
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Installed => f.write_str("installed")?,
            Cause::InputStarted(name) => write!(f, "input {name:?} started")?,
            Cause::InputStopped(name) => write!(f, "input {name:?} stopped")?,
            Cause::Bounced => f.write_str("worker asked to bounce")?,
            Cause::Failed { error, step } => write!(f, "failed (backoff step {step}): {error}")?,
        }
        if self.delay >= worker_core::PRACTICALLY_NEVER {
            f.write_str("; restarts practically never")?;
        } else if !self.delay.is_zero() {
            let delay = worker_core::format_duration(shown(self.delay));
            write!(f, "; restarted after {delay}")?;
        }
        Ok(())
    }
}

/// A delay as people read it: to the millisecond (to the microsecond
/// below one). Jitter makes the exact value noise.
fn shown(delay: Duration) -> Duration {
    let unit = if delay >= Duration::from_millis(1) {
        Duration::from_millis(1)
    } else {
        Duration::from_micros(1)
    };
    let units = (delay.as_nanos() + unit.as_nanos() / 2) / unit.as_nanos();
    // Beyond what nanoseconds in a u64 hold (584 years), as it is.
    u64::try_from(units * unit.as_nanos()).map_or(delay, Duration::from_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_a_sentence() {
        let why = |cause, ms| Why::new(cause, Duration::from_millis(ms));
        assert_eq!(why(Cause::Installed, 0).to_string(), "installed");
        assert_eq!(
            why(Cause::InputStarted("db".into()), 10).to_string(),
            "input \"db\" started; restarted after 10ms"
        );
        assert_eq!(
            why(
                Cause::Failed {
                    error: Error::msg("boom"),
                    step: 3
                },
                4000
            )
            .to_string(),
            "failed (backoff step 3): boom; restarted after 4s"
        );
        assert_eq!(
            why(Cause::InputStopped("a".into()), 0).to_string(),
            "input \"a\" stopped"
        );
        assert_eq!(why(Cause::Bounced, 0).to_string(), "worker asked to bounce");
        let jittered = Why::new(Cause::Bounced, Duration::from_nanos(322_408_764));
        assert_eq!(
            jittered.to_string(),
            "worker asked to bounce; restarted after 322ms"
        );
        let tiny = Why::new(Cause::Bounced, Duration::from_nanos(1_499));
        assert_eq!(
            tiny.to_string(),
            "worker asked to bounce; restarted after 1µs"
        );
        let w = why(Cause::Installed, 0);
        assert!(std::ptr::eq(w.text(), w.text()));
        // A delay of "practically never" reads as what it is.
        let never = Why::new(Cause::Bounced, Duration::MAX);
        assert_eq!(
            never.to_string(),
            "worker asked to bounce; restarts practically never"
        );
    }
}

//! The runner's typed errors.
//!
//! The rule, the same in every crate of the family: each operation that
//! can fail returns an enum of exactly the ways it can fail
//! ([`StartError`], [`LookupError`], [`RemoveError`], [`NewError`]), so a
//! `match` is exhaustive about what matters to the caller; each converts
//! into [`worker_core::Error`] with `?`, keeping the specific error in its
//! source chain, so `err.is::<NotFound>()` still finds it there.
//!
//! The errors a Go runner shares with the rest of the family (`Dead`,
//! `Aborted`, `NotFound`, `AlreadyExists`) live in `worker-core`; the ones
//! below them exist only because this runner does something Go's does
//! not.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use worker_core::{Aborted, AlreadyExists, Dead, Error, NotFound, WouldDeadlock};

/// Why [`Runner::new`](crate::Runner::new) made no runner.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NewError {
    /// The parameters cannot work (an empty name, a bad policy, ...).
    #[error("{0}")]
    InvalidParams(#[source] InvalidParams),
    /// The system refused the runner's loop thread.
    #[error("cannot start runner {name:?}: {source}")]
    Thread {
        /// The runner's name.
        name: String,
        /// What the system said.
        source: std::sync::Arc<std::io::Error>,
    },
}

/// Why [`Runner::start_worker`](crate::Runner::start_worker) (or
/// `start_worker_with`) refused a worker. Nothing else is affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The id is empty.
    #[error("{0}")]
    EmptyId(#[source] EmptyId),
    /// The runner knows the id already, in whatever state.
    #[error("{0}")]
    AlreadyExists(#[source] AlreadyExists),
    /// The worker's options cannot work.
    #[error("{0}")]
    InvalidParams(#[source] InvalidParams),
    /// The runner is shutting down.
    #[error("{0}")]
    Dying(#[source] Dying),
    /// The runner has finished.
    #[error("{0}")]
    Dead(#[source] Dead),
}

/// Why [`Runner::worker`](crate::Runner::worker) gave no instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No such id, or it went away while the caller waited.
    #[error("{0}")]
    NotFound(#[source] NotFound),
    /// The runner is shutting down or has finished.
    #[error("{0}")]
    Dead(#[source] Dead),
    /// The caller's abort signal fired while it waited.
    #[error("{0}")]
    Aborted(#[source] Aborted),
    /// The call was made where it would wait for itself (the id's own
    /// start function).
    #[error("{0}")]
    WouldDeadlock(#[source] WouldDeadlock),
}

/// How [`Runner::stop_and_remove_worker`](crate::Runner::stop_and_remove_worker)
/// (and its variants) ended, when not with `Ok`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RemoveError {
    /// The worker was stopped and removed, and its last incarnation ended
    /// with this error: the caller's, not `is_fatal`'s.
    Stopped(Error),
    /// No such id.
    NotFound(NotFound),
    /// The runner is shutting down or has finished.
    Dead(Dead),
    /// The caller's abort signal fired while it waited; the stop goes on.
    Aborted(Aborted),
    /// The timeout passed; the stop goes on (see the error).
    TimedOut(RemoveTimedOut),
    /// The call was made where it would wait for itself (the id's own
    /// start function).
    WouldDeadlock(WouldDeadlock),
}

/// Says what its specific error says (and, for a stopped incarnation's
/// error, only that error's first link: its sources follow in the chain,
/// as the convention of `std::error::Error` has it; convert to
/// [`worker_core::Error`] to print the whole chain).
impl fmt::Display for RemoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoveError::Stopped(e) => fmt::Display::fmt(e.as_std(), f),
            RemoveError::NotFound(e) => fmt::Display::fmt(e, f),
            RemoveError::Dead(e) => fmt::Display::fmt(e, f),
            RemoveError::Aborted(e) => fmt::Display::fmt(e, f),
            RemoveError::TimedOut(e) => fmt::Display::fmt(e, f),
            RemoveError::WouldDeadlock(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// The specific error is the source, so `is` finds it through `?`.
impl StdError for RemoveError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(match self {
            RemoveError::Stopped(e) => e.as_std(),
            RemoveError::NotFound(e) => e,
            RemoveError::Dead(e) => e,
            RemoveError::Aborted(e) => e,
            RemoveError::TimedOut(e) => e,
            RemoveError::WouldDeadlock(e) => e,
        })
    }
}

impl RemoveError {
    /// The stopped incarnation's error, if the removal was otherwise
    /// complete.
    pub fn stopped_with(&self) -> Option<&Error> {
        match self {
            RemoveError::Stopped(e) => Some(e),
            _ => None,
        }
    }
}

use crate::status::Stage;

/// The runner is shutting down (it was killed, or a worker failed with a
/// fatal error) and takes no new workers.
///
/// Go's runner accepts a start request in that window and silently never
/// runs the worker; this one says so. Once the runner has finished, calls
/// return [`worker_core::Dead`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("worker runner is dying")]
pub struct Dying;

/// A worker id must not be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("worker id must not be empty")]
pub struct EmptyId;

/// [`RunnerParams`](crate::RunnerParams) or
/// [`WorkerOptions`](crate::WorkerOptions) that cannot work, with the
/// reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid runner parameters: {reason}")]
pub struct InvalidParams {
    /// What is wrong, naming the parameter.
    pub reason: String,
}

impl InvalidParams {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        InvalidParams {
            reason: reason.into(),
        }
    }
}

/// A worker restarted more often than its [`Intensity`](crate::Intensity)
/// allows; the runner escalated its last error to a fatal one, as an OTP
/// supervisor does.
///
/// The error that triggered the escalation is the
/// [source](std::error::Error::source), so `err.is::<YourError>()` still
/// finds it.
#[derive(Debug, Clone)]
pub struct RestartIntensityExceeded {
    /// The worker that kept failing.
    pub id: String,
    /// The most restarts allowed in `period`.
    pub max_restarts: u32,
    /// The sliding window the restarts are counted in.
    pub period: Duration,
    /// Why the worker ended the last time; `None` if it ended cleanly (a
    /// permanent worker that kept exiting).
    pub last_error: Option<Error>,
}

impl fmt::Display for RestartIntensityExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worker {:?} restarted more than {} times in {:?}",
            self.id, self.max_restarts, self.period
        )
    }
}

impl StdError for RestartIntensityExceeded {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.last_error
            .as_ref()
            .map(|e| e.as_std() as &(dyn StdError + 'static))
    }
}

/// The workers of a runner, together, restarted more often than the
/// runner's own intensity limit allows
/// ([`RunnerParams::intensity`](crate::RunnerParams::intensity), OTP's
/// supervisor-wide MaxR in MaxT); the runner escalated the last failure to
/// a fatal error.
///
/// As with [`RestartIntensityExceeded`], the failure that was one too many
/// is the [source](std::error::Error::source).
#[derive(Debug, Clone)]
pub struct RunnerIntensityExceeded {
    /// The worker whose restart was one too many.
    pub id: String,
    /// The most restarts allowed in `period`, across all workers.
    pub max_restarts: u32,
    /// The sliding window.
    pub period: Duration,
    /// Why that worker ended; `None` for a clean exit of a permanent
    /// worker.
    pub last_error: Option<Error>,
}

impl fmt::Display for RunnerIntensityExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workers restarted more than {} times in {:?} (the last: {:?})",
            self.max_restarts, self.period, self.id
        )
    }
}

impl StdError for RunnerIntensityExceeded {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.last_error
            .as_ref()
            .map(|e| e.as_std() as &(dyn StdError + 'static))
    }
}

/// [`Runner::stop_and_remove_worker_within`](crate::Runner::stop_and_remove_worker_within)
/// gave up waiting: the worker was asked to stop and has not finished
/// within the timeout. The stop goes on: the worker is removed once it
/// ends (and its error, if any, is logged, not handed to `is_fatal`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "worker {id:?} did not stop within {timeout:?}: {}{}",
    match stage { Stage::Starting => "its start function has not returned", Stage::Stopping => "killed and still running" },
    if *forced { " (forced)" } else if *stuck { " (stuck)" } else { "" }
)]
pub struct RemoveTimedOut {
    /// The worker.
    pub id: String,
    /// How long the caller waited.
    pub timeout: Duration,
    /// Where the worker was: still in its start function (it is killed as
    /// soon as that returns), or killed and not finished.
    pub stage: Stage,
    /// Whether it had outlived its shutdown timeout (or the runner's stop
    /// timeout) and been reported stuck.
    pub stuck: bool,
    /// Whether the runner had forced it
    /// ([`Worker::abortable`](worker_core::Worker::abortable)).
    pub forced: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intensity_error_keeps_its_cause_matchable() {
        let cause = Error::new(EmptyId);
        let err = Error::new(RestartIntensityExceeded {
            id: "db".into(),
            max_restarts: 3,
            period: Duration::from_secs(60),
            last_error: Some(cause),
        });
        assert_eq!(
            err.to_string(),
            "worker \"db\" restarted more than 3 times in 60s: worker id must not be empty"
        );
        assert!(err.is::<EmptyId>());
        assert_eq!(
            err.downcast_ref::<RestartIntensityExceeded>().unwrap().id,
            "db"
        );
    }

    #[test]
    fn runner_intensity_error_names_the_last_worker_and_keeps_its_cause() {
        let err = Error::new(RunnerIntensityExceeded {
            id: "db".into(),
            max_restarts: 3,
            period: Duration::from_secs(5),
            last_error: Some(Error::new(EmptyId)),
        });
        assert_eq!(
            err.to_string(),
            "workers restarted more than 3 times in 5s (the last: \"db\"): worker id must not be empty"
        );
        assert!(err.is::<EmptyId>());
    }

    #[test]
    fn a_removal_timeout_says_where_the_worker_was() {
        let mut e = RemoveTimedOut {
            id: "w".into(),
            timeout: Duration::from_secs(2),
            stage: Stage::Stopping,
            stuck: false,
            forced: false,
        };
        assert_eq!(
            e.to_string(),
            "worker \"w\" did not stop within 2s: killed and still running"
        );
        e.stuck = true;
        assert!(e.to_string().ends_with("(stuck)"));
        e.forced = true;
        assert!(e.to_string().ends_with("(forced)"));
        e.stage = Stage::Starting;
        assert!(
            e.to_string()
                .contains("its start function has not returned")
        );
    }

    #[test]
    fn texts() {
        assert_eq!(Dying.to_string(), "worker runner is dying");
        assert_eq!(
            InvalidParams::new("name is empty").to_string(),
            "invalid runner parameters: name is empty"
        );
    }
}

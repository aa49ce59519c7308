//! Waiting until a supervisor's workers have started: what to wait for
//! ([`Names`]) and how such a wait can fail ([`ReadyError`]).
//!
//! A program that starts workers often has to know when they run: a
//! test before it pokes a worker, a service before it reports itself
//! healthy, a worker before it uses a sibling. Go's runner offers this
//! only to its own tests (`NewRunnerWithNotify`), and Go's engine tests
//! lean on `Install` returning as a sync point; users poll reports. The
//! runner and the dependency engine here answer it directly:
//! `wait_ready(names, timeout, abort)` returns once every named worker
//! (or manifold) has **started**: its start function returned a worker
//! and the supervisor registered it. The supervisor's loop answers the
//! wait when it registers the last of them, so nothing polls, and the
//! timeout runs on the supervisor's [`Clock`](crate::Clock), so a test
//! drives it with a fake clock.
//!
//! The rules, the same for every supervisor:
//!
//! - **A start is an event, not a state.** A name counts as started once
//!   a start of it registers after the call, or if it runs when the call
//!   is made. A worker that fails again right after is still counted: by
//!   the time the caller acts, anything may have changed, as with any
//!   answer from a concurrent system.
//! - **Names must be known** when the call is made (started with
//!   `start_worker`, installed with `install`): an unknown name, or one on
//!   its way out (asked to stop, being removed or uninstalled), fails at
//!   once with [`ReadyError::NotFound`], as `worker(id)` does. This is
//!   Go's sync-point rule: `start_worker` and `install` return only once
//!   the supervisor knows the name, so "register, then wait" never races,
//!   and a misspelt name fails at once instead of at the timeout.
//! - **A name that goes away before it started** (stopped, removed,
//!   uninstalled, or ended for good after a failed start) fails the wait
//!   with [`ReadyError::NotFound`] naming it.
//! - **[`Names::All`] is the set at the time of the call**: every name
//!   the supervisor knows then and is not already stopping. Workers added
//!   later are not waited for (wait for them by name).
//! - **A supervisor that starts shutting down** answers every wait at
//!   once with [`ReadyError::Stopped`], which carries the error that made
//!   it stop, if there is one: nothing starts any more.
//! - `Duration::MAX` (anything from [`PRACTICALLY_NEVER`](crate::PRACTICALLY_NEVER)
//!   on) waits without a deadline; a zero timeout only looks.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::{Aborted, Error, NotFound, WouldDeadlock};

/// Which workers (or manifolds) a readiness wait is for.
///
/// Made from one name, an array, a slice or a `Vec` of names, or
/// [`Names::All`]:
///
/// ```
/// use worker_core::Names;
///
/// assert_eq!(Names::from("db"), Names::Only(vec!["db".to_owned()]));
/// assert_eq!(Names::from(["db", "http"]).len(), Some(2));
/// assert_eq!(Names::All.len(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// Every name the supervisor knows when the call is made, except the
    /// ones already stopping.
    All,
    /// These names (repeats count once; an empty list is ready at once).
    Only(Vec<String>),
}

impl Names {
    /// How many names, or `None` for [`Names::All`].
    pub fn len(&self) -> Option<usize> {
        match self {
            Names::All => None,
            Names::Only(names) => Some(names.len()),
        }
    }

    /// Whether this is an empty list (never true of [`Names::All`]).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl From<&str> for Names {
    fn from(name: &str) -> Self {
        Names::Only(vec![name.to_owned()])
    }
}

impl From<String> for Names {
    fn from(name: String) -> Self {
        Names::Only(vec![name])
    }
}

impl<S: Into<String>, const N: usize> From<[S; N]> for Names {
    fn from(names: [S; N]) -> Self {
        Names::Only(names.into_iter().map(Into::into).collect())
    }
}

impl<S: Into<String>> From<Vec<S>> for Names {
    fn from(names: Vec<S>) -> Self {
        Names::Only(names.into_iter().map(Into::into).collect())
    }
}

impl<S: Clone + Into<String>> From<&[S]> for Names {
    fn from(names: &[S]) -> Self {
        Names::Only(names.iter().cloned().map(Into::into).collect())
    }
}

/// Why a readiness wait (`wait_ready`) ended without every name started;
/// see the [module docs](self) for the rules.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReadyError {
    /// A name the supervisor does not know, or one that is stopping or
    /// went away before it started.
    NotFound(NotFound),
    /// The timeout passed first; the error names what had not started.
    TimedOut(ReadyTimedOut),
    /// The caller's abort signal fired while it waited.
    Aborted(Aborted),
    /// The supervisor shut down (or had) before everything started.
    Stopped(SupervisorStopped),
    /// The call was made where it would wait for itself: in the start
    /// function of a worker it waits for.
    WouldDeadlock(WouldDeadlock),
}

impl ReadyError {
    /// The names that had not started when the wait ended, for a timeout
    /// or a shutdown (sorted); empty for the other errors.
    pub fn not_started(&self) -> &[String] {
        match self {
            ReadyError::TimedOut(e) => &e.not_started,
            ReadyError::Stopped(e) => &e.not_started,
            _ => &[],
        }
    }
}

impl fmt::Display for ReadyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadyError::NotFound(e) => fmt::Display::fmt(e, f),
            ReadyError::TimedOut(e) => fmt::Display::fmt(e, f),
            ReadyError::Aborted(e) => fmt::Display::fmt(e, f),
            ReadyError::Stopped(e) => fmt::Display::fmt(e, f),
            ReadyError::WouldDeadlock(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// The specific error is the source, so `is` finds it through `?`.
impl StdError for ReadyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(match self {
            ReadyError::NotFound(e) => e,
            ReadyError::TimedOut(e) => e,
            ReadyError::Aborted(e) => e,
            ReadyError::Stopped(e) => e,
            ReadyError::WouldDeadlock(e) => e,
        })
    }
}

/// A readiness wait's timeout passed before these names had started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not started within {timeout:?}: {}", list(not_started))]
pub struct ReadyTimedOut {
    /// How long the caller waited.
    pub timeout: Duration,
    /// The names that had not started, sorted.
    pub not_started: Vec<String>,
}

/// The supervisor began to shut down (or had finished) before these names
/// had started; none of them will start now.
///
/// The supervisor's error, when it has one (the fatal error that made it
/// stop, as far as it was known then), is the
/// [source](std::error::Error::source), so `err.is::<YourError>()` finds
/// it through a [`ReadyError`].
#[derive(Debug, Clone)]
pub struct SupervisorStopped {
    /// The names that had not started, sorted (the names asked for, when
    /// the supervisor had finished before it could say).
    pub not_started: Vec<String>,
    /// Why it stopped: its fatal error; `None` if it was killed, or
    /// stopped on its own without an error.
    pub error: Option<Error>,
}

impl fmt::Display for SupervisorStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the supervisor stopped before ")?;
        if self.not_started.is_empty() {
            write!(f, "they started")?;
        } else {
            write!(f, "{} started", list(&self.not_started))?;
        }
        if self.error.is_some() {
            write!(f, " (it failed)")?;
        }
        Ok(())
    }
}

impl StdError for SupervisorStopped {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.error
            .as_ref()
            .map(|e| e.as_std() as &(dyn StdError + 'static))
    }
}

/// `"a", "b", "c"`, or `(none)`.
pub(crate) fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "(none)".to_owned();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_convert_from_what_callers_hold() {
        let expected = Names::Only(vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(Names::from(["a", "b"]), expected);
        assert_eq!(Names::from(vec!["a", "b"]), expected);
        assert_eq!(Names::from(&["a", "b"][..]), expected);
        assert_eq!(Names::from(vec!["a".to_owned(), "b".to_owned()]), expected);
        assert_eq!(Names::from("a".to_owned()).len(), Some(1));
        assert!(Names::Only(Vec::new()).is_empty());
        assert!(!Names::All.is_empty());
    }

    #[test]
    fn errors_name_what_did_not_start_and_keep_the_cause() {
        let timed_out = ReadyError::TimedOut(ReadyTimedOut {
            timeout: Duration::from_secs(5),
            not_started: vec!["db".into(), "http".into()],
        });
        assert_eq!(
            timed_out.to_string(),
            "not started within 5s: \"db\", \"http\""
        );
        assert_eq!(timed_out.not_started(), ["db", "http"]);
        let cause = Error::msg("disk full");
        let stopped = ReadyError::Stopped(SupervisorStopped {
            not_started: vec!["db".into()],
            error: Some(cause.clone()),
        });
        let err = Error::new(stopped);
        assert_eq!(
            err.to_string(),
            "the supervisor stopped before \"db\" started (it failed): disk full"
        );
        assert!(err.is::<SupervisorStopped>());
        let err = Error::new(ReadyError::NotFound(NotFound::new("x")));
        assert!(err.is::<NotFound>());
    }
}

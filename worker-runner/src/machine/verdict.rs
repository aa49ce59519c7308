//! The user's error policies, asked off the loop.
//!
//! `is_fatal`, `should_restart`, `more_important` and the jitter source are
//! user code, and the runner's loop runs none. So the questions are asked
//! where the news starts: a start function's failure on the start thread
//! that ran it, a worker's ending in its completion callback (on the thread
//! that finished the worker). The answers travel to the machine with the
//! news, as a [`Verdict`]. Ranking the fatal errors (`more_important`) is
//! left to the runner's end, off the loop too.

use std::sync::Arc;

use worker_core::jitter::Jitter;
use worker_core::{Error, Outcome};

use crate::policy::{ErrorPredicate, ErrorRanking};

/// What the policies say about one ending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Verdict {
    /// The error stops the runner (`is_fatal`).
    pub(crate) fatal: bool,
    /// A non-fatal error may restart the worker (`should_restart`).
    pub(crate) restart: bool,
    /// A jitter sample, in case the ending schedules a restart.
    pub(crate) jitter: f64,
}

/// The runner's error policies and jitter source.
#[derive(Clone)]
pub(crate) struct Policies {
    pub(crate) is_fatal: Option<ErrorPredicate>,
    pub(crate) should_restart: Option<ErrorPredicate>,
    pub(crate) more_important: Option<ErrorRanking>,
    pub(crate) jitter: Arc<dyn Jitter>,
}

impl Policies {
    /// Whether asking about `outcome` runs any of the user's code: an
    /// error goes to the user's predicates, if any, and every answer takes
    /// a jitter sample, which only the library's own sources give without
    /// running user code.
    pub(crate) fn runs_user_code(&self, outcome: &Outcome) -> bool {
        let predicates = self.is_fatal.is_some() || self.should_restart.is_some();
        (outcome.is_err() && predicates) || !worker_core::jitter::is_library_source(&*self.jitter)
    }

    /// Asks the policies about `outcome`. Each one's panic is logged and
    /// replaced by its safe answer: fatal, no restart, no jitter.
    pub(crate) fn verdict(&self, outcome: &Outcome) -> Verdict {
        let jitter = guarded("jitter source", 0.5, || self.jitter.sample());
        let Err(e) = outcome else {
            return Verdict {
                fatal: false,
                restart: true,
                jitter,
            };
        };
        let fatal = match &self.is_fatal {
            // Go's default: every error is fatal.
            None => true,
            Some(f) => guarded("is_fatal", true, || f(e)),
        };
        let restart = match &self.should_restart {
            None => true,
            Some(f) if !fatal => guarded("should_restart", false, || f(e)),
            // Not asked: a fatal error is never restarted.
            Some(_) => false,
        };
        Verdict {
            fatal,
            restart,
            jitter,
        }
    }

    /// Whether the runner's end needs `more_important` to choose among
    /// its fatal errors.
    pub(crate) fn ranks(&self) -> bool {
        self.more_important.is_some()
    }

    /// The most important of `errors` (in the order they came): the first,
    /// unless `more_important` says a later one matters more. A panic in
    /// `more_important` keeps the earlier error.
    pub(crate) fn most_important(&self, errors: Vec<Error>) -> Option<Error> {
        let mut errors = errors.into_iter();
        let first = errors.next()?;
        let Some(rank) = &self.more_important else {
            return Some(first);
        };
        Some(errors.fold(first, |kept, e| {
            if guarded("more_important", false, || rank(&e, &kept)) {
                e
            } else {
                kept
            }
        }))
    }
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("is_fatal", &self.is_fatal.is_some())
            .field("should_restart", &self.should_restart.is_some())
            .field("more_important", &self.more_important.is_some())
            .finish_non_exhaustive()
    }
}

/// Calls a user policy; a panic is logged and replaced by `fallback`.
fn guarded<R>(what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let p = worker_core::Panicked::from_payload(what, &*payload);
            tracing::error!(error = %p, "runner policy panicked");
            fallback
        }
    }
}

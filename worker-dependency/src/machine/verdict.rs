//! The user's policies, asked off the loop.
//!
//! A manifold's `filter`, the engine's `is_fatal`, `worst_error` and
//! `filter`, and the jitter source are user code, and the engine's loop
//! runs none. So the questions are asked where the news starts: a start
//! function's failure on the start thread that ran it, a worker's end in
//! its completion callback (on the thread that finished the worker). The
//! answers travel to the machine with the news, as a [`Verdict`]. Ranking
//! the fatal errors (`worst_error`) and the engine-wide `filter` wait for
//! the engine's end, which the driver computes off the loop too; a report
//! taken while the engine stops ranks the fatal errors so far on the
//! caller's thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use worker_core::jitter::Jitter;
use worker_core::{Error, Panicked, catch_panic};

use crate::EngineConfig;
use crate::config::{IsFatalFn, WorstErrorFn};
use crate::manifold::FilterFn;

/// What the policies say about one piece of news.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    /// How it ended, after the manifold's filter (`None`: without error).
    pub(crate) filtered: Option<Error>,
    /// The error to record as fatal, if `is_fatal` says so (a panic in
    /// `is_fatal` is fatal, with the panic as the error).
    pub(crate) fatal: Option<Error>,
    /// A jitter sample for the delays this news schedules.
    pub(crate) jitter: f64,
}

impl Verdict {
    /// The verdict on news no policy is asked about (a successful start):
    /// only a jitter sample.
    pub(crate) fn started(jitter: f64) -> Self {
        Verdict {
            filtered: None,
            fatal: None,
            jitter,
        }
    }

    /// The verdict on a failure no policy could be asked about (no thread
    /// could be had to ask): the error as it is, not fatal, no jitter.
    pub(crate) fn unasked(error: Error) -> Self {
        Verdict {
            filtered: Some(error),
            fatal: None,
            jitter: 0.5,
        }
    }
}

/// The engine's error policies and jitter source.
pub(crate) struct Policies {
    pub(crate) is_fatal: IsFatalFn,
    pub(crate) worst_error: WorstErrorFn,
    /// The engine-wide filter of the final result.
    pub(crate) filter: Option<FilterFn>,
    pub(crate) jitter: Arc<dyn Jitter>,
}

impl Policies {
    pub(crate) fn from_config(config: &EngineConfig) -> Self {
        Policies {
            is_fatal: config.is_fatal.clone(),
            worst_error: config.worst_error.clone(),
            filter: config.filter.clone(),
            jitter: config.jitter.clone(),
        }
    }

    /// A jitter sample; a panicking source gives the middle (no spread).
    pub(crate) fn sample(&self) -> f64 {
        catch_unwind(AssertUnwindSafe(|| self.jitter.sample())).unwrap_or(0.5)
    }

    /// Asks `filter` (the manifold's) and then `is_fatal` about how
    /// manifold `name` ended (`raw`: `None` without error). A panicking
    /// filter makes the panic the error; `is_fatal` is never asked about
    /// "no error".
    pub(crate) fn verdict(
        &self,
        name: &str,
        filter: Option<&FilterFn>,
        raw: Option<Error>,
    ) -> Verdict {
        let filtered = match filter {
            Some(filter) => match catch_unwind(AssertUnwindSafe(|| filter(raw))) {
                Ok(e) => e,
                Err(payload) => Some(Error::new(Panicked::from_payload(
                    format!("filter of manifold {name:?}"),
                    &*payload,
                ))),
            },
            None => raw,
        };
        let fatal = filtered.as_ref().and_then(|e| self.fatal(name, e));
        Verdict {
            filtered,
            fatal,
            jitter: self.sample(),
        }
    }

    /// Whether `error` is fatal; `Some(error to record)` if so. A panic in
    /// `is_fatal` counts as fatal, with the panic ([`Panicked`]) as the
    /// error.
    fn fatal(&self, name: &str, error: &Error) -> Option<Error> {
        match catch_panic(
            || format!("is_fatal (for manifold {name:?})"),
            || Ok((self.is_fatal)(error)),
        ) {
            Ok(true) => Some(error.clone()),
            Ok(false) => None,
            Err(panicked) => Some(panicked),
        }
    }

    /// The worst of the fatal errors, in the order they came: each one is
    /// ranked once against the worst so far. A panic in `worst_error`
    /// makes the panic the worst so far.
    pub(crate) fn worst(&self, errors: &[Error]) -> Option<Error> {
        errors.iter().fold(None, |worst, error| {
            Some(
                catch_panic(
                    || "worst_error".to_owned(),
                    || Ok((self.worst_error)(error, worst.as_ref())),
                )
                .unwrap_or_else(|panicked| panicked),
            )
        })
    }

    /// The engine's result: its internal error if it has one (unfiltered,
    /// so a bug is never hidden), else the worst fatal error through the
    /// engine's filter (a panicking filter makes the panic the result).
    pub(crate) fn result(&self, internal: Option<Error>, fatal: &[Error]) -> Result<(), Error> {
        if let Some(internal) = internal {
            return Err(internal);
        }
        let worst = self.worst(fatal);
        let result = match &self.filter {
            Some(filter) => match catch_unwind(AssertUnwindSafe(|| filter(worst))) {
                Ok(result) => result,
                Err(payload) => Some(Error::new(Panicked::from_payload(
                    "engine filter",
                    &*payload,
                ))),
            },
            None => worst,
        };
        result.map_or(Ok(()), Err)
    }

    /// Whether the result needs user code ([`result`](Self::result) must
    /// then run off the loop).
    pub(crate) fn needs_user_code(&self, fatal: &[Error]) -> bool {
        !fatal.is_empty() || self.filter.is_some()
    }
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("filter", &self.filter.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn policies() -> Policies {
        Policies::from_config(&EngineConfig::new("verdicts"))
    }

    #[test]
    fn the_filter_runs_before_is_fatal_and_no_error_is_never_fatal() {
        let mut p = policies();
        p.is_fatal = Arc::new(|e| e.to_string() == "filtered");
        let filter: FilterFn = Arc::new(|e: Option<Error>| e.map(|_| Error::msg("filtered")));
        let v = p.verdict("m", Some(&filter), Some(Error::msg("raw")));
        assert_eq!(v.filtered.unwrap().to_string(), "filtered");
        assert_eq!(v.fatal.unwrap().to_string(), "filtered");
        p.is_fatal = Arc::new(|_| panic!("asked about no error"));
        let v = p.verdict("m", None, None);
        assert!(v.filtered.is_none() && v.fatal.is_none());
    }

    #[test]
    fn panicking_policies_have_safe_answers() {
        let mut p = policies();
        p.is_fatal = Arc::new(|_| panic!("is_fatal broke"));
        p.jitter = Arc::new(|| -> f64 { panic!("jitter broke") });
        let filter: FilterFn = Arc::new(|_| panic!("filter broke"));
        let v = p.verdict("m", Some(&filter), None);
        assert_eq!(
            v.filtered.unwrap().to_string(),
            "filter of manifold \"m\" panicked: filter broke"
        );
        let fatal = v.fatal.unwrap();
        assert!(fatal.is::<Panicked>());
        assert_eq!(
            fatal.to_string(),
            "is_fatal (for manifold \"m\") panicked: is_fatal broke"
        );
        assert_eq!(v.jitter, 0.5);
    }

    #[test]
    fn each_fatal_error_is_ranked_once_in_order() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let mut p = policies();
        p.worst_error = Arc::new(move |new: &Error, worst: Option<&Error>| {
            c.fetch_add(1, Ordering::SeqCst);
            match worst {
                Some(w) if w.to_string() == "b" => w.clone(),
                _ => new.clone(),
            }
        });
        let errors = ["a", "b", "c"].map(Error::msg);
        assert_eq!(p.worst(&errors).unwrap().to_string(), "b");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(p.worst(&[]).is_none());
        assert!(p.result(None, &[]).is_ok());
        assert!(!p.needs_user_code(&[]));
        assert!(p.needs_user_code(&errors));
    }

    #[test]
    fn a_panicking_worst_error_or_engine_filter_is_the_result() {
        let mut p = policies();
        p.worst_error = Arc::new(|_, _| panic!("worst_error broke"));
        let errors = [Error::msg("fatal")];
        assert_eq!(
            p.result(None, &errors).unwrap_err().to_string(),
            "worst_error panicked: worst_error broke"
        );
        let mut p = policies();
        p.filter = Some(Arc::new(|_| panic!("filter broke")));
        assert!(p.needs_user_code(&[]));
        assert_eq!(
            p.result(None, &[]).unwrap_err().to_string(),
            "engine filter panicked: filter broke"
        );
        // An internal error is never filtered away.
        p.filter = Some(Arc::new(|_| None));
        let internal = Error::new(crate::Internal("bug".into()));
        assert!(
            p.result(Some(internal), &errors)
                .unwrap_err()
                .is::<crate::Internal>()
        );
    }
}

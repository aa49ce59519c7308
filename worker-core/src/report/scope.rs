//! The guard against reports that include themselves.

use std::cell::RefCell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Serialize, Serializer};

use super::Report;
use crate::{Panicked, Worker};

/// What a supervisor shows in place of a worker's report that it could not
/// take. Serialised as `{"error": "<what happened>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoReport {
    /// The worker's `report` panicked; the panic as text.
    Panicked(String),
    /// The worker's report asked for a report that this thread is already
    /// building (its own supervisor's, say): shown instead of recursing.
    Recursive,
}

impl fmt::Display for NoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoReport::Panicked(text) => f.write_str(text),
            NoReport::Recursive => {
                f.write_str("recursive report: this report includes itself, shown once")
            }
        }
    }
}

impl Serialize for NoReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("error", &format_args!("{self}"))?;
        map.end()
    }
}

thread_local! {
    /// The supervisors whose reports this thread is building.
    static IN_PROGRESS: RefCell<Vec<*const ()>> = const { RefCell::new(Vec::new()) };
}

/// One supervisor's report in progress on this thread: the guard against
/// reports that include themselves.
///
/// A supervisor's report asks its workers for theirs, and a worker's report
/// may ask for a supervisor's (the runner it runs in, say), which would ask
/// the worker again, forever. So a supervisor enters a scope named after
/// itself before it takes its workers' reports, and takes each through
/// [`worker_report`](ReportScope::worker_report). If the same supervisor's
/// report is already being built further up this thread's stack, the scope
/// is *nested*, and the workers' reports show [`NoReport::Recursive`]
/// instead of being asked for: the report comes out finite, with the loop
/// visible once.
///
/// The scope ends when dropped; it cannot leave its thread.
///
/// ```
/// use std::sync::Arc;
/// use worker_core::{Passive, ReportScope};
///
/// let me = Arc::new(0u8); // what identifies the supervisor
/// let outer = ReportScope::enter(Arc::as_ptr(&me).cast());
/// assert!(!outer.is_nested());
/// assert!(outer.worker_report(&Passive::new()).is_none()); // no reporter
/// // Further down the same thread, a worker's report asks for the same
/// // supervisor's report again: its workers' reports become markers.
/// let inner = ReportScope::enter(Arc::as_ptr(&me).cast());
/// assert!(inner.is_nested());
/// drop((inner, outer));
/// assert!(!ReportScope::enter(Arc::as_ptr(&me).cast()).is_nested());
/// ```
#[derive(Debug)]
pub struct ReportScope {
    /// The supervisor's identity; `None` when nested (nothing to undo).
    owned: Option<*const ()>,
}

impl ReportScope {
    /// Enters the report of the supervisor identified by `id` on this
    /// thread. `id` is any address that is the same for every handle of
    /// that supervisor for as long as it lives, such as that of the state
    /// its handles share (`Arc::as_ptr(&shared).cast()`).
    pub fn enter(id: *const ()) -> ReportScope {
        IN_PROGRESS.with(|set| {
            let mut set = set.borrow_mut();
            if set.contains(&id) {
                ReportScope { owned: None }
            } else {
                set.push(id);
                ReportScope { owned: Some(id) }
            }
        })
    }

    /// Whether the report of the supervisor identified by `id` is in
    /// progress on this thread: this thread then holds workers that
    /// supervisor lent it, and must not wait for the supervisor to end.
    pub fn in_progress(id: *const ()) -> bool {
        IN_PROGRESS
            .try_with(|set| set.borrow().contains(&id))
            .unwrap_or(false)
    }

    /// Whether the same supervisor's report was already in progress on this
    /// thread when this scope was entered.
    pub fn is_nested(&self) -> bool {
        self.owned.is_none()
    }

    /// `worker`'s report for the supervisor's: `None` if the worker is no
    /// [`Reporter`](super::Reporter), [`NoReport::Recursive`] in a nested
    /// scope (without asking the worker for its report), and
    /// [`NoReport::Panicked`] if its `report` panics.
    pub fn worker_report(&self, worker: &dyn Worker) -> Option<Report> {
        let reporter = worker.reporter()?;
        if self.is_nested() {
            return Some(Report::new(NoReport::Recursive));
        }
        let report = catch_unwind(AssertUnwindSafe(|| reporter.report())).unwrap_or_else(|p| {
            let panicked = Panicked::from_payload("worker report", &*p);
            Report::new(NoReport::Panicked(panicked.to_string()))
        });
        Some(report)
    }
}

impl Drop for ReportScope {
    fn drop(&mut self) {
        if let Some(id) = self.owned {
            // `try_with`: a scope dropped while the thread's locals are
            // being torn down has nothing left to undo.
            let _ = IN_PROGRESS.try_with(|set| {
                let mut set = set.borrow_mut();
                if let Some(at) = set.iter().rposition(|&x| x == id) {
                    set.remove(at);
                }
            });
        }
    }
}

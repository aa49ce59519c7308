//! Reports: what a worker says about itself, for humans and for tools.
//!
//! A report is a typed value that implements [`serde::Serialize`]. The
//! supervisors of this family each return their own struct (the runner's,
//! the engine's and the catacomb's), so reading one in code is reading
//! fields, and taking one costs no JSON. A worker that describes itself
//! implements [`Reporter`], whose [`Report`] holds any serialisable value
//! behind one shared pointer: a struct of the worker's own, or a
//! `serde_json::Value` built on the spot. That is what lets a supervisor
//! nest its workers' reports, of any type, without converting them.
//!
//! Serialised, reports keep Go's layout and key names ([`KEY_STATE`],
//! [`KEY_REPORT`], [`KEY_LAST_START`]), with times in RFC 3339 (UTC) and
//! durations in Go's human form (`1.5s`, `250ms`, `1m30s`). The
//! serialisers [`rfc3339`] and [`human_duration`] (and their `_option`
//! forms) give a report of your own the same formats, and [`sorted_map`]
//! writes a list of entries as a map in key order, as Go writes maps.
//!
//! A report that includes itself (a worker reporting the report of the
//! supervisor that runs it) would recurse until the stack overflows;
//! [`ReportScope`] is the guard every supervisor's report goes through.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::Error;

mod format;
mod scope;

pub use format::{
    format_duration, format_time, human_duration, human_duration_option, rfc3339, rfc3339_option,
    sorted_map,
};
pub use scope::{NoReport, ReportScope};

/// What a [`Reporter`] says: any serialisable value, behind a cheap shared
/// handle.
///
/// Make one from a struct of your own with `#[derive(Serialize)]`, or from
/// a `serde_json::Value` for a quick tree. A supervisor nests it as it is,
/// and it serialises as the value would. [`downcast_ref`](Report::downcast_ref)
/// gets the typed value back; `serde_json::to_value(&report)` gives a
/// JSON tree for those who want one.
///
/// ```
/// use serde::Serialize;
/// use worker_core::Report;
///
/// #[derive(Debug, Serialize)]
/// struct Queue { depth: usize }
///
/// let report = Report::new(Queue { depth: 3 });
/// assert_eq!(report.downcast_ref::<Queue>().unwrap().depth, 3);
/// assert_eq!(serde_json::to_string(&report).unwrap(), r#"{"depth":3}"#);
///
/// // Or a tree made on the spot.
/// let report = Report::new(serde_json::json!({ "depth": 3 }));
/// assert_eq!(serde_json::to_value(&report).unwrap()["depth"], 3);
/// ```
#[derive(Clone)]
pub struct Report(Arc<dyn Content>);

/// What a [`Report`] can hold: serialisable through a `dyn` pointer,
/// printable for `Debug`, and recoverable by type.
trait Content: erased_serde::Serialize + fmt::Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Serialize + fmt::Debug + Send + Sync + 'static> Content for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Report {
    /// Wraps `value`. A value that is already a `Report` is returned as it
    /// is, not wrapped twice, so what goes in always comes out.
    pub fn new<T>(value: T) -> Report
    where
        T: Serialize + fmt::Debug + Send + Sync + 'static,
    {
        if let Some(report) = (&value as &dyn Any).downcast_ref::<Report>() {
            return report.clone();
        }
        Report(Arc::new(value))
    }

    /// The value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        erased_serde::serialize(&*self.0, serializer)
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// An error in a report reads as its message, with its chain (as
/// [`Display`](fmt::Display) shows it).
impl Serialize for Error {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Something that can describe its current state.
///
/// Reports are for people and dashboards; keep the [`KEY_STATE`],
/// [`KEY_REPORT`] and [`KEY_LAST_START`] conventions where they fit, but no
/// code should depend on the exact shape of another component's report.
/// `report` may be called from any thread at any time, so it must not block
/// for long. A supervisor takes its workers' reports on the thread that
/// asked for its own, never on its loop, and shows a panic in one as a
/// [`NoReport`].
///
/// ```
/// use serde::Serialize;
/// use worker_core::{Report, Reporter};
///
/// #[derive(Debug, Serialize)]
/// struct Status { connections: usize }
///
/// struct Server;
///
/// impl Reporter for Server {
///     fn report(&self) -> Report {
///         Report::new(Status { connections: 2 })
///     }
/// }
///
/// assert_eq!(serde_json::to_string(&Server.report()).unwrap(), r#"{"connections":2}"#);
/// ```
pub trait Reporter: Send + Sync {
    /// Describes the receiver's state now.
    fn report(&self) -> Report;
}

/// Report key of a worker's state: a [`WorkerState`] for the supervisors
/// of this family (other reporters may use other values).
pub const KEY_STATE: &str = "state";

/// Where a worker is, as a supervisor of this family sees it (Go's state
/// names, in lower case in JSON; [`KEY_STATE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WorkerState {
    /// Being started: its start function has not returned yet (or it
    /// waits for a delayed start).
    Starting,
    /// Running.
    Started,
    /// Asked to stop, and not finished yet.
    Stopping,
    /// Not running (finished, or waiting to be restarted).
    Stopped,
}

impl WorkerState {
    /// The state's name, as in a JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Started => "started",
            WorkerState::Stopping => "stopping",
            WorkerState::Stopped => "stopped",
        }
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Report key under which a supervisor nests the report of a worker that is
/// itself a [`Reporter`].
pub const KEY_REPORT: &str = "report";

/// Report key of the time a worker was last started, in RFC 3339 (UTC).
pub const KEY_LAST_START: &str = "started";

#[cfg(test)]
mod tests;

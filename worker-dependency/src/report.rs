//! The engine's report, typed, and its live graph as Graphviz DOT and as
//! JSON. Everything here runs on the caller's thread, from a snapshot the
//! loop took.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};
use worker_core::{Error, Report, ReportScope, WorkerState};

use crate::Engine;
use crate::machine::{View, Why};

mod graph;

pub(crate) use graph::{dot, graph_json};

/// Report key of the engine's error, or of a manifold's last error.
pub const KEY_ERROR: &str = "error";
/// Report key of the engine's manifolds.
pub const KEY_MANIFOLDS: &str = "manifolds";
/// Report key of a manifold's declared inputs.
pub const KEY_INPUTS: &str = "inputs";
/// Report key of a manifold's number of successful starts.
pub const KEY_START_COUNT: &str = "start-count";
/// Report key of a manifold's start requests since its last start.
pub const KEY_START_ATTEMPTS: &str = "start-attempts";
/// Report key of why a manifold was last (re)started.
pub const KEY_WHY: &str = "why";
/// Report key of a manifold that exceeded the stop timeout.
pub const KEY_STUCK: &str = "stuck";
/// Report key of how long ago the engine asked a manifold to stop.
pub const KEY_STOPPING_FOR: &str = "stopping-for";
/// Report key of how long until a delayed start.
pub const KEY_STARTS_IN: &str = "starts-in";
/// Report key of the engine's name.
pub const KEY_NAME: &str = "name";

/// What [`Engine::report`](crate::Engine::report) returns: the engine's
/// state and every manifold's. Serialised, Go's layout (`state`, `error`,
/// `manifolds` by name) plus the engine's `name`; see the
/// [crate docs](crate#reports).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct EngineReport {
    /// The engine's name ([`KEY_NAME`]).
    pub name: Arc<str>,
    /// `Started` while it runs, `Stopping` once killed or failed,
    /// `Stopped` once finished ([`KEY_STATE`](worker_core::KEY_STATE)).
    pub state: WorkerState,
    /// The error the engine is stopping or stopped with ([`KEY_ERROR`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
    /// Every installed manifold, in install order
    /// ([`manifold`](EngineReport::manifold) finds one); by name in JSON
    /// ([`KEY_MANIFOLDS`]).
    #[serde(serialize_with = "by_name")]
    pub manifolds: Vec<ManifoldReport>,
}

impl EngineReport {
    /// The report of the manifold `name`, if it is installed. A linear
    /// search: for many lookups in a large report, collect
    /// [`manifolds`](Self::manifolds) into a map first.
    pub fn manifold(&self, name: &str) -> Option<&ManifoldReport> {
        self.manifolds.iter().find(|m| &*m.name == name)
    }
}

fn by_name<S: Serializer>(manifolds: &[ManifoldReport], serializer: S) -> Result<S::Ok, S::Error> {
    worker_core::report::sorted_map(manifolds.iter().map(|m| (&m.name, m)), serializer)
}

/// One manifold of an [`EngineReport`]. In JSON, fields that are zero,
/// `false` or absent are left out.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ManifoldReport {
    /// The manifold's name (the key of its entry in JSON).
    #[serde(skip)]
    pub name: Arc<str>,
    /// Where its worker is ([`KEY_STATE`](worker_core::KEY_STATE)); a
    /// manifold waiting for a delayed start is `Starting`.
    pub state: WorkerState,
    /// The names it declared as inputs ([`KEY_INPUTS`]).
    pub inputs: Arc<[Arc<str>]>,
    /// How many times it has started ([`KEY_START_COUNT`]).
    #[serde(rename = "start-count", skip_serializing_if = "is_zero")]
    pub start_count: u64,
    /// Start requests since its last successful start
    /// ([`KEY_START_ATTEMPTS`]).
    #[serde(rename = "start-attempts", skip_serializing_if = "is_zero")]
    pub start_attempts: u64,
    /// When it last started
    /// ([`KEY_LAST_START`](worker_core::KEY_LAST_START)); RFC 3339 in
    /// JSON.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "worker_core::report::rfc3339_option"
    )]
    pub started: Option<SystemTime>,
    /// Its last error ([`KEY_ERROR`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
    /// Why it was last (re)started ([`KEY_WHY`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<StartReason>,
    /// How long ago the engine asked it to stop, while it stops
    /// ([`KEY_STOPPING_FOR`]).
    #[serde(
        rename = "stopping-for",
        skip_serializing_if = "Option::is_none",
        serialize_with = "worker_core::report::human_duration_option"
    )]
    pub stopping_for: Option<Duration>,
    /// Whether it has exceeded the stop timeout ([`KEY_STUCK`]).
    #[serde(skip_serializing_if = "is_false")]
    pub stuck: bool,
    /// How long until a delayed start ([`KEY_STARTS_IN`]).
    #[serde(
        rename = "starts-in",
        skip_serializing_if = "Option::is_none",
        serialize_with = "worker_core::report::human_duration_option"
    )]
    pub starts_in: Option<Duration>,
    /// Its worker's own report, if the worker is a
    /// [`Reporter`](worker_core::Reporter)
    /// ([`KEY_REPORT`](worker_core::KEY_REPORT)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

/// Why a manifold was last (re)started, as text: `installed`,
/// `input "db" started; restarted after 10ms`, `worker asked to bounce`,
/// `failed (backoff step 2): <error>`.
#[derive(Clone)]
pub struct StartReason(Arc<Why>);

impl StartReason {
    /// The reason as text (formatted once, then shared by every report).
    pub fn as_str(&self) -> &str {
        self.0.text()
    }
}

impl fmt::Display for StartReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for StartReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for StartReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn report(handle: &Engine) -> EngineReport {
    // A worker whose report asks for this engine's report again gets a
    // marker instead of its own report, rather than recursing.
    let scope = ReportScope::enter(handle.id());
    let (snapshot, lent) = handle.snapshot();
    let state = if handle.final_result().is_some() {
        WorkerState::Stopped
    } else if snapshot.dying {
        WorkerState::Stopping
    } else {
        WorkerState::Started
    };
    let manifolds = snapshot
        .manifolds
        .into_iter()
        .map(|view| manifold_report(view, &scope))
        .collect();
    // The snapshot's references are gone: the lent ones go home.
    drop(lent);
    EngineReport {
        name: Arc::from(handle.name()),
        state,
        error: snapshot.error,
        manifolds,
    }
}

/// One manifold's report.
fn manifold_report(view: View, scope: &ReportScope) -> ManifoldReport {
    ManifoldReport {
        name: view.name,
        state: state_of(view.state),
        report: view.worker.and_then(|w| scope.worker_report(&*w)),
        inputs: view.inputs,
        start_count: view.start_count,
        start_attempts: view.start_attempts,
        started: view.started,
        error: view.error,
        why: view.why.map(StartReason),
        stopping_for: view.stopping_for,
        stuck: view.stuck,
        starts_in: view.starts_in,
    }
}

/// The state the machine names (Go's names).
pub(crate) fn state_of(name: &str) -> WorkerState {
    match name {
        "starting" => WorkerState::Starting,
        "started" => WorkerState::Started,
        "stopping" => WorkerState::Stopping,
        _ => {
            debug_assert_eq!(name, "stopped", "a state the report does not know");
            WorkerState::Stopped
        }
    }
}

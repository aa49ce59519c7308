//! The supervision tree as the page draws it: one uniform [`Node`] per
//! engine, manifold, catacomb, runner and runner worker, built from the
//! typed reports.
//!
//! Reports nest as each supervisor likes: an engine's manifolds by name, a
//! runner's workers by id, a catacomb's count of bound workers, and any
//! worker's own report under `report`. Recognising those shapes is done
//! here, on the typed values (each nested [`Report`] is downcast to the
//! report types it may hold), where tests pin it; the page only draws
//! nodes, and the metrics are read off the same nodes. A nested report of a
//! type this module does not know is kept as JSON in [`Node::detail`].

use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use worker_catacomb::CatacombReport;

use worker_core::{Error, Report, TombState, WorkerState, format_duration, format_time};
use worker_dependency::{EngineReport, ManifoldReport, Missing};
use worker_runner::{RunnerReport, WorkerReport};

use crate::agent::manifolds::FleetReport;

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A dependency engine.
    Engine,
    /// One manifold of an engine.
    Manifold,
    /// A catacomb (its bound workers are not named, so it has no children
    /// of their own).
    Catacomb,
    /// A runner.
    Runner,
    /// One worker of a runner.
    Worker,
}

/// How a node fares: what the page colours it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Running (`started`; a catacomb that is `alive`).
    Running,
    /// Being started, or waiting for a delayed start, with no error.
    Starting,
    /// Not running because an input is not running: waiting, not failing.
    Waiting,
    /// Asked to stop, and not finished yet.
    Stopping,
    /// Not running, with no error.
    Stopped,
    /// Not running (or waiting to be restarted) after an error. A runner
    /// reports a worker that waits for its restart as `stopped`, with the
    /// error in its restart reason; one that was stopped on purpose after
    /// a failure reads the same, so it shows as failed too.
    Failed,
    /// Not stopped within its supervisor's stop timeout since it was asked.
    Stuck,
}

impl Health {
    fn of(state: WorkerState, error: Option<&Error>, stuck: bool) -> Health {
        match (state, error) {
            _ if stuck => Health::Stuck,
            (WorkerState::Started, _) => Health::Running,
            (WorkerState::Stopping, _) => Health::Stopping,
            (_, Some(e)) if e.is::<Missing>() => Health::Waiting,
            (_, Some(_)) => Health::Failed,
            (WorkerState::Starting, None) => Health::Starting,
            _ => Health::Stopped,
        }
    }
}

/// One supervisor or worker. Serialised, keys in kebab case and empty
/// fields left out.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Node {
    /// What it is.
    pub kind: Kind,
    /// Its name: the engine's, the manifold's, the worker's id; `catacomb`
    /// and `runner` for the supervisors a manifold's worker holds.
    pub name: String,
    /// Names from the root down, joined by `/` (`agent/machines/catacomb`):
    /// unique in the tree, and the label of its metrics.
    pub path: String,
    /// Its state as its supervisor names it (`started`, `alive`, ...);
    /// `None` for a runner, whose report has no state of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// How it fares; `None` where the state is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// How many times it has started (a manifold).
    #[serde(rename = "start-count", skip_serializing_if = "Option::is_none")]
    pub start_count: Option<u64>,
    /// Start attempts since its last successful start (a manifold).
    #[serde(rename = "start-attempts", skip_serializing_if = "Option::is_none")]
    pub start_attempts: Option<u64>,
    /// Which consecutive restart its current incarnation is (a runner's
    /// worker; 0 after a first start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    /// Bound workers still running (a catacomb).
    #[serde(rename = "live-workers", skip_serializing_if = "Option::is_none")]
    pub live_workers: Option<usize>,
    /// Whether it has outlived its supervisor's stop timeout.
    pub stuck: bool,
    /// Its last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it last (re)started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// When it last started, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// Short facts worth a line: a pending start, a slow stop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// A nested report this module does not recognise, as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    /// The supervisors and workers it holds.
    pub children: Vec<Node>,
}

impl Node {
    fn new(kind: Kind, name: &str, parent: Option<&str>) -> Node {
        Node {
            kind,
            name: name.to_owned(),
            path: parent.map_or_else(|| name.to_owned(), |p| format!("{p}/{name}")),
            state: None,
            health: None,
            start_count: None,
            start_attempts: None,
            restarts: None,
            live_workers: None,
            stuck: false,
            error: None,
            why: None,
            started: None,
            notes: Vec::new(),
            detail: None,
            children: Vec::new(),
        }
    }

    fn state(mut self, state: &str, health: Health) -> Node {
        self.state = Some(state.to_owned());
        self.health = Some(health);
        self
    }

    /// Adds what a worker's own report holds: supervisors as children,
    /// anything else as [`detail`](Node::detail).
    fn nest(&mut self, report: Option<&Report>) {
        let Some(report) = report else { return };
        let path = self.path.clone();
        if let Some(engine) = report.downcast_ref::<EngineReport>() {
            self.children.push(engine_node(engine, Some(&path)));
        } else if let Some(runner) = report.downcast_ref::<RunnerReport>() {
            self.children.push(runner_node(runner, &path));
        } else if let Some(catacomb) = report.downcast_ref::<CatacombReport>() {
            self.children.push(catacomb_node(catacomb, &path));
        } else if let Some(fleet) = report.downcast_ref::<FleetReport>() {
            let mut catacomb = catacomb_node(&fleet.catacomb, &path);
            let runner = runner_node(&fleet.runner, &catacomb.path);
            catacomb.children.push(runner);
            self.children.push(catacomb);
        } else {
            self.detail = serde_json::to_value(report)
                .ok()
                .filter(|v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()));
        }
    }
}

/// The tree of an engine's report: the engine at the root, its manifolds
/// (in install order) below it, and whatever their workers supervise below
/// them.
///
/// ```
/// use worker_dependency::{Engine, EngineConfig, Manifold};
/// use worker_examples::agent::observer::tree::{Kind, tree};
///
/// let engine = Engine::new(EngineConfig::new("docs-tree"))?;
/// engine.install("config", Manifold::constant(7u32))?;
/// let root = tree(&engine.report());
/// assert_eq!((root.kind, root.name.as_str()), (Kind::Engine, "docs-tree"));
/// assert_eq!(root.children[0].path, "docs-tree/config");
/// worker_core::stop(&engine)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn tree(report: &EngineReport) -> Node {
    engine_node(report, None)
}

fn engine_node(report: &EngineReport, parent: Option<&str>) -> Node {
    let error = report.error.as_ref();
    let health = match report.state {
        WorkerState::Stopped if error.is_some() => Health::Failed,
        state => Health::of(state, None, false),
    };
    let mut node =
        Node::new(Kind::Engine, &report.name, parent).state(report.state.as_str(), health);
    node.error = error.map(ToString::to_string);
    node.children = report
        .manifolds
        .iter()
        .map(|m| manifold_node(m, &node.path))
        .collect();
    node
}

fn manifold_node(m: &ManifoldReport, engine: &str) -> Node {
    let health = Health::of(m.state, m.error.as_ref(), m.stuck);
    let mut node = Node::new(Kind::Manifold, &m.name, Some(engine)).state(m.state.as_str(), health);
    node.start_count = Some(m.start_count);
    node.start_attempts = (m.start_attempts > 0).then_some(m.start_attempts);
    node.stuck = m.stuck;
    node.error = m.error.as_ref().map(ToString::to_string);
    node.why = m.why.as_ref().map(ToString::to_string);
    node.started = m.started.map(format_time);
    if let Some(d) = m.starts_in {
        node.notes.push(format!("starts in {}", short(d)));
    }
    if let Some(d) = m.stopping_for {
        node.notes
            .push(format!("asked to stop {} ago", format_duration(d)));
    }
    node.nest(m.report.as_ref());
    node
}

fn runner_node(report: &RunnerReport, parent: &str) -> Node {
    let mut node = Node::new(Kind::Runner, "runner", Some(parent));
    let mut workers: Vec<&WorkerReport> = report.workers.iter().collect();
    workers.sort_by(|a, b| a.id.cmp(&b.id));
    node.children = workers
        .into_iter()
        .map(|w| worker_node(w, &node.path))
        .collect();
    let running = report
        .workers
        .iter()
        .filter(|w| w.state == WorkerState::Started)
        .count();
    let total = report.workers.len();
    node.notes.push(format!(
        "{running} of {total} {} running",
        workers_word(total)
    ));
    node
}

fn worker_node(w: &WorkerReport, runner: &str) -> Node {
    let error = w.reason.as_ref().and_then(|r| r.error.as_ref());
    let health = Health::of(w.state, error, w.stuck.is_some());
    let mut node = Node::new(Kind::Worker, &w.id, Some(runner)).state(w.state.as_str(), health);
    node.restarts = Some(w.reason.as_ref().map_or(0, |r| r.attempt));
    node.stuck = w.stuck.is_some();
    node.error = error.map(ToString::to_string);
    node.why = w.reason.as_ref().map(ToString::to_string);
    node.started = Some(format_time(w.started));
    if let Some(d) = w.stuck {
        node.notes
            .push(format!("not stopped {} after kill", format_duration(d)));
    }
    node.nest(w.report.as_ref());
    node
}

fn catacomb_node(report: &CatacombReport, parent: &str) -> Node {
    let (state, health) = match report.state {
        TombState::Alive => ("alive", Health::Running),
        TombState::Dying => ("dying", Health::Stopping),
        TombState::Dead if report.error.is_some() => ("dead", Health::Failed),
        TombState::Dead => ("dead", Health::Stopped),
    };
    let mut node = Node::new(Kind::Catacomb, "catacomb", Some(parent)).state(state, health);
    node.live_workers = Some(report.workers);
    node.error = report.error.as_ref().map(ToString::to_string);
    let n = report.workers;
    node.notes
        .push(format!("{n} bound {} running", workers_word(n)));
    node
}

/// A duration to the millisecond, for a person to read.
fn short(d: Duration) -> String {
    format_duration(Duration::from_millis(d.as_millis() as u64))
}

fn workers_word(n: usize) -> &'static str {
    if n == 1 { "worker" } else { "workers" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_state_error_and_stuck() {
        let failed = Error::msg("boom");
        let missing = Error::new(Missing);
        use WorkerState::*;
        assert_eq!(Health::of(Started, None, false), Health::Running);
        assert_eq!(Health::of(Started, Some(&failed), false), Health::Running);
        assert_eq!(Health::of(Stopping, None, false), Health::Stopping);
        assert_eq!(Health::of(Stopping, None, true), Health::Stuck);
        assert_eq!(Health::of(Stopped, Some(&missing), false), Health::Waiting);
        assert_eq!(Health::of(Stopped, Some(&failed), false), Health::Failed);
        assert_eq!(Health::of(Starting, Some(&failed), false), Health::Failed);
        assert_eq!(Health::of(Starting, None, false), Health::Starting);
        assert_eq!(Health::of(Stopped, None, false), Health::Stopped);
    }
}

//! Snapshots of the machine for reports, taken on the loop thread and
//! turned into JSON or DOT on the caller's thread.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use worker_core::{Error, SharedWorker};

use super::{Machine, Phase, Why};

/// One manifold, as a report shows it. Cheap to take: reference counts
/// and small copies only.
#[derive(Clone)]
pub(crate) struct View {
    pub(crate) name: Arc<str>,
    pub(crate) inputs: Arc<[Arc<str>]>,
    pub(crate) state: &'static str,
    pub(crate) start_count: u64,
    pub(crate) start_attempts: u64,
    pub(crate) started: Option<SystemTime>,
    pub(crate) error: Option<Error>,
    /// The worker, when it runs and is a reporter: its own report is
    /// taken by the caller.
    pub(crate) worker: Option<SharedWorker>,
    pub(crate) why: Option<Arc<Why>>,
    /// How long ago the engine asked it to stop, if it did.
    pub(crate) stopping_for: Option<Duration>,
    pub(crate) stuck: bool,
    /// How long until a pending delayed start.
    pub(crate) starts_in: Option<Duration>,
}

/// The engine as a whole.
#[derive(Clone)]
pub(crate) struct Snapshot {
    pub(crate) dying: bool,
    pub(crate) error: Option<Error>,
    pub(crate) manifolds: Vec<View>,
}

impl Machine {
    /// A snapshot of every installed manifold, in install-slot order.
    pub(crate) fn snapshot(&self, now: Instant) -> Snapshot {
        // Sized up front: the iterator cannot tell its length, and growing
        // a 10,000-entry list by doubling copies it a dozen times.
        let mut manifolds = Vec::with_capacity(self.nodes.len());
        manifolds.extend(self.graph.installed().map(|id| {
            let node = &self.nodes[id];
            let (worker, starts_in) = match &node.phase {
                Phase::Running { live, .. } => (live.reports.then(|| live.worker.clone()), None),
                Phase::Waiting { until } => (None, Some(until.saturating_duration_since(now))),
                _ => (None, None),
            };
            View {
                name: self.graph.name(id).clone(),
                inputs: node
                    .manifold
                    .as_ref()
                    .map(|m| m.inputs.clone())
                    .unwrap_or_else(|| Arc::from(Vec::new())),
                state: node.phase.name(),
                start_count: node.start_count,
                start_attempts: node.start_attempts,
                started: node.started_wall,
                error: node.last_error.clone(),
                worker,
                why: node.why.clone(),
                stopping_for: node
                    .phase
                    .stop_requested()
                    .map(|t| now.saturating_duration_since(t)),
                stuck: node.stuck,
                starts_in,
            }
        }));
        Snapshot {
            dying: self.dying,
            error: self.error(),
            manifolds,
        }
    }
}

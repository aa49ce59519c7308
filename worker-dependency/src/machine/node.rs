//! One manifold's runtime state: the explicit state enum and counters.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use worker_core::supervisor::offloop::OffLoop;
use worker_core::{Error, SharedWorker};

use super::why::Why;
use crate::{Manifold, Outputs};

/// A running worker and what it offers. Both may run user code when
/// dropped, so the machine holds a `Live` as [`OffLoop`].
pub(crate) struct Live {
    pub(crate) worker: SharedWorker,
    pub(crate) outputs: Arc<Outputs>,
    /// Whether the worker is a [`Reporter`](worker_core::Reporter), asked
    /// once off the loop: reports only hold on to the workers that are.
    pub(crate) reports: bool,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

/// Where a manifold is. Every transition is in `machine/mod.rs`.
#[derive(Debug)]
pub(crate) enum Phase {
    /// No worker, no start pending: never started, completed, missing an
    /// input, or (while the engine stops) stopped for good.
    Stopped,
    /// A start is due at `until` (a bounce or error delay).
    Waiting { until: Instant },
    /// The start function is running; `abort` is when the engine asked it
    /// to give up (its context's abort signal fired).
    Starting { abort: Option<Instant> },
    /// The worker runs and its outputs are offered; `stopping` is when the
    /// engine killed it.
    Running {
        live: OffLoop<Live>,
        stopping: Option<Instant>,
    },
    /// A start that was aborted still produced a worker: it was killed at
    /// once and never offered to anyone; waiting for it to end.
    Discarding { since: Instant, live: OffLoop<Live> },
}

impl Phase {
    pub(crate) fn is_stopped(&self) -> bool {
        matches!(self, Phase::Stopped)
    }

    /// When the engine asked this manifold to stop, if it did.
    pub(crate) fn stop_requested(&self) -> Option<Instant> {
        match self {
            Phase::Starting { abort } => *abort,
            Phase::Running { stopping, .. } => *stopping,
            Phase::Discarding { since, .. } => Some(*since),
            Phase::Stopped | Phase::Waiting { .. } => None,
        }
    }

    /// Go's state names, as the report shows them.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Phase::Stopped => "stopped",
            Phase::Waiting { .. } | Phase::Starting { abort: None } => "starting",
            Phase::Running { stopping: None, .. } => "started",
            Phase::Starting { abort: Some(_) }
            | Phase::Running {
                stopping: Some(_), ..
            }
            | Phase::Discarding { .. } => "stopping",
        }
    }
}

/// Everything the engine remembers about one manifold.
#[derive(Debug)]
pub(crate) struct Node {
    /// `None` for names that are only declared as someone's input.
    pub(crate) manifold: Option<OffLoop<Manifold>>,
    pub(crate) phase: Phase,
    /// Generation of the current start request: events of older ones are
    /// never taken for the current worker.
    pub(crate) generation: u64,
    pub(crate) start_count: u64,
    /// Start requests since the last successful start.
    pub(crate) start_attempts: u64,
    /// Consecutive recent failures: the backoff step.
    pub(crate) recent_errors: u32,
    pub(crate) started_at: Option<Instant>,
    pub(crate) started_wall: Option<SystemTime>,
    pub(crate) last_error: Option<Error>,
    /// Why the current (or last) start was requested.
    pub(crate) why: Option<Arc<Why>>,
    /// Why it will restart once the stop the engine requested completes.
    pub(crate) pending: Option<super::why::Cause>,
    /// Took longer than the stop timeout to stop.
    pub(crate) stuck: bool,
    /// Remove it once stopped (public uninstall).
    pub(crate) uninstall: bool,
    /// While the engine stops: dependents that still run (or start).
    pub(crate) live_dependents: u32,
    /// While the engine stops: this node no longer holds its inputs up.
    pub(crate) released: bool,
}

impl Node {
    pub(crate) fn new(manifold: Option<OffLoop<Manifold>>) -> Self {
        Node {
            manifold,
            phase: Phase::Stopped,
            generation: 0,
            start_count: 0,
            start_attempts: 0,
            recent_errors: 0,
            started_at: None,
            started_wall: None,
            last_error: None,
            why: None,
            pending: None,
            stuck: false,
            uninstall: false,
            live_dependents: 0,
            released: false,
        }
    }
}

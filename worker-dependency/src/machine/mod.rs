//! The engine's decisions, as a pure state machine.
//!
//! [`Machine`] holds the graph and every manifold's [`Phase`], and reacts
//! to events (install, uninstall, a start function returned, a worker
//! ended, time passed, kill) by changing state and appending [`Action`]s
//! for the shell to carry out. It has no threads, channels or clocks: time
//! comes in with each event, so tests and proptest drive it directly and
//! deterministically. Policies (filters, `is_fatal`, `worst_error`,
//! jitter) are called here, each behind `catch_unwind`.
//!
//! Costs: each event touches the manifold it is about and the edges of
//! that manifold (its dependents when it starts or stops, its inputs when
//! it is dispatched); the only whole-graph pass is the one that begins a
//! shutdown, O(V + E), once.

mod install;
mod node;
mod shutdown;
mod start;
mod stop;
mod view;
mod why;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use worker_core::{Error, SharedWorker};

pub(crate) use node::{Live, Phase};
pub(crate) use view::{Snapshot, View};
pub(crate) use why::{Cause, Why};

use worker_core::jitter::Jitter;

use crate::backoff::Backoff;
use crate::config::{IsFatalFn, WorstErrorFn};
use crate::context::InputState;
use crate::graph::{Graph, NodeId};
use crate::{EngineConfig, Internal, Manifold};
use node::Node;

/// What the shell must do after an event.
pub(crate) enum Action {
    /// Run the start function (then the output function) off the loop and
    /// report back with `generation`.
    Start {
        node: NodeId,
        generation: u64,
        name: Arc<str>,
        manifold: Manifold,
        inputs: Vec<(Arc<str>, InputState)>,
    },
    /// Fire the abort signal of the running start of `node`.
    Abort { node: NodeId },
    /// Kill a worker.
    Kill {
        name: Arc<str>,
        worker: SharedWorker,
    },
    /// Report back with `generation` when this worker ends.
    Watch {
        node: NodeId,
        generation: u64,
        worker: SharedWorker,
    },
    /// Tell the metrics hook of a start.
    RecordStart { name: Arc<str> },
    /// Tell the metrics hook of a stop.
    RecordStop {
        name: Arc<str>,
        error: Option<Error>,
    },
    /// An uninstall finished.
    Removed { node: NodeId },
    /// A worker ended: the shell waits for it (joining its thread, if it
    /// has one) before the engine finishes.
    Reap { worker: SharedWorker },
    /// A manifold exceeded the stop timeout.
    Stuck { name: Arc<str>, waited: Duration },
}

/// The decision-making policies, from the config.
pub(crate) struct Policy {
    pub(crate) is_fatal: IsFatalFn,
    pub(crate) worst_error: WorstErrorFn,
    pub(crate) error_delay: Duration,
    pub(crate) bounce_delay: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) backoff_reset_time: Duration,
    pub(crate) stop_timeout: Duration,
    pub(crate) jitter: Arc<dyn Jitter>,
}

impl Policy {
    pub(crate) fn from_config(config: &EngineConfig) -> Self {
        Policy {
            is_fatal: config.is_fatal.clone(),
            worst_error: config.worst_error.clone(),
            error_delay: config.error_delay,
            bounce_delay: config.bounce_delay,
            backoff: Backoff {
                factor: config.backoff_factor,
                max_delay: config.max_delay,
            },
            backoff_reset_time: config.backoff_reset_time,
            stop_timeout: config.stop_timeout,
            jitter: config.jitter.clone(),
        }
    }

    fn sample(&self) -> f64 {
        catch_unwind(AssertUnwindSafe(|| self.jitter.sample())).unwrap_or(0.5)
    }
}

/// The kind of delay a start request waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delay {
    None,
    Bounce,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Start,
    StopTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    generation: u64,
    node: NodeId,
    kind: TimerKind,
}

/// See the module docs.
pub(crate) struct Machine {
    name: Arc<str>,
    graph: Graph,
    nodes: Vec<Node>,
    policy: Policy,
    timers: BinaryHeap<Reverse<Timer>>,
    next_generation: u64,
    dying: bool,
    /// Nodes not in `Phase::Stopped`.
    live: usize,
    worst: Option<Error>,
    internal: Option<Error>,
    scratch: Vec<NodeId>,
}

impl Machine {
    pub(crate) fn new(name: Arc<str>, policy: Policy) -> Self {
        Machine {
            name,
            graph: Graph::default(),
            nodes: Vec::new(),
            policy,
            timers: BinaryHeap::new(),
            next_generation: 0,
            dying: false,
            live: 0,
            worst: None,
            internal: None,
            scratch: Vec::new(),
        }
    }

    /// Whether the engine is stopping.
    pub(crate) fn is_dying(&self) -> bool {
        self.dying
    }

    /// Whether the engine has stopped everything and may exit.
    pub(crate) fn is_finished(&self) -> bool {
        self.dying && self.live == 0
    }

    /// The engine's error so far: an internal error, else the worst fatal
    /// error.
    pub(crate) fn error(&self) -> Option<Error> {
        self.internal.clone().or_else(|| self.worst.clone())
    }

    /// Whether the engine's error is an internal one.
    pub(crate) fn has_internal_error(&self) -> bool {
        self.internal.is_some()
    }

    /// The earliest pending deadline, dropping deadlines that no longer
    /// matter.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse(t)) = self.timers.peek() {
            if self.timer_is_live(t) {
                return Some(t.at);
            }
            self.timers.pop();
        }
        None
    }

    fn timer_is_live(&self, t: &Timer) -> bool {
        let Some(node) = self.nodes.get(t.node) else {
            return false;
        };
        if node.generation != t.generation {
            return false;
        }
        match t.kind {
            TimerKind::Start => matches!(node.phase, Phase::Waiting { .. }),
            TimerKind::StopTimeout => !node.stuck && node.phase.stop_requested().is_some(),
        }
    }

    fn node(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id]
    }

    fn set_phase(&mut self, id: NodeId, phase: Phase) {
        let was = self.nodes[id].phase.is_stopped();
        let now = phase.is_stopped();
        self.nodes[id].phase = phase;
        match (was, now) {
            (true, false) => self.live += 1,
            (false, true) => self.live -= 1,
            _ => {}
        }
    }

    // ----- time, kill, internal errors -----------------------------------

    /// Time has passed: start the manifolds whose delay is over, flag the
    /// ones that are slow to stop.
    pub(crate) fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        while let Some(Reverse(t)) = self.timers.peek().copied() {
            if t.at > now {
                break;
            }
            self.timers.pop();
            if !self.timer_is_live(&t) {
                continue;
            }
            match t.kind {
                TimerKind::Start => self.dispatch(t.node, now, out),
                TimerKind::StopTimeout => {
                    let since = self.nodes[t.node].phase.stop_requested().unwrap_or(now);
                    self.nodes[t.node].stuck = true;
                    out.push(Action::Stuck {
                        name: self.graph.name(t.node).clone(),
                        waited: now.saturating_duration_since(since),
                    });
                    if self.dying {
                        // Do not let one stuck worker hold the rest up.
                        self.release_inputs(t.node, now, out);
                    }
                }
            }
        }
    }

    /// Stops the engine: every manifold is stopped, dependents first.
    pub(crate) fn kill(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.begin_shutdown(now, out);
    }

    /// The engine's own state is inconsistent: record it and stop. Never
    /// goes on as if nothing happened.
    fn fail_internal(&mut self, message: String, now: Instant, out: &mut Vec<Action>) {
        tracing::error!(engine = %self.name, %message, "internal engine error");
        if self.internal.is_none() {
            self.internal = Some(Error::new(Internal(message)));
        }
        self.begin_shutdown(now, out);
    }
}

#[cfg(test)]
mod tests;

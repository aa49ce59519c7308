//! The engine's decisions, as a pure state machine.
//!
//! [`Machine`] holds the graph and every manifold's [`Phase`], and reacts
//! to events (install, uninstall, a start function returned, a worker
//! ended, time passed, kill) by changing state and appending [`Action`]s
//! for the shell to carry out. It has no threads, channels or clocks: time
//! comes in with each event, so tests and proptest drive it directly and
//! deterministically. It calls no user code at all: the policies (filters,
//! `is_fatal`, the jitter source) are asked off the loop and their answers
//! come in with the news as a [`Verdict`]; the fatal errors are kept in
//! order, for `worst_error` to rank when the engine ends (see `verdict`).
//! The values it holds whose `Drop` is user code (manifolds, workers,
//! outputs) are [`OffLoop`], so the loop never drops them itself.
//!
//! Its deadlines (delayed starts, stop timeouts) are a [`Timers`] table
//! keyed by manifold, and each is cancelled when its reason ends, so the
//! table holds exactly the live deadlines.
//!
//! Costs: each event touches the manifold it is about and the edges of
//! that manifold (its dependents when it starts or stops, its inputs when
//! it is dispatched); the only whole-graph pass is the one that begins a
//! shutdown, O(V + E), once.

mod install;
mod node;
mod ready;
mod shutdown;
mod start;
mod stop;
mod verdict;
mod view;
mod why;

use std::sync::Arc;
use std::time::{Duration, Instant};

use worker_core::backoff::Backoff;
use worker_core::events::{Event as LifeEvent, EventKind, ShutdownCause};
use worker_core::supervisor::Timers;
use worker_core::supervisor::offloop::OffLoop;
use worker_core::{Error, SharedWorker};

pub(crate) use node::{Live, Phase};
pub(crate) use start::Started;
pub(crate) use verdict::{Policies, Verdict};
pub(crate) use view::{Snapshot, View};
pub(crate) use why::{Cause, Why};

use crate::context::InputState;
use crate::graph::{Graph, NodeId};
use crate::{EngineConfig, Internal, Manifold, UNCAPPED_LIMIT};
use node::Node;

/// What the shell must do after an event.
pub(crate) enum Action {
    /// Run the start function (then the output function) off the loop and
    /// report back with `generation`; the start job also watches the
    /// worker it makes, and reports its end with the same generation.
    Start {
        node: NodeId,
        generation: u64,
        name: Arc<str>,
        manifold: OffLoop<Manifold>,
        inputs: OffLoop<Vec<(Arc<str>, InputState)>>,
    },
    /// Fire the abort signal of the running start of `node`.
    Abort { node: NodeId },
    /// Kill a worker.
    Kill {
        name: Arc<str>,
        worker: OffLoop<SharedWorker>,
    },
    /// Hand this event to the hooks (emitted only when there is one).
    Event(Box<LifeEvent>),
    /// A manifold's worker registered as running (readiness waits are
    /// answered by it, whether or not anybody listens to events).
    Started { name: Arc<str> },
    /// An uninstall finished (`name` is no longer in the graph).
    Removed { node: NodeId, name: Arc<str> },
    /// A worker ended: the shell waits for it (joining its thread, if it
    /// has one) before the engine finishes, and lets go of its outputs,
    /// off the loop.
    Reap { live: OffLoop<Live> },
}

/// How much jitter spreads the engine's delays: +-10%.
const JITTER: f64 = 0.1;

/// The delays, from the config.
pub(crate) struct Policy {
    /// Restart after a failure: the error delay, backed off.
    pub(crate) error: Backoff,
    /// Restart after a bounce or an input change: never backed off.
    pub(crate) bounce: Backoff,
    pub(crate) backoff_reset_time: Duration,
    pub(crate) stop_timeout: Duration,
    /// Whether a hook wants [`Action::Event`]s.
    pub(crate) events: bool,
}

impl Policy {
    pub(crate) fn from_config(config: &EngineConfig) -> Self {
        let max = if config.max_delay.is_zero() {
            UNCAPPED_LIMIT
        } else {
            config.max_delay
        };
        Policy {
            // A factor of 0 (no backoff) is a factor of 1 to the rule.
            error: Backoff {
                base: config.error_delay,
                factor: config.backoff_factor,
                max,
                jitter: JITTER,
            },
            bounce: Backoff {
                base: config.bounce_delay,
                factor: 1.0,
                max,
                jitter: JITTER,
            },
            backoff_reset_time: config.backoff_reset_time,
            stop_timeout: config.stop_timeout,
            events: !config.hooks.is_empty(),
        }
    }
}

/// The kind of delay a start request waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delay {
    None,
    Bounce,
    Error,
}

/// What a deadline is for (one of each at most per manifold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TimerKind {
    /// The delay of a `Waiting` manifold is over.
    Start,
    /// A manifold asked to stop has had its stop timeout.
    StopTimeout,
}

/// See the module docs.
pub(crate) struct Machine {
    name: Arc<str>,
    graph: Graph,
    nodes: Vec<Node>,
    policy: Policy,
    /// One deadline per reason that still stands.
    timers: Timers<(NodeId, TimerKind)>,
    next_generation: u64,
    dying: bool,
    /// Nodes not in `Phase::Stopped`.
    live: usize,
    /// The fatal errors, in the order they came, for `worst_error`.
    fatal: Vec<Error>,
    internal: Option<Error>,
    scratch: Vec<NodeId>,
    /// The jitter sample of the news being handled (0.5, no spread,
    /// outside news).
    sample: f64,
}

impl Machine {
    pub(crate) fn new(name: Arc<str>, policy: Policy) -> Self {
        Machine {
            name,
            graph: Graph::default(),
            nodes: Vec::new(),
            policy,
            timers: Timers::new(),
            next_generation: 0,
            dying: false,
            live: 0,
            fatal: Vec::new(),
            internal: None,
            scratch: Vec::new(),
            sample: 0.5,
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

    /// The engine's error so far as the loop knows it: an internal error,
    /// else the first fatal error (ranking them is user code: see
    /// [`fatal_errors`](Self::fatal_errors)).
    pub(crate) fn error(&self) -> Option<Error> {
        self.internal
            .clone()
            .or_else(|| self.fatal.first().cloned())
    }

    /// The internal error, if the machine found itself inconsistent.
    pub(crate) fn internal_error(&self) -> Option<&Error> {
        self.internal.as_ref()
    }

    /// Whether the engine's error is an internal one.
    pub(crate) fn has_internal_error(&self) -> bool {
        self.internal.is_some()
    }

    /// Every fatal error so far, in the order they came: `worst_error`
    /// ranks them, off the loop.
    pub(crate) fn fatal_errors(&self) -> &[Error] {
        &self.fatal
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// How many deadlines are pending (each for a reason that stands).
    #[cfg(test)]
    pub(crate) fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Every worker the machine holds (for a driver that gives up on it).
    pub(crate) fn workers(&self) -> Vec<SharedWorker> {
        self.nodes
            .iter()
            .filter_map(|node| match &node.phase {
                Phase::Running { live, .. } | Phase::Discarding { live, .. } => {
                    Some(live.worker.clone())
                }
                _ => None,
            })
            .collect()
    }

    fn node(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id]
    }

    /// Hands the event `kind` about the current incarnation of `id` (or,
    /// for `None`, about the engine) to the log and, when there is a hook,
    /// to the hooks. Nothing is made when nobody listens.
    fn emit(&self, id: Option<NodeId>, out: &mut Vec<Action>, kind: impl FnOnce() -> EventKind) {
        let hooked = self.policy.events;
        if !hooked && !worker_core::events::logging() {
            return;
        }
        let (worker, generation) = id.map_or((None, 0), |id| {
            (Some(self.graph.name(id).clone()), self.nodes[id].generation)
        });
        let event = LifeEvent::new(self.name.clone(), worker, generation, kind());
        event.log();
        if hooked {
            out.push(Action::Event(Box::new(event)));
        }
    }

    /// Moves `id` to `phase`, keeping the live count, and cancels the
    /// deadlines whose reason the new phase ends; returns the old phase
    /// (dropping it is safe: what it holds is [`OffLoop`]).
    fn set_phase(&mut self, id: NodeId, phase: Phase) -> Phase {
        let now = phase.is_stopped();
        let was = &self.nodes[id].phase;
        // (Only where the old phase may have a deadline: each look costs a
        // hash.)
        if matches!(was, Phase::Waiting { .. }) && !matches!(phase, Phase::Waiting { .. }) {
            self.timers.cancel(&(id, TimerKind::Start));
        }
        if was.stop_requested().is_some() && phase.stop_requested().is_none() {
            self.timers.cancel(&(id, TimerKind::StopTimeout));
        }
        let old = std::mem::replace(&mut self.nodes[id].phase, phase);
        match (old.is_stopped(), now) {
            (true, false) => self.live += 1,
            (false, true) => self.live -= 1,
            _ => {}
        }
        old
    }

    // ----- time, kill, internal errors -----------------------------------

    /// Time has passed: start the manifolds whose delay is over, flag the
    /// ones that are slow to stop.
    pub(crate) fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        while let Some(((id, kind), _)) = self.timers.pop_due(now) {
            match kind {
                TimerKind::Start => {
                    if !matches!(self.nodes[id].phase, Phase::Waiting { .. }) {
                        let message = format!("start deadline of node {id} outlived its delay");
                        return self.fail_internal(message, now, out);
                    }
                    self.dispatch(id, now, out);
                }
                TimerKind::StopTimeout => {
                    let Some(since) = self.nodes[id].phase.stop_requested() else {
                        let message = format!("stop deadline of node {id} outlived its stop");
                        return self.fail_internal(message, now, out);
                    };
                    self.nodes[id].stuck = true;
                    let after = now.saturating_duration_since(since);
                    let starting = matches!(self.nodes[id].phase, Phase::Starting { .. });
                    self.emit(Some(id), out, || EventKind::Stuck {
                        after,
                        starting,
                        forced: false,
                    });
                    if self.dying {
                        // Do not let one stuck worker hold the rest up.
                        self.release_inputs(id, now, out);
                    }
                }
            }
        }
    }

    /// Stops the engine: every manifold is stopped, dependents first.
    pub(crate) fn kill(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.begin_shutdown(ShutdownCause::Killed, now, out);
    }

    /// The engine's own state is inconsistent: record it and stop. Never
    /// goes on as if nothing happened.
    fn fail_internal(&mut self, message: String, now: Instant, out: &mut Vec<Action>) {
        tracing::error!(engine = %self.name, %message, "internal engine error");
        if self.internal.is_none() {
            self.internal = Some(Error::new(Internal(message)));
        }
        self.begin_shutdown(ShutdownCause::Fatal { worker: None }, now, out);
    }
}

#[cfg(test)]
mod tests;

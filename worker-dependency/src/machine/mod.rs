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

mod node;
mod shutdown;
mod view;
mod why;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use worker_core::{Error, SharedWorker, catch_panic};

pub(crate) use node::{Live, Phase};
pub(crate) use view::{Snapshot, View};
pub(crate) use why::{Cause, Why};

use crate::backoff::{Backoff, Jitter};
use crate::config::{IsFatalFn, WorstErrorFn};
use crate::context::InputState;
use crate::graph::{Graph, NodeId};
use crate::{
    Bounce, EngineConfig, InstallError, Internal, Manifold, Missing, ShuttingDown, Uninstall,
    UninstallError,
};
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

    // ----- install / uninstall -------------------------------------------

    /// Installs every manifold of `batch`, or none of them.
    pub(crate) fn install(
        &mut self,
        batch: Vec<(String, Manifold)>,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), InstallError> {
        if self.dying {
            return Err(ShuttingDown(self.name.to_string()).into());
        }
        if batch.len() > 1 {
            let mut names: Vec<&str> = batch.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
                return Err(InstallError::DuplicateName(pair[0].to_owned()));
            }
        }
        let mut added: Vec<(NodeId, Manifold)> = Vec::with_capacity(batch.len());
        for (name, manifold) in batch {
            match self.graph.add(&name, &manifold.inputs) {
                Ok(id) => added.push((id, manifold)),
                Err(e) => {
                    for (id, _) in added.into_iter().rev() {
                        self.graph.remove(id);
                    }
                    return Err(e);
                }
            }
        }
        if self.nodes.len() < self.graph.capacity() {
            self.nodes
                .resize_with(self.graph.capacity(), || Node::new(None));
        }
        let ids: Vec<NodeId> = added.iter().map(|(id, _)| *id).collect();
        for (id, manifold) in added {
            // Fresh counters, as Go; a placeholder keeps nothing anyway.
            self.nodes[id] = Node::new(Some(manifold));
        }
        for id in ids {
            tracing::debug!(engine = %self.name, manifold = %self.graph.name(id), "installed");
            self.request_start(id, Delay::None, Cause::Installed, now, out);
        }
        Ok(())
    }

    /// Starts uninstalling `name`: it is stopped (if running) and then
    /// removed; [`Action::Removed`] says when. Returns its id.
    pub(crate) fn uninstall(
        &mut self,
        name: &str,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<NodeId, UninstallError> {
        if self.dying {
            return Err(ShuttingDown(self.name.to_string()).into());
        }
        let id = self
            .graph
            .id(name)
            .filter(|&id| self.graph.is_installed(id))
            .ok_or_else(|| UninstallError::NotInstalled(name.to_owned()))?;
        if self.nodes[id].uninstall {
            return Ok(id);
        }
        self.nodes[id].uninstall = true;
        match self.nodes[id].phase {
            Phase::Stopped => self.remove(id, out),
            _ => self.request_stop(id, Cause::Installed, now, out),
        }
        Ok(id)
    }

    fn remove(&mut self, id: NodeId, out: &mut Vec<Action>) {
        tracing::debug!(engine = %self.name, manifold = %self.graph.name(id), "uninstalled");
        self.graph.remove(id);
        self.nodes[id] = Node::new(None);
        out.push(Action::Removed { node: id });
    }

    // ----- starting --------------------------------------------------------

    fn request_start(
        &mut self,
        id: NodeId,
        delay: Delay,
        cause: Cause,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.dying {
            return;
        }
        let delay = match delay {
            Delay::None => Duration::ZERO,
            Delay::Bounce => self
                .policy
                .backoff
                .bounce_delay(self.policy.bounce_delay, self.policy.sample()),
            Delay::Error => {
                let step = self.nodes[id].recent_errors;
                self.policy
                    .backoff
                    .error_delay(self.policy.error_delay, step, self.policy.sample())
            }
        };
        self.next_generation += 1;
        let generation = self.next_generation;
        let node = self.node(id);
        node.generation = generation;
        node.start_attempts += 1;
        node.why = Some(Why { cause, delay });
        if delay.is_zero() {
            self.dispatch(id, now, out);
        } else {
            let until = now.checked_add(delay).unwrap_or(now);
            self.set_phase(id, Phase::Waiting { until });
            self.timers.push(Reverse(Timer {
                at: until,
                generation,
                node: id,
                kind: TimerKind::Start,
            }));
        }
    }

    fn dispatch(&mut self, id: NodeId, now: Instant, out: &mut Vec<Action>) {
        self.set_phase(id, Phase::Starting { abort: None });
        let inputs = self
            .graph
            .inputs(id)
            .iter()
            .map(|&input| {
                let state = match &self.nodes[input].phase {
                    Phase::Running { live, .. } => InputState::Running(live.outputs.clone()),
                    _ => InputState::NotRunning,
                };
                (self.graph.name(input).clone(), state)
            })
            .collect();
        let node = &self.nodes[id];
        let Some(manifold) = node.manifold.clone() else {
            let message = format!("dispatching placeholder {:?}", self.graph.name(id));
            return self.fail_internal(message, now, out);
        };
        out.push(Action::Start {
            node: id,
            generation: node.generation,
            name: self.graph.name(id).clone(),
            manifold,
            inputs,
        });
    }

    /// A start function (and output function) returned.
    pub(crate) fn start_done(
        &mut self,
        id: NodeId,
        generation: u64,
        result: Result<Live, Error>,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        let abort = match self.nodes.get(id).map(|n| (&n.phase, n.generation)) {
            Some((Phase::Starting { abort }, g)) if g == generation => *abort,
            _ => {
                if let Ok(live) = result {
                    out.push(Action::Kill {
                        name: Arc::from("(unknown)"),
                        worker: live.worker,
                    });
                }
                let message =
                    format!("unexpected start result for node {id} generation {generation}");
                return self.fail_internal(message, now, out);
            }
        };
        let name = self.graph.name(id).clone();
        let live = match result {
            Ok(live) => live,
            Err(error) => return self.finish(id, Some(error), false, now, out),
        };
        out.push(Action::Watch {
            node: id,
            generation,
            worker: live.worker.clone(),
        });
        if let Some(since) = abort {
            // Asked to stop while starting: never offer this worker.
            out.push(Action::Kill {
                name,
                worker: live.worker,
            });
            self.set_phase(id, Phase::Discarding { since });
            return;
        }
        let node = self.node(id);
        node.start_count += 1;
        node.start_attempts = 0;
        node.started_at = Some(now);
        node.started_wall = Some(wall);
        node.last_error = None;
        node.stuck = false;
        self.set_phase(
            id,
            Phase::Running {
                live,
                stopping: None,
            },
        );
        tracing::debug!(engine = %self.name, manifold = %name, "started");
        out.push(Action::RecordStart { name: name.clone() });
        self.bounce_dependents(id, Cause::InputStarted(name), now, out);
    }

    // ----- stopping --------------------------------------------------------

    /// A worker ended.
    pub(crate) fn worker_done(
        &mut self,
        id: NodeId,
        generation: u64,
        outcome: Result<(), Error>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let registered = match self.nodes.get(id).map(|n| (&n.phase, n.generation)) {
            Some((Phase::Running { .. }, g)) if g == generation => true,
            Some((Phase::Discarding { .. }, g)) if g == generation => false,
            _ => {
                let message =
                    format!("unexpected worker end for node {id} generation {generation}");
                return self.fail_internal(message, now, out);
            }
        };
        self.finish(id, outcome.err(), registered, now, out);
    }

    /// Asks `id` to stop, to restart (because of `cause`) once stopped.
    fn request_stop(&mut self, id: NodeId, cause: Cause, now: Instant, out: &mut Vec<Action>) {
        self.nodes[id].pending = Some(cause);
        match &mut self.nodes[id].phase {
            Phase::Waiting { .. } => {}
            Phase::Starting { abort } => {
                if abort.is_none() {
                    *abort = Some(now);
                    out.push(Action::Abort { node: id });
                    self.push_stop_timeout(id, now);
                }
                return;
            }
            Phase::Running { live, stopping } => {
                if stopping.is_none() {
                    *stopping = Some(now);
                    let worker = live.worker.clone();
                    out.push(Action::Kill {
                        name: self.graph.name(id).clone(),
                        worker,
                    });
                    self.push_stop_timeout(id, now);
                }
                return;
            }
            Phase::Stopped | Phase::Discarding { .. } => return,
        }
        // Waiting: nothing runs yet, so the wait is simply over (Go: the
        // start is "aborted before delay elapsed").
        let node = self.node(id);
        node.recent_errors = 1;
        node.start_attempts = 0;
        self.set_phase(id, Phase::Stopped);
        if self.dying {
            self.stopped_while_dying(id, now, out);
        } else if self.nodes[id].uninstall {
            self.remove(id, out);
        } else {
            let cause = self.nodes[id].pending.take().unwrap_or(Cause::Bounced);
            self.request_start(id, Delay::Bounce, cause, now, out);
        }
    }

    fn push_stop_timeout(&mut self, id: NodeId, now: Instant) {
        if self.policy.stop_timeout.is_zero() {
            return;
        }
        let Some(at) = now.checked_add(self.policy.stop_timeout) else {
            return;
        };
        self.timers.push(Reverse(Timer {
            at,
            generation: self.nodes[id].generation,
            node: id,
            kind: TimerKind::StopTimeout,
        }));
    }

    /// Every start or stop of `id` restarts its dependents (Go's rule).
    fn bounce_dependents(&mut self, id: NodeId, cause: Cause, now: Instant, out: &mut Vec<Action>) {
        let mut deps = std::mem::take(&mut self.scratch);
        deps.clear();
        deps.extend_from_slice(self.graph.dependents(id));
        for &dep in &deps {
            if self.nodes[dep].phase.is_stopped() {
                self.request_start(dep, Delay::Bounce, cause.clone(), now, out);
            } else {
                self.request_stop(dep, cause.clone(), now, out);
            }
        }
        self.scratch = deps;
    }

    /// A start failed or a worker ended with `raw`: classify, record, and
    /// restart or not.
    fn finish(
        &mut self,
        id: NodeId,
        raw: Option<Error>,
        registered: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let name = self.graph.name(id).clone();
        let stop_requested = self.nodes[id].phase.stop_requested().is_some();
        let reset_time = self.policy.backoff_reset_time;
        let node = self.node(id);
        // Backoff bookkeeping on the raw error, as Go.
        match &raw {
            None => node.recent_errors = 0,
            Some(e) if e.is::<Missing>() => node.recent_errors = 1,
            Some(e) if e.is::<Bounce>() => {}
            Some(_) => {
                let ran_long = node
                    .started_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= reset_time);
                node.recent_errors = if ran_long {
                    1
                } else {
                    node.recent_errors.saturating_add(1)
                };
            }
        }
        let filtered = match node.manifold.as_ref().and_then(|m| m.filter.clone()) {
            Some(filter) => match catch_unwind(AssertUnwindSafe(|| filter(raw))) {
                Ok(e) => e,
                Err(payload) => Some(Error::new(worker_core::Panicked::from_payload(
                    format!("filter of manifold {name:?}"),
                    &*payload,
                ))),
            },
            None => raw,
        };
        let fatal = filtered.as_ref().and_then(|e| self.fatal(&name, e));
        let node = self.node(id);
        // A panicking is_fatal is the manifold's error, as well as fatal.
        node.last_error = match &fatal {
            Some(f) if f.is::<worker_core::Panicked>() => Some(f.clone()),
            _ => filtered.clone(),
        };
        node.started_at = None;
        node.started_wall = None;
        node.stuck = false;
        self.set_phase(id, Phase::Stopped);
        if let Some(error) = fatal {
            tracing::warn!(engine = %self.name, manifold = %name, %error, "fatal error; stopping the engine");
            self.record_worst(error);
            self.begin_shutdown(now, out);
        }
        if self.dying {
            self.stopped_while_dying(id, now, out);
            out.push(Action::RecordStop {
                name,
                error: filtered,
            });
            return;
        }
        let uninstall = self.nodes[id].uninstall;
        if !uninstall {
            if stop_requested {
                let cause = self.nodes[id].pending.take().unwrap_or(Cause::Bounced);
                self.request_start(id, Delay::Bounce, cause, now, out);
            } else {
                match &filtered {
                    None => tracing::debug!(engine = %self.name, manifold = %name, "completed"),
                    Some(e) if e.is::<Missing>() => {
                        tracing::debug!(engine = %self.name, manifold = %name, error = %e, "missing an input")
                    }
                    Some(e) if e.is::<Bounce>() => {
                        self.request_start(id, Delay::Bounce, Cause::Bounced, now, out)
                    }
                    Some(e) if e.is::<Uninstall>() => self.nodes[id].uninstall = true,
                    Some(e) => {
                        let step = self.nodes[id].recent_errors;
                        tracing::warn!(engine = %self.name, manifold = %name, error = %e, step, "manifold failed; restarting after a delay");
                        let cause = Cause::Failed {
                            error: e.clone(),
                            step,
                        };
                        self.request_start(id, Delay::Error, cause, now, out);
                    }
                }
            }
        }
        if registered {
            self.bounce_dependents(id, Cause::InputStopped(name.clone()), now, out);
        }
        if self.nodes[id].uninstall {
            self.remove(id, out);
        }
        out.push(Action::RecordStop {
            name,
            error: filtered,
        });
    }

    /// Whether `error` is fatal; `Some(error to record)` if so. A panic in
    /// `is_fatal` counts as fatal, with the panic ([`Panicked`]) as the
    /// error.
    ///
    /// [`Panicked`]: worker_core::Panicked
    fn fatal(&self, name: &str, error: &Error) -> Option<Error> {
        let is_fatal = self.policy.is_fatal.clone();
        match catch_panic(
            || format!("is_fatal (for manifold {name:?})"),
            || Ok(is_fatal(error)),
        ) {
            Ok(true) => Some(error.clone()),
            Ok(false) => None,
            Err(panicked) => Some(panicked),
        }
    }

    fn record_worst(&mut self, error: Error) {
        let worst_error = self.policy.worst_error.clone();
        let previous = self.worst.take();
        let worst = catch_panic(
            || "worst_error".to_owned(),
            || Ok(worst_error(&error, previous.as_ref())),
        )
        .unwrap_or_else(|panicked| panicked);
        self.worst = Some(worst);
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

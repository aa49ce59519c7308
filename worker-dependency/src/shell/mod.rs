//! The engine's side of the core's supervisor driver: the [`Shell`] is the
//! [`Machine`](worker_core::supervisor::Machine) the driver runs on the
//! engine's loop thread.
//!
//! It hands each request and each piece of news to the engine's pure state
//! machine ([`crate::machine`]) and turns the actions that come back into
//! the driver's [`Effects`]: start jobs ([`starter`]), kills and reaps,
//! event deliveries and disposals (all off the loop), answers to callers,
//! and the engine's end. The values it moves that hold user code (manifolds,
//! workers, outputs) are [`OffLoop`], so none is ever dropped on the loop.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use worker_core::events::Delivery;
use worker_core::supervisor::offloop::OffLoop;
use worker_core::supervisor::ready::{ReadyRequest, ReadyWaiters};
use worker_core::supervisor::{Effects, Finish, Handle, Lending, Lent, Reply};
use worker_core::{Clock, Error, SharedWorker};

use crate::graph::NodeId;
use crate::machine::{Action, Live, Machine, Policies, Snapshot, Started, Verdict};
use crate::{InstallError, Manifold, ShuttingDown, UninstallError};

mod ready;
pub(crate) mod starter;

pub(crate) use ready::ReadyReply;

use starter::StartJob;

/// A snapshot for a report, with the fatal errors so far when the
/// report's engine error is theirs to rank (on the caller's thread).
pub(crate) type Seen = (Snapshot, Vec<Error>);

/// A snapshot, and its workers' guard: the snapshot first, so that its
/// references go before the guard sends the lent ones home.
pub(crate) type LentSeen = (Seen, Lent<Event>);

/// Everything the loop can be told: requests from handles, news from start
/// jobs and workers' completion callbacks.
pub(crate) enum Event {
    Install {
        batch: Vec<(String, OffLoop<Manifold>)>,
        reply: Reply<Result<(), InstallError>>,
    },
    Uninstall {
        name: String,
        reply: Reply<Result<(), UninstallError>>,
    },
    /// A snapshot; its workers are lent (see [`Lent`]) and come back
    /// home, to this engine, as a `Release`.
    Snapshot {
        reply: Reply<LentSeen>,
        home: Handle<Event>,
    },
    /// A report is done with the workers its snapshot lent: the engine
    /// lets go of them (off the loop), so that a report never runs a
    /// worker's `Drop`.
    Release {
        workers: Vec<OffLoop<SharedWorker>>,
    },
    WaitingFor {
        reply: Reply<Vec<String>>,
    },
    /// `wait_ready`: until every manifold it names has started.
    Ready(ReadyRequest),
    /// An aborted `wait_ready` caller withdraws.
    CancelReady {
        waiter: u64,
    },
    /// A start job is done (the start function and the output function
    /// returned).
    Started {
        node: NodeId,
        generation: u64,
        result: Result<OffLoop<Live>, Error>,
        verdict: Verdict,
    },
    /// A worker ended.
    Ended {
        node: NodeId,
        generation: u64,
        outcome: Result<(), Error>,
        verdict: Verdict,
    },
}

/// The engine's machine, as the driver runs it.
pub(crate) struct Shell {
    pub(crate) name: Arc<str>,
    pub(crate) machine: Machine,
    pub(crate) clock: Arc<dyn Clock>,
    /// The events waiting for the hooks, if there is a hook.
    pub(crate) hooks: Option<Arc<Delivery>>,
    pub(crate) policies: Arc<Policies>,
    /// What reports show once the loop has gone.
    pub(crate) final_snapshot: Arc<OnceLock<Seen>>,
    /// The abort trigger of each node's running start: dropped to fire.
    pub(crate) aborts: Vec<Option<worker_core::AbortTrigger>>,
    /// Callers waiting for an uninstall to finish.
    pub(crate) uninstalls: HashMap<NodeId, Vec<Reply<Result<(), UninstallError>>>>,
    /// Callers of `wait_ready` (see `ready`).
    pub(crate) ready: ReadyWaiters<ReadyReply>,
    /// Reused between events.
    pub(crate) out: Vec<Action>,
    /// Dying was announced to the driver.
    dying: bool,
    /// The end was announced to the driver.
    finished: bool,
    /// Workers lent to reports, which the engine's end waits for.
    lending: Lending,
}

impl Shell {
    pub(crate) fn new(
        name: Arc<str>,
        machine: Machine,
        clock: Arc<dyn Clock>,
        hooks: Option<Arc<Delivery>>,
        policies: Arc<Policies>,
        final_snapshot: Arc<OnceLock<Seen>>,
    ) -> Self {
        Shell {
            name,
            machine,
            clock,
            hooks,
            policies,
            final_snapshot,
            aborts: Vec::new(),
            uninstalls: HashMap::new(),
            ready: ReadyWaiters::new(),
            out: Vec::new(),
            dying: false,
            finished: false,
            lending: Lending::default(),
        }
    }
}

impl worker_core::supervisor::Machine for Shell {
    type Event = Event;
    type Job = StartJob;

    fn handle(&mut self, event: Event, now: Instant, fx: &mut Effects<StartJob>) {
        let mut out = std::mem::take(&mut self.out);
        match event {
            Event::Install { batch, reply } => {
                reply.send(self.machine.install(batch, now, &mut out));
            }
            Event::Uninstall { name, reply } => {
                match self.machine.uninstall(&name, now, &mut out) {
                    // Answered by `Removed`, which may be in `out` already.
                    Ok(node) => self.uninstalls.entry(node).or_default().push(reply),
                    Err(e) => reply.send(Err(e)),
                }
            }
            Event::Snapshot { reply, home } => {
                let seen = self.seen(now);
                let workers = seen
                    .0
                    .manifolds
                    .iter()
                    .filter_map(|v| v.worker.clone())
                    .collect();
                let lent = self
                    .lending
                    .lend(workers, home, |workers| Event::Release { workers });
                reply.send((seen, lent));
            }
            Event::Release { workers } => {
                self.lending.back(workers.len(), fx);
                drop(workers);
            }
            Event::WaitingFor { reply } => reply.send(self.machine.waiting_for()),
            Event::Ready(request) => self.ready_request(request, now),
            Event::CancelReady { waiter } => drop(self.ready.cancel(waiter)),
            Event::Started {
                node,
                generation,
                result,
                verdict,
            } => {
                if let Some(abort) = self.aborts.get_mut(node) {
                    *abort = None;
                }
                let wall = self.clock.wall_now();
                let started = Started { result, verdict };
                self.machine
                    .start_done(node, generation, started, now, wall, &mut out);
            }
            Event::Ended {
                node,
                generation,
                outcome,
                verdict,
            } => {
                self.machine
                    .worker_done(node, generation, outcome, verdict, now, &mut out);
            }
        }
        self.execute(&mut out, now, fx);
        self.out = out;
    }

    fn kill(&mut self, now: Instant, fx: &mut Effects<StartJob>) {
        self.transition(now, fx, |machine, out| machine.kill(now, out));
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let mine = self.machine.next_deadline();
        match self.ready.next_deadline() {
            Some(ready) => Some(mine.map_or(ready, |d| d.min(ready))),
            None => mine,
        }
    }

    fn handle_timeout(&mut self, now: Instant, fx: &mut Effects<StartJob>) {
        self.transition(now, fx, |machine, out| machine.tick(now, out));
        self.ready_tick(now);
    }

    fn ends_job(event: &Event) -> bool {
        matches!(event, Event::Started { .. })
    }

    fn abandon(&mut self) -> Vec<SharedWorker> {
        self.machine.workers()
    }
}

impl Shell {
    /// Runs one call of the machine and carries out what it asks for.
    fn transition(
        &mut self,
        now: Instant,
        fx: &mut Effects<StartJob>,
        call: impl FnOnce(&mut Machine, &mut Vec<Action>),
    ) {
        let mut out = std::mem::take(&mut self.out);
        call(&mut self.machine, &mut out);
        self.execute(&mut out, now, fx);
        self.out = out;
    }

    /// Carries out the machine's actions, then tells the driver what the
    /// engine's new state means (dying, finished).
    fn execute(&mut self, out: &mut Vec<Action>, now: Instant, fx: &mut Effects<StartJob>) {
        for action in out.drain(..) {
            match action {
                Action::Start {
                    node,
                    generation,
                    name,
                    manifold,
                    inputs,
                } => {
                    let (abort_tx, abort) = worker_core::AbortSignal::pair();
                    if self.aborts.len() <= node {
                        self.aborts.resize_with(node + 1, || None);
                    }
                    self.aborts[node] = Some(abort_tx);
                    fx.run(StartJob {
                        node,
                        generation,
                        name,
                        manifold,
                        inputs,
                        abort,
                    });
                }
                Action::Abort { node } => {
                    if let Some(abort) = self.aborts.get_mut(node) {
                        *abort = None;
                    }
                }
                Action::Kill { name, worker } => fx.kill(worker.into_inner(), name),
                Action::Started { name } => self.ready_started(&name),
                Action::Event(event) => {
                    // Delivered off the loop, in order: one delivery is
                    // outstanding at a time, and takes every event queued.
                    if let Some(hooks) = &self.hooks {
                        if hooks.push(*event) {
                            let hooks = hooks.clone();
                            fx.call(move || hooks.deliver());
                        }
                    }
                }
                Action::Removed { node, name } => {
                    self.ready_gone(&name);
                    // Answered after the kills asked for so far (those of
                    // its dependents, say), which run off the loop in order:
                    // when `uninstall` returns, they have been told to stop.
                    if let Some(replies) = self.uninstalls.remove(&node) {
                        fx.call(move || {
                            for reply in replies {
                                reply.send(Ok(()));
                            }
                        });
                    }
                }
                Action::Reap { live } => {
                    let Live {
                        worker, outputs, ..
                    } = live.into_inner();
                    fx.reap(worker);
                    // The last holder of non-empty outputs drops user values.
                    if let Some(outputs) = Arc::into_inner(outputs) {
                        if !outputs.is_empty() {
                            fx.dispose(outputs);
                        }
                    }
                }
            }
        }
        if self.machine.is_dying() && !self.dying {
            self.dying = true;
            self.ready_stopped();
            fx.dying();
        }
        if self.machine.is_finished() && !self.finished {
            self.finished = true;
            let _ = self.final_snapshot.set(self.seen(now));
            // Nobody waits for a removal any more.
            for (_, replies) in self.uninstalls.drain() {
                for reply in replies {
                    reply.send(Err(ShuttingDown(self.name.to_string()).into()));
                }
            }
            let end = self.end();
            self.lending.finish(end, fx);
        }
    }

    /// A snapshot, with the fatal errors to rank when there is no
    /// internal error (which takes precedence, unranked).
    fn seen(&self, now: Instant) -> Seen {
        let fatal = if self.machine.has_internal_error() {
            Vec::new()
        } else {
            self.machine.fatal_errors().to_vec()
        };
        (self.machine.snapshot(now), fatal)
    }

    /// The engine's result: ranking the fatal errors and the engine's
    /// filter are user code, so they run off the loop.
    fn end(&self) -> Finish {
        let internal = self.machine.internal_error().cloned();
        let fatal = self.machine.fatal_errors();
        if internal.is_some() || !self.policies.needs_user_code(fatal) {
            return Finish::Now(self.policies.result(internal, &[]));
        }
        let fatal = fatal.to_vec();
        let policies = self.policies.clone();
        Finish::Later(Box::new(move || policies.result(None, &fatal)))
    }
}

#[cfg(test)]
mod tests {
    /// Events queue up by the thousand when a big engine bounces; they
    /// must stay small. (An action lives only within one event; a start
    /// carries its manifold inline, which saves an allocation per start.)
    #[test]
    fn events_and_actions_stay_small() {
        use std::mem::size_of;
        let event = size_of::<super::Event>();
        assert!(event <= 96, "Event: {event}");
        let action = size_of::<crate::machine::Action>();
        assert!(action <= 160, "Action: {action}");
    }
}

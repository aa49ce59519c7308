//! The runner's side of the core's supervisor driver: the [`Shell`] is the
//! [`Machine`](worker_core::supervisor::Machine) the driver runs on the
//! runner's loop thread.
//!
//! It hands each event to the runner's pure state machine
//! ([`crate::machine`]) and turns the actions that come back into the
//! driver's [`Effects`]: start jobs, kills and reaps (all off the loop),
//! answers to callers, the runner's end. The types it moves in and out
//! hold user code, so they are [`OffLoop`]: none of them is ever dropped
//! on the loop.

pub(crate) mod starter;

use std::sync::Arc;
use std::time::Instant;

use worker_core::supervisor::offloop::{self, OffLoop};
use worker_core::supervisor::{Effects, Finish, Handle, Lending, Lent, Reply};
use worker_core::{Error, ReadyError, SharedWorker};

use crate::error::{LookupError, RemoveError, StartError};
use crate::machine::{self, Action, Actions, EntrySnapshot, Io, Machine, Policies};
use crate::status::WaitingFor;

use self::starter::StartJob;

/// A start function, boxed: what the runner calls to make each
/// incarnation. Its captured state is user code, so it is never dropped on
/// the loop: let go of there, the box goes to the loop's graveyard as it
/// is ([`offloop::bury_box`]; an [`OffLoop`] would box it again).
pub(crate) struct StartFn(Option<BoxedStart>);

type BoxedStart = Box<dyn FnMut() -> Result<SharedWorker, Error> + Send + 'static>;

impl StartFn {
    pub(crate) fn new(start: impl FnMut() -> Result<SharedWorker, Error> + Send + 'static) -> Self {
        StartFn(Some(Box::new(start)))
    }

    /// Calls it (user code: the caller contains its panics).
    pub(crate) fn call(&mut self) -> Result<SharedWorker, Error> {
        (self
            .0
            .as_mut()
            .expect("a start function is held until dropped"))()
    }
}

impl Drop for StartFn {
    fn drop(&mut self) {
        if let Some(start) = self.0.take() {
            offloop::bury_box(start);
        }
    }
}

/// A worker instance as the machine holds it.
pub(crate) type Held = OffLoop<SharedWorker>;

/// Everything the loop can be told.
pub(crate) enum Event {
    /// For the state machine.
    Machine(machine::Event<ShellIo>),
    /// The report's snapshot; its workers are lent (see [`Lent`]) and
    /// come back home, to this runner, as a `Release`.
    Snapshot {
        reply: Reply<LentSnapshot>,
        home: Handle<Event>,
    },
    /// `waiting_for`.
    WaitingFor { reply: Reply<Vec<WaitingFor>> },
    /// What `stop_within` names when its deadline passes.
    Stragglers {
        reply: Reply<Vec<worker_core::Straggler>>,
    },
    /// `worker_names`.
    Names { reply: Reply<Vec<String>> },
}

/// A report's snapshot, and its workers' guard: the snapshot first, so
/// that its references go before the guard sends the lent ones home.
pub(crate) type LentSnapshot = (Vec<EntrySnapshot<SharedWorker>>, Lent<Event>);

/// The shell's types, as the machine sees them.
pub(crate) struct ShellIo;

impl Io for ShellIo {
    type StartReply = Reply<Result<(), StartError>>;
    type Start = StartFn;
    type Worker = Held;
    type WorkerReply = Reply<Result<SharedWorker, LookupError>>;
    type RemoveReply = Reply<Result<(), RemoveError>>;
    type ReadyReply = Reply<Result<(), ReadyError>>;
}

/// The runner's machine, as the driver runs it.
pub(crate) struct Shell {
    pub(crate) machine: Machine<ShellIo>,
    pub(crate) policies: Arc<Policies>,
    /// The events waiting for the hooks, if there is a hook.
    pub(crate) hooks: Option<Arc<worker_core::events::Delivery>>,
    /// Reused between events.
    pub(crate) out: Actions<ShellIo>,
    /// Workers lent to reports, which the runner's end waits for.
    pub(crate) lending: Lending,
}

impl worker_core::supervisor::Machine for Shell {
    type Event = Event;
    type Job = StartJob;

    fn handle(&mut self, event: Event, now: Instant, fx: &mut Effects<StartJob>) {
        match event {
            Event::Machine(machine::Event::Release { workers }) => {
                self.lending.back(workers.len(), fx);
                drop(workers);
            }
            Event::Machine(event) => {
                // A burst of start requests hands its jobs over once, when
                // it pauses.
                if matches!(event, machine::Event::Start { .. }) {
                    fx.hold();
                }
                // A request that waits is acknowledged, so that its
                // caller watches its abort signal from then on.
                let waits = match &event {
                    machine::Event::Lookup { reply, .. } => Some(Waiting::Worker(reply.clone())),
                    machine::Event::StopAndRemove { reply, .. } => {
                        Some(Waiting::Removal(reply.clone()))
                    }
                    machine::Event::Ready { reply, .. } => Some(Waiting::Ready(reply.clone())),
                    _ => None,
                };
                let mut out = std::mem::take(&mut self.out);
                self.machine.handle(event, now, &mut out);
                if let Some(waits) = waits {
                    if !waits.answered_in(&out) {
                        waits.ack();
                    }
                }
                self.execute(&mut out, fx);
                self.out = out;
            }
            Event::Snapshot { reply, home } => {
                let snapshot: Vec<EntrySnapshot<SharedWorker>> = self
                    .machine
                    .snapshot()
                    .into_iter()
                    .map(|e| e.map_worker(OffLoop::into_inner))
                    .collect();
                let workers = snapshot.iter().filter_map(|e| e.worker.clone()).collect();
                let lent = self.lending.lend(workers, home, |workers| {
                    Event::Machine(machine::Event::Release { workers })
                });
                reply.send((snapshot, lent));
            }
            Event::WaitingFor { reply } => reply.send(self.machine.waiting_for(now)),
            Event::Stragglers { reply } => reply.send(self.machine.stragglers(now)),
            Event::Names { reply } => reply.send(self.machine.names()),
        }
    }

    fn kill(&mut self, now: Instant, fx: &mut Effects<StartJob>) {
        let mut out = std::mem::take(&mut self.out);
        self.machine.handle(machine::Event::Kill, now, &mut out);
        self.execute(&mut out, fx);
        self.out = out;
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.machine.next_deadline()
    }

    fn handle_timeout(&mut self, now: Instant, fx: &mut Effects<StartJob>) {
        let mut out = std::mem::take(&mut self.out);
        self.machine.tick(now, &mut out);
        self.execute(&mut out, fx);
        self.out = out;
    }

    fn ends_job(event: &Event) -> bool {
        matches!(event, Event::Machine(machine::Event::Started { .. }))
    }

    fn abandon(&mut self) -> Vec<SharedWorker> {
        self.machine
            .instances()
            .into_iter()
            .map(OffLoop::into_inner)
            .collect()
    }
}

impl Shell {
    fn execute(&mut self, out: &mut Actions<ShellIo>, fx: &mut Effects<StartJob>) {
        for action in out.drain(..) {
            match action {
                Action::Start {
                    slot,
                    generation,
                    id,
                    start,
                    permanent,
                } => fx.run(StartJob {
                    slot,
                    generation,
                    id,
                    start,
                    permanent,
                }),
                Action::Kill { id, worker } => fx.kill(worker.into_inner(), id),
                Action::Abort { id, worker } => {
                    let worker = worker.into_inner();
                    fx.call(move || match worker.abortable() {
                        Some(forced) => forced.abort(),
                        None => tracing::warn!(%id, "worker said it could be aborted, and now says it cannot"),
                    });
                }
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
                Action::Reap { worker } => fx.reap(worker.into_inner()),
                Action::Accepted { to, result } => to.send(result.map_err(|e| *e)),
                Action::Reply { to, result } => {
                    to.send(result.map(OffLoop::into_inner).map_err(|e| *e))
                }
                Action::Removed { to, result } => to.send(result.map_err(|e| *e)),
                Action::Ready { to, result } => to.send(result.map_err(|e| *e)),
                Action::Dying => fx.dying(),
                Action::Finished { errors } => {
                    let end = self.end(errors);
                    self.lending.finish(end, fx);
                }
            }
        }
    }

    /// The runner's result: the most important fatal error, ranked off
    /// the loop when a ranking policy has to choose.
    fn end(&self, mut errors: Vec<Error>) -> Finish {
        if errors.len() < 2 || !self.policies.ranks() {
            return Finish::Now(errors.drain(..).next().map_or(Ok(()), Err));
        }
        let policies = self.policies.clone();
        Finish::Later(Box::new(move || {
            policies.most_important(errors).map_or(Ok(()), Err)
        }))
    }
}

/// A waiting request's reply, kept to acknowledge it.
enum Waiting {
    Worker(Reply<Result<SharedWorker, LookupError>>),
    Removal(Reply<Result<(), RemoveError>>),
    Ready(Reply<Result<(), ReadyError>>),
}

impl Waiting {
    /// Whether `out` already answers it.
    fn answered_in(&self, out: &Actions<ShellIo>) -> bool {
        out.iter().any(|a| match (self, a) {
            (Waiting::Worker(ack), Action::Reply { to, .. }) => to.same(ack),
            (Waiting::Removal(ack), Action::Removed { to, .. }) => to.same(ack),
            (Waiting::Ready(ack), Action::Ready { to, .. }) => to.same(ack),
            _ => false,
        })
    }

    fn ack(&self) {
        match self {
            Waiting::Worker(reply) => reply.ack(),
            Waiting::Removal(reply) => reply.ack(),
            Waiting::Ready(reply) => reply.ack(),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Events and actions queue up by the hundred thousand when a big
    /// runner stops; they must stay small.
    #[test]
    fn events_and_actions_stay_small() {
        use std::mem::size_of;
        let event = size_of::<super::Event>();
        assert!(event <= 96, "Event: {event}");
        let action = size_of::<crate::machine::Action<super::ShellIo>>();
        assert!(action <= 48, "Action: {action}");
    }
}

//! The runner's decisions, as a pure state machine.
//!
//! [`Machine`] knows which ids exist, where each one is in its life
//! ([`State`]), when the next restart or stuck check is due, and what the
//! runner's final error is. It is driven through one entry point,
//! [`Machine::handle`] (plus [`Machine::tick`] for time passing), and
//! answers with [`Action`]s for the shell to carry out. It holds no
//! thread, channel or clock, so tests drive it directly and
//! deterministically. It calls no user code at all: the error policies
//! and the jitter source are asked off the loop, and their answers come
//! in with the news as a [`Verdict`] (see `verdict`); the event hook is
//! handed [`Action::Event`]s to call off the loop.
//!
//! What the shell moves in and out (the start function, a worker
//! instance, the reply channels of waiting callers) is opaque to the
//! machine: the [`Io`] trait names those types, so the tests can use plain
//! numbers.
//!
//! Every incarnation of an id gets a new generation, and every event about
//! an incarnation carries its slot and generation: an event about an
//! incarnation that is gone can never be mistaken for the current one.
//!
//! The modules: `requests` (what callers ask), `transitions` (what an
//! ending, a stop or a removal does to an entry), `restart` (restarts,
//! their limits, and the cascades of the restart strategies), `shutdown`
//! (stopping the runner, ordered or not, stuck and forced workers,
//! automatic shutdown), `limits` (the intensity window and suture's
//! failure count).

mod entry;
mod hash;
mod limits;
#[cfg(test)]
mod proptests;
mod ready;
mod requests;
mod restart;
mod shutdown;
mod slab;
mod stragglers;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_otp;
#[cfg(test)]
mod tests_ready;
mod transitions;
mod verdict;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use worker_core::Error;

use crate::error::{LookupError, RemoveError, StartError};
use worker_core::supervisor::Timers;
use worker_core::supervisor::ready::ReadyWaiters;
use worker_core::{Names, ReadyError};

pub(crate) use entry::{EntrySnapshot, RestartCause, StateName};
pub(crate) use verdict::{Policies, Verdict};

use self::entry::{Entry, Stamp, State};
use crate::policy::{Intensity, RestartPolicy, RestartType};
use crate::status::{Stage, WaitingFor};
use crate::supervision::{AutoShutdown, FailureBackoff, Shutdown, ShutdownOrder, Strategy};
use worker_core::events::{Event as LifeEvent, EventKind};

/// Index of an entry in the machine's slot table.
pub(crate) type Slot = u32;
/// Number of one incarnation; never reused within a runner.
pub(crate) type Generation = u64;
/// Identifies one waiting `worker()` or `stop_and_remove_worker()` call,
/// so an aborted caller can withdraw.
pub(crate) type WaiterId = u64;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// The restart delay of a `Delayed` entry is over.
    Restart(Slot),
    /// An incarnation asked to stop has had its stop timeout.
    Stuck(Slot),
    /// A `stop_and_remove_worker` caller's timeout.
    Removal(Slot, WaiterId),
    /// The delay of a cascade is over.
    Group,
    /// A failure backoff pause is over.
    Resume,
}

/// The things the shell hands the machine and gets back, opaque to it.
pub(crate) trait Io {
    /// Where the answer to a `start_worker()` call goes.
    type StartReply;
    /// A start function.
    type Start;
    /// A running worker instance.
    type Worker: Clone;
    /// Where the answer to a `worker()` call goes.
    type WorkerReply;
    /// Where the answer to a `stop_and_remove_worker()` call goes.
    type RemoveReply;
    /// Where the answer to a `wait_ready()` call goes.
    type ReadyReply;
}

/// Everything the machine can be told, for [`Machine::handle`].
pub(crate) enum Event<T: Io> {
    /// `start_worker`.
    Start {
        id: String,
        options: Option<Box<crate::policy::WorkerOptions>>,
        start: T::Start,
        reply: T::StartReply,
    },
    /// `stop_worker`.
    Stop { id: String },
    /// `stop_and_remove_worker`, with the caller's timeout if any.
    StopAndRemove {
        id: String,
        waiter: WaiterId,
        reply: T::RemoveReply,
        timeout: Option<Duration>,
    },
    /// `worker`.
    Lookup {
        id: String,
        waiter: WaiterId,
        reply: T::WorkerReply,
    },
    /// An aborted `worker` or `stop_and_remove_worker` caller withdraws.
    Cancel { id: String, waiter: WaiterId },
    /// `wait_ready`: until every id of `which` has started, for at most
    /// `timeout`.
    Ready {
        which: Box<Names>,
        waiter: WaiterId,
        timeout: Duration,
        reply: T::ReadyReply,
    },
    /// An aborted `wait_ready` caller withdraws.
    CancelReady { waiter: WaiterId },
    /// `kill`.
    Kill,
    /// A start function returned.
    Started {
        slot: Slot,
        generation: Generation,
        started: Started<T>,
    },
    /// An instance finished.
    Exited {
        slot: Slot,
        generation: Generation,
        outcome: worker_core::Outcome,
        verdict: Verdict,
    },
    /// A report is done with the workers it was lent: the machine lets go
    /// of them, as of any other (the shell's workers are dropped off the
    /// loop), so that a report never runs a worker's `Drop`.
    Release { workers: Vec<T::Worker> },
}

/// What the shell must do.
pub(crate) enum Action<T: Io> {
    /// Answer a `start_worker()` call.
    Accepted {
        to: T::StartReply,
        /// Boxed: errors are rare, and actions queue by the thousand.
        result: Result<(), Box<StartError>>,
    },
    /// Run `start` for incarnation `generation` of `id`, off the loop, and
    /// report back with [`Event::Started`].
    Start {
        slot: Slot,
        generation: Generation,
        id: Arc<str>,
        start: T::Start,
        /// Whether the worker is restarted after a clean exit (so its
        /// verdict needs a jitter sample even then).
        permanent: bool,
    },
    /// Kill this instance; its ending comes back as [`Event::Exited`].
    Kill { id: Arc<str>, worker: T::Worker },
    /// Abort this instance (it said it can be: `Worker::abortable`).
    Abort { id: Arc<str>, worker: T::Worker },
    /// This instance has finished: let go of it (call its `wait`, which
    /// joins its thread if it has one).
    Reap { worker: T::Worker },
    /// Answer a `worker()` call.
    Reply {
        to: T::WorkerReply,
        /// Boxed: errors are rare, and actions queue by the thousand.
        result: Result<T::Worker, Box<LookupError>>,
    },
    /// Answer a `stop_and_remove_worker()` call.
    Removed {
        to: T::RemoveReply,
        /// Boxed: errors are rare, and actions queue by the thousand.
        result: Result<(), Box<RemoveError>>,
    },
    /// Answer a `wait_ready()` call.
    Ready {
        to: T::ReadyReply,
        /// Boxed, as the other answers.
        result: Result<(), Box<ReadyError>>,
    },
    /// Hand this event to the hooks (emitted only when there is one).
    Event(Box<LifeEvent>),
    /// The runner has started shutting down.
    Dying,
    /// Every worker is gone. Emitted exactly once, with the fatal errors
    /// seen, in order: the runner's result is the most important of them
    /// (the first, unless a `more_important` policy ranks them), or `Ok`
    /// if there is none. Without a ranking policy only the first is kept.
    Finished { errors: Vec<Error> },
}

impl<T: Io> std::fmt::Debug for Action<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Start {
                slot,
                generation,
                id,
                ..
            } => write!(f, "Start({id:?}, slot {slot}, generation {generation})"),
            Action::Kill { id, .. } => write!(f, "Kill({id:?})"),
            Action::Abort { id, .. } => write!(f, "Abort({id:?})"),
            Action::Reap { .. } => f.write_str("Reap"),
            Action::Reply { result, .. } => write!(f, "Reply(ok: {})", result.is_ok()),
            Action::Removed { result, .. } => write!(f, "Removed({result:?})"),
            Action::Ready { result, .. } => write!(f, "Ready({result:?})"),
            Action::Event(event) => write!(f, "Event({event:?})"),
            Action::Dying => f.write_str("Dying"),
            Action::Finished { errors } => write!(f, "Finished({errors:?})"),
            Action::Accepted { result, .. } => write!(f, "Accepted({result:?})"),
        }
    }
}

/// What comes back from running a start function.
pub(crate) struct Started<T: Io> {
    /// The new instance, or why there is none.
    pub(crate) result: Result<T::Worker, Error>,
    /// What the policies say about the failure (when `result` is one).
    pub(crate) verdict: Verdict,
    /// Whether the instance is a reporter.
    pub(crate) reports: bool,
    /// Whether the instance can be aborted.
    pub(crate) abortable: bool,
    /// The start function, back for later restarts.
    pub(crate) start: T::Start,
}

/// The machine's share of the runner's parameters.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The runner's name, as its events give it.
    pub(crate) name: Arc<str>,
    pub(crate) restart_type: RestartType,
    pub(crate) policy: RestartPolicy,
    pub(crate) stop_timeout: Option<Duration>,
    /// Keep every fatal error for a ranking policy, not just the first.
    pub(crate) keep_all_fatal: bool,
    pub(crate) strategy: Strategy,
    /// The runner-wide intensity limit.
    pub(crate) intensity: Option<Intensity>,
    pub(crate) failure_backoff: Option<FailureBackoff>,
    /// The workers' default shutdown.
    pub(crate) shutdown: Shutdown,
    pub(crate) shutdown_order: ShutdownOrder,
    pub(crate) auto_shutdown: AutoShutdown,
    /// Whether a hook wants [`Action::Event`]s.
    pub(crate) events: bool,
}

impl Config {
    /// Go's runner: every option off.
    pub(crate) fn new(policy: RestartPolicy) -> Self {
        Config {
            name: Arc::from("runner"),
            restart_type: RestartType::default(),
            policy,
            stop_timeout: None,
            keep_all_fatal: false,
            strategy: Strategy::default(),
            intensity: None,
            failure_backoff: None,
            shutdown: Shutdown::default(),
            shutdown_order: ShutdownOrder::default(),
            auto_shutdown: AutoShutdown::default(),
            events: false,
        }
    }
}

/// The actions of one event, in order.
pub(crate) type Actions<T> = Vec<Action<T>>;

/// The runner's state machine; see the [module docs](self).
pub(crate) struct Machine<T: Io> {
    config: Config,
    slots: slab::Slab<Entry<T>>,
    /// The origin of the entries' compact times (see [`Stamp`]).
    epoch: Instant,
    free: Vec<Slot>,
    index: HashMap<Arc<str>, Slot, hash::FxBuild>,
    deadlines: Timers<Key>,
    next_generation: Generation,
    /// The start order of the next new id.
    next_seq: u64,
    dying: bool,
    finished: bool,
    /// The fatal errors seen, in order (only the first without a ranking
    /// policy).
    fatal_errors: Vec<Error>,
    /// The cascade in progress, if any.
    group: Option<restart::Group>,
    /// Times of the runner's recent restarts, for its intensity limit.
    restarts: VecDeque<Instant>,
    /// Suture's failure count, with a failure backoff.
    throttle: Option<limits::Throttle>,
    /// Restarts that fell due while restarts were paused.
    paused: Vec<Slot>,
    /// An ordered shutdown in progress.
    ordered: Option<shutdown::Ordered>,
    /// Significant ids not asked to stop.
    significant: usize,
    /// Callers of `wait_ready` (see `ready`).
    ready: ReadyWaiters<T::ReadyReply>,
}

impl<T: Io> Machine<T> {
    pub(crate) fn new(config: Config, epoch: Instant) -> Self {
        Machine {
            throttle: config.failure_backoff.map(limits::Throttle::new),
            config,
            slots: slab::Slab::default(),
            epoch,
            free: Vec::new(),
            index: HashMap::default(),
            deadlines: Timers::new(),
            next_generation: 0,
            next_seq: 0,
            dying: false,
            finished: false,
            fatal_errors: Vec::new(),
            group: None,
            restarts: VecDeque::new(),
            paused: Vec::new(),
            ordered: None,
            significant: 0,
            ready: ReadyWaiters::new(),
        }
    }

    /// The one entry point: handles `event` and settles (releases a
    /// cascade that is ready, moves an ordered shutdown on, and emits
    /// [`Action::Finished`] once nothing is left after a shutdown began).
    pub(crate) fn handle(&mut self, event: Event<T>, now: Instant, out: &mut Actions<T>) {
        match event {
            Event::Start {
                id,
                options,
                start,
                reply,
            } => {
                let result = self.start(id, options, start, now, out);
                out.push(Action::Accepted {
                    to: reply,
                    result: result.map_err(Box::new),
                });
            }
            Event::Stop { id } => self.stop(&id, now, out),
            Event::StopAndRemove {
                id,
                waiter,
                reply,
                timeout,
            } => self.stop_and_remove(&id, waiter, reply, timeout, now, out),
            Event::Lookup { id, waiter, reply } => self.lookup(&id, waiter, reply, out),
            Event::Cancel { id, waiter } => self.cancel_wait(&id, waiter),
            Event::Ready {
                which,
                waiter,
                timeout,
                reply,
            } => self.ready_request(&which, waiter, timeout, reply, now, out),
            Event::CancelReady { waiter } => self.cancel_ready(waiter),
            Event::Kill => self.kill(now, out),
            Event::Started {
                slot,
                generation,
                started,
            } => self.started(slot, generation, started, now, out),
            Event::Exited {
                slot,
                generation,
                outcome,
                verdict,
            } => self.exited(slot, generation, outcome, verdict, now, out),
            Event::Release { workers } => drop(workers),
        }
        self.settle(now, out);
    }

    /// Time has passed: starts the restarts that are due, flags the
    /// incarnations that are stuck (forcing those whose shutdown says so),
    /// times out removals, and ends a failure backoff pause.
    pub(crate) fn tick(&mut self, now: Instant, out: &mut Actions<T>) {
        while let Some((key, at)) = self.deadlines.pop_due(now) {
            if !self.deadline_current(key, at) {
                debug_assert!(false, "a deadline outlived what it was for: {key:?}");
                continue;
            }
            match key {
                Key::Restart(slot) => {
                    if self.throttle.as_ref().is_some_and(|t| t.is_paused()) {
                        self.paused.push(slot);
                    } else {
                        self.restart_now(slot, now, out);
                    }
                }
                Key::Stuck(slot) => self.stuck(slot, now, out),
                Key::Removal(slot, waiter) => self.removal_timed_out(slot, waiter, out),
                // Released by `settle`.
                Key::Group => {}
                Key::Resume => self.resume(now, out),
            }
        }
        self.ready_tick(now, out);
        self.settle(now, out);
    }

    /// The earliest deadline still pending, if any.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        let mine = self.deadlines.next();
        match self.ready.next_deadline() {
            Some(ready) => Some(mine.map_or(ready, |d| d.min(ready))),
            None => mine,
        }
    }

    /// Every worker instance the machine holds (for a driver that gives
    /// up on it).
    pub(crate) fn instances(&self) -> Vec<T::Worker> {
        self.entries()
            .filter_map(|e| e.state.worker().cloned())
            .collect()
    }

    /// Whether shutdown has begun (killed, a fatal error, or automatic).
    #[cfg(test)]
    pub(crate) fn is_dying(&self) -> bool {
        self.dying
    }

    /// Whether [`Action::Finished`] has been emitted.
    #[cfg(test)]
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// How many ids are known.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live()
    }

    /// How many entries there are (the index may hold more while dying).
    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// The slot of `id`, if the runner knows it. The index alone is not
    /// enough while dying: it keeps the ids removed since (see
    /// `Machine::remove`), whose slots are then empty.
    fn slot_of(&self, id: &str) -> Option<Slot> {
        let slot = *self.index.get(id)?;
        self.entry(slot).filter(|e| &*e.id == id).map(|_| slot)
    }

    /// How many deadlines are pending (each for a live entry).
    #[cfg(test)]
    pub(crate) fn deadline_count(&self) -> usize {
        self.deadlines.len()
    }

    // ----- queries --------------------------------------------------------

    /// Every id with what the report shows of it.
    pub(crate) fn snapshot(&self) -> Vec<EntrySnapshot<T::Worker>> {
        // Sized up front: the iterator cannot tell its length, and growing
        // a 10,000-entry list by doubling copies it a dozen times.
        let mut snapshot = Vec::with_capacity(self.slots.len());
        snapshot.extend(self.entries().map(|e| EntrySnapshot {
            id: e.id.clone(),
            state: e.state.name(),
            worker: if e.reports {
                e.state.worker().cloned()
            } else {
                None
            },
            started_at: e.started_at.instant(self.epoch),
            cause: e.cause().cloned(),
            stuck_since: match &e.state {
                State::Stopping { mark, .. }
                | State::Starting {
                    stop: Some(mark), ..
                } if mark.stuck => Some(mark.since.instant(self.epoch)),
                _ => None,
            },
        }));
        snapshot
    }

    /// The ids that were asked to stop and have not finished, by id.
    pub(crate) fn waiting_for(&self, now: Instant) -> Vec<WaitingFor> {
        let mut list: Vec<WaitingFor> = self
            .entries()
            .filter_map(|e| {
                let (stage, since, stuck) = match &e.state {
                    State::Stopping { mark, .. } => (Stage::Stopping, mark.since, mark.stuck),
                    State::Starting { stop: Some(mark) } => {
                        (Stage::Starting, e.started_at, mark.stuck)
                    }
                    _ => return None,
                };
                Some(WaitingFor {
                    id: e.id.to_string(),
                    stage,
                    elapsed: now.saturating_duration_since(since.instant(self.epoch)),
                    stuck,
                })
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// Every known id, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .index
            .keys()
            .filter(|id| self.slot_of(id).is_some())
            .map(|k| k.to_string())
            .collect();
        names.sort();
        names
    }

    // ----- helpers --------------------------------------------------------

    /// Hands the event `kind` about the runner to the log and, when there
    /// is a hook, to the hooks. Nothing is made when nobody listens.
    fn emit(&self, out: &mut Actions<T>, kind: impl FnOnce() -> EventKind) {
        self.emit_event(out, None, kind);
    }

    /// Hands the event `kind` about the current incarnation of `slot` to
    /// the log and the hooks, as [`emit`](Self::emit) does.
    fn emit_for(&self, out: &mut Actions<T>, slot: Slot, kind: impl FnOnce() -> EventKind) {
        let entry = self.entry(slot).expect("an event about an entry");
        self.emit_event(out, Some((&entry.id, entry.generation)), kind);
    }

    fn emit_event(
        &self,
        out: &mut Actions<T>,
        worker: Option<(&Arc<str>, Generation)>,
        kind: impl FnOnce() -> EventKind,
    ) {
        let hooked = self.config.events;
        if !hooked && !worker_core::events::logging() {
            return;
        }
        let (worker, generation) = worker.map_or((None, 0), |(id, g)| (Some(id.clone()), g));
        let event = LifeEvent::new(self.config.name.clone(), worker, generation, kind());
        event.log();
        if hooked {
            out.push(Action::Event(Box::new(event)));
        }
    }

    /// The restart type of `slot`'s worker.
    fn restart_type(&self, slot: Slot) -> RestartType {
        self.entry(slot)
            .and_then(|e| e.options.as_ref())
            .and_then(|o| o.restart_type_override())
            .unwrap_or(self.config.restart_type)
    }

    /// How `slot`'s worker is stopped.
    fn shutdown_of(&self, slot: Slot) -> Shutdown {
        self.entry(slot)
            .and_then(|e| e.options.as_ref())
            .and_then(|o| o.shutdown_override())
            .unwrap_or(self.config.shutdown)
    }

    /// Whether `slot`'s worker is significant.
    fn is_significant(&self, slot: Slot) -> bool {
        self.entry(slot)
            .and_then(|e| e.options.as_ref())
            .is_some_and(|o| o.is_significant())
    }

    fn new_generation(&mut self) -> Generation {
        self.next_generation += 1;
        self.next_generation
    }

    /// Whether a deadline still stands for what it was set for (every
    /// transition that ends its reason cancels it, so it always should).
    fn deadline_current(&self, key: Key, at: Instant) -> bool {
        match key {
            Key::Restart(slot) => self
                .entry(slot)
                .is_some_and(|e| matches!(e.state, State::Delayed { until } if until == at)),
            Key::Stuck(slot) => self.entry(slot).is_some_and(|e| match &e.state {
                State::Stopping { mark, .. }
                | State::Starting {
                    stop: Some(mark), ..
                } => !mark.stuck,
                _ => false,
            }),
            Key::Removal(slot, waiter) => self.entry(slot).is_some_and(|e| {
                e.extra
                    .as_ref()
                    .is_some_and(|x| x.removers.iter().any(|r| r.waiter == waiter))
            }),
            Key::Group => self.group.as_ref().is_some_and(|g| g.until == at),
            Key::Resume => self.throttle.as_ref().is_some_and(|t| t.is_paused()),
        }
    }

    fn entries(&self) -> impl Iterator<Item = &Entry<T>> {
        self.slots.iter()
    }

    fn entry(&self, slot: Slot) -> Option<&Entry<T>> {
        self.slots.get(slot)
    }

    fn entry_mut_opt(&mut self, slot: Slot) -> Option<&mut Entry<T>> {
        self.slots.get_mut(slot)
    }

    fn entry_mut(&mut self, slot: Slot) -> &mut Entry<T> {
        self.entry_mut_opt(slot).expect("entry exists")
    }

    fn stamp(&self, now: Instant) -> Stamp {
        Stamp::new(self.epoch, now)
    }

    /// How long ago `stamp` was, at `now`.
    fn since(&self, stamp: Stamp, now: Instant) -> Duration {
        now.saturating_duration_since(stamp.instant(self.epoch))
    }
}

impl<T: Io> std::fmt::Debug for Machine<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("entries", &self.live())
            .field("deadlines", &self.deadlines.len())
            .field("dying", &self.dying)
            .field("finished", &self.finished)
            .field("fatal_errors", &self.fatal_errors)
            .finish_non_exhaustive()
    }
}

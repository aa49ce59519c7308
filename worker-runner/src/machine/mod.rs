//! The runner's decisions, as a pure state machine.
//!
//! [`Machine`] knows which ids exist, where each one is in its life
//! ([`State`]), when the next restart or stuck check is due, and what the
//! runner's final error is. It is driven by one method per event (a
//! request, a start function returning, an instance ending, time passing)
//! and answers with [`Action`]s for the shell to carry out. It holds no
//! thread, channel or clock, so tests drive it directly and
//! deterministically. It calls no user code at all: the error policies
//! and the jitter source are asked off the loop, and their answers come
//! in with the news as a [`Verdict`] (see `verdict`).
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
//! This module holds the types and the events; `transitions` holds what
//! the events do to an entry (stop, end, restart, shut down, remove) and
//! the guarded calls of the user's policies.

mod entry;
mod hash;
#[cfg(test)]
mod proptests;
mod slab;
#[cfg(test)]
mod tests;
mod transitions;
mod verdict;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use worker_core::{AlreadyExists, Dead, Error, NotFound, Outcome};

pub(crate) use entry::{EntrySnapshot, RestartCause, StateName};
pub(crate) use verdict::{Policies, Verdict};

use self::entry::Stamp;

use self::entry::{Entry, State};
use crate::error::{Dying, EmptyId};
use worker_core::supervisor::Timers;

use crate::policy::{RestartPolicy, RestartType, WorkerOptions};
use crate::status::{Stage, WaitingFor};

/// Index of an entry in the machine's slot table.
pub(crate) type Slot = u32;
/// Number of one incarnation; never reused within a runner.
pub(crate) type Generation = u64;
/// Identifies one waiting `worker()` or `stop_and_remove_worker()` call,
/// so an aborted caller can withdraw.
pub(crate) type WaiterId = u64;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// The restart delay of a `Delayed` entry is over.
    Restart,
    /// A killed instance has had its stop timeout.
    Stuck,
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
}

/// Everything the machine can be told, for [`Machine::handle`].
pub(crate) enum Event<T: Io> {
    /// `start_worker`.
    Start {
        id: String,
        options: Option<Box<WorkerOptions>>,
        start: T::Start,
        reply: T::StartReply,
    },
    /// `stop_worker`.
    Stop { id: String },
    /// `stop_and_remove_worker`.
    StopAndRemove {
        id: String,
        waiter: WaiterId,
        reply: T::RemoveReply,
    },
    /// `worker`.
    Lookup {
        id: String,
        waiter: WaiterId,
        reply: T::WorkerReply,
    },
    /// An aborted `worker` or `stop_and_remove_worker` caller withdraws.
    Cancel { id: String, waiter: WaiterId },
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
        outcome: Outcome,
        verdict: Verdict,
    },
}

/// What the shell must do.
pub(crate) enum Action<T: Io> {
    /// Answer a `start_worker()` call.
    Accepted {
        to: T::StartReply,
        result: Result<(), Error>,
    },
    /// Run `start` for incarnation `generation` of `id`, off the loop, and
    /// report back with [`Machine::started`].
    Start {
        slot: Slot,
        generation: Generation,
        id: Arc<str>,
        start: T::Start,
        /// Whether the worker is restarted after a clean exit (so its
        /// verdict needs a jitter sample even then).
        permanent: bool,
    },
    /// Kill this instance; its ending comes back through
    /// [`Machine::exited`].
    Kill { id: Arc<str>, worker: T::Worker },
    /// This instance has finished: let go of it (call its `wait`, which
    /// joins its thread if it has one).
    Reap { worker: T::Worker },
    /// Answer a `worker()` call.
    Reply {
        to: T::WorkerReply,
        result: Result<T::Worker, Error>,
    },
    /// Answer a `stop_and_remove_worker()` call.
    Removed {
        to: T::RemoveReply,
        result: Result<(), Error>,
    },
    /// This instance has not stopped `after` its kill.
    Stuck { id: Arc<str>, after: Duration },
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
            Action::Reap { .. } => f.write_str("Reap"),
            Action::Reply { result, .. } => write!(f, "Reply(ok: {})", result.is_ok()),
            Action::Removed { result, .. } => write!(f, "Removed({result:?})"),
            Action::Stuck { id, after } => write!(f, "Stuck({id:?}, {after:?})"),
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
    /// The start function, back for later restarts.
    pub(crate) start: T::Start,
}

/// The machine's share of the runner's parameters.
pub(crate) struct Config {
    pub(crate) restart_type: RestartType,
    pub(crate) policy: RestartPolicy,
    pub(crate) stop_timeout: Option<Duration>,
    /// Keep every fatal error for a ranking policy, not just the first.
    pub(crate) keep_all_fatal: bool,
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
    deadlines: Timers<(Slot, Kind)>,
    next_generation: Generation,
    dying: bool,
    finished: bool,
    /// The fatal errors seen, in order (only the first without a ranking
    /// policy).
    fatal_errors: Vec<Error>,
}

impl<T: Io> Machine<T> {
    pub(crate) fn new(config: Config, epoch: Instant) -> Self {
        Machine {
            config,
            slots: slab::Slab::default(),
            epoch,
            free: Vec::new(),
            index: HashMap::default(),
            deadlines: Timers::new(),
            next_generation: 0,
            dying: false,
            finished: false,
            fatal_errors: Vec::new(),
        }
    }

    /// The one entry point: handles `event` and settles (if nothing is
    /// left to wait for after a shutdown began, emits
    /// [`Action::Finished`]).
    pub(crate) fn handle(&mut self, event: Event<T>, now: Instant, out: &mut Actions<T>) {
        match event {
            Event::Start {
                id,
                options,
                start,
                reply,
            } => {
                let result = self.start(id, options, start, now, out);
                out.push(Action::Accepted { to: reply, result });
            }
            Event::Stop { id } => self.stop(&id, now, out),
            Event::StopAndRemove { id, waiter, reply } => {
                self.stop_and_remove(&id, waiter, reply, now, out)
            }
            Event::Lookup { id, waiter, reply } => self.lookup(&id, waiter, reply, out),
            Event::Cancel { id, waiter } => self.cancel_wait(&id, waiter),
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
        }
        self.settle(out);
    }

    /// Every worker instance the machine holds (for a driver that gives
    /// up on it).
    pub(crate) fn instances(&self) -> Vec<T::Worker> {
        self.entries()
            .filter_map(|e| e.state.worker().cloned())
            .collect()
    }

    /// Whether shutdown has begun (killed, or a fatal error).
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
        self.index.len()
    }

    // ----- requests -------------------------------------------------------

    /// `start_worker`: registers `id` and starts it at once. Fails with
    /// [`EmptyId`], [`Dying`] or [`AlreadyExists`] (for an id in any state,
    /// including stopping), dropping `start`.
    pub(crate) fn start(
        &mut self,
        id: String,
        options: Option<Box<WorkerOptions>>,
        start: T::Start,
        now: Instant,
        out: &mut Actions<T>,
    ) -> Result<(), Error> {
        if id.is_empty() {
            return Err(EmptyId.into());
        }
        if self.dying {
            return Err(Dying.into());
        }
        let id: Arc<str> = id.into();
        let vacant = match self.index.entry(id.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => {
                return Err(AlreadyExists::new(&*id).into());
            }
            std::collections::hash_map::Entry::Vacant(v) => v,
        };
        let slot = match self.free.last() {
            Some(&slot) => slot,
            None => self.slots.len() as Slot,
        };
        vacant.insert(slot);
        let generation = self.new_generation();
        let entry = Entry {
            id: id.clone(),
            generation,
            state: State::Starting,
            start: None,
            options,
            started_at: Stamp::new(self.epoch, now),
            attempts: 0,
            stop_requested: false,
            reports: false,
            extra: None,
        };
        if self.free.pop().is_some() {
            *self.slots.cell(slot) = Some(entry);
        } else {
            self.slots.push(entry);
        }
        tracing::trace!(%id, generation, "starting worker");
        let permanent = self.restart_type(slot) == RestartType::Permanent;
        out.push(Action::Start {
            slot,
            generation,
            id,
            start,
            permanent,
        });
        Ok(())
    }

    /// `stop_worker`: the id will not be restarted; its instance is killed
    /// (at once, or as soon as its start function returns), and an id
    /// waiting out a restart delay is removed at once. Unknown ids are
    /// ignored.
    pub(crate) fn stop(&mut self, id: &str, now: Instant, out: &mut Actions<T>) {
        if let Some(&slot) = self.index.get(id) {
            self.stop_slot(slot, now, out);
            self.settle(out);
        }
    }

    /// `stop_and_remove_worker`: as [`stop`](Self::stop), and `reply` gets
    /// the stopped incarnation's result once the id is gone. Fails at once
    /// with [`Dead`] while dying and [`NotFound`] for an unknown id.
    pub(crate) fn stop_and_remove(
        &mut self,
        id: &str,
        waiter: WaiterId,
        reply: T::RemoveReply,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        if self.dying {
            out.push(Action::Removed {
                to: reply,
                result: Err(Dead.into()),
            });
            return;
        }
        let Some(&slot) = self.index.get(id) else {
            out.push(Action::Removed {
                to: reply,
                result: Err(NotFound::new(id).into()),
            });
            return;
        };
        self.entry_mut(slot)
            .extra_mut()
            .removers
            .push((waiter, reply));
        self.stop_slot(slot, now, out);
        self.settle(out);
    }

    /// `worker`: answers at once with the running instance, [`Dead`] while
    /// dying or [`NotFound`]; otherwise `reply` waits until an instance is
    /// running (or the id goes away).
    pub(crate) fn lookup(
        &mut self,
        id: &str,
        waiter: WaiterId,
        reply: T::WorkerReply,
        out: &mut Actions<T>,
    ) {
        if self.dying {
            out.push(Action::Reply {
                to: reply,
                result: Err(Dead.into()),
            });
            return;
        }
        let Some(&slot) = self.index.get(id) else {
            out.push(Action::Reply {
                to: reply,
                result: Err(NotFound::new(id).into()),
            });
            return;
        };
        let entry = self.entry_mut(slot);
        if let State::Running(w) = &entry.state {
            let result = Ok(w.clone());
            out.push(Action::Reply { to: reply, result });
        } else {
            entry.extra_mut().worker_waiters.push((waiter, reply));
        }
    }

    /// An aborted `worker()` or `stop_and_remove_worker()` caller withdraws
    /// (the stop itself goes on).
    pub(crate) fn cancel_wait(&mut self, id: &str, waiter: WaiterId) {
        let Some(&slot) = self.index.get(id) else {
            return;
        };
        if let Some(extra) = self.entry_mut(slot).extra.as_mut() {
            extra.worker_waiters.retain(|(w, _)| *w != waiter);
            extra.removers.retain(|(w, _)| *w != waiter);
        }
    }

    /// `kill`: begins shutdown (idempotent).
    pub(crate) fn kill(&mut self, now: Instant, out: &mut Actions<T>) {
        if !self.dying {
            tracing::debug!("runner killed");
            self.begin_dying(now, out);
        }
        self.settle(out);
    }

    // ----- events ---------------------------------------------------------

    /// A start function returned (see [`Started`]).
    pub(crate) fn started(
        &mut self,
        slot: Slot,
        generation: Generation,
        started: Started<T>,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        let Started {
            result,
            verdict,
            reports,
            start,
        } = started;
        let current = self
            .entry(slot)
            .is_some_and(|e| e.generation == generation && matches!(e.state, State::Starting));
        if !current {
            // Cannot happen: an entry stays `Starting` until its start
            // function returns. Never leave an instance running unseen.
            debug_assert!(false, "start result for an unknown incarnation");
            if let Ok(worker) = result {
                out.push(Action::Kill {
                    id: "(orphan)".into(),
                    worker,
                });
            }
            return;
        }
        let entry = self.entry_mut(slot);
        entry.start = Some(start);
        entry.reports = reports;
        match result {
            Ok(worker) => {
                if entry.stop_requested {
                    tracing::debug!(id = %entry.id, "killing worker that was stopped while starting");
                    self.kill_instance(slot, worker, now, out);
                } else {
                    tracing::trace!(id = %entry.id, generation, "worker started");
                    if let Some(extra) = entry.extra.as_mut() {
                        for (_, to) in extra.worker_waiters.drain(..) {
                            out.push(Action::Reply {
                                to,
                                result: Ok(worker.clone()),
                            });
                        }
                    }
                    entry.state = State::Running(worker);
                }
            }
            Err(e) => {
                tracing::debug!(id = %entry.id, error = %e, "start function failed");
                self.ended(slot, Err(e), verdict, now, out);
            }
        }
        self.settle(out);
    }

    /// An instance finished with `outcome`. Events for an incarnation that
    /// is no longer current are ignored.
    pub(crate) fn exited(
        &mut self,
        slot: Slot,
        generation: Generation,
        outcome: Outcome,
        verdict: Verdict,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        let Some(entry) = self.entry_mut_opt(slot) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        let worker = match std::mem::replace(&mut entry.state, State::Starting) {
            State::Running(w) | State::Stopping { worker: w, .. } => w,
            other => {
                // Already ended (a second report of the same ending).
                entry.state = other;
                return;
            }
        };
        self.deadlines.cancel(&(slot, Kind::Stuck));
        out.push(Action::Reap { worker });
        self.ended(slot, outcome, verdict, now, out);
        self.settle(out);
    }

    /// Time has passed: starts the restarts that are due and flags the
    /// instances that are stuck.
    pub(crate) fn tick(&mut self, now: Instant, out: &mut Actions<T>) {
        while let Some(((slot, kind), at)) = self.deadlines.pop_due(now) {
            if !self.deadline_current(slot, kind, at) {
                debug_assert!(false, "a deadline outlived what it was for");
                continue;
            }
            match kind {
                Kind::Restart => self.restart_now(slot, now, out),
                Kind::Stuck => {
                    let epoch = self.epoch;
                    let entry = self.entry_mut(slot);
                    if let State::Stopping { since, stuck, .. } = &mut entry.state {
                        *stuck = true;
                        let after = now.saturating_duration_since(since.instant(epoch));
                        out.push(Action::Stuck {
                            id: entry.id.clone(),
                            after,
                        });
                    }
                }
            }
        }
        self.settle(out);
    }

    /// The earliest deadline still pending, if any.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.deadlines.next()
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
                State::Stopping {
                    since, stuck: true, ..
                } => Some(since.instant(self.epoch)),
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
                    State::Stopping { since, stuck, .. } => (Stage::Stopping, *since, *stuck),
                    State::Starting if e.stop_requested => (Stage::Starting, e.started_at, false),
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
        let mut names: Vec<String> = self.index.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    }

    // ----- helpers --------------------------------------------------------

    /// The restart type of `slot`'s worker.
    fn restart_type(&self, slot: Slot) -> RestartType {
        self.entry(slot)
            .and_then(|e| e.options.as_ref())
            .and_then(|o| o.restart_type_override())
            .unwrap_or(self.config.restart_type)
    }

    fn new_generation(&mut self) -> Generation {
        self.next_generation += 1;
        self.next_generation
    }

    fn push_deadline(&mut self, slot: Slot, kind: Kind, at: Instant) {
        self.deadlines.set((slot, kind), at);
    }

    /// Whether a deadline still stands for what it was set for (every
    /// transition that ends its reason cancels it, so it always should).
    fn deadline_current(&self, slot: Slot, kind: Kind, at: Instant) -> bool {
        self.entry(slot).is_some_and(|e| match (&e.state, kind) {
            (State::Delayed { until }, Kind::Restart) => *until == at,
            (State::Stopping { stuck, .. }, Kind::Stuck) => !stuck,
            _ => false,
        })
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
}

impl<T: Io> std::fmt::Debug for Machine<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("entries", &self.index.len())
            .field("deadlines", &self.deadlines.len())
            .field("dying", &self.dying)
            .field("finished", &self.finished)
            .field("fatal_errors", &self.fatal_errors)
            .finish_non_exhaustive()
    }
}

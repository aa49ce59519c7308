//! What callers ask of the machine (start, stop, remove, look up, kill),
//! and the news its jobs bring back (a start function returned, an
//! instance finished).

use std::sync::Arc;
use std::time::{Duration, Instant};

use worker_core::{AlreadyExists, Dead, NotFound, Outcome, deadline};

use super::entry::{Entry, Member, Remover, State};
use super::{
    Action, Actions, EventKind, Generation, Io, Key, Machine, Slot, Started, Verdict, WaiterId,
};
use crate::error::{Dying, EmptyId, InvalidParams, LookupError, RemoveError, StartError};
use crate::policy::{RestartType, WorkerOptions};
use crate::supervision::AutoShutdown;
use worker_core::events::{End, ShutdownCause};

impl<T: Io> Machine<T> {
    /// `start_worker`: registers `id` and starts it at once. Fails with
    /// [`EmptyId`], [`Dying`], [`AlreadyExists`] (for an id in any state,
    /// including stopping) or [`InvalidParams`] (a significant worker the
    /// runner cannot honour), dropping `start`.
    pub(crate) fn start(
        &mut self,
        id: String,
        options: Option<Box<WorkerOptions>>,
        start: T::Start,
        now: Instant,
        out: &mut Actions<T>,
    ) -> Result<(), StartError> {
        if id.is_empty() {
            return Err(StartError::EmptyId(EmptyId));
        }
        if self.dying {
            return Err(StartError::Dying(Dying));
        }
        let significant = options.as_ref().is_some_and(|o| o.is_significant());
        if significant {
            self.check_significant(options.as_deref())
                .map_err(StartError::InvalidParams)?;
        }
        let id: Arc<str> = id.into();
        let vacant = match self.index.entry(id.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => {
                return Err(StartError::AlreadyExists(AlreadyExists::new(&*id)));
            }
            std::collections::hash_map::Entry::Vacant(v) => v,
        };
        let slot = match self.free.last() {
            Some(&slot) => slot,
            None => self.slots.len() as Slot,
        };
        vacant.insert(slot);
        let generation = self.new_generation();
        let seq = self.next_seq;
        self.next_seq += 1;
        if significant {
            self.significant += 1;
        }
        let entry = Entry {
            id: id.clone(),
            generation,
            state: State::Starting { stop: None },
            start: None,
            options,
            started_at: self.stamp(now),
            attempts: 0,
            stop_requested: false,
            removing: false,
            reports: false,
            abortable: false,
            member: Member::No,
            seq,
            extra: None,
        };
        if self.free.pop().is_some() {
            *self.slots.cell(slot) = Some(entry);
        } else {
            self.slots.push(entry);
        }
        self.push_start(slot, generation, id, start, out);
        Ok(())
    }

    /// OTP's rules for significant workers: only under an automatic
    /// shutdown, and never permanent (a permanent worker never ends by
    /// itself for good).
    fn check_significant(&self, options: Option<&WorkerOptions>) -> Result<(), InvalidParams> {
        if self.config.auto_shutdown == AutoShutdown::Never {
            return Err(InvalidParams::new(
                "a significant worker needs the runner's auto_shutdown to be AnySignificant or AllSignificant",
            ));
        }
        let restart_type = options
            .and_then(|o| o.restart_type_override())
            .unwrap_or(self.config.restart_type);
        if restart_type == RestartType::Permanent {
            return Err(InvalidParams::new(
                "a significant worker must be transient or temporary, not permanent",
            ));
        }
        Ok(())
    }

    /// `stop_worker`: the id will not be restarted; its instance is killed
    /// (at once, or as soon as its start function returns), and an id
    /// waiting to restart is removed at once. Unknown ids are ignored, and
    /// so is every id while the runner shuts down: it is stopping them all
    /// already, in its own order.
    pub(crate) fn stop(&mut self, id: &str, now: Instant, out: &mut Actions<T>) {
        if self.dying {
            return;
        }
        if let Some(slot) = self.slot_of(id) {
            self.stop_slot(slot, now, out);
        }
    }

    /// `stop_and_remove_worker`: as [`stop`](Self::stop), and `reply` gets
    /// the stopped incarnation's result once the id is gone, or a
    /// [`RemoveTimedOut`](crate::RemoveTimedOut) error after `timeout`.
    /// Fails at once with [`Dead`] while dying and [`NotFound`] for an
    /// unknown id.
    pub(crate) fn stop_and_remove(
        &mut self,
        id: &str,
        waiter: WaiterId,
        reply: T::RemoveReply,
        timeout: Option<Duration>,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        if self.dying {
            out.push(Action::Removed {
                to: reply,
                result: Err(Box::new(RemoveError::Dead(Dead))),
            });
            return;
        }
        let Some(slot) = self.slot_of(id) else {
            out.push(Action::Removed {
                to: reply,
                result: Err(Box::new(RemoveError::NotFound(NotFound::new(id)))),
            });
            return;
        };
        let entry = self.entry_mut(slot);
        entry.removing = true;
        entry.extra_mut().removers.push(Remover {
            waiter,
            reply,
            timeout,
        });
        if let Some(timeout) = timeout {
            self.deadlines
                .set(Key::Removal(slot, waiter), deadline(now, timeout));
        }
        self.stop_slot(slot, now, out);
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
                result: Err(Box::new(LookupError::Dead(Dead))),
            });
            return;
        }
        let Some(slot) = self.slot_of(id) else {
            out.push(Action::Reply {
                to: reply,
                result: Err(Box::new(LookupError::NotFound(NotFound::new(id)))),
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
        let Some(slot) = self.slot_of(id) else {
            return;
        };
        if let Some(extra) = self.entry_mut(slot).extra.as_mut() {
            extra.worker_waiters.retain(|(w, _)| *w != waiter);
            extra.removers.retain(|r| r.waiter != waiter);
        }
        self.deadlines.cancel(&Key::Removal(slot, waiter));
    }

    /// `kill`: begins shutdown (idempotent).
    pub(crate) fn kill(&mut self, now: Instant, out: &mut Actions<T>) {
        if !self.dying {
            self.begin_dying(ShutdownCause::Killed, now, out);
        }
    }

    // ----- news -----------------------------------------------------------

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
            abortable,
            start,
        } = started;
        let current = self.entry(slot).is_some_and(|e| {
            e.generation == generation && matches!(e.state, State::Starting { .. })
        });
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
        entry.abortable = abortable;
        let stop = match entry.state {
            State::Starting { stop } => stop,
            _ => unreachable!("checked above"),
        };
        match result {
            Ok(worker) => match stop {
                Some(mark) => {
                    tracing::debug!(id = %entry.id, "killing worker that was stopped while starting");
                    // It did start (its `Stopping` came already).
                    self.emit_for(out, slot, || EventKind::Started);
                    self.kill_instance(slot, worker, mark, now, out);
                }
                None => {
                    if let Some(extra) = entry.extra.as_mut() {
                        for (_, to) in extra.worker_waiters.drain(..) {
                            out.push(Action::Reply {
                                to,
                                result: Ok(worker.clone()),
                            });
                        }
                    }
                    entry.state = State::Running(worker);
                    let id = entry.id.clone();
                    self.ready_started(&id, out);
                    self.emit_for(out, slot, || EventKind::Started);
                }
            },
            Err(e) => {
                let end = End::new(
                    false,
                    stop.map(|m| self.since(m.since, now)),
                    stop.is_some_and(|m| m.stuck),
                );
                self.ended(slot, Err(e), verdict, false, end, now, out)
            }
        }
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
        let (worker, forced, stop) =
            match std::mem::replace(&mut entry.state, State::Starting { stop: None }) {
                State::Running(w) => (w, false, None),
                State::Stopping { worker, mark } => (worker, mark.forced, Some(mark)),
                other => {
                    // Already ended (a second report of the same ending).
                    entry.state = other;
                    return;
                }
            };
        out.push(Action::Reap { worker });
        let end = End::new(
            true,
            stop.map(|m| self.since(m.since, now)),
            stop.is_some_and(|m| m.stuck),
        );
        // (`ended` cancels its stuck check.)
        self.ended(slot, outcome, verdict, forced, end, now, out);
    }
}

//! The machine's transitions: what an ending, a stop or a removal does to
//! an entry. The events decide *which* transition applies; this module
//! carries it out. The user's policies were asked before the news came
//! (see [`Verdict`]).

use std::time::Instant;

use worker_core::{Dead, Error, NotFound, Outcome, deadline};

use super::entry::{Member, State, StopMark};
use super::{Action, Actions, EventKind, Io, Key, Machine, Slot, Verdict, WaiterId};
use crate::error::{LookupError, RemoveError, RemoveTimedOut};
use crate::policy::RestartType;
use crate::status::Stage;
use crate::supervision::Shutdown;
use worker_core::events::{End, ShutdownCause};

impl<T: Io> Machine<T> {
    /// The id will not be restarted: its instance is killed (or will be,
    /// when its start function returns), or the id is removed at once if
    /// it has no instance.
    pub(super) fn stop_slot(&mut self, slot: Slot, now: Instant, out: &mut Actions<T>) {
        self.request_stop(slot);
        let since = self.stamp(now);
        let entry = self.entry_mut(slot);
        match &mut entry.state {
            State::Running(_) => {
                let worker = entry.state.take_running();
                self.emit_for(out, slot, || EventKind::Stopping);
                self.kill_instance(slot, worker, StopMark::new(since), now, out);
            }
            State::Delayed { .. } | State::Held => self.remove(slot, Ok(()), out),
            State::Starting { stop: stop @ None } => {
                // Killed when its start function returns; reported stuck
                // if that takes longer than the stop timeout.
                *stop = Some(StopMark::new(since));
                self.emit_for(out, slot, || EventKind::Stopping);
                self.arm_stuck(slot, now);
            }
            // Already on its way.
            State::Starting { stop: Some(_) } | State::Stopping { .. } => {}
        }
    }

    /// Marks the id as never to be restarted.
    pub(super) fn request_stop(&mut self, slot: Slot) {
        let entry = self.entry_mut(slot);
        if entry.stop_requested {
            return;
        }
        entry.stop_requested = true;
        if self.is_significant(slot) {
            self.significant -= 1;
        }
    }

    /// Stops `worker`, the current instance of `slot`, as its
    /// [`Shutdown`] says: the entry is stopping since `mark.since`, is
    /// reported stuck if it outlives its stop timeout, and is forced where
    /// that is asked for and possible.
    pub(super) fn kill_instance(
        &mut self,
        slot: Slot,
        worker: T::Worker,
        mut mark: StopMark,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        let shutdown = self.shutdown_of(slot);
        let entry = self.entry_mut(slot);
        let abortable = entry.abortable;
        if shutdown == Shutdown::Abort && abortable {
            out.push(Action::Abort {
                id: entry.id.clone(),
                worker: worker.clone(),
            });
            mark.forced = true;
        } else {
            if shutdown == Shutdown::Abort {
                tracing::warn!(id = %entry.id, "worker cannot be aborted (a thread cannot be forced); killed instead");
            }
            out.push(Action::Kill {
                id: entry.id.clone(),
                worker: worker.clone(),
            });
            // Its stop timeout passed while its start function ran.
            if mark.stuck && matches!(shutdown, Shutdown::Timeout(_)) && abortable {
                out.push(Action::Abort {
                    id: entry.id.clone(),
                    worker: worker.clone(),
                });
                mark.forced = true;
            }
        }
        entry.state = State::Stopping { worker, mark };
        if !mark.stuck {
            self.arm_stuck_for(slot, shutdown, now);
        }
    }

    /// Sets `slot`'s stuck check: its stop timeout after it was asked to
    /// stop.
    pub(super) fn arm_stuck(&mut self, slot: Slot, now: Instant) {
        let shutdown = self.shutdown_of(slot);
        self.arm_stuck_for(slot, shutdown, now);
    }

    fn arm_stuck_for(&mut self, slot: Slot, shutdown: Shutdown, now: Instant) {
        let timeout = match shutdown {
            Shutdown::Timeout(d) => Some(d),
            Shutdown::Wait | Shutdown::Abort => self.config.stop_timeout,
        };
        let Some(timeout) = timeout else { return };
        let since = match &self.entry(slot).expect("entry exists").state {
            State::Stopping { mark, .. } | State::Starting { stop: Some(mark) } => {
                mark.since.instant(self.epoch)
            }
            _ => now,
        };
        self.deadlines
            .set(Key::Stuck(slot), deadline(since, timeout));
    }

    /// The current incarnation of `slot` is over (its start function failed
    /// or its instance finished, as `end` says): remove, restart, hold for
    /// a cascade, or escalate. `forced`: it ended because the runner
    /// aborted it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ended(
        &mut self,
        slot: Slot,
        outcome: Outcome,
        verdict: Verdict,
        forced: bool,
        end: End,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        self.deadlines.cancel(&Key::Stuck(slot));
        let entry = self.entry(slot).expect("ended: entry exists");
        let id = entry.id.clone();
        let stop_requested = entry.stop_requested;
        let cascaded = entry.member == Member::Stopping && !stop_requested;
        // A removed or forced worker's error is its remover's or the
        // abort's, not a failure for the policies.
        let failure = !(entry.removing || forced);
        self.emit_for(out, slot, || match &outcome {
            Err(error) if failure => EventKind::Failed {
                error: error.clone(),
                fatal: verdict.fatal,
                end,
            },
            _ => EventKind::Stopped {
                end,
                reason: outcome.as_ref().err().cloned(),
            },
        });
        if entry.removing {
            // The callers of stop_and_remove_worker take the error.
            if let Err(e) = &outcome {
                tracing::debug!(%id, error = %e, "removed worker ended with an error");
            }
            self.remove(slot, outcome, out);
            return;
        }
        if forced {
            // Its ending is the abort's, not news for the policies.
            if let Err(e) = &outcome {
                tracing::debug!(%id, error = %e, "forced worker ended");
            }
            if cascaded {
                self.hold(slot);
            } else {
                self.remove(slot, Ok(()), out);
            }
            return;
        }
        if let Err(e) = &outcome {
            if verdict.fatal {
                self.record_fatal(e.clone());
                self.remove(slot, Ok(()), out);
                if !self.dying {
                    let cause = ShutdownCause::Fatal { worker: Some(id) };
                    self.begin_dying(cause, now, out);
                }
                return;
            }
        }
        if cascaded {
            // Killed by a sibling's cascade: restarted with it.
            self.hold(slot);
            return;
        }
        if stop_requested {
            self.remove(slot, Ok(()), out);
            return;
        }
        let restart_type = self.restart_type(slot);
        let restarts = match &outcome {
            Err(_) => restart_type != RestartType::Temporary && verdict.restart,
            Ok(()) => restart_type == RestartType::Permanent,
        };
        if restarts {
            self.restart(slot, outcome.err(), verdict.jitter, now, out);
            return;
        }
        // Ended by itself, for good. For OTP a significant worker then
        // counts only if it ended "normally" for its restart type: a
        // transient one cleanly, a temporary one in any way.
        let significant_end = self.is_significant(slot)
            && (outcome.is_ok() || restart_type == RestartType::Temporary);
        self.remove(slot, Ok(()), out);
        if significant_end {
            self.significant_ended(id, now, out);
        }
    }

    /// `slot` ended as a member of a cascade: it waits for the cascade.
    pub(super) fn hold(&mut self, slot: Slot) {
        self.set_member(slot, Member::Held);
        self.entry_mut(slot).state = State::Held;
    }

    /// Sets `slot`'s part in the cascade, keeping the cascade's count of
    /// members still stopping.
    pub(super) fn set_member(&mut self, slot: Slot, member: Member) {
        let entry = self.entry_mut(slot);
        let was = std::mem::replace(&mut entry.member, member);
        if let Some(group) = &mut self.group {
            if was == Member::Stopping {
                group.stopping -= 1;
            }
            if member == Member::Stopping {
                group.stopping += 1;
            }
        }
    }

    /// Forgets `slot`'s entry: its waiters learn it is gone, its removers
    /// get `result`.
    pub(super) fn remove(&mut self, slot: Slot, result: Result<(), Error>, out: &mut Actions<T>) {
        self.set_member(slot, Member::No);
        let significant = self.is_significant(slot);
        let entry = self.slots.cell(slot).take().expect("remove: entry exists");
        self.deadlines.cancel(&Key::Restart(slot));
        self.deadlines.cancel(&Key::Stuck(slot));
        self.free.push(slot);
        // While dying no id can be added, so the index is not kept up to
        // date entry by entry (at 100,000 ids, those scattered removals
        // were a quarter of the loop's stop): lookups check that the slot
        // still holds the id ([`Machine::slot_of`]), and the index goes
        // with the machine, off the loop.
        if !self.dying {
            self.index.remove(&entry.id);
        }
        if significant && !entry.stop_requested {
            self.significant -= 1;
        }
        if let Some(extra) = entry.extra {
            for (_, to) in extra.worker_waiters {
                let result = Err(Box::new(if self.dying {
                    LookupError::Dead(Dead)
                } else {
                    LookupError::NotFound(NotFound::new(&*entry.id))
                }));
                out.push(Action::Reply { to, result });
            }
            for remover in extra.removers {
                if remover.timeout.is_some() {
                    self.deadlines.cancel(&Key::Removal(slot, remover.waiter));
                }
                out.push(Action::Removed {
                    to: remover.reply,
                    result: result
                        .clone()
                        .map_err(|e| Box::new(RemoveError::Stopped(e))),
                });
            }
        }
        let (id, generation) = (entry.id, entry.generation);
        self.ready_gone(&id, out);
        self.emit_event(out, Some((&id, generation)), || EventKind::Removed);
    }

    /// A `stop_and_remove_worker` caller's timeout passed before the
    /// removal: it gets a [`RemoveTimedOut`] saying where the worker is.
    pub(super) fn removal_timed_out(&mut self, slot: Slot, waiter: WaiterId, out: &mut Actions<T>) {
        let entry = self.entry_mut(slot);
        let (stage, stuck, forced) = match &entry.state {
            State::Starting { stop } => (Stage::Starting, stop.is_some_and(|m| m.stuck), false),
            State::Stopping { mark, .. } => (Stage::Stopping, mark.stuck, mark.forced),
            // Removed at once in any other state.
            _ => (Stage::Stopping, false, false),
        };
        let id = entry.id.to_string();
        let Some(extra) = entry.extra.as_mut() else {
            return;
        };
        let Some(i) = extra.removers.iter().position(|r| r.waiter == waiter) else {
            return;
        };
        let remover = extra.removers.swap_remove(i);
        let error = RemoveTimedOut {
            id,
            timeout: remover.timeout.unwrap_or_default(),
            stage,
            stuck,
            forced,
        };
        out.push(Action::Removed {
            to: remover.reply,
            result: Err(Box::new(RemoveError::TimedOut(error))),
        });
    }

    /// Does what the new state implies: releases a cascade that is ready,
    /// moves an ordered shutdown on, and emits [`Action::Finished`] once
    /// shutdown has nothing left to wait for.
    pub(super) fn settle(&mut self, now: Instant, out: &mut Actions<T>) {
        if self.group.is_some() {
            self.release_group(now, out);
        }
        if self.ordered.is_some() {
            self.advance_shutdown(now, out);
        }
        if self.dying && !self.finished && self.live() == 0 {
            self.finished = true;
            out.push(Action::Finished {
                errors: std::mem::take(&mut self.fatal_errors),
            });
        }
    }

    /// Keeps a fatal error: every one for a ranking policy, else only the
    /// first (the first fatal error wins, as Go's documentation, not its
    /// code, says).
    pub(super) fn record_fatal(&mut self, e: Error) {
        if self.fatal_errors.is_empty() || self.config.keep_all_fatal {
            self.fatal_errors.push(e);
        }
    }
}

//! Stopping: the runner's shutdown (all at once, or one worker at a time
//! in reverse start order), workers that outlive their stop timeout
//! (reported stuck, forced where their shutdown says so and they can be),
//! and the automatic shutdown that significant workers trigger.

use std::time::Instant;

use worker_core::Dead;

use crate::error::LookupError;

use super::entry::State;
use super::{Action, Actions, EventKind, Io, Key, Machine, Slot};
use crate::supervision::{AutoShutdown, Shutdown, ShutdownOrder};
use worker_core::events::ShutdownCause;

/// An ordered shutdown in progress: the workers still to stop, the last
/// started at the end, and the one being stopped.
#[derive(Debug)]
pub(crate) struct Ordered {
    pending: Vec<Slot>,
    current: Option<Slot>,
}

/// What shutdown does to one entry.
enum Fate {
    Remove,
    Stop,
    AlreadyStopping,
}

impl<T: Io> Machine<T> {
    /// Begins shutdown: nothing starts or restarts again, callers waiting
    /// for a worker learn that the runner is dying, ids waiting to restart
    /// are removed, and the workers are stopped (all at once, or in
    /// reverse start order).
    pub(super) fn begin_dying(&mut self, cause: ShutdownCause, now: Instant, out: &mut Actions<T>) {
        self.dying = true;
        // One kill per entry, at most: reserve exactly, not by doubling.
        out.reserve(self.index.len() + 2);
        self.emit(out, || EventKind::ShuttingDown { cause });
        out.push(Action::Dying);
        self.ready_stopped(out);
        // A cascade or a pause no longer matters: nothing restarts.
        if self.group.take().is_some() {
            self.deadlines.cancel(&Key::Group);
        }
        self.deadlines.cancel(&Key::Resume);
        self.paused.clear();
        let ordered = self.config.shutdown_order == ShutdownOrder::Reverse;
        let mut removed = Vec::new();
        let mut in_order = Vec::new();
        for slot in 0..self.slots.len() as Slot {
            let Some(entry) = self.slots.get_mut(slot) else {
                continue;
            };
            entry.stop_requested = true;
            if let Some(extra) = entry.extra.as_mut() {
                for (_, to) in extra.worker_waiters.drain(..) {
                    out.push(Action::Reply {
                        to,
                        result: Err(Box::new(LookupError::Dead(Dead))),
                    });
                }
            }
            let fate = match entry.state {
                State::Delayed { .. } | State::Held => Fate::Remove,
                State::Running(_) | State::Starting { stop: None } => Fate::Stop,
                State::Starting { stop: Some(_) } | State::Stopping { .. } => Fate::AlreadyStopping,
            };
            match fate {
                Fate::Remove => removed.push(slot),
                Fate::Stop | Fate::AlreadyStopping if ordered => in_order.push((entry.seq, slot)),
                Fate::Stop => self.stop_slot(slot, now, out),
                Fate::AlreadyStopping => {}
            }
        }
        // Every id is asked to stop now; none can trigger an automatic
        // shutdown.
        self.significant = 0;
        for slot in removed {
            self.remove(slot, Ok(()), out);
        }
        if ordered {
            in_order.sort_unstable();
            self.ordered = Some(Ordered {
                pending: in_order.into_iter().map(|(_, slot)| slot).collect(),
                current: None,
            });
        }
    }

    /// Moves an ordered shutdown on: once the worker being stopped has
    /// ended (or outlived its shutdown timeout), the next one, in reverse
    /// start order, is stopped.
    pub(super) fn advance_shutdown(&mut self, now: Instant, out: &mut Actions<T>) {
        loop {
            let Some(ordered) = &self.ordered else { return };
            if let Some(current) = ordered.current {
                if !self.moved_past(current) {
                    return;
                }
            }
            let ordered = self.ordered.as_mut().expect("checked above");
            ordered.current = None;
            let Some(slot) = ordered.pending.pop() else {
                self.ordered = None;
                return;
            };
            ordered.current = Some(slot);
            let Some(entry) = self.entry(slot) else {
                continue;
            };
            if matches!(
                entry.state,
                State::Running(_) | State::Starting { stop: None }
            ) {
                self.stop_slot(slot, now, out);
            }
        }
    }

    /// Whether an ordered shutdown is done waiting for `slot`: it has
    /// ended, or it outlived a shutdown timeout after which the runner
    /// moves on (a [`Shutdown::Timeout`], or an abort that did not end it).
    fn moved_past(&self, slot: Slot) -> bool {
        let Some(entry) = self.entry(slot) else {
            return true;
        };
        let stuck = match &entry.state {
            State::Stopping { mark, .. } | State::Starting { stop: Some(mark) } => mark.stuck,
            _ => false,
        };
        stuck
            && match self.shutdown_of(slot) {
                Shutdown::Timeout(_) => true,
                Shutdown::Abort => entry.abortable,
                Shutdown::Wait => false,
            }
    }

    /// `slot` has not stopped within its stop timeout: it is reported stuck
    /// (once), and forced if its shutdown has a timeout and it can be.
    pub(super) fn stuck(&mut self, slot: Slot, now: Instant, out: &mut Actions<T>) {
        let force = matches!(self.shutdown_of(slot), Shutdown::Timeout(_));
        let epoch = self.epoch;
        let entry = self.entry_mut(slot);
        let abortable = entry.abortable;
        let id = entry.id.clone();
        let (since, starting, forced) = match &mut entry.state {
            State::Starting { stop: Some(mark) } => {
                mark.stuck = true;
                (mark.since, true, false)
            }
            State::Stopping { worker, mark } => {
                mark.stuck = true;
                if force && abortable && !mark.forced {
                    mark.forced = true;
                    out.push(Action::Abort {
                        id: id.clone(),
                        worker: worker.clone(),
                    });
                }
                (mark.since, false, mark.forced)
            }
            _ => return,
        };
        let after = now.saturating_duration_since(since.instant(epoch));
        self.emit_for(out, slot, || EventKind::Stuck {
            after,
            starting,
            forced,
        });
    }

    /// A significant worker ended by itself: the runner shuts down if its
    /// automatic shutdown says so.
    pub(super) fn significant_ended(
        &mut self,
        id: std::sync::Arc<str>,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        let shut_down = match self.config.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => self.significant == 0,
        };
        if shut_down && !self.dying {
            self.begin_dying(ShutdownCause::AutoShutdown { worker: id }, now, out);
        }
    }
}

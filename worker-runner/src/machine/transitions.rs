//! The machine's transitions: what an ending, a stop, a restart or
//! shutdown does to an entry. The events in the parent module decide
//! *which* transition applies; this module carries it out. The user's
//! policies were asked before the news came (see [`Verdict`]).

use std::time::Instant;

use worker_core::{Dead, Error, NotFound, Outcome, deadline};

use super::entry::{RestartCause, Stamp, State};
use super::{Action, Actions, Io, Kind, Machine, Slot, Verdict};
use crate::error::RestartIntensityExceeded;

use crate::policy::RestartType;

impl<T: Io> Machine<T> {
    pub(super) fn stop_slot(&mut self, slot: Slot, now: Instant, out: &mut Actions<T>) {
        let entry = self.entry_mut(slot);
        entry.stop_requested = true;
        match &entry.state {
            State::Running(w) => {
                tracing::debug!(id = %entry.id, "killing worker");
                let worker = w.clone();
                self.kill_instance(slot, worker, now, out);
            }
            State::Delayed { .. } => {
                tracing::debug!(id = %entry.id, "worker stopped during its restart delay");
                self.remove(slot, Ok(()), out);
            }
            // Killed when its start function returns / already killed.
            State::Starting | State::Stopping { .. } => {}
        }
    }

    /// Kills `worker`, the current instance of `slot`: the entry is
    /// stopping from `now`, and is reported stuck if it outlives the stop
    /// timeout.
    pub(super) fn kill_instance(
        &mut self,
        slot: Slot,
        worker: T::Worker,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        let stop_timeout = self.config.stop_timeout;
        let epoch = self.epoch;
        let entry = self.entry_mut(slot);
        entry.state = State::Stopping {
            worker: worker.clone(),
            since: Stamp::new(epoch, now),
            stuck: false,
        };
        out.push(Action::Kill {
            id: entry.id.clone(),
            worker,
        });
        if let Some(after) = stop_timeout {
            self.push_deadline(slot, Kind::Stuck, deadline(now, after));
        }
    }

    /// The current incarnation of `slot` is over (its start function failed
    /// or its instance finished): remove, restart or escalate.
    pub(super) fn ended(
        &mut self,
        slot: Slot,
        outcome: Outcome,
        verdict: Verdict,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        let entry = self.entry(slot).expect("ended: entry exists");
        let id = entry.id.clone();
        let stop_requested = entry.stop_requested;
        let removing = entry.has_removers();
        let restart_type = self.restart_type(slot);
        match outcome {
            // The caller of stop_and_remove_worker takes the error.
            Err(e) if removing => self.remove(slot, Err(e), out),
            Err(e) => {
                if verdict.fatal {
                    tracing::error!(%id, error = %e, "fatal error");
                    self.record_fatal(e);
                    self.remove(slot, Ok(()), out);
                    if !self.dying {
                        self.begin_dying(now, out);
                    }
                } else if stop_requested {
                    tracing::debug!(%id, error = %e, "stopped worker ended with an error");
                    self.remove(slot, Ok(()), out);
                } else if restart_type == RestartType::Temporary || !verdict.restart {
                    tracing::warn!(%id, error = %e, "worker failed; not restarting it");
                    self.remove(slot, Ok(()), out);
                } else {
                    tracing::warn!(%id, error = %e, "worker failed; restarting it");
                    self.schedule_restart(slot, Some(e), verdict.jitter, now, out);
                }
            }
            Ok(()) => {
                if stop_requested || restart_type != RestartType::Permanent {
                    tracing::debug!(%id, "worker finished");
                    self.remove(slot, Ok(()), out);
                } else {
                    tracing::debug!(%id, "permanent worker finished; restarting it");
                    self.schedule_restart(slot, None, verdict.jitter, now, out);
                }
            }
        }
    }

    pub(super) fn schedule_restart(
        &mut self,
        slot: Slot,
        cause: Option<Error>,
        jitter: f64,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        let default_policy = self.config.policy;
        let epoch = self.epoch;
        let entry = self.slots.get_mut(slot).expect("entry exists");
        let policy = entry
            .options
            .as_ref()
            .and_then(|o| o.restart_policy_override().copied())
            .unwrap_or(default_policy);
        if let Some(limit) = policy.intensity_limit() {
            let recent = &mut entry.extra_mut().recent_restarts;
            // OTP's rule: a restart exactly `period` old is still in the
            // window.
            while recent
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) > limit.period)
            {
                recent.pop_front();
            }
            if recent.len() >= limit.max_restarts as usize {
                let err = Error::new(RestartIntensityExceeded {
                    id: entry.id.to_string(),
                    max_restarts: limit.max_restarts,
                    period: limit.period,
                    last_error: cause,
                });
                tracing::error!(id = %entry.id, error = %err, "restart intensity exceeded");
                self.record_fatal(err);
                self.remove(slot, Ok(()), out);
                if !self.dying {
                    self.begin_dying(now, out);
                }
                return;
            }
            recent.push_back(now);
        }
        let healthy = policy.backoff().is_some_and(|b| {
            now.saturating_duration_since(entry.started_at.instant(epoch)) >= b.reset_after
        });
        if healthy {
            entry.attempts = 0;
        }
        entry.attempts = entry.attempts.saturating_add(1);
        let attempt = entry.attempts;
        let delay = policy.delay_for(attempt, &mut || jitter);
        // A delay too long to represent is, in practice, forever.
        let until = deadline(now, delay);
        tracing::debug!(id = %entry.id, attempt, ?delay, "restart scheduled");
        entry.state = State::Delayed { until };
        entry.extra_mut().cause = Some(RestartCause {
            error: cause,
            attempt,
            delay,
        });
        self.push_deadline(slot, Kind::Restart, until);
    }

    pub(super) fn restart_now(&mut self, slot: Slot, now: Instant, out: &mut Actions<T>) {
        let generation = self.new_generation();
        let epoch = self.epoch;
        let entry = self.entry_mut(slot);
        let start = entry
            .start
            .take()
            .expect("a delayed entry holds its start function");
        entry.generation = generation;
        entry.state = State::Starting;
        entry.started_at = Stamp::new(epoch, now);
        tracing::debug!(id = %entry.id, generation, "restarting worker");
        let id = entry.id.clone();
        let permanent = self.restart_type(slot) == RestartType::Permanent;
        out.push(Action::Start {
            slot,
            generation,
            id,
            start,
            permanent,
        });
    }

    pub(super) fn begin_dying(&mut self, now: Instant, out: &mut Actions<T>) {
        self.dying = true;
        // One kill per entry, at most: reserve exactly, not by doubling.
        out.reserve(self.index.len() + 1);
        out.push(Action::Dying);
        let mut delayed = Vec::new();
        for slot in 0..self.slots.len() as Slot {
            let Some(entry) = self.slots.get_mut(slot) else {
                continue;
            };
            entry.stop_requested = true;
            if let Some(extra) = entry.extra.as_mut() {
                for (_, to) in extra.worker_waiters.drain(..) {
                    out.push(Action::Reply {
                        to,
                        result: Err(Dead.into()),
                    });
                }
            }
            match entry.state {
                State::Running(_) => self.stop_slot(slot, now, out),
                State::Delayed { .. } => delayed.push(slot),
                State::Starting | State::Stopping { .. } => {}
            }
        }
        for slot in delayed {
            self.remove(slot, Ok(()), out);
        }
    }

    /// Forgets `slot`'s entry: its waiters learn it is gone, its removers
    /// get `result`.
    pub(super) fn remove(&mut self, slot: Slot, result: Result<(), Error>, out: &mut Actions<T>) {
        let entry = self.slots.cell(slot).take().expect("remove: entry exists");
        self.deadlines.cancel(&(slot, Kind::Restart));
        self.deadlines.cancel(&(slot, Kind::Stuck));
        self.free.push(slot);
        self.index.remove(&entry.id);
        if let Some(extra) = entry.extra {
            for (_, to) in extra.worker_waiters {
                let result = Err(if self.dying {
                    Dead.into()
                } else {
                    NotFound::new(&*entry.id).into()
                });
                out.push(Action::Reply { to, result });
            }
            for (_, to) in extra.removers {
                out.push(Action::Removed {
                    to,
                    result: result.clone(),
                });
            }
        }
    }

    /// Emits [`Action::Finished`] once shutdown has nothing left to wait for.
    pub(super) fn settle(&mut self, out: &mut Actions<T>) {
        if self.dying && !self.finished && self.index.is_empty() {
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

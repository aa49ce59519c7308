//! Restarts: whether one is allowed (a worker's intensity limit, the
//! runner's), how long it waits (backoff, suture's failure backoff), and
//! which other workers go with it (the cascades of the restart
//! strategies).
//!
//! # Cascades
//!
//! Under one-for-all or rest-for-one, a restart takes other workers with
//! it. The machine kills them, and the cascade ([`Group`]) waits until
//! every one has ended and the failed worker's restart delay is over;
//! then it starts them all again, in start order. Until then each member
//! waits in [`State::Held`]. OTP does the same synchronously (terminate
//! every sibling, then restart every one); here nothing blocks, so a
//! cascade is a state of its own. A second failure while a cascade waits
//! (a worker started before it fails, under rest-for-one) extends the
//! cascade rather than starting another one: there is at most one.

use std::time::Instant;

use worker_core::{Error, deadline};

use super::entry::{Member, RestartCause, State, StopMark};
use super::{Action, Actions, EventKind, Io, Key, Machine, Slot, limits};
use crate::error::{RestartIntensityExceeded, RunnerIntensityExceeded};
use crate::policy::RestartType;
use crate::supervision::Strategy;
use worker_core::events::ShutdownCause;

/// A cascade of the runner's strategy: the workers restarted together.
#[derive(Debug)]
pub(crate) struct Group {
    /// The workers of the cascade (the failed one first).
    pub(crate) members: Vec<Slot>,
    /// How many members have not ended yet.
    pub(crate) stopping: usize,
    /// When the failed worker's restart delay is over.
    pub(crate) until: Instant,
}

impl<T: Io> Machine<T> {
    /// `slot` ended in a way that restarts it (with `cause`, `None` for a
    /// clean exit of a permanent worker): counts the restart against the
    /// limits, picks the delay, and schedules it, with its cascade.
    pub(super) fn restart(
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
        let id = entry.id.clone();
        let policy = entry
            .options
            .as_ref()
            .and_then(|o| o.restart_policy_override().copied())
            .unwrap_or(default_policy);
        if let Some(limit) = policy.intensity_limit() {
            if !limits::admit(&mut entry.extra_mut().recent_restarts, limit, now) {
                let err = Error::new(RestartIntensityExceeded {
                    id: id.to_string(),
                    max_restarts: limit.max_restarts,
                    period: limit.period,
                    last_error: cause,
                });
                self.give_up(slot, err, now, out);
                return;
            }
        }
        if let Some(limit) = &self.config.intensity {
            if !limits::admit(&mut self.restarts, limit, now) {
                let err = Error::new(RunnerIntensityExceeded {
                    id: id.to_string(),
                    max_restarts: limit.max_restarts,
                    period: limit.period,
                    last_error: cause,
                });
                self.give_up(slot, err, now, out);
                return;
            }
        }
        let entry = self.slots.get_mut(slot).expect("entry exists");
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
        entry.extra_mut().cause = Some(RestartCause {
            error: cause,
            attempt,
            delay,
            because_of: None,
        });
        self.emit_for(out, slot, || EventKind::Restarting {
            delay,
            attempt,
            because_of: None,
        });
        self.count_failure(now, out);
        match self.config.strategy {
            Strategy::OneForOne => {
                self.entry_mut(slot).state = State::Delayed { until };
                self.deadlines.set(Key::Restart(slot), until);
            }
            Strategy::OneForAll | Strategy::RestForOne => self.cascade(slot, until, now, out),
        }
    }

    /// Too many restarts: `err` (the escalated error) ends the runner.
    fn give_up(&mut self, slot: Slot, err: Error, now: Instant, out: &mut Actions<T>) {
        let id = self.entry(slot).expect("entry exists").id.clone();
        let error = err.clone();
        self.emit_for(out, slot, || EventKind::GaveUp { error });
        self.record_fatal(err);
        self.remove(slot, Ok(()), out);
        if !self.dying {
            let cause = ShutdownCause::Fatal { worker: Some(id) };
            self.begin_dying(cause, now, out);
        }
    }

    /// Counts a failure for the failure backoff, pausing restarts when the
    /// count goes over its threshold.
    fn count_failure(&mut self, now: Instant, out: &mut Actions<T>) {
        let Some(throttle) = &mut self.throttle else {
            return;
        };
        if let Some((resume_at, failures)) = throttle.fail(now) {
            let backoff = throttle.backoff();
            self.deadlines.set(Key::Resume, resume_at);
            self.emit(out, || EventKind::Paused { failures, backoff });
        }
    }

    /// A failure backoff pause is over: the restarts that fell due
    /// meanwhile start, in start order (a cascade is released by
    /// `settle`).
    pub(super) fn resume(&mut self, now: Instant, out: &mut Actions<T>) {
        if let Some(throttle) = &mut self.throttle {
            throttle.resume();
        }
        self.emit(out, || EventKind::Resumed);
        let mut due: Vec<(u64, Slot)> = std::mem::take(&mut self.paused)
            .into_iter()
            .filter_map(|slot| {
                let e = self.entry(slot)?;
                matches!(e.state, State::Delayed { until } if until <= now).then_some((e.seq, slot))
            })
            .collect();
        due.sort_unstable();
        due.dedup();
        for (_, slot) in due {
            self.restart_now(slot, now, out);
        }
    }

    /// Starts the next incarnation of `slot`.
    pub(super) fn restart_now(&mut self, slot: Slot, now: Instant, out: &mut Actions<T>) {
        let generation = self.new_generation();
        let stamp = self.stamp(now);
        let entry = self.entry_mut(slot);
        let start = entry
            .start
            .take()
            .expect("a delayed entry holds its start function");
        entry.generation = generation;
        entry.state = State::Starting { stop: None };
        entry.started_at = stamp;
        let id = entry.id.clone();
        self.push_start(slot, generation, id, start, out);
    }

    /// Asks for incarnation `generation` of `slot` to be started.
    pub(super) fn push_start(
        &self,
        slot: Slot,
        generation: super::Generation,
        id: std::sync::Arc<str>,
        start: T::Start,
        out: &mut Actions<T>,
    ) {
        let permanent = self.restart_type(slot) == RestartType::Permanent;
        out.push(Action::Start {
            slot,
            generation,
            id,
            start,
            permanent,
        });
        self.emit_for(out, slot, || EventKind::Starting);
    }

    /// The failed worker `trigger` takes the others its strategy names
    /// with it: each is killed (a temporary one for good), and all restart
    /// together once all have ended and `until` has passed.
    fn cascade(&mut self, trigger: Slot, until: Instant, now: Instant, out: &mut Actions<T>) {
        let (trigger_id, trigger_seq) = {
            let e = self.entry(trigger).expect("entry exists");
            (e.id.clone(), e.seq)
        };
        let all = self.config.strategy == Strategy::OneForAll;
        let picked: Vec<Slot> = (0..self.slots.len() as Slot)
            .filter(|&s| {
                s != trigger
                    && self.entry(s).is_some_and(|e| {
                        e.member == Member::No && !e.stop_requested && (all || e.seq > trigger_seq)
                    })
            })
            .collect();
        let group = self.group.get_or_insert_with(|| Group {
            members: Vec::new(),
            stopping: 0,
            until,
        });
        group.until = group.until.max(until);
        group.members.push(trigger);
        // Re-armed by `release_group` once every member has ended.
        self.deadlines.cancel(&Key::Group);
        group.members.extend_from_slice(&picked);
        self.entry_mut(trigger).state = State::Held;
        self.set_member(trigger, Member::Held);
        let since = self.stamp(now);
        for slot in picked {
            let temporary = self.restart_type(slot) == RestartType::Temporary;
            if temporary {
                // As in OTP: stopped by a sibling's restart, and removed.
                self.request_stop(slot);
            }
            let entry = self.entry_mut(slot);
            match &mut entry.state {
                State::Running(_) => {
                    let worker = entry.state.take_running();
                    self.set_member(slot, Member::Stopping);
                    self.emit_for(out, slot, || EventKind::Stopping);
                    self.kill_instance(slot, worker, StopMark::new(since), now, out);
                }
                State::Starting { stop } => {
                    *stop = Some(StopMark::new(since));
                    self.set_member(slot, Member::Stopping);
                    self.emit_for(out, slot, || EventKind::Stopping);
                    self.arm_stuck(slot, now);
                }
                // Under a cascading strategy every restart is a cascade:
                // nobody waits out a delay of its own. And a worker
                // already stopping or held was not picked.
                State::Delayed { .. } | State::Stopping { .. } | State::Held => {
                    debug_assert!(false, "picked a worker that cannot be picked");
                }
            }
            if !temporary {
                let entry = self.entry_mut(slot);
                let attempt = entry.attempts;
                let delay = until.saturating_duration_since(now);
                let because_of = Some(trigger_id.clone());
                entry.extra_mut().cause = Some(RestartCause {
                    error: None,
                    attempt,
                    delay,
                    because_of: because_of.clone(),
                });
                self.emit_for(out, slot, || EventKind::Restarting {
                    delay,
                    attempt,
                    because_of,
                });
            }
        }
    }

    /// Releases the cascade once every member has ended, the delay is over
    /// and restarts are not paused: the members start again, in start
    /// order.
    pub(super) fn release_group(&mut self, now: Instant, out: &mut Actions<T>) {
        let Some(group) = &self.group else { return };
        if group.stopping > 0 || self.throttle.as_ref().is_some_and(|t| t.is_paused()) {
            return;
        }
        if group.until > now {
            if self.deadlines.get(&Key::Group) != Some(group.until) {
                self.deadlines.set(Key::Group, group.until);
            }
            return;
        }
        let group = self.group.take().expect("checked above");
        self.deadlines.cancel(&Key::Group);
        let mut held: Vec<(u64, Slot)> = group
            .members
            .into_iter()
            .filter_map(|slot| {
                let e = self.entry(slot)?;
                (e.member == Member::Held).then_some((e.seq, slot))
            })
            .collect();
        held.sort_unstable();
        held.dedup();
        for (_, slot) in held {
            self.entry_mut(slot).member = Member::No;
            self.restart_now(slot, now, out);
        }
    }
}

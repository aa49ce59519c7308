//! Stopping: worker ends, stop requests, bounces, and what an end means
//! (backoff bookkeeping, filters, fatal errors, control errors).

use std::time::Instant;

use worker_core::events::{End, EventKind, ShutdownCause};
use worker_core::supervisor::offloop::OffLoop;
use worker_core::{Error, deadline};

use super::{Action, Cause, Delay, Machine, Phase, TimerKind, Verdict};
use crate::graph::NodeId;
use crate::{Bounce, Missing, Uninstall};

impl Machine {
    /// A worker ended, with the policies' verdict on how.
    pub(crate) fn worker_done(
        &mut self,
        id: NodeId,
        generation: u64,
        outcome: Result<(), Error>,
        verdict: Verdict,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.sample = verdict.jitter;
        self.ended(id, generation, outcome, verdict, now, out);
        self.sample = 0.5;
    }

    fn ended(
        &mut self,
        id: NodeId,
        generation: u64,
        outcome: Result<(), Error>,
        verdict: Verdict,
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
        self.finish(id, outcome.err(), verdict, registered, now, out);
    }

    /// Asks `id` to stop, to restart (because of `cause`) once stopped.
    pub(super) fn request_stop(
        &mut self,
        id: NodeId,
        cause: Cause,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.nodes[id].pending = Some(cause);
        match &mut self.nodes[id].phase {
            Phase::Waiting { .. } => {}
            Phase::Starting { abort } => {
                if abort.is_none() {
                    *abort = Some(now);
                    out.push(Action::Abort { node: id });
                    self.emit(Some(id), out, || EventKind::Stopping);
                    self.push_stop_timeout(id, now);
                }
                return;
            }
            Phase::Running { live, stopping } => {
                if stopping.is_none() {
                    *stopping = Some(now);
                    let worker = OffLoop::new(live.worker.clone());
                    out.push(Action::Kill {
                        name: self.graph.name(id).clone(),
                        worker,
                    });
                    self.emit(Some(id), out, || EventKind::Stopping);
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

    pub(super) fn push_stop_timeout(&mut self, id: NodeId, now: Instant) {
        if self.policy.stop_timeout.is_zero() {
            return;
        }
        // Saturating: a huge timeout means practically never.
        let at = deadline(now, self.policy.stop_timeout);
        self.timers.set((id, TimerKind::StopTimeout), at);
    }

    /// Every start or stop of `id` restarts its dependents (Go's rule).
    pub(super) fn bounce_dependents(
        &mut self,
        id: NodeId,
        cause: Cause,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
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

    /// A start failed or a worker ended with `raw` (and the policies said
    /// `verdict`): classify, record, and restart or not.
    pub(super) fn finish(
        &mut self,
        id: NodeId,
        raw: Option<Error>,
        verdict: Verdict,
        registered: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let name = self.graph.name(id).clone();
        let stop_asked = self.nodes[id].phase.stop_requested();
        let stop_requested = stop_asked.is_some();
        let was_stuck = self.nodes[id].stuck;
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
        let Verdict {
            filtered, fatal, ..
        } = verdict;
        // A panicking is_fatal is the manifold's error, as well as fatal.
        node.last_error = match &fatal {
            Some(f) if f.is::<worker_core::Panicked>() => Some(f.clone()),
            _ => filtered.clone(),
        };
        node.started_at = None;
        node.started_wall = None;
        node.stuck = false;
        let error = node.last_error.clone().or_else(|| fatal.clone());
        let had_worker = match self.set_phase(id, Phase::Stopped) {
            Phase::Running { live, .. } | Phase::Discarding { live, .. } => {
                out.push(Action::Reap { live });
                true
            }
            Phase::Stopped | Phase::Waiting { .. } | Phase::Starting { .. } => false,
        };
        let end = End::new(
            had_worker,
            stop_asked.map(|since| now.saturating_duration_since(since)),
            was_stuck,
        );
        let is_fatal = fatal.is_some();
        self.emit(Some(id), out, || match error {
            Some(e)
                if !is_fatal && (e.is::<Missing>() || e.is::<Bounce>() || e.is::<Uninstall>()) =>
            {
                EventKind::Stopped {
                    end,
                    reason: Some(e),
                }
            }
            Some(error) => EventKind::Failed {
                error,
                fatal: is_fatal,
                end,
            },
            None => EventKind::Stopped { end, reason: None },
        });
        if let Some(error) = fatal {
            self.fatal.push(error);
            let cause = ShutdownCause::Fatal {
                worker: Some(name.clone()),
            };
            self.begin_shutdown(cause, now, out);
        }
        if self.dying {
            self.stopped_while_dying(id, now, out);
            return;
        }
        let uninstall = self.nodes[id].uninstall;
        if !uninstall {
            if stop_requested {
                let cause = self.nodes[id].pending.take().unwrap_or(Cause::Bounced);
                self.request_start(id, Delay::Bounce, cause, now, out);
            } else {
                match &filtered {
                    // Completed, or missing an input: it waits for one to
                    // start (its end event said which).
                    None => {}
                    Some(e) if e.is::<Missing>() => {}
                    Some(e) if e.is::<Bounce>() => {
                        self.request_start(id, Delay::Bounce, Cause::Bounced, now, out)
                    }
                    Some(e) if e.is::<Uninstall>() => self.nodes[id].uninstall = true,
                    Some(e) => {
                        let step = self.nodes[id].recent_errors;
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
    }
}

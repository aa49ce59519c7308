//! Starting: delays, dispatching start functions, registering workers.

use std::time::{Duration, Instant, SystemTime};

use worker_core::events::EventKind;
use worker_core::supervisor::offloop::OffLoop;
use worker_core::{Error, deadline};

use super::{Action, Cause, Delay, Live, Machine, Phase, TimerKind, Verdict, Why};
use crate::context::InputState;
use crate::graph::NodeId;

/// What a start job reports.
pub(crate) struct Started {
    /// The new worker and its outputs, or why there is none.
    pub(crate) result: Result<OffLoop<Live>, Error>,
    /// The policies' verdict on the failure (or only a jitter sample).
    pub(crate) verdict: Verdict,
}

impl Machine {
    pub(super) fn request_start(
        &mut self,
        id: NodeId,
        delay: Delay,
        cause: Cause,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.dying {
            return;
        }
        let delay = match delay {
            Delay::None => Duration::ZERO,
            Delay::Bounce => self.policy.bounce.delay(1, self.sample),
            Delay::Error => {
                let step = self.nodes[id].recent_errors;
                self.policy.error.delay(step, self.sample)
            }
        };
        // Said of the incarnation that ended; the next one is numbered
        // below.
        match &cause {
            Cause::Failed { step, .. } => {
                let attempt = *step;
                self.emit(Some(id), out, || EventKind::Restarting {
                    delay,
                    attempt,
                    because_of: None,
                });
            }
            Cause::InputStarted(input) | Cause::InputStopped(input) => {
                let input = Some(input.clone());
                self.emit(Some(id), out, || EventKind::Bouncing { input, delay });
            }
            Cause::Bounced => {
                self.emit(Some(id), out, || EventKind::Bouncing { input: None, delay });
            }
            Cause::Installed => {}
        }
        self.next_generation += 1;
        let generation = self.next_generation;
        let node = self.node(id);
        node.generation = generation;
        node.start_attempts += 1;
        node.why = Some(Why::new(cause, delay));
        if delay.is_zero() {
            self.dispatch(id, now, out);
        } else {
            // Saturating: a huge delay means practically never, not now.
            let until = deadline(now, delay);
            self.set_phase(id, Phase::Waiting { until });
            self.timers.set((id, TimerKind::Start), until);
        }
    }

    pub(super) fn dispatch(&mut self, id: NodeId, now: Instant, out: &mut Vec<Action>) {
        let Some(manifold) = self.nodes[id].manifold.clone() else {
            let message = format!("dispatching placeholder {:?}", self.graph.name(id));
            self.set_phase(id, Phase::Stopped);
            return self.fail_internal(message, now, out);
        };
        self.set_phase(id, Phase::Starting { abort: None });
        let inputs = self
            .graph
            .inputs(id)
            .iter()
            .map(|&input| {
                let state = match &self.nodes[input].phase {
                    Phase::Running { live, .. } => InputState::Running(live.outputs.clone()),
                    _ => InputState::NotRunning,
                };
                (self.graph.name(input).clone(), state)
            })
            .collect();
        let node = &self.nodes[id];
        out.push(Action::Start {
            node: id,
            generation: node.generation,
            name: self.graph.name(id).clone(),
            manifold,
            inputs: OffLoop::new(inputs),
        });
        self.emit(Some(id), out, || EventKind::Starting);
    }

    /// A start function (and output function) returned.
    pub(crate) fn start_done(
        &mut self,
        id: NodeId,
        generation: u64,
        started: Started,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        self.sample = started.verdict.jitter;
        self.started(id, generation, started, now, wall, out);
        self.sample = 0.5;
    }

    fn started(
        &mut self,
        id: NodeId,
        generation: u64,
        Started { result, verdict }: Started,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        let abort = match self.nodes.get(id).map(|n| (&n.phase, n.generation)) {
            Some((Phase::Starting { abort }, g)) if g == generation => *abort,
            _ => {
                if let Ok(live) = result {
                    out.push(Action::Kill {
                        name: "(unknown)".into(),
                        worker: OffLoop::new(live.worker.clone()),
                    });
                }
                let message =
                    format!("unexpected start result for node {id} generation {generation}");
                return self.fail_internal(message, now, out);
            }
        };
        let name = self.graph.name(id).clone();
        let live = match result {
            Ok(live) => live,
            Err(error) => return self.finish(id, Some(error), verdict, false, now, out),
        };
        if let Some(since) = abort {
            // Asked to stop while starting: never offer this worker. (It
            // did start; its `Stopping` came already.)
            self.emit(Some(id), out, || EventKind::Started);
            out.push(Action::Kill {
                name,
                worker: OffLoop::new(live.worker.clone()),
            });
            self.set_phase(id, Phase::Discarding { since, live });
            return;
        }
        let node = self.node(id);
        node.start_count += 1;
        node.start_attempts = 0;
        node.started_at = Some(now);
        node.started_wall = Some(wall);
        node.last_error = None;
        node.stuck = false;
        self.set_phase(
            id,
            Phase::Running {
                live,
                stopping: None,
            },
        );
        self.emit(Some(id), out, || EventKind::Started);
        out.push(Action::Started { name: name.clone() });
        self.bounce_dependents(id, Cause::InputStarted(name), now, out);
    }
}

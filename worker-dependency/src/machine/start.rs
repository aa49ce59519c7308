//! Starting: delays, dispatching start functions, registering workers.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use worker_core::Error;

use super::{Action, Cause, Delay, Live, Machine, Phase, Timer, TimerKind, Why};
use crate::context::InputState;
use crate::graph::NodeId;

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
            Delay::Bounce => self
                .policy
                .backoff
                .bounce_delay(self.policy.bounce_delay, self.policy.sample()),
            Delay::Error => {
                let step = self.nodes[id].recent_errors;
                self.policy
                    .backoff
                    .error_delay(self.policy.error_delay, step, self.policy.sample())
            }
        };
        self.next_generation += 1;
        let generation = self.next_generation;
        let node = self.node(id);
        node.generation = generation;
        node.start_attempts += 1;
        node.why = Some(Why::new(cause, delay));
        if delay.is_zero() {
            self.dispatch(id, now, out);
        } else {
            let until = now.checked_add(delay).unwrap_or(now);
            self.set_phase(id, Phase::Waiting { until });
            self.timers.push(Reverse(Timer {
                at: until,
                generation,
                node: id,
                kind: TimerKind::Start,
            }));
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
            inputs,
        });
    }

    /// A start function (and output function) returned.
    pub(crate) fn start_done(
        &mut self,
        id: NodeId,
        generation: u64,
        result: Result<Live, Error>,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        let abort = match self.nodes.get(id).map(|n| (&n.phase, n.generation)) {
            Some((Phase::Starting { abort }, g)) if g == generation => *abort,
            _ => {
                if let Ok(live) = result {
                    out.push(Action::Kill {
                        name: Arc::from("(unknown)"),
                        worker: live.worker,
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
            Err(error) => return self.finish(id, Some(error), false, now, out),
        };
        out.push(Action::Watch {
            node: id,
            generation,
            worker: live.worker.clone(),
        });
        if let Some(since) = abort {
            // Asked to stop while starting: never offer this worker.
            out.push(Action::Kill {
                name,
                worker: live.worker.clone(),
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
        tracing::debug!(engine = %self.name, manifold = %name, "started");
        out.push(Action::RecordStart { name: name.clone() });
        self.bounce_dependents(id, Cause::InputStarted(name), now, out);
    }
}

//! Shutdown in reverse dependency order.
//!
//! When the engine starts stopping, each manifold counts its dependents
//! that still run (or start): O(V + E), once. Pending delays are cancelled
//! and running start functions aborted at once; a running worker is
//! killed only when its count is zero, so dependents always stop before
//! the inputs they use. Each manifold that stops releases its inputs (one
//! decrement per input edge), and one that exceeds the stop timeout
//! releases them too, so a single stuck worker cannot hold the rest up.

use std::time::Instant;

use worker_core::events::{EventKind, ShutdownCause};
use worker_core::supervisor::offloop::OffLoop;

use super::{Action, Machine, Phase};
use crate::graph::NodeId;

impl Machine {
    pub(super) fn begin_shutdown(
        &mut self,
        cause: ShutdownCause,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.dying {
            return;
        }
        self.dying = true;
        self.emit(None, out, || EventKind::ShuttingDown { cause });
        for node in &mut self.nodes {
            node.live_dependents = 0;
            node.released = node.phase.is_stopped();
        }
        let ids: Vec<NodeId> = self.graph.installed().collect();
        for &id in &ids {
            if self.nodes[id].phase.is_stopped() {
                continue;
            }
            for &input in self.graph.inputs(id) {
                self.nodes[input].live_dependents += 1;
            }
        }
        for &id in &ids {
            match &mut self.nodes[id].phase {
                Phase::Waiting { .. } => {
                    self.set_phase(id, Phase::Stopped);
                    self.stopped_while_dying(id, now, out);
                }
                Phase::Starting { abort } => {
                    if abort.is_none() {
                        *abort = Some(now);
                        out.push(Action::Abort { node: id });
                        self.emit(Some(id), out, || EventKind::Stopping);
                        self.push_stop_timeout(id, now);
                    }
                }
                Phase::Running { stopping: None, .. } => {
                    if self.nodes[id].live_dependents == 0 {
                        self.stop_for_shutdown(id, now, out);
                    }
                }
                Phase::Running { .. } | Phase::Discarding { .. } | Phase::Stopped => {}
            }
        }
    }

    /// `id` stopped while the engine is stopping: it holds its inputs up
    /// no more, and it is removed if an uninstall was pending.
    pub(super) fn stopped_while_dying(&mut self, id: NodeId, now: Instant, out: &mut Vec<Action>) {
        self.release_inputs(id, now, out);
        if self.nodes[id].uninstall {
            self.remove(id, out);
        }
    }

    pub(super) fn release_inputs(&mut self, id: NodeId, now: Instant, out: &mut Vec<Action>) {
        if std::mem::replace(&mut self.nodes[id].released, true) {
            return;
        }
        let mut inputs = std::mem::take(&mut self.scratch);
        inputs.clear();
        inputs.extend_from_slice(self.graph.inputs(id));
        for &input in &inputs {
            let node = &mut self.nodes[input];
            node.live_dependents = node.live_dependents.saturating_sub(1);
            if node.live_dependents == 0
                && matches!(node.phase, Phase::Running { stopping: None, .. })
            {
                // Not recursive: an input stops later, through its own
                // worker_done, so this loop never nests.
                self.stop_for_shutdown(input, now, out);
            }
        }
        self.scratch = inputs;
    }

    fn stop_for_shutdown(&mut self, id: NodeId, now: Instant, out: &mut Vec<Action>) {
        if let Phase::Running { live, stopping } = &mut self.nodes[id].phase {
            *stopping = Some(now);
            let worker = OffLoop::new(live.worker.clone());
            out.push(Action::Kill {
                name: self.graph.name(id).clone(),
                worker,
            });
            self.emit(Some(id), out, || EventKind::Stopping);
            self.push_stop_timeout(id, now);
        }
    }

    /// The manifolds that have not stopped yet (what shutdown waits for).
    pub(crate) fn waiting_for(&self) -> Vec<String> {
        self.graph
            .installed()
            .filter(|&id| !self.nodes[id].phase.is_stopped())
            .map(|id| self.graph.name(id).to_string())
            .collect()
    }
}

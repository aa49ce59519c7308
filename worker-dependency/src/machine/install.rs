//! Installing and uninstalling manifolds.

use std::time::Instant;

use worker_core::supervisor::offloop::OffLoop;

use super::node::Node;
use super::{Action, Cause, Delay, Machine, Phase};
use crate::graph::NodeId;
use crate::{InstallError, Manifold, ShuttingDown, UninstallError};

impl Machine {
    /// Installs every manifold of `batch`, or none of them (those not
    /// installed are dropped off the loop: they hold user closures).
    pub(crate) fn install(
        &mut self,
        batch: Vec<(String, OffLoop<Manifold>)>,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), InstallError> {
        if self.dying {
            return Err(ShuttingDown(self.name.to_string()).into());
        }
        if batch.len() > 1 {
            let mut names: Vec<&str> = batch.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
                return Err(InstallError::DuplicateName(pair[0].to_owned()));
            }
        }
        let mut added: Vec<(NodeId, OffLoop<Manifold>)> = Vec::with_capacity(batch.len());
        for (name, manifold) in batch {
            match self.graph.add(&name, &manifold.inputs) {
                Ok(id) => added.push((id, manifold)),
                Err(e) => {
                    for (id, _) in added.into_iter().rev() {
                        self.graph.remove(id);
                    }
                    return Err(e);
                }
            }
        }
        if self.nodes.len() < self.graph.capacity() {
            self.nodes
                .resize_with(self.graph.capacity(), || Node::new(None));
        }
        let ids: Vec<NodeId> = added.iter().map(|(id, _)| *id).collect();
        for (id, manifold) in added {
            // Fresh counters, as Go; a placeholder keeps nothing anyway.
            self.nodes[id] = Node::new(Some(manifold));
        }
        for id in ids {
            tracing::debug!(engine = %self.name, manifold = %self.graph.name(id), "installed");
            self.request_start(id, Delay::None, Cause::Installed, now, out);
        }
        Ok(())
    }

    /// Starts uninstalling `name`: it is stopped (if running) and then
    /// removed; [`Action::Removed`] says when. Returns its id.
    pub(crate) fn uninstall(
        &mut self,
        name: &str,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<NodeId, UninstallError> {
        if self.dying {
            return Err(ShuttingDown(self.name.to_string()).into());
        }
        let id = self
            .graph
            .id(name)
            .filter(|&id| self.graph.is_installed(id))
            .ok_or_else(|| UninstallError::NotInstalled(name.to_owned()))?;
        if self.nodes[id].uninstall {
            return Ok(id);
        }
        self.nodes[id].uninstall = true;
        match self.nodes[id].phase {
            Phase::Stopped => self.remove(id, out),
            _ => self.request_stop(id, Cause::Installed, now, out),
        }
        Ok(id)
    }

    pub(super) fn remove(&mut self, id: NodeId, out: &mut Vec<Action>) {
        debug_assert!(self.nodes[id].phase.is_stopped());
        let name = self.graph.name(id).clone();
        self.emit(Some(id), out, || worker_core::events::EventKind::Removed);
        self.graph.remove(id);
        self.nodes[id] = Node::new(None);
        out.push(Action::Removed { node: id, name });
    }
}

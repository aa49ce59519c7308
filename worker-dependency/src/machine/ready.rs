//! What a readiness wait needs to know of the manifolds: which have
//! started, which are still to. The waiters themselves live in the shell
//! (with the other callers' replies), answered as the machine's actions
//! go out: a start that registers ([`Action::Started`]), an uninstall
//! ([`Action::Removed`]), the engine stopping.
//!
//! A manifold counts as started while its worker runs and the engine has
//! not asked it to stop; one the engine stops to restart it (a bounce, an
//! input that changed) is still to start. Only an uninstall takes a
//! manifold out of the engine.
//!
//! [`Action::Started`]: super::Action::Started
//! [`Action::Removed`]: super::Action::Removed

use std::sync::Arc;

use worker_core::supervisor::ready::NameState;

use super::{Machine, Phase};
use crate::graph::NodeId;

impl Machine {
    /// Where manifold `name` stands for a readiness wait.
    pub(crate) fn name_state(&self, name: &str) -> NameState {
        match self
            .graph
            .id(name)
            .filter(|&id| self.graph.is_installed(id))
        {
            None => NameState::Unknown,
            Some(id) => self.node_state(id),
        }
    }

    /// Every installed manifold that has not started, and is not being
    /// uninstalled: what [`Names::All`](worker_core::Names::All) waits for.
    pub(crate) fn not_started(&self) -> Vec<Arc<str>> {
        self.graph
            .installed()
            .filter(|&id| self.node_state(id) == NameState::NotStarted)
            .map(|id| self.graph.name(id).clone())
            .collect()
    }

    fn node_state(&self, id: NodeId) -> NameState {
        let node = &self.nodes[id];
        match node.phase {
            _ if node.uninstall => NameState::Unknown,
            Phase::Running { stopping: None, .. } => NameState::Started,
            _ => NameState::NotStarted,
        }
    }
}

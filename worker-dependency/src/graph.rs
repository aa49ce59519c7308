//! The dependency graph: names, inputs and the index of dependents.
//!
//! Every name the engine has heard of gets a [`NodeId`]: installed
//! manifolds, and names that are only declared as someone's input
//! ("placeholders", which Go keeps as `dependents[name]` so that a later
//! install bounces the manifolds that were waiting for it). A placeholder
//! that nobody needs any more is freed and its id reused.
//!
//! Costs:
//! - install: O(inputs) to link, plus the cycle check, which searches only
//!   downstream of the new node (the manifolds that already declared it as
//!   an input, transitively). Installing in dependency order (inputs
//!   first), the node has no dependents yet and the check is O(1), so a
//!   whole graph installs in O(V + E); in the worst case the check visits
//!   the new node's existing descendants and their edges.
//! - uninstall: O(sum over its inputs of their out-degree) to unlink.
//! - dependents of a node: a slice, O(out-degree) to walk.

use std::collections::HashMap;
use std::sync::Arc;

use crate::InstallError;

/// Index of a node in the graph (and in the state machine's tables).
pub(crate) type NodeId = usize;

#[derive(Debug, Default)]
struct Node {
    name: Arc<str>,
    installed: bool,
    inputs: Vec<NodeId>,
    dependents: Vec<NodeId>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    ids: HashMap<Arc<str>, NodeId>,
    nodes: Vec<Node>,
    free: Vec<NodeId>,
    /// Visit marks for searches: `marks[n] == epoch` means visited.
    marks: Vec<u32>,
    epoch: u32,
}

impl Graph {
    pub(crate) fn id(&self, name: &str) -> Option<NodeId> {
        self.ids.get(name).copied()
    }

    pub(crate) fn name(&self, id: NodeId) -> &Arc<str> {
        &self.nodes[id].name
    }

    pub(crate) fn is_installed(&self, id: NodeId) -> bool {
        self.nodes.get(id).is_some_and(|n| n.installed)
    }

    pub(crate) fn inputs(&self, id: NodeId) -> &[NodeId] {
        &self.nodes[id].inputs
    }

    pub(crate) fn dependents(&self, id: NodeId) -> &[NodeId] {
        &self.nodes[id].dependents
    }

    /// One past the highest id in use: the size tables indexed by id need.
    pub(crate) fn capacity(&self) -> usize {
        self.nodes.len()
    }

    /// Every installed node, in id order.
    pub(crate) fn installed(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len()).filter(|&id| self.nodes[id].installed)
    }

    /// Every node that is only declared as an input, in id order.
    #[cfg(test)]
    pub(crate) fn placeholders(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len())
            .filter(|&id| !self.nodes[id].installed && !self.nodes[id].dependents.is_empty())
    }

    /// Adds `name` with `inputs`, or fails leaving the graph unchanged.
    pub(crate) fn add(&mut self, name: &str, inputs: &[Arc<str>]) -> Result<NodeId, InstallError> {
        if name.is_empty() {
            return Err(InstallError::EmptyName);
        }
        let existing = self.id(name);
        if existing.is_some_and(|id| self.nodes[id].installed) {
            return Err(InstallError::AlreadyInstalled(name.to_owned()));
        }
        for (i, input) in inputs.iter().enumerate() {
            if input.is_empty() || inputs[..i].contains(input) {
                return Err(InstallError::BadInput {
                    name: name.to_owned(),
                    input: input.to_string(),
                });
            }
        }
        if inputs.iter().any(|i| &**i == name) {
            return Err(InstallError::Cycle {
                name: name.to_owned(),
                path: vec![name.to_owned(), name.to_owned()],
            });
        }
        if let Some(id) = existing {
            self.check_acyclic(id, inputs)?;
        }
        let id = match existing {
            Some(id) => id,
            None => self.make_node(name),
        };
        let mut input_ids = Vec::with_capacity(inputs.len());
        for input in inputs {
            let input_id = match self.id(input) {
                Some(i) => i,
                None => self.make_node(input),
            };
            self.nodes[input_id].dependents.push(id);
            input_ids.push(input_id);
        }
        let node = &mut self.nodes[id];
        node.installed = true;
        node.inputs = input_ids;
        Ok(id)
    }

    /// Uninstalls `id`: unlinks it from its inputs' dependents and frees
    /// the placeholders nobody needs any more. Its own dependents keep
    /// pointing at it (it becomes a placeholder) unless it has none.
    pub(crate) fn remove(&mut self, id: NodeId) {
        let inputs = std::mem::take(&mut self.nodes[id].inputs);
        self.nodes[id].installed = false;
        for input in inputs {
            let deps = &mut self.nodes[input].dependents;
            if let Some(pos) = deps.iter().position(|&d| d == id) {
                deps.swap_remove(pos);
            }
            self.free_if_unused(input);
        }
        self.free_if_unused(id);
    }

    fn free_if_unused(&mut self, id: NodeId) {
        let node = &self.nodes[id];
        if node.installed || !node.dependents.is_empty() || node.name.is_empty() {
            return;
        }
        let name = std::mem::take(&mut self.nodes[id].name);
        self.ids.remove(&name);
        self.free.push(id);
    }

    fn make_node(&mut self, name: &str) -> NodeId {
        let name: Arc<str> = Arc::from(name);
        let node = Node {
            name: name.clone(),
            ..Node::default()
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id] = node;
                id
            }
            None => {
                self.nodes.push(node);
                self.marks.push(0);
                self.nodes.len() - 1
            }
        };
        self.ids.insert(name, id);
        id
    }

    /// Fails if one of `inputs` already depends, transitively, on `id`:
    /// a breadth-first search downstream of `id`, so the path found is a
    /// shortest one.
    fn check_acyclic(&mut self, id: NodeId, inputs: &[Arc<str>]) -> Result<(), InstallError> {
        if self.nodes[id].dependents.is_empty() {
            return Ok(());
        }
        let targets: Vec<NodeId> = inputs.iter().filter_map(|i| self.id(i)).collect();
        if targets.is_empty() {
            return Ok(());
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
        // (node, index of the entry it was reached from)
        let mut queue: Vec<(NodeId, usize)> = vec![(id, usize::MAX)];
        self.marks[id] = self.epoch;
        let mut head = 0;
        while head < queue.len() {
            let (node, _) = queue[head];
            for &dep in &self.nodes[node].dependents {
                if self.marks[dep] == self.epoch {
                    continue;
                }
                self.marks[dep] = self.epoch;
                queue.push((dep, head));
                if targets.contains(&dep) {
                    return Err(self.cycle_error(id, &queue));
                }
            }
            head += 1;
        }
        Ok(())
    }

    /// The cycle ending at the last entry of `queue`: the new node needs
    /// that entry, which needs the entry it was reached from, and so on
    /// back to the new node.
    fn cycle_error(&self, id: NodeId, queue: &[(NodeId, usize)]) -> InstallError {
        let name = self.nodes[id].name.to_string();
        let mut path = vec![name.clone()];
        let mut at = queue.len() - 1;
        while queue[at].1 != usize::MAX {
            path.push(self.nodes[queue[at].0].name.to_string());
            at = queue[at].1;
        }
        path.push(name.clone());
        InstallError::Cycle { name, path }
    }
}

/// Checks a set of manifolds (owned or borrowed) as
/// [`Engine::install_all`] would, without an engine: names are not empty nor repeated, inputs are not empty nor
/// repeated, and there is no dependency cycle (Go's `Validate`). Inputs
/// outside the set are fine.
///
/// ```
/// use worker_core::Passive;
/// use worker_dependency::{validate, InstallError, Manifold};
///
/// let m = |inputs: &[&str]| Manifold::new(|_| Ok(Passive::new())).inputs(inputs);
/// assert!(validate([("a", m(&["b"])), ("b", m(&["config"]))]).is_ok());
/// let err = validate([("a", m(&["b"])), ("b", m(&["a"]))]).unwrap_err();
/// assert!(matches!(err, InstallError::Cycle { .. }), "{err}");
/// ```
///
/// [`Engine::install_all`]: crate::Engine::install_all
pub fn validate<I, S, M>(manifolds: I) -> Result<(), InstallError>
where
    I: IntoIterator<Item = (S, M)>,
    S: AsRef<str>,
    M: std::borrow::Borrow<crate::Manifold>,
{
    let mut graph = Graph::default();
    for (name, manifold) in manifolds {
        let name = name.as_ref();
        if graph.id(name).is_some_and(|id| graph.is_installed(id)) {
            return Err(InstallError::DuplicateName(name.to_owned()));
        }
        graph.add(name, &manifold.borrow().inputs)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(v: &[&str]) -> Vec<Arc<str>> {
        v.iter().map(|s| Arc::from(*s)).collect()
    }

    #[test]
    fn dependents_are_indexed_both_ways() {
        let mut g = Graph::default();
        let a = g.add("a", &[]).unwrap();
        let b = g.add("b", &names(&["a"])).unwrap();
        let c = g.add("c", &names(&["a", "b"])).unwrap();
        assert_eq!(g.dependents(a), &[b, c]);
        assert_eq!(g.inputs(c), &[a, b]);
        g.remove(b);
        assert_eq!(g.dependents(a), &[c]);
        // b is still needed by c, so it stays as a placeholder.
        assert_eq!(g.id("b"), Some(b));
        assert!(!g.is_installed(b));
        assert_eq!(g.placeholders().collect::<Vec<_>>(), vec![b]);
    }

    #[test]
    fn unknown_inputs_become_placeholders_and_are_freed_when_unused() {
        let mut g = Graph::default();
        let a = g.add("a", &names(&["ghost"])).unwrap();
        let ghost = g.id("ghost").unwrap();
        assert!(!g.is_installed(ghost));
        g.remove(a);
        assert_eq!(g.id("ghost"), None);
        assert_eq!(g.id("a"), None);
        // Freed ids are reused.
        let x = g.add("x", &[]).unwrap();
        assert!(x == a || x == ghost);
    }

    #[test]
    fn bad_input_is_rejected_and_changes_nothing() {
        let mut g = Graph::default();
        g.add("a", &[]).unwrap();
        assert_eq!(
            g.add("a", &[]),
            Err(InstallError::AlreadyInstalled("a".into()))
        );
        assert_eq!(g.add("", &[]), Err(InstallError::EmptyName));
        assert!(matches!(
            g.add("b", &names(&["a", "a"])),
            Err(InstallError::BadInput { .. })
        ));
        assert!(matches!(
            g.add("b", &names(&[""])),
            Err(InstallError::BadInput { .. })
        ));
        assert_eq!(g.id("b"), None);
        assert_eq!(g.dependents(g.id("a").unwrap()), &[] as &[NodeId]);
    }

    #[test]
    fn self_input_is_a_cycle() {
        let mut g = Graph::default();
        let err = g.add("a", &names(&["a"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot install \"a\": dependency cycle a -> a"
        );
        assert_eq!(g.id("a"), None);
    }

    #[test]
    fn cycles_through_placeholders_are_found_with_their_path() {
        let mut g = Graph::default();
        g.add("a", &names(&["c"])).unwrap();
        g.add("b", &names(&["a"])).unwrap();
        let err = g.add("c", &names(&["b"])).unwrap_err();
        assert_eq!(
            err,
            InstallError::Cycle {
                name: "c".into(),
                path: vec!["c".into(), "b".into(), "a".into(), "c".into()]
            }
        );
        // Nothing changed: c is still a placeholder with its one dependent.
        let c = g.id("c").unwrap();
        assert!(!g.is_installed(c));
        assert_eq!(g.dependents(c).len(), 1);
        assert!(g.dependents(g.id("b").unwrap()).is_empty());
        // Without the back edge it installs.
        g.add("c", &names(&["x"])).unwrap();
    }

    /// Reference: is there a path from `from` to `to` following inputs?
    fn reaches(edges: &[(usize, usize)], from: usize, to: usize) -> bool {
        let mut stack = vec![from];
        let mut seen = [false; 64];
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if std::mem::replace(&mut seen[n], true) {
                continue;
            }
            stack.extend(edges.iter().filter(|e| e.0 == n).map(|e| e.1));
        }
        false
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Installing nodes with random inputs in random order: an install
        /// is refused exactly when it would close a cycle, and the path it
        /// reports is a real cycle.
        #[test]
        fn install_refuses_exactly_the_cycles(
            specs in proptest::collection::vec(
                (0usize..12, proptest::collection::btree_set(0usize..12, 0..4)), 1..30)
        ) {
            let mut g = Graph::default();
            let mut edges: Vec<(usize, usize)> = Vec::new(); // (node, input)
            let mut installed = [false; 12];
            for (node, inputs) in specs {
                let input_names: Vec<Arc<str>> =
                    inputs.iter().map(|i| Arc::from(format!("n{i}"))).collect();
                let result = g.add(&format!("n{node}"), &input_names);
                if installed[node] {
                    prop_assert!(matches!(result, Err(InstallError::AlreadyInstalled(_))));
                    continue;
                }
                let closes = inputs.iter().any(|&i| i == node || reaches(&edges, i, node));
                match result {
                    Ok(_) => {
                        prop_assert!(!closes);
                        installed[node] = true;
                        edges.extend(inputs.iter().map(|&i| (node, i)));
                    }
                    Err(InstallError::Cycle { path, .. }) => {
                        prop_assert!(closes);
                        prop_assert_eq!(path.first(), path.last());
                        for pair in path.windows(2) {
                            let a: usize = pair[0][1..].parse().unwrap();
                            let b: usize = pair[1][1..].parse().unwrap();
                            let is_edge = (a == node && inputs.contains(&b)) || edges.contains(&(a, b));
                            prop_assert!(is_edge, "{:?} is not an edge", pair);
                        }
                    }
                    Err(e) => prop_assert!(false, "unexpected {}", e),
                }
            }
        }
    }
}

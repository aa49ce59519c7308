//! The engine's live graph, as Graphviz DOT and as JSON, from a snapshot
//! the loop took.

use std::collections::HashSet;
use std::fmt::Write as _;

use serde_json::Value;
use worker_core::KEY_STATE;

use super::{KEY_ERROR, KEY_STUCK};
use crate::machine::{Snapshot, View};

/// Colour of a manifold in the DOT graph.
fn colour(view: &View) -> &'static str {
    if view.stuck {
        return "red";
    }
    match view.state {
        "started" => "palegreen",
        "stopping" => "orange",
        _ if view.error.is_some() => "salmon",
        "starting" => "khaki",
        _ => "lightgrey",
    }
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Names declared as inputs but not installed.
fn placeholders(snapshot: &Snapshot) -> Vec<&str> {
    let installed: HashSet<&str> = snapshot.manifolds.iter().map(|v| &*v.name).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for view in &snapshot.manifolds {
        for input in view.inputs.iter() {
            if !installed.contains(&**input) && seen.insert(&**input) {
                out.push(&**input);
            }
        }
    }
    out
}

pub(crate) fn dot(snapshot: &Snapshot) -> String {
    let mut s =
        String::from("digraph engine {\n  rankdir=LR;\n  node [shape=box, style=filled];\n");
    for view in &snapshot.manifolds {
        let mut tooltip = view.state.to_owned();
        if let Some(e) = &view.error {
            let _ = write!(tooltip, ": {e}");
        }
        let _ = writeln!(
            s,
            "  {} [fillcolor={}, tooltip={}];",
            quote(&view.name),
            colour(view),
            quote(&tooltip)
        );
    }
    for name in placeholders(snapshot) {
        let _ = writeln!(
            s,
            "  {} [style=dashed, fillcolor=white, tooltip=\"not installed\"];",
            quote(name)
        );
    }
    for view in &snapshot.manifolds {
        for input in view.inputs.iter() {
            let _ = writeln!(s, "  {} -> {};", quote(input), quote(&view.name));
        }
    }
    s.push_str("}\n");
    s
}

fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

pub(crate) fn graph_json(snapshot: &Snapshot) -> Value {
    let mut nodes: Vec<Value> = snapshot
        .manifolds
        .iter()
        .map(|v| {
            let mut node = serde_json::Map::new();
            node.insert("name".into(), Value::from(&*v.name));
            node.insert(KEY_STATE.into(), v.state.into());
            node.insert("installed".into(), true.into());
            if let Some(e) = &v.error {
                node.insert(KEY_ERROR.into(), e.to_string().into());
            }
            if v.stuck {
                node.insert(KEY_STUCK.into(), true.into());
            }
            Value::Object(node)
        })
        .collect();
    nodes.extend(placeholders(snapshot).into_iter().map(|n| {
        object([
            ("name", n.into()),
            (KEY_STATE, "not installed".into()),
            ("installed", false.into()),
        ])
    }));
    let edges: Vec<Value> = snapshot
        .manifolds
        .iter()
        .flat_map(|v| {
            v.inputs
                .iter()
                .map(move |i| object([("from", (&**i).into()), ("to", (&*v.name).into())]))
        })
        .collect();
    object([("nodes", nodes.into()), ("edges", edges.into())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_escaped() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}

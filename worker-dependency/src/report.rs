//! Reports: the engine's state as JSON, and its live graph as Graphviz
//! DOT and as JSON. Everything here runs on the caller's thread, from a
//! snapshot the loop took.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::{Value, json};
use worker_core::{KEY_LAST_START, KEY_REPORT, KEY_STATE, Report, TimeLabels};

use crate::EngineHandle;
use crate::machine::{Snapshot, View};

/// Report key of the engine's error, or of a manifold's last error.
pub const KEY_ERROR: &str = "error";
/// Report key of the engine's manifolds.
pub const KEY_MANIFOLDS: &str = "manifolds";
/// Report key of a manifold's declared inputs.
pub const KEY_INPUTS: &str = "inputs";
/// Report key of a manifold's number of successful starts.
pub const KEY_START_COUNT: &str = "start-count";
/// Report key of a manifold's start requests since its last start.
pub const KEY_START_ATTEMPTS: &str = "start-attempts";
/// Report key of why a manifold was last (re)started.
pub const KEY_WHY: &str = "why";
/// Report key of a manifold that exceeded the stop timeout.
pub const KEY_STUCK: &str = "stuck";
/// Report key of how long ago the engine asked a manifold to stop.
pub const KEY_STOPPING_FOR: &str = "stopping-for";
/// Report key of how long until a delayed start.
pub const KEY_STARTS_IN: &str = "starts-in";
/// Report key of the engine's name.
pub const KEY_NAME: &str = "name";

thread_local! {
    /// Engines whose report is being built on this thread: a worker whose
    /// report asks for its own engine's report gets it without the
    /// workers' reports, instead of recursing forever.
    static REPORTING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

struct Reporting(usize);

impl Drop for Reporting {
    fn drop(&mut self) {
        REPORTING.with(|r| {
            let mut r = r.borrow_mut();
            if let Some(pos) = r.iter().rposition(|&id| id == self.0) {
                r.remove(pos);
            }
        });
    }
}

pub(crate) fn report(handle: &EngineHandle) -> Report {
    let snapshot = handle.snapshot();
    let id = handle.id();
    let nested = REPORTING.with(|r| r.borrow().contains(&id));
    let _guard = (!nested).then(|| {
        REPORTING.with(|r| r.borrow_mut().push(id));
        Reporting(id)
    });
    let state = if handle.final_result().is_some() {
        "stopped"
    } else if snapshot.dying {
        "stopping"
    } else {
        "started"
    };
    let mut report = Report::new();
    report.insert(KEY_NAME.into(), handle.name().into());
    report.insert(KEY_STATE.into(), state.into());
    if let Some(e) = &snapshot.error {
        report.insert(KEY_ERROR.into(), e.to_string().into());
    }
    let mut times = TimeLabels::default();
    // Collected rather than inserted one by one: a B-tree made from an
    // iterator is sorted once and built in one pass.
    let manifolds: Report = snapshot
        .manifolds
        .iter()
        .map(|view| {
            let entry = manifold_report(view, !nested, &mut times);
            (view.name.to_string(), Value::Object(entry))
        })
        .collect();
    report.insert(KEY_MANIFOLDS.into(), manifolds.into());
    report
}

fn manifold_report(view: &View, with_workers: bool, times: &mut TimeLabels) -> Report {
    let mut r = Report::new();
    r.insert(KEY_STATE.into(), view.state.into());
    r.insert(
        KEY_INPUTS.into(),
        Value::Array(view.inputs.iter().map(|i| Value::from(&**i)).collect()),
    );
    if view.start_count > 0 {
        r.insert(KEY_START_COUNT.into(), view.start_count.into());
    }
    if view.start_attempts > 0 {
        r.insert(KEY_START_ATTEMPTS.into(), view.start_attempts.into());
    }
    if let Some(t) = view.started {
        r.insert(KEY_LAST_START.into(), times.label(t).into());
    }
    if let Some(e) = &view.error {
        r.insert(KEY_ERROR.into(), e.to_string().into());
    }
    if let Some(why) = &view.why {
        r.insert(KEY_WHY.into(), why.text().into());
    }
    if let Some(d) = view.stopping_for {
        r.insert(KEY_STOPPING_FOR.into(), format!("{d:?}").into());
    }
    if view.stuck {
        r.insert(KEY_STUCK.into(), true.into());
    }
    if let Some(d) = view.starts_in {
        r.insert(KEY_STARTS_IN.into(), format!("{d:?}").into());
    }
    if with_workers {
        if let Some(reporter) = view.worker.as_ref().and_then(|w| w.reporter()) {
            let worker_report = catch_unwind(AssertUnwindSafe(|| reporter.report()))
                .map(Value::Object)
                .unwrap_or_else(|_| json!({ KEY_ERROR: "the worker's report panicked" }));
            r.insert(KEY_REPORT.into(), worker_report);
        }
    }
    r
}

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
            let mut node = Report::new();
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

//! Showing what the agent does: state changes as log lines, reports as an
//! indented tree and as JSON.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};
use worker_core::Error;
use worker_dependency::{Metrics, Missing};

/// The engine's metrics hook, used to log every state change in one line.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateLog;

impl Metrics for StateLog {
    fn record_start(&self, name: &str) {
        tracing::info!(manifold = name, "started");
    }

    fn record_stop(&self, name: &str, error: Option<&Error>) {
        match error {
            None => tracing::info!(manifold = name, "stopped"),
            // Not a failure: the manifold waits for an input to start.
            Some(e) if e.is::<Missing>() => {
                tracing::debug!(manifold = name, reason = %e, "waiting for an input")
            }
            Some(e) => tracing::info!(manifold = name, error = %e, "stopped"),
        }
    }
}

/// A report as an indented tree: one `key: value` line per scalar, nested
/// objects indented under their key (in key order), lists of scalars on
/// one line. Any report serialises to such a tree, whatever its type.
pub fn tree(report: &impl Serialize) -> Result<String, Error> {
    let mut out = String::new();
    match serde_json::to_value(report).map_err(Error::new)? {
        Value::Object(object) => write_object(&mut out, &object, 0),
        other => out.push_str(&scalar(&other)),
    }
    Ok(out)
}

fn write_object(out: &mut String, object: &Map<String, Value>, depth: usize) {
    for (key, value) in object {
        let indent = "  ".repeat(depth);
        match value {
            Value::Object(inner) if inner.is_empty() => {
                let _ = writeln!(out, "{indent}{key}: {{}}");
            }
            Value::Object(inner) => {
                let _ = writeln!(out, "{indent}{key}:");
                write_object(out, inner, depth + 1);
            }
            other => {
                let _ = writeln!(out, "{indent}{key}: {}", scalar(other));
            }
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(scalar).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_indents_objects_and_inlines_lists() {
        let report: Value = serde_json::from_str(
            r#"{"state":"started","manifolds":{"a":{"inputs":["b","c"],"start-count":2,"report":{}}}}"#,
        )
        .unwrap();
        assert_eq!(
            tree(&report).unwrap(),
            "manifolds:\n  a:\n    inputs: [b, c]\n    report: {}\n    start-count: 2\nstate: started\n"
        );
    }
}

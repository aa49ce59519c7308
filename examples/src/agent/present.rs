//! Showing what the agent does: state changes as log lines, reports as an
//! indented tree and as JSON.

use std::fmt::Write as _;

use worker_core::{Error, Report};
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
/// objects indented under their key, lists of scalars on one line.
pub fn tree(report: &Report) -> String {
    let mut out = String::new();
    write_object(&mut out, report, 0);
    out
}

fn write_object(out: &mut String, object: &Report, depth: usize) {
    for (key, value) in object {
        let indent = "  ".repeat(depth);
        match value {
            serde_json::Value::Object(inner) if inner.is_empty() => {
                let _ = writeln!(out, "{indent}{key}: {{}}");
            }
            serde_json::Value::Object(inner) => {
                let _ = writeln!(out, "{indent}{key}:");
                write_object(out, inner, depth + 1);
            }
            other => {
                let _ = writeln!(out, "{indent}{key}: {}", scalar(other));
            }
        }
    }
}

fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
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
        let report: Report = serde_json::from_str(
            r#"{"state":"started","manifolds":{"a":{"inputs":["b","c"],"start-count":2,"report":{}}}}"#,
        )
        .unwrap();
        assert_eq!(
            tree(&report),
            "manifolds:\n  a:\n    inputs: [b, c]\n    report: {}\n    start-count: 2\nstate: started\n"
        );
    }
}

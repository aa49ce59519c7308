//! End to end: the demo agent binary, run for a few seconds as a newcomer
//! would run it, with and without injected faults.

use std::process::{Command, Output};

/// Every manifold the agent runs (the late `leadership` included).
const MANIFOLDS: [&str; 14] = [
    "config",
    "api-connection",
    "heartbeat",
    "metrics",
    "uploader",
    "machine-watcher",
    "machines",
    "log-forwarder",
    "engine",
    "status",
    "disk-monitor",
    "janitor",
    "leadership",
    "upgrader",
];

/// Runs the agent with `args`, writing its final report to a temporary
/// file; returns the process output and the parsed report.
fn run_agent(test: &str, args: &[&str]) -> (Output, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("worker-rs-agent-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    let dot = dir.join("graph.dot");
    let output = Command::new(env!("CARGO_BIN_EXE_agent"))
        .args(args)
        .arg("--report-json")
        .arg(&report)
        .arg("--dot")
        .arg(&dot)
        .env("RUST_LOG", "info")
        .output()
        .expect("the agent binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "agent failed: {}\n{stderr}",
        output.status
    );
    let json = std::fs::read_to_string(&report).expect("the agent wrote its report");
    let report: serde_json::Value = serde_json::from_str(&json).expect("the report is JSON");
    let graph = std::fs::read_to_string(&dot).expect("the agent wrote its graph");
    assert!(graph.starts_with("digraph"), "not a DOT graph: {graph}");
    std::fs::remove_dir_all(&dir).unwrap();
    (output, report)
}

fn assert_has_every_manifold(report: &serde_json::Value) {
    let manifolds = report["manifolds"].as_object().expect("a manifolds object");
    for name in MANIFOLDS {
        assert!(
            manifolds.contains_key(name),
            "{name} missing from {report:#}"
        );
    }
    assert_eq!(manifolds.len(), MANIFOLDS.len());
}

#[test]
fn a_plain_run_shows_restarts_bounces_backoff_and_an_orderly_shutdown() {
    let (output, report) = run_agent("plain", &["--duration", "5", "--seed", "1"]);
    assert_has_every_manifold(&report);
    let log = String::from_utf8_lossy(&output.stderr);
    let shows = |what: &str, needle: &str| {
        assert!(
            log.contains(needle),
            "the log shows no {what} ({needle:?}):\n{log}"
        );
    };
    shows("engine restart", "connection #1 reset by peer");
    shows("backoff step", "step=2");
    shows("runner restart", "worker restarting");
    shows("missing input resolved", "leader: checking for upgrades");
    shows("shutdown", "shutting down (the run's duration is over)");
    shows("clean end", "agent stopped cleanly");
    // A bounce cascade: the connection's dependents stop when it fails.
    let reset = log.find("connection #1 reset by peer").unwrap();
    assert!(
        log[reset..].contains("stopped manifold=\"heartbeat\""),
        "no dependent bounced after the reset:\n{log}"
    );
    // Orderly: inputs stop after the workers that use them. (These
    // manifolds never depend on the connection, so they are up whatever
    // its backoff is doing at the end of the run.)
    let shutdown = log.find("shutting down").unwrap();
    let stopped = |name: &str| {
        log[shutdown..]
            .find(&format!("stopped manifold=\"{name}\""))
            .unwrap_or_else(|| panic!("{name} did not stop:\n{log}"))
    };
    assert!(stopped("metrics") < stopped("config"));
    assert!(stopped("janitor") < stopped("config"));
    assert!(stopped("status") < stopped("engine"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("--- engine report ---"), "{stdout}");
}

#[test]
fn a_chaos_run_survives_its_faults_and_reports_the_stuck_worker() {
    let (output, report) = run_agent("chaos", &["--duration", "3", "--chaos", "--seed", "7"]);
    assert_has_every_manifold(&report);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("manifold is slow to stop") && log.contains("janitor"),
        "the janitor that hangs on kill was not reported:\n{log}"
    );
    assert!(log.contains("agent stopped cleanly"), "{log}");
}

#[test]
fn bad_arguments_are_refused_with_the_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_agent"))
        .arg("--duration")
        .arg("soon")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad duration \"soon\""), "{stderr}");
    assert!(stderr.contains("usage: agent"), "{stderr}");
}

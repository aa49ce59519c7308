//! The `bench` program, run as `BENCHMARKS.md` runs it but at small sizes:
//! every scenario with every variant prints one JSON line labelled with the
//! variant it ran, with the phases the page reports, and leaves no thread
//! behind (issue 11: the `task` variant, S7, and S2, S4, S5 and S6 timing
//! what Go's harness times).

use std::process::Command;

/// Runs `bench args...` and returns its JSON line.
fn bench(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .output()
        .expect("the bench binary runs");
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {line}"))
}

/// Runs `scenario` at `n` with each variant and checks the label, the
/// phases (each a positive number of nanoseconds) and the thread count.
fn check(scenario: &str, n: usize, variants: &[&str], phases: &[&str]) {
    for variant in variants {
        let json = bench(&[scenario, &n.to_string(), variant]);
        assert_eq!(json["scenario"], scenario, "{json}");
        assert_eq!(json["variant"], *variant, "{json}");
        assert_eq!(json["n"], n, "{json}");
        for phase in phases {
            let v = json["phases"][phase].as_u64();
            assert!(
                v.is_some_and(|v| v > 0),
                "{scenario} {variant}: no {phase} in {json}"
            );
        }
        assert_eq!(json["threads_after"], 1, "threads left: {json}");
        assert!(
            json["peak_rss_kib"].as_u64().is_some_and(|v| v > 0),
            "{json}"
        );
    }
}

const ALL: &[&str] = &["thread", "passive", "task"];

#[test]
fn s1_starts_and_stops_every_variant() {
    check("S1", 200, ALL, &["start_ns", "stop_ns"]);
}

#[test]
fn s2_churns_every_variant_with_a_fresh_worker_per_incarnation() {
    check("S2", 200, ALL, &["churn_ns"]);
    let json = bench(&["S2", "200", "task"]);
    assert!(
        json["restarts_per_sec"].as_f64().is_some_and(|r| r > 0.0),
        "{json}"
    );
}

#[test]
fn s3_adds_and_kills_every_variant() {
    check("S3", 200, ALL, &["add_ns", "kill_ns"]);
}

#[test]
fn s4_and_s5_time_per_manifold_installs_and_the_batch_apart() {
    let phases = [
        "start_ns",
        "install_calls_ns",
        "bounce_ns",
        "stop_ns",
        "start_batch_ns",
    ];
    check("S4", 20, ALL, &phases);
    check("S5", 100, ALL, &phases);
}

#[test]
fn s6_reports_on_both_halves_with_the_variant() {
    check(
        "S6",
        100,
        ALL,
        &[
            "runner_report_ns",
            "runner_report_json_ns",
            "engine_report_ns",
            "engine_report_json_ns",
        ],
    );
}

#[test]
fn s7_is_a_scenario_of_task_workers_only() {
    check("S7", 1000, &["task"], &["start_ns", "stop_ns"]);
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["S7", "10", "thread"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("run it with the task variant"), "{stderr}");
}

#[test]
fn i1_measures_the_idle_cost_of_every_variant() {
    for variant in ALL {
        let json = bench(&["I1", "50", variant]);
        assert_eq!(json["variant"], *variant);
        assert!(json["phases"]["idle_cpu_ns"].is_u64(), "{json}");
        assert!(json["phases"]["idle_nvcsw"].is_u64(), "{json}");
        assert_eq!(json["threads_after"], 1, "{json}");
    }
}

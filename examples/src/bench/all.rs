//! `bench all`: every scenario, three runs each in a fresh process, medians
//! as a Markdown table.

use std::process::Command;
use std::time::Instant;

/// One line of the plan: scenario, variant, sizes.
struct Plan {
    scenario: &'static str,
    variant: &'static str,
    sizes: &'static [usize],
}

const PLANS: &[Plan] = &[
    Plan {
        scenario: "B0",
        variant: "thread",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S1",
        variant: "thread",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S1",
        variant: "passive",
        sizes: &[100, 1000, 10000, 100000],
    },
    Plan {
        scenario: "S1",
        variant: "task",
        sizes: &[100, 1000, 10000, 100000],
    },
    Plan {
        scenario: "S2",
        variant: "thread",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S2",
        variant: "passive",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S2",
        variant: "task",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S3",
        variant: "thread",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S3",
        variant: "passive",
        sizes: &[100, 1000, 10000, 100000],
    },
    Plan {
        scenario: "S3",
        variant: "task",
        sizes: &[100, 1000, 10000, 100000],
    },
    Plan {
        scenario: "S4",
        variant: "thread",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S4",
        variant: "passive",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S4",
        variant: "task",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S5",
        variant: "thread",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S5",
        variant: "passive",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S5",
        variant: "task",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S6",
        variant: "thread",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S6",
        variant: "passive",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S6",
        variant: "task",
        sizes: &[100, 1000, 10000],
    },
    Plan {
        scenario: "S7",
        variant: "task",
        sizes: &[1000000],
    },
    Plan {
        scenario: "I1",
        variant: "thread",
        sizes: &[1000],
    },
    Plan {
        scenario: "I1",
        variant: "passive",
        sizes: &[1000],
    },
    Plan {
        scenario: "I1",
        variant: "task",
        sizes: &[1000],
    },
];

const RUNS: usize = 3;

/// Runs the whole plan (`quick`: one run each, sizes up to 1000) and
/// prints the table on stdout, with any scenario that took over 60 s
/// listed after it; each run's raw JSON line goes to stderr.
pub fn run_all(quick: bool) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let runs = if quick { 1 } else { RUNS };
    let mut findings = Vec::new();
    println!("| scenario | variant | n | phase | median | peak RSS (MiB) | threads after |");
    println!("|---|---|---:|---|---:|---:|---:|");
    for plan in PLANS {
        for &n in plan.sizes.iter().filter(|&&n| !quick || n <= 1000) {
            let mut results: Vec<serde_json::Value> = Vec::new();
            for _ in 0..runs {
                let started = Instant::now();
                let out = Command::new(&exe)
                    .args([plan.scenario, &n.to_string(), plan.variant])
                    .output()
                    .map_err(|e| format!("cannot run {}: {e}", plan.scenario))?;
                let took = started.elapsed();
                if !out.status.success() {
                    println!(
                        "| {} | {} | {n} | FAILED: {} | | | |",
                        plan.scenario,
                        plan.variant,
                        String::from_utf8_lossy(&out.stderr)
                            .trim()
                            .replace('\n', " ")
                    );
                    break;
                }
                if took.as_secs() > 60 {
                    findings.push(format!(
                        "{} {} at n={n} took {took:.1?}, over the 60 s limit",
                        plan.scenario, plan.variant
                    ));
                }
                let line = String::from_utf8_lossy(&out.stdout);
                // The raw line, for whoever wants more than the medians.
                eprintln!("{}", line.trim());
                let value: serde_json::Value = serde_json::from_str(line.trim())
                    .map_err(|e| format!("{} printed bad JSON ({e}): {line}", plan.scenario))?;
                results.push(value);
            }
            print_rows(plan, n, &results);
        }
    }
    if !findings.is_empty() {
        println!("\nFindings:");
        for finding in &findings {
            println!("- {finding}");
        }
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn print_rows(plan: &Plan, n: usize, results: &[serde_json::Value]) {
    let Some(first) = results.first() else { return };
    let rss = median(
        results
            .iter()
            .filter_map(|r| r["peak_rss_kib"].as_f64())
            .collect(),
    ) / 1024.0;
    let threads = median(
        results
            .iter()
            .filter_map(|r| r["threads_after"].as_f64())
            .collect(),
    );
    let mut keys: Vec<String> = first["phases"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(o) = first.as_object() {
        keys.extend(
            o.iter()
                .filter(|(k, v)| {
                    v.is_f64() && !matches!(k.as_str(), "peak_rss_kib" | "threads_after")
                })
                .map(|(k, _)| format!("@{k}")),
        );
    }
    for key in keys {
        let values: Vec<f64> = results
            .iter()
            .filter_map(|r| match key.strip_prefix('@') {
                Some(top) => r[top].as_f64(),
                None => r["phases"][&key].as_f64(),
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        let m = median(values);
        let shown = match key.strip_prefix('@') {
            Some(top) if top.contains("_ns") => format!("{:.3} ms", m / 1e6),
            Some(_) => format!("{m:.0}"),
            None if key.ends_with("_ns") => format!("{:.3} ms", m / 1e6),
            None => format!("{m:.0}"),
        };
        let name = key.trim_start_matches('@');
        println!(
            "| {} | {} | {n} | {name} | {shown} | {rss:.1} | {threads:.0} |",
            plan.scenario, plan.variant
        );
    }
}

#[cfg(test)]
mod tests {
    use super::PLANS;

    /// Issue 11: `bench all` runs the task variant of S1-S6 and I1, and S7
    /// at a million.
    #[test]
    fn the_plan_runs_the_task_variant_of_every_scenario_and_s7() {
        for scenario in ["S1", "S2", "S3", "S4", "S5", "S6", "I1"] {
            for variant in ["thread", "passive", "task"] {
                assert!(
                    PLANS
                        .iter()
                        .any(|p| p.scenario == scenario && p.variant == variant),
                    "no {scenario} {variant} in the plan"
                );
            }
        }
        let s7: Vec<_> = PLANS.iter().filter(|p| p.scenario == "S7").collect();
        assert_eq!(s7.len(), 1);
        assert_eq!((s7[0].variant, s7[0].sizes), ("task", &[1_000_000][..]));
    }
}

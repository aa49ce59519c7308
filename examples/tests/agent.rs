//! End to end: the demo agent binary, run for a few seconds as a newcomer
//! would run it, with and without injected faults, stopped by SIGTERM as a
//! service manager stops it, and watched through its live observer.

mod http;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a step of the agent may take before the test fails: generous,
/// it only matters when something is already wrong.
const LONG: Duration = Duration::from_secs(30);

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
    shows(
        "backoff step",
        "worker restarting supervisor=\"agent\" worker=\"api-connection\"",
    );
    shows("backoff step", "attempt=2");
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
    assert_stopped_in_order(&log);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("--- engine report ---"), "{stdout}");
}

#[test]
fn task_workers_run_the_metrics_and_the_machines_and_stop_before_their_runtime() {
    let (output, report) = run_agent("tasks", &["--duration", "5", "--seed", "1"]);
    assert_has_every_manifold(&report);
    let log = String::from_utf8_lossy(&output.stderr);
    let position = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("the log shows no {needle:?}:\n{log}"))
    };
    // The metrics manifold's worker and the runner's per-machine workers
    // run as tasks, on the runtime's threads.
    position("task worker running worker=metrics thread=agent-tokio");
    position("task worker running worker=machine-1 thread=agent-tokio");
    // A task the runner restarted runs again (machine-1's first
    // incarnation times out on purpose).
    let failed = position("worker failed supervisor=\"machines\" worker=\"machine-1\"");
    assert!(
        log[failed..].contains("worker restarting supervisor=\"machines\" worker=\"machine-1\""),
        "the runner did not restart machine-1's task:\n{log}"
    );
    // The engine stopped every task worker before the runtime went.
    assert!(position("agent stopped cleanly") < position("task runtime stopped"));
}

/// Manifolds that never depend on the connection, so they are up whatever
/// its backoff is doing when the shutdown starts; each is paired with an
/// input it uses.
const ORDERED: [(&str, &str); 3] = [
    ("metrics", "config"),
    ("janitor", "config"),
    ("status", "engine"),
];

/// Orderly: after the agent says it is shutting down, inputs stop after
/// the workers that use them. (Anchored on the agent's own line: nested
/// runners and catacombs log "supervisor shutting down" whenever a
/// manifold that holds one restarts, and manifolds stop mid-run too.)
fn assert_stopped_in_order(log: &str) {
    let shutdown = log.find("shutting down (").expect("a shutdown");
    let stopped = |name: &str| {
        log[shutdown..]
            .find(&format!("stopped manifold=\"{name}\""))
            .unwrap_or_else(|| panic!("{name} did not stop:\n{log}"))
    };
    for (user, input) in ORDERED {
        assert!(
            stopped(user) < stopped(input),
            "{input} stopped before {user}, which uses it:\n{log}"
        );
    }
}

/// A running agent that is killed outright if the test fails before it
/// ends, so a failed test leaves no process behind.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Reads `lines` into `log` until `done(log)` holds; fails the test if
/// that takes longer than [`LONG`] or the log ends first.
fn read_until(lines: &mpsc::Receiver<String>, log: &mut String, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + LONG;
    while !done(log) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
            }
            Err(e) => panic!("still waiting on the agent's log ({e}):\n{log}"),
        }
    }
}

/// Sends every line `from` yields to the returned channel, from a thread,
/// so the test reads them as they come (with a timeout).
fn lines_of(
    from: impl std::io::Read + Send + 'static,
) -> (mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    (lines, reader)
}

#[test]
fn sigterm_stops_the_agent_in_order_and_it_exits_zero() {
    let mut agent = Running(
        Command::new(env!("CARGO_BIN_EXE_agent"))
            .args(["--duration", "600", "--seed", "1"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the agent binary runs"),
    );
    // Its log, line by line, from a thread: the test reads it as it comes.
    let (lines, reader) = lines_of(agent.0.stderr.take().unwrap());
    let mut log = String::new();
    // Signal only once the handler is in place and the manifolds whose
    // order the test checks are up.
    read_until(&lines, &mut log, |log| {
        log.contains("agent running")
            && ORDERED.iter().all(|(user, input)| {
                [user, input]
                    .iter()
                    .all(|name| log.contains(&format!("started manifold=\"{name}\"")))
            })
    });
    kill(Pid::from_raw(agent.0.id() as i32), Signal::SIGTERM).expect("SIGTERM sent");
    read_until(&lines, &mut log, |log| log.contains("agent stopped"));
    let status = agent.0.wait().unwrap();
    // The log ends with the process.
    reader.join().unwrap();
    log.extend(lines.try_iter().map(|line| line + "\n"));
    assert!(status.success(), "agent ended with {status}:\n{log}");
    assert!(
        log.contains("shutting down (a stop signal (SIGINT, SIGTERM or SIGHUP))"),
        "{log}"
    );
    assert!(log.contains("agent stopped cleanly"), "{log}");
    assert_stopped_in_order(&log);
}

#[test]
fn a_chaos_run_survives_its_faults_and_reports_the_stuck_worker() {
    let (output, report) = run_agent("chaos", &["--duration", "3", "--chaos", "--seed", "7"]);
    assert_has_every_manifold(&report);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("worker stuck supervisor=\"agent\" worker=\"janitor\""),
        "the janitor that hangs on kill was not reported:\n{log}"
    );
    assert!(log.contains("agent stopped cleanly"), "{log}");
}

#[test]
fn bad_arguments_are_refused_with_the_usage() {
    for (args, says) in [
        (["--duration", "soon"], "bad duration \"soon\""),
        (
            ["--observe", "0.0.0.0:8080"],
            "bad --observe: 0.0.0.0:8080 is not a loopback address",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_agent"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert!(stderr.contains("usage: agent"), "{stderr}");
    }
}

#[test]
fn the_observer_shows_the_live_agent_then_stops_with_it() {
    let mut agent = Running(
        Command::new(env!("CARGO_BIN_EXE_agent"))
            .args([
                "--duration",
                "600",
                "--seed",
                "1",
                "--observe",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the agent binary runs"),
    );
    let (out, out_reader) = lines_of(agent.0.stdout.take().unwrap());
    let (lines, reader) = lines_of(agent.0.stderr.take().unwrap());
    let first = out
        .recv_timeout(LONG)
        .expect("the agent prints the observer's address");
    let address: SocketAddr = first
        .strip_prefix("observer: http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("not the observer's address: {first:?}"))
        .parse()
        .unwrap();
    assert!(address.ip().is_loopback() && address.port() != 0);
    // Every manifold is installed once the late one is; the runner of
    // machines has been given workers.
    let mut log = String::new();
    read_until(&lines, &mut log, |log| {
        log.contains("agent running")
            && log.contains("installed the leadership manifold")
            && log.contains("machine appeared")
    });

    let client = http::client();
    let page = http::get_ok(&client, address, "/", "text/html");
    for asset in ["/observer.js", "/observer.css"] {
        assert!(page.contains(&format!("\"{asset}\"")), "{page}");
        assert!(!http::get_ok(&client, address, asset, "text/").is_empty());
    }
    let report: serde_json::Value = serde_json::from_str(&http::get_ok(
        &client,
        address,
        "/report.json",
        "application/json",
    ))
    .expect("the report is JSON");
    assert_has_every_manifold(&report);
    assert_eq!(report["name"], "agent");
    let tree: serde_json::Value = serde_json::from_str(&http::get_ok(
        &client,
        address,
        "/tree.json",
        "application/json",
    ))
    .expect("the tree is JSON");
    let mut under_engine: Vec<&str> = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    under_engine.sort_unstable();
    let mut manifolds = MANIFOLDS.to_vec();
    manifolds.sort_unstable();
    assert_eq!(under_engine, manifolds);
    let dot = http::get_ok(&client, address, "/graph.dot", "text/vnd.graphviz");
    let svg = http::get_ok(&client, address, "/graph.svg", "image/svg+xml");
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(svg.contains("<svg"), "{svg}");
    for name in MANIFOLDS {
        assert!(
            dot.contains(&format!("\"{name}\" [")),
            "{name} not in {dot}"
        );
        assert!(
            svg.contains(&format!(">{name}</tspan>")),
            "{name} not drawn: {svg}"
        );
    }
    let metrics = http::get_ok(&client, address, "/metrics", "text/plain; version=0.0.4");
    http::assert_families(&metrics, http::FAMILIES);
    http::assert_families(&metrics, ["worker_starts_total", "worker_live"]);
    // The nested supervisors' hooks feed it too: the runner of machines
    // and the catacombs (each has bound its workers by now).
    for supervisor in ["machines", "machines-fleet", "log-forwarder"] {
        let series = format!("worker_starts_total{{supervisor=\"{supervisor}\"");
        assert!(
            metrics.lines().any(|l| l.starts_with(&series)),
            "no {series}...}} in:\n{metrics}"
        );
    }
    for line in [
        "worker_engine_up{engine=\"agent\"} 1",
        "worker_manifold_state{engine=\"agent\",manifold=\"config\",state=\"started\"} 1",
        "worker_manifold_starts_total{engine=\"agent\",manifold=\"config\"} 1",
        // From the engine's own metrics hook: counted before it was logged.
        "worker_starts_total{supervisor=\"agent\",worker=\"config\"} 1",
        "worker_live{supervisor=\"agent\",worker=\"config\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }

    kill(Pid::from_raw(agent.0.id() as i32), Signal::SIGTERM).expect("SIGTERM sent");
    read_until(&lines, &mut log, |log| log.contains("agent stopped"));
    let status = agent.0.wait().unwrap();
    reader.join().unwrap();
    out_reader.join().unwrap();
    log.extend(lines.try_iter().map(|line| line + "\n"));
    assert!(status.success(), "agent ended with {status}:\n{log}");
    assert_stopped_in_order(&log);
    // The observer stops after the engine's last manifold, before the end.
    let shutdown = log.find("shutting down (").expect("a shutdown");
    let at = |needle: &str| {
        log[shutdown..]
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} after the shutdown began:\n{log}"))
    };
    assert!(
        at("stopped manifold=\"config\"") < at("observer stopped"),
        "{log}"
    );
    assert!(
        at("observer stopped") < at("agent stopped cleanly"),
        "{log}"
    );
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "the observer still listens on {address}"
    );
}

//! The observer in process: its tree, its metrics and every endpoint,
//! against a real engine whose manifolds hold a runner, catacombs and a
//! worker with a report of its own.

mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;
use worker_catacomb::{Catacomb, Plan};
use worker_core::events::MetricsFacade;
use worker_core::{Error, Passive, Report, Reporter, Worker, stop};
use worker_dependency::{Engine, EngineConfig, Manifold, Metrics, NoJitter};
use worker_examples::agent::manifolds::FleetReport;
use worker_examples::agent::observer::metrics::{
    Collect, Exposition, ExpositionError, HookMetrics, Type, report_families, report_metrics,
};
use worker_examples::agent::observer::tree::{Health, Kind, Node, tree};
use worker_examples::agent::observer::{ObserveError, Observer};
use worker_runner::{Runner, RunnerParams};
use worker_testing::assert_threads_gone;

use http::{FAMILIES, HOOK_FAMILIES, assert_families, client, get, get_as, get_ok, request};

const LONG: Duration = Duration::from_secs(10);

/// Tells the test of every start and stop, so it waits for states rather
/// than for time.
struct Events(Sender<(String, bool)>);

impl Metrics for Events {
    fn record_start(&self, name: &str) {
        let _ = self.0.send((name.to_owned(), true));
    }

    fn record_stop(&self, name: &str, _error: Option<&Error>) {
        let _ = self.0.send((name.to_owned(), false));
    }
}

fn engine(name: &str) -> (Engine, Receiver<(String, bool)>) {
    let (tx, events) = crossbeam_channel::unbounded();
    // The metrics hook first: once `Events` hears of an event, it is counted.
    let mut config = EngineConfig::new(name)
        .hook(MetricsFacade::new())
        .metrics(Events(tx));
    config.jitter = Arc::new(NoJitter);
    // Failures wait long enough to be seen failed.
    config.error_delay = Duration::from_secs(600);
    (Engine::new(config).unwrap(), events)
}

/// Waits until every manifold in `started` has started and every one in
/// `stopped` has stopped (in any order).
fn wait_for(events: &Receiver<(String, bool)>, started: &[&str], stopped: &[&str]) {
    let mut want: Vec<(String, bool)> = started
        .iter()
        .map(|n| (n.to_string(), true))
        .chain(stopped.iter().map(|n| (n.to_string(), false)))
        .collect();
    while !want.is_empty() {
        let event = events
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("still waiting for {want:?}"));
        want.retain(|w| *w != event);
    }
}

/// A worker with a report of a type the tree does not know.
struct Queue(Passive);

impl Worker for Queue {
    worker_core::delegate_worker!(0);

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

impl Reporter for Queue {
    fn report(&self) -> Report {
        #[derive(Debug, Serialize)]
        struct Depth {
            depth: usize,
        }
        Report::new(Depth { depth: 3 })
    }
}

/// A catacomb binding a runner, reported as the agent's fleet is.
struct Fleet {
    catacomb: Catacomb,
    runner: Arc<Runner>,
}

impl Worker for Fleet {
    worker_core::delegate_worker!(catacomb);

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

impl Reporter for Fleet {
    fn report(&self) -> Report {
        Report::new(FleetReport {
            catacomb: self.catacomb.report(),
            runner: self.runner.report(),
        })
    }
}

/// An engine with one manifold of each kind the tree knows: a runner's
/// fleet, a plain catacomb, a worker with its own report, one that fails,
/// and one waiting for it.
fn installed(name: &str) -> (Engine, Receiver<(String, bool)>) {
    let (engine, events) = engine(name);
    // Every supervisor has the metrics hook, and a name of its own test's.
    let prefix = name.to_owned();
    let fleet = Manifold::new(move |_| {
        let runner = Arc::new(Runner::new(
            RunnerParams::new(format!("{prefix}-runner")).hook(MetricsFacade::new()),
        )?);
        runner.start_worker("m-1", || Ok(Passive::new()))?;
        runner.worker("m-1", None)?;
        let plan = Plan::new(format!("{prefix}-fleet"), |c: &Catacomb| {
            let _ = c.dying().recv();
            Err(c.err_dying())
        })
        .init([runner.clone() as worker_core::SharedWorker])
        .hook(MetricsFacade::new());
        Ok(Fleet {
            catacomb: Catacomb::invoke(plan)?,
            runner,
        })
    });
    let prefix = name.to_owned();
    let helpers = Manifold::new(move |_| {
        let plan = Plan::new(format!("{prefix}-helpers"), |c: &Catacomb| {
            let _ = c.dying().recv();
            Err(c.err_dying())
        })
        .init([
            Arc::new(Passive::new()) as worker_core::SharedWorker,
            Arc::new(Passive::new()) as worker_core::SharedWorker,
        ])
        .hook(MetricsFacade::new());
        Ok(Catacomb::invoke(plan)?)
    });
    engine
        .install_all([
            ("fleet", fleet),
            ("helpers", helpers),
            ("queue", Manifold::new(|_| Ok(Queue(Passive::new())))),
            (
                "broken",
                Manifold::new(|_| Err::<Passive, _>(Error::msg("disk on fire"))),
            ),
            (
                "needs-broken",
                Manifold::new(|ctx| {
                    ctx.require("broken")?;
                    Ok(Passive::new())
                })
                .inputs(["broken"]),
            ),
        ])
        .unwrap();
    wait_for(
        &events,
        &["fleet", "helpers", "queue"],
        &["broken", "needs-broken"],
    );
    (engine, events)
}

fn child<'a>(node: &'a Node, name: &str) -> &'a Node {
    node.children
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} is not under {}: {node:#?}", node.path))
}

#[test]
fn the_tree_nests_every_supervisor_with_its_state_and_history() {
    let (engine, _events) = installed("tree-test");
    let root = tree(&engine.report());
    assert_eq!(
        (root.kind, root.health),
        (Kind::Engine, Some(Health::Running))
    );
    assert_eq!(root.children.len(), 5);

    // The fleet: manifold -> catacomb -> runner -> worker.
    let fleet = child(&root, "fleet");
    assert_eq!(fleet.kind, Kind::Manifold);
    assert_eq!(fleet.start_count, Some(1));
    assert_eq!(fleet.why.as_deref(), Some("installed"));
    let catacomb = child(fleet, "catacomb");
    assert_eq!(catacomb.kind, Kind::Catacomb);
    assert_eq!(catacomb.state.as_deref(), Some("alive"));
    assert_eq!(catacomb.live_workers, Some(1));
    let runner = child(catacomb, "runner");
    assert_eq!(runner.kind, Kind::Runner);
    assert_eq!(runner.path, "tree-test/fleet/catacomb/runner");
    let worker = child(runner, "m-1");
    assert_eq!(worker.kind, Kind::Worker);
    assert_eq!(worker.health, Some(Health::Running));
    assert_eq!(worker.restarts, Some(0));

    // A catacomb of its own, counting its two workers.
    let helpers = child(child(&root, "helpers"), "catacomb");
    assert_eq!(helpers.live_workers, Some(2));

    // A report the tree does not know is kept as it is.
    let queue = child(&root, "queue");
    assert!(queue.children.is_empty());
    assert_eq!(queue.detail, Some(serde_json::json!({"depth": 3})));

    // A failure, and the manifold that waits for it.
    let broken = child(&root, "broken");
    assert_eq!(broken.health, Some(Health::Failed));
    assert_eq!(broken.error.as_deref(), Some("disk on fire"));
    assert!(
        broken.notes.iter().any(|n| n.starts_with("starts in ")),
        "{broken:#?}"
    );
    let waiting = child(&root, "needs-broken");
    assert_eq!(waiting.health, Some(Health::Waiting));
    stop(&engine).unwrap();

    // Stopped, the engine's tree says so.
    let root = tree(&engine.report());
    assert_eq!(root.state.as_deref(), Some("stopped"));
    assert!(
        root.children
            .iter()
            .all(|m| m.state.as_deref() == Some("stopped"))
    );
}

#[test]
fn metrics_read_the_report_off_the_tree() {
    let (engine, _events) = installed("metrics-test");
    let report = engine.report();
    let mut out = Exposition::new();
    report_metrics(&tree(&report), &mut out).unwrap();
    let text = out.into_text();
    assert_eq!(report_families().collect::<Vec<_>>(), FAMILIES);
    assert_families(&text, FAMILIES);
    // The engine's count, the pending restart included.
    let attempts = report.manifold("broken").unwrap().start_attempts;
    assert!(attempts >= 1);
    let attempts = format!(
        "worker_manifold_start_attempts{{engine=\"metrics-test\",manifold=\"broken\"}} {attempts}"
    );
    assert_lines(
        &text,
        &[
            "worker_engine_up{engine=\"metrics-test\"} 1",
            "worker_engine_dying{engine=\"metrics-test\"} 0",
            "worker_manifold_state{engine=\"metrics-test\",manifold=\"queue\",state=\"started\"} 1",
            "worker_manifold_state{engine=\"metrics-test\",manifold=\"queue\",state=\"stopped\"} 0",
            "worker_manifold_starts_total{engine=\"metrics-test\",manifold=\"queue\"} 1",
            "worker_manifold_starts_total{engine=\"metrics-test\",manifold=\"broken\"} 0",
            &attempts,
            "worker_manifold_start_attempts{engine=\"metrics-test\",manifold=\"queue\"} 0",
            "worker_manifold_failed{engine=\"metrics-test\",manifold=\"broken\"} 1",
            "worker_manifold_failed{engine=\"metrics-test\",manifold=\"needs-broken\"} 0",
            "worker_manifold_stuck{engine=\"metrics-test\",manifold=\"queue\"} 0",
            "worker_runner_worker_state{runner=\"metrics-test/fleet/catacomb/runner\",worker=\"m-1\",state=\"started\"} 1",
            "worker_runner_worker_restarts{runner=\"metrics-test/fleet/catacomb/runner\",worker=\"m-1\"} 0",
            "worker_runner_worker_stuck{runner=\"metrics-test/fleet/catacomb/runner\",worker=\"m-1\"} 0",
            "worker_catacomb_state{catacomb=\"metrics-test/helpers/catacomb\",state=\"alive\"} 1",
            "worker_catacomb_workers{catacomb=\"metrics-test/helpers/catacomb\"} 2",
        ],
    );
    stop(&engine).unwrap();
    let mut out = Exposition::new();
    report_metrics(&tree(&engine.report()), &mut out).unwrap();
    assert!(
        out.text()
            .lines()
            .any(|l| l == "worker_engine_up{engine=\"metrics-test\"} 0"),
        "{}",
        out.text()
    );
}

/// An extra source of metrics, as a supervisor's metrics hook will be.
struct Extra(Result<f64, ()>);

impl Collect for Extra {
    fn collect(&self, out: &mut Exposition) -> Result<(), ExpositionError> {
        match self.0 {
            Ok(v) => out
                .family("extra_things_total", Type::Counter, "Things.")?
                .sample(&[("kind", "a")], v),
            // Writing a family the report already wrote.
            Err(()) => out
                .family("worker_engine_up", Type::Gauge, "Again.")
                .map(drop),
        }
    }
}

#[test]
fn the_observer_serves_every_endpoint_then_stops_without_a_trace() {
    // The supervisors' hooks record into the exporter installed before
    // they start.
    let hooked = HookMetrics::install().unwrap();
    let (engine, _events) = installed("serve-test");
    let bound = Observer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = bound.local_addr();
    assert!(address.ip().is_loopback() && address.port() != 0);
    let observer = bound.serve(
        engine.clone(),
        vec![Arc::new(hooked), Arc::new(Extra(Ok(4.0)))],
    );
    assert_eq!(observer.local_addr(), address);
    let client = client();

    let page = get_ok(&client, address, "/", "text/html");
    for asset in ["/observer.js", "/observer.css"] {
        assert!(
            page.contains(&format!("\"{asset}\"")),
            "the page loads {asset}: {page}"
        );
    }
    let script = get_ok(&client, address, "/observer.js", "text/javascript");
    assert!(script.contains("/tree.json") && script.contains("/graph.svg"));
    assert!(get_ok(&client, address, "/observer.css", "text/css").contains(".health-failed"));

    let tree: serde_json::Value =
        serde_json::from_str(&get_ok(&client, address, "/tree.json", "application/json")).unwrap();
    assert_eq!(tree["name"], "serve-test");
    assert_eq!(tree["children"].as_array().unwrap().len(), 5);

    let report: serde_json::Value = serde_json::from_str(&get_ok(
        &client,
        address,
        "/report.json",
        "application/json",
    ))
    .unwrap();
    assert_eq!(report["manifolds"]["broken"]["error"], "disk on fire");
    assert_eq!(report["manifolds"]["queue"]["report"]["depth"], 3);

    let graph: serde_json::Value =
        serde_json::from_str(&get_ok(&client, address, "/graph.json", "application/json")).unwrap();
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 5);

    let dot = get_ok(&client, address, "/graph.dot", "text/vnd.graphviz");
    assert!(dot.contains("\"broken\" -> \"needs-broken\""), "{dot}");

    let svg = get_ok(&client, address, "/graph.svg", "image/svg+xml");
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    for name in ["fleet", "helpers", "queue", "broken", "needs-broken"] {
        assert!(
            svg.contains(&format!(">{name}</tspan>")),
            "{name} not drawn: {svg}"
        );
    }

    let metrics = get_ok(&client, address, "/metrics", "text/plain; version=0.0.4");
    assert_families(&metrics, FAMILIES);
    assert!(
        metrics.ends_with("# TYPE extra_things_total counter\nextra_things_total{kind=\"a\"} 4\n"),
        "the extra source comes last:\n{metrics}"
    );

    // The engine's own counts are in while it runs: the hook is told
    // before the test's `Events`, which `installed` waited for.
    assert_lines(
        &metrics,
        &[
            "worker_starts_total{supervisor=\"serve-test\",worker=\"queue\"} 1",
            "worker_live{supervisor=\"serve-test\",worker=\"queue\"} 1",
            "worker_failures_total{supervisor=\"serve-test\",worker=\"broken\",kind=\"start\"} 1",
        ],
    );

    stop(&engine).unwrap();
    // Stopped, every supervisor has delivered its last event: the nested
    // runner and catacombs counted their workers' whole lives.
    let metrics = get_ok(&client, address, "/metrics", "text/plain; version=0.0.4");
    assert_families(&metrics, HOOK_FAMILIES);
    assert_lines(
        &metrics,
        &[
            "worker_starts_total{supervisor=\"serve-test\",worker=\"fleet\"} 1",
            "worker_starts_total{supervisor=\"serve-test-runner\",worker=\"m-1\"} 1",
            "worker_starts_total{supervisor=\"serve-test-fleet\"} 1",
            "worker_starts_total{supervisor=\"serve-test-helpers\"} 2",
            "worker_live{supervisor=\"serve-test\",worker=\"queue\"} 0",
            "worker_live{supervisor=\"serve-test-runner\",worker=\"m-1\"} 0",
            "worker_live{supervisor=\"serve-test-helpers\"} 0",
            "worker_stop_seconds_count{supervisor=\"serve-test-helpers\"} 2",
        ],
    );
    // The engine stopped, the observer serves its final report.
    let report: serde_json::Value = serde_json::from_str(&get_ok(
        &client,
        address,
        "/report.json",
        "application/json",
    ))
    .unwrap();
    assert_eq!(report["state"], "stopped");

    stop(&observer).unwrap();
    assert_threads_gone(&format!("observer[{address}]"));
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "the observer's socket is closed"
    );
}

/// An observer of `engine` on a free loopback port, and its address.
fn observe(engine: &Engine, metrics: Vec<Arc<dyn Collect>>) -> (Observer, SocketAddr) {
    let observer = Observer::bind("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .serve(engine.clone(), metrics);
    let address = observer.local_addr();
    (observer, address)
}

#[test]
fn bad_requests_get_precise_answers() {
    let (engine, _events) = engine("requests-test");
    let (observer, address) = observe(&engine, vec![Arc::new(Extra(Err(())))]);
    let client = client();

    let missing = get(&client, address, "/nothing");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("/metrics"), "{}", missing.body);

    let post = request(&client, "DELETE", address, "/");
    assert_eq!(post.status, 405);
    assert_eq!(post.allow.as_deref(), Some("GET, HEAD"));

    let head = request(&client, "HEAD", address, "/report.json");
    assert_eq!((head.status, head.body.as_str()), (200, ""));

    for host in ["localhost", &format!("localhost:{}", address.port())] {
        assert_eq!(
            get_as(&client, address, host, "/report.json").status,
            200,
            "{host}"
        );
    }
    let rebound = get_as(&client, address, "evil.example", "/report.json");
    assert_eq!(rebound.status, 421);
    assert!(rebound.body.contains("loopback only"), "{}", rebound.body);

    // With no manifold, the graph is a picture that says so.
    let svg = get_ok(&client, address, "/graph.svg", "image/svg+xml");
    assert!(svg.contains("no manifolds installed"), "{svg}");

    // A metrics source that fails fails the scrape, saying why.
    let failed = get(&client, address, "/metrics");
    assert_eq!(failed.status, 500);
    assert!(
        failed
            .body
            .contains("\"worker_engine_up\" is written twice"),
        "{}",
        failed.body
    );

    // Still serving after all that.
    assert_eq!(get(&client, address, "/tree.json").status, 200);
    stop(&engine).unwrap();
    stop(&observer).unwrap();
}

#[test]
fn binding_refuses_other_addresses_and_busy_ports() {
    let not_loopback = Observer::bind("0.0.0.0:0".parse().unwrap()).unwrap_err();
    assert!(matches!(not_loopback, ObserveError::NotLoopback(_)));
    assert!(
        not_loopback
            .to_string()
            .contains("serves on the loopback only"),
        "{not_loopback}"
    );
    let taken = Observer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let busy = Observer::bind(taken.local_addr()).unwrap_err();
    assert!(matches!(busy, ObserveError::Bind { .. }), "{busy:?}");
    assert!(
        busy.to_string()
            .starts_with(&format!("cannot listen on {}", taken.local_addr())),
        "{busy}"
    );
}

#[test]
fn a_dropped_observer_stops_serving() {
    let (engine, _events) = engine("drop-test");
    let (observer, address) = observe(&engine, Vec::new());
    assert_eq!(get(&client(), address, "/tree.json").status, 200);
    drop(observer);
    // Killed on drop; its thread ends on its own, unjoined.
    worker_testing::assert_threads_gone_within(&format!("observer[{address}]"), LONG);
    stop(&engine).unwrap();
}

/// Fails unless `text` has each of `lines` as a whole line.
#[track_caller]
fn assert_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            text.lines().any(|l| l == *line),
            "no line {line:?} in:\n{text}"
        );
    }
}

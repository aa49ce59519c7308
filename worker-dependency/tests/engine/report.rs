//! Reports (Go's report layout), and the live graph as DOT and JSON
//! (beyond Go).

use serde_json::json;
use worker_core::{
    DoneCallback, Error, NoReport, Passive, Report, Reporter, Signal, Worker, WorkerState,
};
use worker_dependency::{Engine, EngineReport, Manifold, self_manifold};

use crate::common::*;

/// A worker with a report; the report can be made to block.
struct Reporting {
    passive: Passive,
    gate: Option<crossbeam_channel::Receiver<()>>,
    entered: Option<crossbeam_channel::Sender<()>>,
}

impl Worker for Reporting {
    fn kill(&self) {
        self.passive.kill()
    }
    fn wait(&self) -> Result<(), Error> {
        self.passive.wait()
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        self.passive.on_done(callback)
    }
    fn dead_signal(&self) -> Option<Signal> {
        self.passive.dead_signal()
    }
    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

impl Reporter for Reporting {
    fn report(&self) -> Report {
        if let Some(entered) = &self.entered {
            let _ = entered.send(());
        }
        if let Some(gate) = &self.gate {
            let _ = gate.recv();
        }
        Report::new(json!({"answer": 42}))
    }
}

#[test]
fn the_report_has_go_layout_plus_explanations() {
    let h = Harness::new("dep-report-layout");
    let a = Manifold::new(|_| {
        Ok(Reporting {
            passive: Passive::new(),
            gate: None,
            entered: None,
        })
    });
    // One request: b is dispatched before a can have started.
    h.engine
        .install_all([("a", a), ("b", h.manifold(&["a", "ghost"]))])
        .unwrap();
    h.expect_started(&["a"]);
    h.expect_stopped(&["b"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_stopped(&["b"]);
    let report = h.engine.report();
    assert_eq!(&*report.name, "dep-report-layout");
    assert_eq!(report.state, WorkerState::Started);
    // In install order.
    let names: Vec<&str> = report.manifolds.iter().map(|m| &*m.name).collect();
    assert_eq!(names, ["a", "b"]);
    let a = report.manifold("a").unwrap();
    assert_eq!((a.state, a.start_count), (WorkerState::Started, 1));
    assert_eq!(a.why.as_ref().unwrap().as_str(), "installed");
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        json!({
            "name": "dep-report-layout",
            "state": "started",
            "manifolds": {
                "a": {
                    "state": "started",
                    "inputs": [],
                    "start-count": 1,
                    "started": "2000-01-01T00:00:00Z",
                    "why": "installed",
                    "report": {"answer": 42},
                },
                "b": {
                    "state": "stopped",
                    "inputs": ["a", "ghost"],
                    "start-attempts": 2,
                    "error": "\"ghost\" not running: dependency not available",
                    "why": "input \"a\" started; restarted after 10ms",
                },
            },
        })
    );
    h.stop().unwrap();
    let report = h.engine.report();
    assert_eq!(report.state, WorkerState::Stopped);
    assert_eq!(report.manifold("a").unwrap().state, WorkerState::Stopped);
}

#[test]
fn the_graph_is_exported_as_dot_and_json() {
    let h = Harness::new("dep-report-graph");
    h.engine
        .install_all([("a", h.manifold(&[])), ("b", h.manifold(&["a", "ghost"]))])
        .unwrap();
    h.expect_started(&["a"]);
    h.expect_stopped(&["b"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_stopped(&["b"]);
    let dot = h.engine.dot();
    assert!(dot.starts_with("digraph engine {"), "{dot}");
    assert!(
        dot.contains("\"a\" [fillcolor=palegreen, tooltip=\"started\"];"),
        "{dot}"
    );
    assert!(dot.contains("\"b\" [fillcolor=salmon"), "{dot}");
    assert!(dot.contains("\"ghost\" [style=dashed"), "{dot}");
    assert!(dot.contains("\"a\" -> \"b\";"), "{dot}");
    assert!(dot.contains("\"ghost\" -> \"b\";"), "{dot}");
    let graph = h.engine.graph_json();
    assert_eq!(
        graph["edges"],
        json!([{"from": "a", "to": "b"}, {"from": "ghost", "to": "b"}])
    );
    let nodes = graph["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(nodes.contains(&json!({"name": "a", "state": "started", "installed": true})));
    assert!(
        nodes.contains(&json!({"name": "ghost", "state": "not installed", "installed": false}))
    );
    h.stop().unwrap();
}

#[test]
fn a_slow_worker_report_does_not_stall_the_engine() {
    let h = Harness::new("dep-report-slow");
    let (gate_tx, gate) = crossbeam_channel::unbounded();
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    h.engine
        .install(
            "slow",
            Manifold::new(move |_| {
                Ok(Reporting {
                    passive: Passive::new(),
                    gate: Some(gate.clone()),
                    entered: Some(entered_tx.clone()),
                })
            }),
        )
        .unwrap();
    h.expect_started(&["slow"]);
    let handle = h.engine.clone();
    let reporter = std::thread::spawn(move || handle.report());
    entered.recv_timeout(LONG).unwrap();
    // The worker's report is blocked, yet the engine installs and starts.
    h.install("other", &[]);
    h.expect_started(&["other"]);
    gate_tx.send(()).unwrap();
    let report = serde_json::to_value(reporter.join().unwrap()).unwrap();
    assert_eq!(report["manifolds"]["slow"]["report"]["answer"], 42);
    h.stop().unwrap();
}

/// A worker whose report is its own engine's report.
struct Recursive {
    passive: Passive,
    engine: Engine,
}

impl Worker for Recursive {
    worker_core::delegate_worker!(passive);

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

impl Reporter for Recursive {
    fn report(&self) -> Report {
        Reporter::report(&self.engine)
    }
}

#[test]
fn a_report_that_includes_its_own_engine_does_not_recurse_forever() {
    // Go deadlocks here.
    let h = Harness::new("dep-report-recursive");
    let r = Manifold::new(|ctx| {
        Ok(Recursive {
            passive: Passive::new(),
            engine: ctx.get("self")?,
        })
    })
    .inputs(["self"]);
    h.engine
        .install_all([("self", self_manifold(&h.engine)), ("r", r)])
        .unwrap();
    h.expect_started(&["self"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["r"]);
    let report = h.engine.report();
    // The worker's report is the engine's, once; in that one, the
    // worker's place shows the marker.
    let own = report.manifold("r").unwrap().report.as_ref().unwrap();
    let again = own.downcast_ref::<EngineReport>().unwrap();
    assert_eq!(&*again.name, "dep-report-recursive");
    let marker = again.manifold("r").unwrap().report.as_ref().unwrap();
    assert_eq!(
        marker.downcast_ref::<NoReport>(),
        Some(&NoReport::Recursive)
    );
    let json = serde_json::to_value(&report).unwrap();
    let inner = &json["manifolds"]["r"]["report"]["manifolds"]["r"];
    assert!(
        inner["report"]["error"]
            .as_str()
            .unwrap()
            .starts_with("recursive report")
    );
    h.stop().unwrap();
}

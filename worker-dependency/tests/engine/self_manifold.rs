//! The engine offered to its own manifolds (Go's `SelfManifold`).

use std::thread;

use worker_core::{Passive, WorkerState};
use worker_dependency::{Engine, Manifold, self_manifold};

use crate::common::*;

#[test]
fn a_manifold_can_install_more_manifolds_and_read_the_report() {
    let h = Harness::new("dep-self-install");
    let (tx, rx) = crossbeam_channel::unbounded();
    let installer = Manifold::new(move |ctx| {
        let engine: Engine = ctx.get("self")?;
        let result = engine.install("child", Manifold::new(|_| Ok(Passive::new())));
        tx.send((result, engine.report())).unwrap();
        Ok(Passive::new())
    })
    .inputs(["self"]);
    // One request: the installer is dispatched before self has started.
    h.engine
        .install_all([("self", self_manifold(&h.engine)), ("installer", installer)])
        .unwrap();
    h.expect_started(&["self"]);
    h.advance(BOUNCE_DELAY, 1);
    let (result, report) = rx.recv_timeout(LONG).unwrap();
    result.unwrap();
    assert_eq!(report.manifold("self").unwrap().state, WorkerState::Started);
    h.expect_started(&["installer", "child"]);
    h.stop().unwrap();
}

#[test]
fn installing_the_self_manifold_many_times_concurrently_is_fine() {
    // Go's TestStress.
    let h = Harness::new("dep-self-stress");
    let handle = h.engine.clone();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let handle = handle.clone();
            thread::spawn(move || {
                for i in 0..10 {
                    handle
                        .install(format!("self-{t}-{i}"), self_manifold(&handle))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let names: Vec<String> = (0..8)
        .flat_map(|t| (0..10).map(move |i| format!("self-{t}-{i}")))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.expect_started(&names);
    h.stop().unwrap();
}

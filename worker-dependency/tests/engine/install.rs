//! Installing and uninstalling (Go's install tests).

use worker_core::{Error, Passive, Worker, WouldDeadlock};
use worker_dependency::{
    ConfigError, Engine, EngineConfig, InstallError, Manifold, ShuttingDown, UninstallError,
    validate,
};

use crate::common::*;

#[test]
fn an_installed_manifold_starts_at_once() {
    let h = Harness::new("dep-install-starts");
    h.install("a", &[]);
    h.expect_started(&["a"]);
    assert_eq!(h.state("a"), "started");
    assert_eq!(h.manifold_report("a")["start-count"], 1);
    h.stop().unwrap();
}

#[test]
fn a_name_installs_once() {
    let h = Harness::new("dep-install-once");
    h.install("a", &[]);
    let err = h.engine.install("a", h.manifold(&[])).unwrap_err();
    assert_eq!(err, InstallError::AlreadyInstalled("a".into()));
    assert_eq!(err.to_string(), "\"a\" manifold already installed");
    h.expect_started(&["a"]);
    h.stop().unwrap();
}

#[test]
fn bad_names_and_inputs_are_refused_and_the_engine_goes_on() {
    let h = Harness::new("dep-install-bad");
    assert_eq!(
        h.engine.install("", h.manifold(&[])),
        Err(InstallError::EmptyName)
    );
    assert!(matches!(
        h.engine.install("b", h.manifold(&["a", "a"])),
        Err(InstallError::BadInput { .. })
    ));
    assert!(matches!(
        h.engine.install("b", h.manifold(&[""])),
        Err(InstallError::BadInput { .. })
    ));
    h.install("ok", &[]);
    h.expect_started(&["ok"]);
    h.stop().unwrap();
}

#[test]
fn unknown_inputs_are_fine_until_they_are_installed() {
    let h = Harness::new("dep-install-unknown");
    h.install("b", &["a"]);
    assert!(h.call_of("b").is_none()); // Missing
    h.expect_stopped(&["b"]);
    assert_eq!(h.state("b"), "stopped");
    h.install("a", &[]);
    h.expect_started(&["a"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["b"]);
    h.stop().unwrap();
}

#[test]
fn a_cycle_is_refused_with_its_path_and_nothing_changes() {
    let h = Harness::new("dep-install-cycle");
    h.install("a", &["c"]);
    h.install("b", &["a"]);
    let err = h.engine.install("c", h.manifold(&["b"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot install \"c\": dependency cycle c -> b -> a -> c"
    );
    let err = h.engine.install("s", h.manifold(&["s"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot install \"s\": dependency cycle s -> s"
    );
    // c can still be installed without the cycle.
    h.install("c", &[]);
    h.expect_started(&["c"]);
    h.stop().unwrap();
}

#[test]
fn install_all_is_all_or_nothing() {
    let h = Harness::new("dep-install-all");
    let err = h
        .engine
        .install_all([
            ("x", h.manifold(&[])),
            ("y", h.manifold(&["x"])),
            ("x", h.manifold(&[])),
        ])
        .unwrap_err();
    assert_eq!(err, InstallError::DuplicateName("x".into()));
    let err = h
        .engine
        .install_all([("p", h.manifold(&["q"])), ("q", h.manifold(&["p"]))])
        .unwrap_err();
    assert!(matches!(err, InstallError::Cycle { .. }));
    assert!(h.engine.report().manifolds.is_empty());
    h.engine
        .install_all([("x", h.manifold(&[])), ("y", h.manifold(&[]))])
        .unwrap();
    h.expect_started(&["x", "y"]);
    h.stop().unwrap();
}

#[test]
fn install_and_uninstall_after_kill_are_refused_at_once() {
    let h = Harness::new("dep-install-after-kill");
    h.engine.kill();
    h.engine.wait().unwrap();
    assert!(matches!(
        h.engine.install("a", h.manifold(&[])),
        Err(InstallError::ShuttingDown(_))
    ));
    assert!(matches!(
        h.engine.uninstall("a"),
        Err(UninstallError::ShuttingDown(_))
    ));
    assert_eq!(
        h.engine
            .install("a", h.manifold(&[]))
            .unwrap_err()
            .to_string(),
        "engine \"dep-install-after-kill\" is shutting down"
    );
    h.stop().unwrap();
}

/// Found by the chaos test: with `#[error(transparent)]` the wrapped
/// error was not in the chain once converted, so `is::<ShuttingDown>()`
/// said no.
#[test]
fn the_specific_error_stays_findable_through_worker_core_error() {
    let h = Harness::new("dep-install-error-chain");
    h.engine.kill();
    h.engine.wait().unwrap();
    let install = Error::from(h.engine.install("a", h.manifold(&[])).unwrap_err());
    assert!(install.is::<ShuttingDown>(), "{install:?}");
    assert_eq!(
        install.to_string(),
        "engine \"dep-install-error-chain\" is shutting down"
    );
    let uninstall = Error::from(h.engine.uninstall("a").unwrap_err());
    assert!(uninstall.is::<ShuttingDown>(), "{uninstall:?}");
    let deadlock = Error::from(UninstallError::from(WouldDeadlock {
        supervisor: "e".into(),
        call: "uninstall",
    }));
    assert!(deadlock.is::<WouldDeadlock>(), "{deadlock:?}");
    assert_eq!(
        deadlock.to_string(),
        "\"e\": uninstall from one of its own threads would wait for itself forever"
    );
    h.stop().unwrap();
}

#[test]
fn uninstall_stops_the_worker_bounces_dependents_and_forgets_the_name() {
    let h = Harness::new("dep-uninstall");
    let [a, b] = h.start_chain(["a", "b"]);
    h.engine.uninstall("a").unwrap();
    assert!(is_dead(&*a));
    assert!(h.engine.report().manifold("a").is_none());
    // b was bounced and now finds a missing.
    assert!(is_dead(&*b));
    h.advance(BOUNCE_DELAY, 1);
    assert!(h.call_of("b").is_none());
    assert_eq!(
        h.engine.uninstall("a"),
        Err(UninstallError::NotInstalled("a".into()))
    );
    // The name can be installed again, and b follows it.
    h.install("a", &[]);
    h.expect_started(&["a"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["b"]);
    h.stop().unwrap();
}

#[test]
fn config_is_validated() {
    assert!(matches!(
        Engine::new(EngineConfig::new("")),
        Err(ConfigError::EmptyName)
    ));
    let mut config = EngineConfig::new("dep-config");
    config.backoff_factor = 0.5;
    assert!(matches!(
        Engine::new(config),
        Err(ConfigError::BackoffFactor(_))
    ));
}

#[test]
fn start_functions_may_return_shared_workers() {
    let h = Harness::new("dep-install-shared");
    let m = Manifold::new(|_| {
        let w: worker_core::SharedWorker = std::sync::Arc::new(Passive::new());
        Ok(w)
    })
    .output(|_: &Passive, out| out.put(7_u8));
    h.engine.install("a", m).unwrap();
    h.expect_started(&["a"]);
    let m = Manifold::new(|ctx| {
        assert_eq!(ctx.get::<u8>("a")?, 7);
        Ok(Passive::new())
    })
    .inputs(["a"]);
    h.engine.install("b", m).unwrap();
    h.expect_started(&["b"]);
    h.stop().unwrap();
}

#[test]
fn metrics_hear_of_each_registered_start_and_each_stop() {
    let h = Harness::new("dep-install-metrics");
    h.engine
        .install_all([("a", h.manifold(&[])), ("b", h.manifold(&["a"]))])
        .unwrap();
    h.expect_started(&["a"]);
    // b's first start found a missing: a stop, not a start.
    assert_eq!(
        h.expect_stopped(&["b"]),
        vec![Some(
            "\"a\" not running: dependency not available".to_owned()
        )]
    );
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["b"]);
    h.assert_quiet();
    h.stop().unwrap();
}

#[test]
fn a_blocking_start_function_does_not_hold_up_the_others() {
    let h = Harness::new("dep-install-blocking");
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let blocked = 2 * cpus + 2; // more than the engine's usual start threads
    let (release_tx, release) = crossbeam_channel::bounded::<()>(0);
    let manifolds: Vec<(String, Manifold)> = (0..blocked)
        .map(|i| {
            let release = release.clone();
            let m = Manifold::new(move |_| {
                let _ = release.recv();
                Ok(Passive::new())
            });
            (format!("blocked-{i}"), m)
        })
        .collect();
    h.engine.install_all(manifolds).unwrap();
    h.install("quick", &[]);
    h.expect_started(&["quick"]);
    drop(release_tx);
    let names: Vec<String> = (0..blocked).map(|i| format!("blocked-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.expect_started(&names);
    h.stop().unwrap();
}

#[test]
fn a_set_of_manifolds_can_be_validated_without_an_engine() {
    let h = Harness::new("dep-install-validate");
    let set = vec![
        ("a".to_owned(), h.manifold(&["c"])),
        ("b".to_owned(), h.manifold(&["a"])),
        ("c".to_owned(), h.manifold(&["b"])),
    ];
    let err = validate(set.iter().map(|(n, m)| (n, m))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot install \"c\": dependency cycle c -> b -> a -> c"
    );
    // The engine refuses the same set the same way.
    assert_eq!(h.engine.install_all(set).unwrap_err(), err);
    assert_eq!(
        validate([("x", h.manifold(&[])), ("x", h.manifold(&[]))]),
        Err(InstallError::DuplicateName("x".into()))
    );
    assert!(validate([("x", h.manifold(&["outside"]))]).is_ok());
    h.stop().unwrap();
}

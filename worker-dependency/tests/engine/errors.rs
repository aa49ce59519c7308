//! How errors steer the engine: restart delays and backoff, control
//! errors, filters, fatal errors, panics (Go's engine: how a manifold
//! (re)starts, how the loop reacts to a worker's end, fatal errors).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use worker_core::{Error, Panicked, Passive, Worker, WorkerState};
use worker_dependency::{Bounce, Manifold, Missing, Uninstall};

use crate::common::*;

#[derive(Debug, thiserror::Error)]
#[error("fatal: {0}")]
struct Fatal(&'static str);

#[test]
fn an_error_restarts_after_the_error_delay() {
    let h = Harness::new("dep-errors-delay");
    h.install("a", &[]);
    h.expect_started(&["a"]);
    let a = h.call_of("a").unwrap();
    end(&a, Some(err("boom")));
    h.expect_stopped(&["a"]);
    assert_eq!(h.state("a"), "starting");
    assert_eq!(h.manifold_report("a")["error"], "boom");
    assert_eq!(h.manifold_report("a")["starts-in"], "1s");
    h.clock.wait_timers(1, LONG).unwrap();
    h.clock.advance(ERROR_DELAY - Duration::from_millis(1));
    h.assert_quiet();
    h.clock.advance(Duration::from_millis(1));
    h.expect_started(&["a"]);
    assert_eq!(
        h.manifold_report("a")["why"],
        "failed (backoff step 1): boom; restarted after 1s"
    );
    h.stop().unwrap();
}

#[test]
fn consecutive_failures_back_off_up_to_the_cap() {
    let h = Harness::with("dep-errors-backoff", |c| {
        c.backoff_factor = 2.0;
        c.max_delay = Duration::from_secs(5);
    });
    let m = Manifold::new(|_| Err::<Passive, _>(Error::msg("down")));
    h.engine.install("a", m).unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        h.clock.wait_timers(1, LONG).unwrap();
        let left = h.clock.waiting()[0];
        seen.push(left);
        h.clock.advance(left);
    }
    let s = Duration::from_secs;
    assert_eq!(seen, vec![s(1), s(2), s(4), s(5), s(5)]);
    h.stop().unwrap();
}

#[test]
fn bounce_restarts_after_the_bounce_delay_and_is_not_backed_off() {
    let h = Harness::with("dep-errors-bounce", |c| c.backoff_factor = 10.0);
    h.install("a", &[]);
    for _ in 0..3 {
        h.expect_started(&["a"]);
        let a = h.call_of("a").unwrap();
        end(&a, Some(Error::new(Bounce)));
        h.clock.wait_timers(1, LONG).unwrap();
        assert_eq!(h.clock.waiting(), vec![BOUNCE_DELAY]);
        h.clock.advance(BOUNCE_DELAY);
    }
    h.expect_started(&["a"]);
    h.stop().unwrap();
}

#[test]
fn missing_waits_for_an_input_change_without_retrying() {
    let h = Harness::new("dep-errors-missing");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let m = Manifold::new(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Err::<Passive, _>(Error::new(Missing))
    });
    h.engine.install("a", m).unwrap();
    h.expect_stopped(&["a"]);
    assert_eq!(h.state("a"), "stopped");
    assert!(h.clock.waiting().is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    h.stop().unwrap();
}

#[test]
fn uninstall_error_removes_the_manifold() {
    let h = Harness::new("dep-errors-uninstall");
    h.install("a", &[]);
    h.expect_started(&["a"]);
    let a = h.call_of("a").unwrap();
    end(&a, Some(Error::new(Uninstall)));
    h.expect_stopped(&["a"]);
    assert!(h.engine.report().manifold("a").is_none());
    h.install("a", &[]);
    h.expect_started(&["a"]);
    h.stop().unwrap();
}

#[test]
fn a_fatal_error_stops_the_engine_and_wait_returns_the_worst() {
    let h = Harness::with("dep-errors-fatal", |c| {
        c.is_fatal = Arc::new(|e| e.is::<Fatal>());
        c.worst_error = Arc::new(|new: &Error, worst: Option<&Error>| match worst {
            Some(w) if w.to_string().contains("worse") => w.clone(),
            _ => new.clone(),
        });
    });
    h.engine
        .install_all([("a", h.manifold(&[])), ("b", h.manifold(&["a"]))])
        .unwrap();
    h.expect_started(&["a"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["b"]);
    let workers = h.workers_of(&["a", "b"]);
    end(&workers[1].1, Some(Error::new(Fatal("worse"))));
    let result = h.engine.wait();
    assert_eq!(result.unwrap_err().to_string(), "fatal: worse");
    assert!(is_dead(&*workers[0].1));
    let report = h.engine.report();
    assert_eq!(report.state, WorkerState::Stopped);
    assert!(report.error.unwrap().is::<Fatal>());
    let json = serde_json::to_value(h.engine.report()).unwrap();
    assert_eq!(json["state"], "stopped");
    assert_eq!(json["error"], "fatal: worse");
    assert!(h.stop().is_err());
}

#[test]
fn the_engine_filter_maps_the_final_error() {
    let h = Harness::with("dep-errors-engine-filter", |c| {
        c.is_fatal = Arc::new(|_| true);
        c.filter = Some(Arc::new(|e: Option<Error>| {
            e.map(|e| e.context("filtered"))
        }));
    });
    let m = Manifold::new(|_| Err::<Passive, _>(Error::msg("boom")));
    h.engine.install("a", m).unwrap();
    let result = h.engine.wait();
    assert_eq!(result.unwrap_err().to_string(), "filtered: boom");
    // Every wait returns the same.
    assert_eq!(h.stop().unwrap_err().to_string(), "filtered: boom");
}

#[test]
fn a_manifold_filter_decides_what_an_end_means() {
    let h = Harness::new("dep-errors-filter-1");
    let m = h.manifold(&[]).filter(|e: Option<Error>| match e {
        Some(e) if e.to_string() == "fine" => None,
        None => Some(Error::new(Bounce)),
        other => other,
    });
    h.engine.install("a", m).unwrap();
    h.expect_started(&["a"]);
    let a = h.call_of("a").unwrap();
    // "fine" becomes a completion: not restarted.
    end(&a, Some(err("fine")));
    assert_eq!(h.expect_stopped(&["a"]), vec![None]);
    h.assert_quiet();
    assert_eq!(h.state("a"), "stopped");
    h.stop().unwrap();

    let h = Harness::new("dep-errors-filter-2");
    let m = h
        .manifold(&[])
        .filter(|e: Option<Error>| e.or(Some(Error::new(Bounce))));
    h.engine.install("a", m).unwrap();
    h.expect_started(&["a"]);
    let a = h.call_of("a").unwrap();
    // A clean end becomes a bounce.
    end(&a, None);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["a"]);
    h.stop().unwrap();
}

#[test]
fn panics_in_start_output_and_filter_become_the_manifolds_error() {
    let h = Harness::new("dep-errors-panics");
    h.engine
        .install(
            "start",
            Manifold::new(|_| -> Result<Passive, Error> { panic!("in start") }),
        )
        .unwrap();
    h.engine
        .install(
            "output",
            Manifold::new(|_| Ok(Passive::new())).output(|_: &Passive, _| panic!("in output")),
        )
        .unwrap();
    h.engine
        .install(
            "filter",
            Manifold::new(|_| Err::<Passive, _>(Error::msg("x"))).filter(|_| panic!("in filter")),
        )
        .unwrap();
    // All three fail and wait for the error delay.
    h.expect_stopped(&["start", "output", "filter"]);
    let report = h.engine.report();
    let error = |m: &str| {
        report
            .manifold(m)
            .unwrap()
            .error
            .as_ref()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        error("start"),
        "start function of manifold \"start\" panicked: in start"
    );
    assert_eq!(
        error("output"),
        "output function of manifold \"output\" panicked: in output"
    );
    assert_eq!(
        error("filter"),
        "filter of manifold \"filter\" panicked: in filter"
    );
    let _ = Panicked {
        what: String::new(),
        message: String::new(),
    };
    h.stop().unwrap();
}

#[test]
fn an_output_panic_stops_the_worker_it_could_not_offer() {
    let h = Harness::new("dep-errors-output-stops");
    let (tx, rx) = crossbeam_channel::unbounded();
    h.engine
        .install(
            "a",
            Manifold::new(move |_| {
                let w = Arc::new(Passive::new());
                tx.send(w.clone()).unwrap();
                Ok(w)
            })
            .output(|_: &Arc<Passive>, _| panic!("no")),
        )
        .unwrap();
    let w = rx.recv_timeout(LONG).unwrap();
    assert!(w.wait().is_ok());
    h.stop().unwrap();
}

#[test]
fn every_fatal_error_is_ranked_once_and_wait_returns_the_worst() {
    // a fails fatally; while the engine stops, b's worker ends with a
    // worse fatal error when killed: worst_error sees both, once each.
    let ranked = Arc::new(AtomicUsize::new(0));
    let r = ranked.clone();
    let h = Harness::with("dep-errors-worst", |c| {
        c.is_fatal = Arc::new(|e| e.is::<Fatal>());
        c.worst_error = Arc::new(move |new: &Error, worst: Option<&Error>| {
            r.fetch_add(1, Ordering::SeqCst);
            match worst {
                Some(w) if w.to_string().contains("worse") => w.clone(),
                _ if new.to_string().contains("worse") => new.clone(),
                Some(w) => w.clone(),
                None => new.clone(),
            }
        });
    });
    h.install("a", &[]);
    h.expect_started(&["a"]);
    let a = h.call_of("a").unwrap();
    h.engine
        .install(
            "b",
            Manifold::new(|_| {
                Ok(worker_testing::error_worker(Some(Error::new(Fatal(
                    "worse",
                )))))
            }),
        )
        .unwrap();
    h.expect_started(&["b"]);
    end(&a, Some(Error::new(Fatal("bad"))));
    assert_eq!(h.engine.wait().unwrap_err().to_string(), "fatal: worse");
    assert_eq!(ranked.load(Ordering::SeqCst), 2);
    assert!(h.stop().is_err());
}

#[test]
fn control_errors_go_through_is_fatal_as_in_go() {
    // An all-fatal policy makes even Missing fatal: kept from Go.
    let h = Harness::with("dep-errors-all-fatal", |c| c.is_fatal = Arc::new(|_| true));
    h.install("b", &["a"]);
    let err = h.engine.wait().unwrap_err();
    assert!(err.is::<Missing>(), "{err}");
    assert!(h.stop().is_err());
}

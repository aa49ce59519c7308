//! One scenario per engine rule.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use worker_core::Error;
use worker_core::supervisor::offloop::OffLoop;

use super::*;

#[test]
fn install_starts_at_once_and_start_registers_the_worker() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    assert_eq!(w.state("a"), "starting");
    w.start("a", Ok(()));
    assert_eq!(w.state("a"), "started");
    assert_eq!(w.starts_recorded, vec![Arc::from("a")]);
    assert_eq!(w.node("a").start_count, 1);
    assert_eq!(w.why("a"), "installed");
}

#[test]
fn an_input_start_bounces_its_starting_dependent() {
    let mut w = World::new();
    w.install_all(vec![("a", &[]), ("b", &["a"])]).unwrap();
    // b was dispatched with a not running.
    let b = w.id("b");
    assert!(matches!(w.starts[&b].1[0].1, InputState::NotRunning));
    w.start("a", Ok(()));
    assert_eq!(w.aborts, vec![b]);
    assert_eq!(w.state("b"), "stopping");
    w.start("b", Err(GetError::not_running("a").into()));
    // Restarted after the bounce delay regardless of the error.
    assert_eq!(w.state("b"), "starting");
    assert_eq!(w.m.next_deadline(), Some(w.now + 10 * MS));
    w.advance(10 * MS);
    assert!(matches!(w.starts[&b].1[0].1, InputState::Running(_)));
    w.start("b", Ok(()));
    assert_eq!(w.state("b"), "started");
    assert_eq!(w.why("b"), "input \"a\" started; restarted after 10ms");
}

#[test]
fn a_worker_started_after_its_abort_is_killed_and_never_offered() {
    let mut w = World::new();
    w.install_all(vec![("a", &[]), ("b", &["a"]), ("c", &["b"])])
        .unwrap();
    w.start("c", Err(Missing.into()));
    w.start("a", Ok(()));
    // b's start was aborted, but it returns a worker anyway.
    w.start("b", Ok(()));
    assert_eq!(w.kills, vec![Arc::from("b")]);
    assert_eq!(w.state("b"), "stopping");
    assert_eq!(w.node("b").start_count, 0);
    w.deliver_ends();
    // Not registered: c (stopped, missing) was not bounced by it.
    assert_eq!(w.state("c"), "stopped");
    assert_eq!(w.state("b"), "starting");
}

#[test]
fn a_stop_of_an_input_bounces_running_dependents() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.install("b", &["a"]).unwrap();
    w.start("b", Ok(()));
    w.end("a", Err(Error::msg("boom")));
    assert_eq!(w.kills, vec![Arc::from("b")]);
    w.deliver_ends();
    assert_eq!(w.state("b"), "starting");
    assert_eq!(w.why("b"), "input \"a\" stopped; restarted after 10ms");
    assert_eq!(
        w.why("a"),
        "failed (backoff step 1): boom; restarted after 100ms"
    );
}

#[test]
fn missing_leaves_the_manifold_stopped_until_an_input_changes() {
    let mut w = World::new();
    w.install("b", &["a"]).unwrap();
    w.start("b", Err(Missing.into()));
    assert_eq!(w.state("b"), "stopped");
    assert_eq!(w.m.next_deadline(), None);
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    assert_eq!(w.state("b"), "starting");
    w.advance(10 * MS);
    w.start("b", Ok(()));
    assert_eq!(w.state("b"), "started");
}

#[test]
fn completion_without_error_is_not_restarted() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.end("a", Ok(()));
    assert_eq!(w.state("a"), "stopped");
    assert_eq!(w.m.next_deadline(), None);
}

#[test]
fn errors_back_off_and_reset_after_a_long_run() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    let mut delays = Vec::new();
    for _ in 0..4 {
        w.start("a", Err(Error::msg("no")));
        let d = w.m.next_deadline().unwrap() - w.now;
        delays.push(d);
        w.advance(d);
    }
    assert_eq!(delays, vec![100 * MS, 200 * MS, 400 * MS, 800 * MS]);
    // Capped at max_delay (10 s) however long it goes on.
    for _ in 0..20 {
        w.start("a", Err(Error::msg("no")));
        let d = w.m.next_deadline().unwrap() - w.now;
        assert!(d <= Duration::from_secs(10));
        w.advance(d);
    }
    assert_eq!(w.m.next_deadline(), None);
    // A worker that ran past the reset time starts over at step 1.
    w.start("a", Ok(()));
    w.now += Duration::from_secs(2);
    w.end("a", Err(Error::msg("late")));
    assert_eq!(w.m.next_deadline().unwrap() - w.now, 100 * MS);
    assert_eq!(w.node("a").recent_errors, 1);
}

#[test]
fn a_success_after_errors_does_not_shorten_the_next_delay() {
    // Go: recentErrors 0 gives factor^-1, halving the delay.
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.end("a", Ok(()));
    assert_eq!(w.node("a").recent_errors, 0);
    w.install("b", &["a"]).unwrap();
    w.start("b", Ok(()));
    // a is stopped (completed); b's error now is the first failure.
    w.end("b", Err(Error::msg("x")));
    assert_eq!(w.m.next_deadline().unwrap() - w.now, 100 * MS);
}

#[test]
fn bounce_restarts_after_the_bounce_delay_without_backoff() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    for _ in 0..5 {
        w.start("a", Ok(()));
        w.end("a", Err(Bounce.into()));
        assert_eq!(w.m.next_deadline().unwrap() - w.now, 10 * MS);
        w.advance(10 * MS);
    }
    assert_eq!(w.why("a"), "worker asked to bounce; restarted after 10ms");
}

#[test]
fn an_input_change_during_a_delay_restarts_the_wait_as_a_bounce() {
    let mut w = World::new();
    w.install_all(vec![("a", &[]), ("b", &["a"])]).unwrap();
    w.start("b", Err(Error::msg("bad")));
    assert_eq!(w.m.next_deadline().unwrap() - w.now, 100 * MS);
    w.start("a", Ok(()));
    // The error delay was cut short: b restarts after the bounce delay.
    assert_eq!(w.m.next_deadline().unwrap() - w.now, 10 * MS);
    assert_eq!(w.node("b").recent_errors, 1);
    w.advance(10 * MS);
    w.start("b", Ok(()));
}

#[test]
fn uninstall_error_removes_the_manifold_and_bounces_dependents() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.install("b", &["a"]).unwrap();
    w.start("b", Ok(()));
    let a = w.id("a");
    w.end("a", Err(Uninstall.into()));
    assert_eq!(w.removed, vec![a]);
    assert!(!w.m.graph.is_installed(a));
    w.deliver_ends();
    w.advance(10 * MS);
    let b = w.id("b");
    assert!(matches!(w.starts[&b].1[0].1, InputState::NotRunning));
    // Reinstalling "a" bounces b again.
    w.start("b", Err(Missing.into()));
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    assert_eq!(w.state("b"), "starting");
}

#[test]
fn public_uninstall_stops_then_removes() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    let mut out = Vec::new();
    let id = w.m.uninstall("a", w.now, &mut out).unwrap();
    w.apply(out);
    assert!(w.removed.is_empty());
    w.deliver_ends();
    assert_eq!(w.removed, vec![id]);
    let mut out = Vec::new();
    assert_eq!(
        w.m.uninstall("a", w.now, &mut out),
        Err(UninstallError::NotInstalled("a".into()))
    );
    // A stopped manifold is removed at once.
    w.install("s", &[]).unwrap();
    w.start("s", Err(Missing.into()));
    let id = w.m.uninstall("s", w.now, &mut out).unwrap();
    w.apply(out);
    assert_eq!(w.removed.last(), Some(&id));
}

#[test]
fn filters_see_every_end_and_decide() {
    let mut w = World::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let m = manifold(&[]).filter(move |e| {
        c.fetch_add(1, Ordering::SeqCst);
        match e {
            None => Some(Error::msg("completed?!")),
            Some(e) if e.to_string() == "benign" => None,
            Some(e) => Some(e),
        }
    });
    let mut out = Vec::new();
    w.m.install(vec![("a".into(), OffLoop::new(m))], w.now, &mut out)
        .unwrap();
    w.apply(out);
    w.start("a", Ok(()));
    w.end("a", Err(Error::msg("benign")));
    assert_eq!(w.state("a"), "stopped");
    let a = w.id("a");
    w.m.nodes[a].recent_errors = 0;
    let mut out = Vec::new();
    w.m.request_start(a, Delay::None, Cause::Installed, w.now, &mut out);
    w.apply(out);
    w.start("a", Ok(()));
    w.end("a", Ok(()));
    assert_eq!(w.state("a"), "starting");
    assert_eq!(
        w.node("a").last_error.as_ref().unwrap().to_string(),
        "completed?!"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_panicking_filter_becomes_the_error() {
    let mut w = World::new();
    let m = manifold(&[]).filter(|_| panic!("filter broke"));
    let mut out = Vec::new();
    w.m.install(vec![("a".into(), OffLoop::new(m))], w.now, &mut out)
        .unwrap();
    w.apply(out);
    w.start("a", Err(Error::msg("x")));
    let err = w.node("a").last_error.clone().unwrap();
    assert!(err.is::<worker_core::Panicked>());
    assert_eq!(
        err.to_string(),
        "filter of manifold \"a\" panicked: filter broke"
    );
    assert_eq!(w.state("a"), "starting");
}

#[test]
fn a_fatal_error_stops_everything_dependents_first_and_surfaces_once() {
    let mut w = World::new();
    w.install_all(vec![("a", &[]), ("b", &["a"]), ("c", &["b"]), ("x", &[])])
        .unwrap();
    w.start("a", Ok(()));
    w.start("b", Err(Missing.into()));
    w.start("c", Err(Missing.into()));
    w.advance(10 * MS);
    w.start("b", Ok(()));
    w.advance(10 * MS);
    w.start("c", Ok(()));
    w.start("x", Ok(()));
    w.end("x", Err(Fatal.into()));
    assert!(w.m.is_dying());
    // Only c (no dependents) is killed first.
    assert_eq!(w.kills, vec![Arc::from("c")]);
    w.deliver_ends();
    assert_eq!(
        w.kills,
        vec![Arc::from("c"), Arc::from("b"), Arc::from("a")]
    );
    assert!(w.m.is_finished());
    assert_eq!(w.worst_calls.load(Ordering::SeqCst), 1);
    assert!(w.result().unwrap_err().is::<Fatal>());
    // Nothing restarts, and install is refused.
    assert_eq!(w.m.next_deadline(), None);
    assert!(matches!(
        w.install("z", &[]),
        Err(InstallError::ShuttingDown(_))
    ));
}

#[test]
fn a_panicking_is_fatal_counts_as_fatal() {
    let mut w = World::new();
    w.policies.is_fatal = Arc::new(|_| panic!("is_fatal broke"));
    w.install("a", &[]).unwrap();
    w.start("a", Err(Error::msg("x")));
    assert!(w.m.is_finished());
    let err = w.result().unwrap_err();
    assert!(err.is::<worker_core::Panicked>(), "{err}");
    assert_eq!(
        w.node("a").last_error.as_ref().unwrap().to_string(),
        err.to_string()
    );
}

#[test]
fn a_panicking_worst_error_is_the_engines_error() {
    // worst_error ranks the fatal errors when the engine ends, off the
    // loop: the panic is the engine's result, and the manifold keeps its
    // own error (the policy panicked, not the manifold).
    let mut w = World::new();
    w.policies.worst_error = Arc::new(|_, _| panic!("worst_error broke"));
    w.install("a", &[]).unwrap();
    w.start("a", Err(Fatal.into()));
    assert!(w.m.is_finished());
    let err = w.result().unwrap_err();
    assert_eq!(err.to_string(), "worst_error panicked: worst_error broke");
    assert!(err.is::<worker_core::Panicked>());
    assert!(w.node("a").last_error.as_ref().unwrap().is::<Fatal>());
}

#[test]
fn a_stuck_stop_is_reported_and_releases_inputs_during_shutdown() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.install("b", &["a"]).unwrap();
    w.start("b", Ok(()));
    w.kill();
    assert_eq!(w.kills, vec![Arc::from("b")]);
    // b never ends.
    w.dying.clear();
    assert_eq!(w.m.waiting_for(), vec!["a".to_owned(), "b".to_owned()]);
    w.advance(Duration::from_secs(5));
    assert_eq!(w.stuck, vec![Arc::from("b")]);
    assert_eq!(w.kills, vec![Arc::from("b"), Arc::from("a")]);
    w.deliver_ends();
    assert_eq!(w.m.waiting_for(), vec!["b".to_owned()]);
    assert!(!w.m.is_finished());
    w.end("b", Ok(()));
    assert!(w.m.is_finished());
}

#[test]
fn a_stuck_stop_outside_shutdown_is_reported_once() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.install("b", &["a"]).unwrap();
    w.start("b", Ok(()));
    w.end("a", Err(Bounce.into()));
    w.dying.clear();
    w.advance(Duration::from_secs(5));
    w.advance(Duration::from_secs(5));
    assert_eq!(w.stuck, vec![Arc::from("b")]);
    assert!(w.node("b").stuck);
}

#[test]
fn kill_aborts_delays_and_starts() {
    let mut w = World::new();
    w.install_all(vec![("a", &[]), ("b", &[])]).unwrap();
    w.start("a", Err(Error::msg("x")));
    w.kill();
    assert_eq!(w.state("a"), "stopped");
    assert_eq!(w.aborts, vec![w.id("b")]);
    w.start("b", Ok(()));
    assert_eq!(w.kills, vec![Arc::from("b")]);
    w.deliver_ends();
    assert!(w.m.is_finished());
}

#[test]
fn unexpected_events_are_internal_errors_that_stop_the_engine() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    let mut out = Vec::new();
    let verdict = w.verdict("a", None);
    w.m.worker_done(w.id("a"), 999, Ok(()), verdict, w.now, &mut out);
    w.apply(out);
    assert!(w.m.is_dying());
    assert!(w.m.has_internal_error());
    assert!(w.m.internal_error().unwrap().is::<Internal>());
    w.deliver_ends();
    assert!(w.m.is_finished());
    assert!(w.result().unwrap_err().is::<Internal>());
}

#[test]
fn a_failed_batch_installs_nothing() {
    let mut w = World::new();
    w.install("a", &["c"]).unwrap();
    let err = w
        .install_all(vec![("b", &["a"]), ("c", &["b"])])
        .unwrap_err();
    assert!(matches!(err, InstallError::Cycle { .. }), "{err}");
    assert_eq!(w.m.graph.id("b"), None);
    assert!(!w.m.graph.is_installed(w.id("c")));
    let err = w.install_all(vec![("q", &[]), ("q", &[])]).unwrap_err();
    assert_eq!(err, InstallError::DuplicateName("q".into()));
    assert_eq!(w.m.graph.id("q"), None);
}

#[test]
fn aborted_delays_never_reach_is_fatal() {
    let mut w = World::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    w.policies.is_fatal = Arc::new(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        false
    });
    w.install_all(vec![("a", &[]), ("b", &["a"])]).unwrap();
    w.start("b", Err(Error::msg("x")));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    w.start("a", Ok(()));
    // b's delay was aborted and restarted: is_fatal was not asked again.
    assert_eq!(w.state("b"), "starting");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn cancelled_deadlines_do_not_pile_up_behind_a_pending_one() {
    // One manifold waits out its error delay (an early deadline stays
    // pending); meanwhile manifolds are installed and uninstalled again and
    // again, each leaving a stop timeout or a delayed start to cancel.
    // Every such deadline is removed when its reason ends, not kept until
    // it reaches the front of the queue (issue 9: the engine grew by
    // 7.4 MiB over 190,000 uninstall/install cycles).
    let mut w = World::new();
    w.install("pending", &[]).unwrap();
    w.start("pending", Err(Error::msg("down")));
    assert_eq!(w.m.timer_count(), 1);
    let uninstall = |w: &mut World, name: &str| {
        let mut out = Vec::new();
        w.m.uninstall(name, w.now, &mut out).unwrap();
        w.apply(out);
    };
    for _ in 0..5_000 {
        // A running worker, uninstalled: its stop timeout goes with it.
        w.install("x", &[]).unwrap();
        w.start("x", Ok(()));
        uninstall(&mut w, "x");
        assert_eq!(w.m.timer_count(), 2, "a stop timeout runs");
        w.deliver_ends();
        assert_eq!(w.m.timer_count(), 1, "only the pending start is left");
        // A failed start waiting for its delay, uninstalled.
        w.install("y", &[]).unwrap();
        w.start("y", Err(Error::msg("no")));
        assert_eq!(w.m.timer_count(), 2, "a delayed start waits");
        uninstall(&mut w, "y");
        assert_eq!(w.m.timer_count(), 1, "only the pending start is left");
    }
    assert_eq!(w.state("pending"), "starting");
    w.advance(100 * MS);
    assert!(w.starts.contains_key(&w.id("pending")));
}

#[test]
fn huge_delays_mean_practically_never() {
    // Duration::MAX used to overflow the deadline into "now": a failing
    // manifold restarted some 60,000 times a second.
    let never = Duration::MAX;
    let mut w = World::with(|c| {
        c.error_delay = never;
        c.bounce_delay = never;
        c.max_delay = never;
        c.stop_timeout = never;
        c.backoff_reset_time = never;
    });
    let year = Duration::from_secs(365 * 24 * 3600);
    w.install_all(vec![("a", &[]), ("b", &["a"])]).unwrap();
    w.start("a", Err(Error::msg("down")));
    w.start("b", Err(Missing.into()));
    assert!(w.m.next_deadline().unwrap() >= w.now + 50 * year);
    w.advance(10 * year);
    assert_eq!(w.state("a"), "starting");
    assert!(!w.starts.contains_key(&w.id("a")), "not started again");
    // A bounce waits as long; a stop timeout never fires.
    w.install("c", &[]).unwrap();
    w.start("c", Ok(()));
    w.end("c", Err(Bounce.into()));
    w.advance(10 * year);
    assert!(!w.starts.contains_key(&w.id("c")));
    // A worker slow to stop is never reported stuck.
    w.install("d", &[]).unwrap();
    w.start("d", Ok(()));
    w.kill();
    assert_eq!(w.kills, vec![Arc::from("d")]);
    w.advance(10 * year);
    assert!(w.stuck.is_empty());
    w.deliver_ends();
    assert!(w.m.is_finished());
    assert!(w.result().is_ok());
}

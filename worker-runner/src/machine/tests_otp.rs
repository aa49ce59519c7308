//! The machine driven by hand through the OTP and suture rules: restart
//! strategies (with restart types and fatal errors mixed in), the
//! runner-wide intensity limit and the failure backoff at their
//! boundaries, ordered and forced shutdown, stuck start functions, bounded
//! removal, significant workers, and the events.

use std::time::Duration;

use worker_core::Error;

use super::tests::{
    H, config, finished, finished_errors, kills, none_fatal, removed, secs, start_of, starts,
};
use super::*;
use crate::error::{RemoveTimedOut, RunnerIntensityExceeded};
use crate::event::ShutdownCause;
use crate::policy::WorkerOptions;

fn with(strategy: Strategy) -> H {
    let mut c = none_fatal(config());
    c.machine.strategy = strategy;
    c.machine.events = true;
    H::new(c)
}

fn events(out: &[Action<super::tests::TestIo>]) -> Vec<&RunnerEvent> {
    out.iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(&**e),
            _ => None,
        })
        .collect()
}

fn names(out: &[Action<super::tests::TestIo>]) -> Vec<&'static str> {
    events(out).iter().map(|e| e.name()).collect()
}

fn aborts(out: &[Action<super::tests::TestIo>]) -> Vec<u64> {
    out.iter()
        .filter_map(|a| match a {
            Action::Abort { worker, .. } => Some(*worker),
            _ => None,
        })
        .collect()
}

/// The ids of the start actions in `out`, in order.
fn started_ids(out: &[Action<super::tests::TestIo>]) -> Vec<String> {
    out.iter()
        .filter_map(|a| match a {
            Action::Start { id, .. } => Some(id.to_string()),
            _ => None,
        })
        .collect()
}

/// Completes every start in `out`, returning (id, slot, generation,
/// instance) for each.
fn complete_all(
    h: &mut H,
    out: &[Action<super::tests::TestIo>],
) -> Vec<(String, Slot, Generation, u64)> {
    starts(out)
        .into_iter()
        .map(|a| {
            let (slot, generation) = start_of(a);
            let Action::Start { id, .. } = a else {
                unreachable!()
            };
            let (w, _) = h.complete(a);
            (id.to_string(), slot, generation, w)
        })
        .collect()
}

fn temporary() -> WorkerOptions {
    WorkerOptions::new().restart_type(RestartType::Temporary)
}

// ----- strategies -----------------------------------------------------------

#[test]
fn one_for_all_restarts_every_worker_together_in_start_order() {
    let mut h = with(Strategy::OneForAll);
    let (sa, ga, wa) = h.run("a");
    let (sb, gb, _) = h.run("b");
    let (sc, gc, wc) = h.run("c");
    let out = h.exit(sb, gb, Some("oops"));
    let mut killed = kills(&out);
    killed.sort();
    assert_eq!(killed, vec![wa, wc], "every other worker is killed");
    let restarting: Vec<_> = events(&out)
        .into_iter()
        .filter_map(|e| match e {
            RunnerEvent::Restarting { id, because_of, .. } => {
                Some((id.to_string(), because_of.as_deref().map(str::to_owned)))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        restarting,
        vec![
            ("b".into(), None),
            ("a".into(), Some("b".into())),
            ("c".into(), Some("b".into())),
        ]
    );
    // The delay passes, but a and c have not ended: nothing starts.
    assert!(starts(&h.advance(secs(5))).is_empty());
    assert!(starts(&h.exit(sa, ga, None)).is_empty());
    // The last one ends: all start again, in start order.
    let out = h.exit(sc, gc, Some("killed"));
    assert_eq!(started_ids(&out), vec!["a", "b", "c"]);
    let report = h.m.snapshot();
    let a = report.iter().find(|e| &*e.id == "a").unwrap();
    assert_eq!(a.cause.as_ref().unwrap().because_of.as_deref(), Some("b"));
}

#[test]
fn one_for_all_waits_out_the_delay_after_every_member_has_ended() {
    let mut h = with(Strategy::OneForAll);
    let (sa, ga, _) = h.run("a");
    let (sb, gb, _) = h.run("b");
    h.exit(sa, ga, Some("oops"));
    assert!(
        starts(&h.exit(sb, gb, None)).is_empty(),
        "the delay is not over"
    );
    assert!(starts(&h.advance(secs(1) - Duration::from_nanos(1))).is_empty());
    let out = h.advance(Duration::from_nanos(1));
    assert_eq!(started_ids(&out), vec!["a", "b"]);
}

#[test]
fn rest_for_one_restarts_only_the_workers_started_after() {
    let mut h = with(Strategy::RestForOne);
    h.run("a");
    let (sb, gb, _) = h.run("b");
    let (sc, gc, wc) = h.run("c");
    let out = h.exit(sb, gb, Some("oops"));
    assert_eq!(kills(&out), vec![wc], "a, started before b, is left alone");
    h.exit(sc, gc, None);
    let out = h.advance(secs(1));
    assert_eq!(started_ids(&out), vec!["b", "c"]);
    assert_eq!(
        h.m.snapshot()
            .iter()
            .find(|e| &*e.id == "a")
            .unwrap()
            .state
            .as_str(),
        "started"
    );
}

#[test]
fn rest_for_one_after_the_last_worker_is_one_for_one() {
    let mut h = with(Strategy::RestForOne);
    h.run("a");
    let (sb, gb, _) = h.run("b");
    let out = h.exit(sb, gb, Some("oops"));
    assert!(kills(&out).is_empty());
    assert_eq!(started_ids(&h.advance(secs(1))), vec!["b"]);
}

#[test]
fn a_temporary_sibling_is_stopped_for_good_by_a_cascade() {
    let mut h = with(Strategy::OneForAll);
    let (sa, ga, _) = h.run("a");
    let out = h.start_with("t", Some(temporary())).unwrap();
    let (st, gt) = start_of(&out[0]);
    let (wt, _) = h.complete(&out[0]);
    let out = h.exit(sa, ga, Some("oops"));
    assert_eq!(kills(&out), vec![wt]);
    assert!(
        !events(&out)
            .iter()
            .any(|e| matches!(e, RunnerEvent::Restarting { id, .. } if &**id == "t")),
        "a temporary worker is not restarted"
    );
    let out = h.exit(st, gt, None);
    assert_eq!(names(&out), vec!["worker stopped"]);
    assert_eq!(h.m.names(), vec!["a".to_owned()]);
    assert_eq!(started_ids(&h.advance(secs(1))), vec!["a"]);
}

#[test]
fn only_a_restart_cascades() {
    // A transient worker's clean exit and a temporary worker's failure
    // remove them, and take nobody with them.
    let mut h = with(Strategy::OneForAll);
    let (sa, ga, _) = h.run("a");
    let out = h.start_with("t", Some(temporary())).unwrap();
    let (st, gt) = start_of(&out[0]);
    h.complete(&out[0]);
    h.run("c");
    assert!(kills(&h.exit(sa, ga, None)).is_empty());
    assert!(kills(&h.exit(st, gt, Some("oops"))).is_empty());
    assert_eq!(h.m.names(), vec!["c".to_owned()]);
    assert_eq!(h.m.next_deadline(), None);
}

#[test]
fn a_fatal_error_of_a_killed_sibling_ends_the_runner_and_restarts_nobody() {
    let mut c = config();
    c.is_fatal = Some(std::sync::Arc::new(|e: &Error| {
        e.to_string().starts_with("fatal")
    }));
    c.machine.strategy = Strategy::OneForAll;
    let mut h = H::new(c);
    let (sa, ga, _) = h.run("a");
    let (sb, gb, _) = h.run("b");
    h.exit(sa, ga, Some("oops"));
    // b's stop error goes to is_fatal, as every stop error does.
    let out = h.exit(sb, gb, Some("fatal on stop"));
    assert!(out.iter().any(|a| matches!(a, Action::Dying)));
    assert_eq!(finished(&out), Some(Err("fatal on stop".into())));
    assert!(starts(&h.advance(secs(10))).is_empty());
}

#[test]
fn a_fatal_failure_restarts_nobody() {
    let mut c = config(); // every error fatal
    c.machine.strategy = Strategy::OneForAll;
    let mut h = H::new(c);
    let (sa, ga, _) = h.run("a");
    let (sb, gb, wb) = h.run("b");
    let out = h.exit(sa, ga, Some("boom"));
    assert_eq!(kills(&out), vec![wb], "killed by the shutdown");
    let out = h.exit(sb, gb, None);
    assert_eq!(finished(&out), Some(Err("boom".into())));
}

#[test]
fn a_starting_sibling_is_killed_when_it_arrives_and_joins_the_cascade() {
    let mut h = with(Strategy::OneForAll);
    let (sa, ga, _) = h.run("a");
    let out_c = h.start("c");
    let out = h.exit(sa, ga, Some("oops"));
    assert!(kills(&out).is_empty(), "nothing running to kill");
    // c arrives, is killed at once, ends: the cascade starts both.
    let (wc, out) = h.complete(&out_c[0]);
    assert_eq!(kills(&out), vec![wc]);
    assert!(starts(&h.advance(secs(1))).is_empty(), "c has not ended");
    let (sc, gc) = start_of(&out_c[0]);
    let out = h.exit(sc, gc, None);
    assert_eq!(started_ids(&out), vec!["a", "c"]);
}

#[test]
fn a_sibling_whose_start_fails_after_the_kill_joins_the_cascade() {
    let mut h = with(Strategy::OneForAll);
    let (sa, ga, _) = h.run("a");
    let out_c = h.start("c");
    h.exit(sa, ga, Some("oops"));
    let out = h.fail_start(&out_c[0], Error::msg("c could not start"));
    assert!(starts(&out).is_empty());
    assert_eq!(started_ids(&h.advance(secs(1))), vec!["a", "c"]);
}

#[test]
fn a_failure_before_a_waiting_cascade_extends_it() {
    let mut h = with(Strategy::RestForOne);
    let (sa, ga, _) = h.run("a");
    let (_, _, wb) = h.run("b");
    let (sc, gc, _) = h.run("c");
    // c fails: a cascade of c alone, due at 1 s.
    h.exit(sc, gc, Some("c failed"));
    h.advance(Duration::from_millis(500));
    // a fails: b (after a, not yet in a cascade) is killed; one cascade.
    let out = h.exit(sa, ga, Some("a failed"));
    assert_eq!(kills(&out), vec![wb]);
    // At 1 s (c's delay) nothing starts: the cascade waits for b and for
    // a's delay (1.5 s).
    assert!(starts(&h.advance(Duration::from_millis(500))).is_empty());
    let b = h.m.index["b"];
    let gen_b = h.m.entry(b).unwrap().generation;
    assert!(starts(&h.exit(b, gen_b, None)).is_empty());
    let out = h.advance(Duration::from_millis(500));
    assert_eq!(started_ids(&out), vec!["a", "b", "c"]);
}

#[test]
fn stopping_a_worker_held_by_a_cascade_removes_it() {
    let mut h = with(Strategy::OneForAll);
    let (sa, ga, _) = h.run("a");
    let (sb, gb, _) = h.run("b");
    h.exit(sa, ga, Some("oops"));
    h.exit(sb, gb, None);
    assert_eq!(removed(&h.remove("b", 1)), vec![(1, Ok(()))]);
    assert_eq!(started_ids(&h.advance(secs(1))), vec!["a"]);
}

#[test]
fn a_cascade_counts_once_against_the_runner_limit() {
    let mut c = none_fatal(config());
    c.machine.strategy = Strategy::OneForAll;
    c.machine.events = true;
    c.machine.intensity = Some(crate::policy::Intensity {
        max_restarts: 1,
        period: secs(10),
    });
    let mut h = H::new(c);
    let (sa, ga, _) = h.run("a");
    let (sb, gb, _) = h.run("b");
    let (sc, gc, _) = h.run("c");
    h.exit(sa, ga, Some("oops"));
    h.exit(sb, gb, None);
    h.exit(sc, gc, None);
    // Three workers restarted; one restart counted.
    let again = {
        let out = h.advance(secs(1));
        complete_all(&mut h, &out)
    };
    assert_eq!(again.len(), 3);
    // The next failure within 10 s is one too many.
    let (_, sb, gb, _) = again.iter().find(|(id, ..)| id == "b").cloned().unwrap();
    let out = h.exit(sb, gb, Some("again"));
    assert!(names(&out).contains(&"gave up on worker"));
    let errors = h.kill();
    assert!(finished(&errors).is_none(), "a and c still stop");
}

// ----- the runner-wide limit ----------------------------------------------

fn runner_limit(max_restarts: u32, period: Duration) -> H {
    let mut c = none_fatal(config());
    c.machine.intensity = Some(crate::policy::Intensity {
        max_restarts,
        period,
    });
    c.machine.events = true;
    H::new(c)
}

#[test]
fn the_runner_limit_counts_the_restarts_of_every_worker() {
    let mut h = runner_limit(2, secs(10));
    let (sa, ga, _) = h.run("a");
    let (sb, gb, _) = h.run("b");
    h.exit(sa, ga, Some("a 1"));
    h.now += secs(1);
    h.exit(sb, gb, Some("b 1"));
    let a = {
        let out = h.advance(secs(1));
        complete_all(&mut h, &out)
    };
    let (_, sa, ga, _) = a[0].clone();
    let out = h.exit(sa, ga, Some("a 2"));
    let gave_up = events(&out)
        .into_iter()
        .find_map(|e| match e {
            RunnerEvent::GaveUp { id, error } => Some((id.to_string(), error.clone())),
            _ => None,
        })
        .expect("gave up");
    assert_eq!(gave_up.0, "a");
    let limit = gave_up.1.downcast_ref::<RunnerIntensityExceeded>().unwrap();
    assert_eq!((limit.max_restarts, limit.period), (2, secs(10)));
    assert_eq!(limit.last_error.as_ref().unwrap().to_string(), "a 2");
    assert!(events(&out).iter().any(|e| matches!(
        e,
        RunnerEvent::ShuttingDown { cause: ShutdownCause::Fatal { id } } if &**id == "a"
    )));
    let (_, sb, gb, _) = a[1].clone();
    let out = h.exit(sb, gb, None);
    let errors = finished_errors(&out).expect("b, the last, has stopped");
    assert!(errors[0].is::<RunnerIntensityExceeded>());
}

#[test]
fn the_runner_window_keeps_a_restart_exactly_period_old() {
    let nanos = Duration::from_nanos;
    for (second, gives_up) in [
        (secs(10) - nanos(1), true),
        (secs(10), true),
        (secs(10) + nanos(1), false),
    ] {
        let mut h = runner_limit(1, secs(10));
        let (sa, ga, _) = h.run("a");
        let (sb, gb, _) = h.run("b");
        h.exit(sa, ga, Some("a"));
        h.now = h.t0 + second;
        let out = h.exit(sb, gb, Some("b"));
        assert_eq!(
            names(&out).contains(&"gave up on worker"),
            gives_up,
            "second failure at {second:?}"
        );
    }
}

#[test]
fn a_runner_limit_of_zero_allows_no_restart() {
    let mut h = runner_limit(0, secs(1));
    let (sa, ga, _) = h.run("a");
    let out = h.exit(sa, ga, Some("a"));
    assert!(finished_errors(&out).unwrap()[0].is::<RunnerIntensityExceeded>());
}

// ----- failure backoff ------------------------------------------------------

fn throttled(threshold: f64) -> H {
    let mut c = none_fatal(config());
    c.machine.failure_backoff = Some(FailureBackoff::new(threshold, secs(30), secs(15)));
    c.machine.events = true;
    H::new(c)
}

#[test]
fn past_the_threshold_every_restart_pauses_then_all_resume_in_start_order() {
    let mut h = throttled(1.0);
    let (sa, ga, _) = h.run("a");
    let (sb, gb, _) = h.run("b");
    let (_, _, _) = h.run("c");
    // Failure 1: 1.0, not above the threshold.
    let out = h.exit(sb, gb, Some("b"));
    assert!(!names(&out).contains(&"restarts paused"));
    // Failure 2, at once: 2.0 > 1.0.
    let out = h.exit(sa, ga, Some("a"));
    let paused = events(&out)
        .into_iter()
        .find_map(|e| match e {
            RunnerEvent::Paused { failures, backoff } => Some((*failures, *backoff)),
            _ => None,
        })
        .expect("paused");
    assert_eq!(paused, (2.0, secs(15)));
    // Their delays (1 s) pass: nothing starts during the pause.
    assert!(starts(&h.advance(secs(1))).is_empty());
    assert!(starts(&h.advance(secs(14) - Duration::from_nanos(1))).is_empty());
    let out = h.advance(Duration::from_nanos(1));
    assert_eq!(names(&out), vec!["restarts resumed"]);
    assert_eq!(started_ids(&out), vec!["a", "b"], "in start order");
}

#[test]
fn a_failure_during_the_pause_starts_it_again() {
    let mut h = throttled(1.0);
    let (sa, ga, _) = h.run("a");
    let (sb, gb, _) = h.run("b");
    let (sc, gc, _) = h.run("c");
    h.exit(sa, ga, Some("a"));
    h.exit(sb, gb, Some("b"));
    h.advance(secs(10));
    let out = h.exit(sc, gc, Some("c"));
    assert!(names(&out).contains(&"restarts paused"));
    assert!(
        starts(&h.advance(secs(5))).is_empty(),
        "the first pause would end here"
    );
    let out = h.advance(secs(10));
    assert_eq!(started_ids(&out), vec!["a", "b", "c"]);
}

#[test]
fn failures_far_apart_decay_and_never_pause() {
    let mut h = throttled(1.5);
    let (mut slot, mut generation, _) = h.run("a");
    for _ in 0..10 {
        // 60 s apart: the count is 1 + 0.25 + ... < 1.5.
        let out = h.exit(slot, generation, Some("a"));
        assert!(!names(&out).contains(&"restarts paused"));
        let out = h.advance(secs(60));
        (slot, generation) = start_of(starts(&out)[0]);
        h.complete(starts(&out)[0]);
    }
}

#[test]
fn a_cascade_waits_for_the_end_of_a_pause() {
    let mut c = none_fatal(config());
    c.machine.failure_backoff = Some(FailureBackoff::new(0.5, secs(30), secs(15)));
    c.machine.strategy = Strategy::OneForAll;
    let mut h = H::new(c);
    let (sa, ga, _) = h.run("a");
    let (sb, gb, _) = h.run("b");
    h.exit(sa, ga, Some("a"));
    h.exit(sb, gb, None);
    assert!(starts(&h.advance(secs(14))).is_empty());
    assert_eq!(started_ids(&h.advance(secs(1))), vec!["a", "b"]);
}

// ----- shutdown -------------------------------------------------------------

fn ordered(shutdown: Shutdown) -> H {
    let mut c = none_fatal(config());
    c.machine.shutdown_order = ShutdownOrder::Reverse;
    c.machine.shutdown = shutdown;
    c.machine.events = true;
    H::new(c)
}

#[test]
fn reverse_order_stops_the_last_started_first_one_at_a_time() {
    let mut h = ordered(Shutdown::Wait);
    let (sa, ga, wa) = h.run("a");
    let (sb, gb, wb) = h.run("b");
    let (sc, gc, wc) = h.run("c");
    assert_eq!(kills(&h.kill()), vec![wc]);
    assert!(kills(&h.advance(secs(3600))).is_empty(), "Wait waits");
    assert_eq!(kills(&h.exit(sc, gc, None)), vec![wb]);
    assert_eq!(kills(&h.exit(sb, gb, None)), vec![wa]);
    let out = h.exit(sa, ga, None);
    assert_eq!(finished(&out), Some(Ok(())));
}

#[test]
fn reverse_order_keeps_the_start_order_across_restarts() {
    let mut h = ordered(Shutdown::Wait);
    let (sa, ga, _) = h.run("a");
    let (_, _, wb) = h.run("b");
    h.exit(sa, ga, Some("oops"));
    let out = h.advance(secs(1));
    assert_eq!(complete_all(&mut h, &out).len(), 1);
    assert_eq!(
        kills(&h.kill()),
        vec![wb],
        "a, restarted later, still comes first"
    );
}

#[test]
fn a_shutdown_timeout_reports_forces_and_moves_on() {
    let mut h = ordered(Shutdown::Timeout(secs(5)));
    h.abortable = true;
    let (_, _, wa) = h.run("a");
    let (sb, gb, wb) = h.run("b");
    assert_eq!(kills(&h.kill()), vec![wb]);
    assert!(h.advance(secs(5) - Duration::from_nanos(1)).is_empty());
    let out = h.advance(Duration::from_nanos(1));
    assert_eq!(aborts(&out), vec![wb], "forced");
    assert_eq!(kills(&out), vec![wa], "and the shutdown moves on");
    assert!(events(&out).iter().any(|e| matches!(
        e,
        RunnerEvent::Stuck { id, stage: crate::status::Stage::Stopping, after, forced: true }
            if &**id == "b" && *after == secs(5)
    )));
    // The forced worker's error is the abort's, not news for is_fatal.
    let out = h.exit(sb, gb, Some("aborted"));
    assert!(!names(&out).contains(&"worker failed"));
}

#[test]
fn a_worker_that_cannot_be_forced_is_reported_and_the_shutdown_moves_on() {
    let mut h = ordered(Shutdown::Timeout(secs(5)));
    let (_, _, wa) = h.run("a");
    h.run("b");
    h.kill();
    let out = h.advance(secs(5));
    assert!(aborts(&out).is_empty(), "a thread cannot be forced");
    assert_eq!(kills(&out), vec![wa]);
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, RunnerEvent::Stuck { forced: false, .. }))
    );
    assert!(
        h.m.waiting_for(h.now)
            .iter()
            .any(|w| w.id == "b" && w.stuck)
    );
}

#[test]
fn shutdown_abort_forces_at_once_where_it_can_and_kills_where_it_cannot() {
    let mut c = config(); // every error fatal
    c.machine.shutdown = Shutdown::Abort;
    let mut h = H::new(c);
    h.abortable = true;
    let (sa, ga, wa) = h.run("task");
    h.abortable = false;
    let (sb, gb, wb) = h.run("thread");
    let out = h.stop("task");
    assert_eq!((aborts(&out), kills(&out)), (vec![wa], vec![]));
    let out = h.stop("thread");
    assert_eq!((aborts(&out), kills(&out)), (vec![], vec![wb]));
    // An aborted worker's error ends nothing, though every error is fatal.
    h.exit(sa, ga, Some("aborted"));
    assert!(!h.m.is_dying());
    h.exit(sb, gb, None);
}

#[test]
fn a_per_worker_shutdown_overrides_the_runners() {
    let mut h = ordered(Shutdown::Wait);
    h.abortable = true;
    let opts = WorkerOptions::new().shutdown(Shutdown::Timeout(secs(1)));
    let out = h.start_with("quick", Some(opts)).unwrap();
    let (wq, _) = h.complete(&out[0]);
    let (_, _, _) = h.run("slow");
    h.stop("quick");
    assert_eq!(aborts(&h.advance(secs(1))), vec![wq]);
}

#[test]
fn a_start_function_that_blocks_after_a_stop_is_reported_stuck() {
    let mut c = config();
    c.stop_timeout = Some(secs(5));
    c.machine.events = true;
    let mut h = H::new(c);
    let out = h.start("slow");
    h.now += secs(1);
    h.stop("slow");
    assert!(h.advance(secs(5) - Duration::from_nanos(1)).is_empty());
    let out2 = h.advance(Duration::from_nanos(1));
    assert!(matches!(
        events(&out2)[..],
        [RunnerEvent::Stuck { stage: crate::status::Stage::Starting, after, forced: false, .. }]
            if *after == secs(5)
    ));
    let waiting = h.m.waiting_for(h.now);
    assert!(waiting[0].stuck && waiting[0].stage == crate::status::Stage::Starting);
    assert_eq!(h.m.snapshot()[0].stuck_since, Some(h.t0 + secs(1)));
    // When it returns at last, the worker is killed, and stays stuck.
    let (w, out) = h.complete(&out[0]);
    assert_eq!(kills(&out), vec![w]);
    assert!(h.m.waiting_for(h.now)[0].stuck);
    assert!(h.advance(secs(100)).is_empty(), "reported once");
}

// ----- bounded removal ------------------------------------------------------

#[test]
fn a_removal_times_out_with_what_happened_and_the_stop_goes_on() {
    let mut h = H::new(config()); // every error fatal
    let (slot, generation, _) = h.run("a");
    let out = h.remove_within("a", 1, Some(secs(2)));
    assert_eq!(kills(&out).len(), 1);
    assert!(h.advance(secs(2) - Duration::from_nanos(1)).is_empty());
    let out = h.advance(Duration::from_nanos(1));
    let [(1, Err(e))] = &removed(&out)[..] else {
        panic!("timed out: {out:?}");
    };
    assert_eq!(
        e,
        "worker \"a\" did not stop within 2s: killed and still running"
    );
    // It ends later, with an error: removed quietly, not fatal.
    let out = h.exit(slot, generation, Some("late"));
    assert!(removed(&out).is_empty());
    assert!(!h.m.is_dying());
    assert!(h.m.names().is_empty());
}

#[test]
fn a_removal_timeout_says_if_the_worker_was_forced() {
    let mut c = none_fatal(config());
    c.machine.shutdown = Shutdown::Timeout(secs(1));
    let mut h = H::new(c);
    h.abortable = true;
    h.run("a");
    h.remove_within("a", 1, Some(secs(3)));
    let out = h.advance(secs(3));
    let err = out
        .iter()
        .find_map(|a| match a {
            Action::Removed { result: Err(e), .. } => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    let timed_out = err.downcast_ref::<RemoveTimedOut>().unwrap();
    assert!(timed_out.stuck && timed_out.forced);
}

#[test]
fn a_removal_in_time_leaves_no_deadline_behind() {
    let mut h = H::new(none_fatal(config()));
    let (slot, generation, _) = h.run("a");
    h.remove_within("a", 1, Some(secs(2)));
    let out = h.exit(slot, generation, None);
    assert_eq!(removed(&out), vec![(1, Ok(()))]);
    assert_eq!(h.m.deadline_count(), 0);
    // And during a restart delay it is immediate, whatever the timeout.
    let (slot, generation, _) = h.run("b");
    h.exit(slot, generation, Some("oops"));
    assert_eq!(
        removed(&h.remove_within("b", 2, Some(Duration::ZERO))),
        vec![(2, Ok(()))]
    );
    assert_eq!(h.m.deadline_count(), 0);
}

// ----- significant workers --------------------------------------------------

fn auto(auto_shutdown: AutoShutdown) -> H {
    let mut c = none_fatal(config());
    c.machine.auto_shutdown = auto_shutdown;
    c.machine.events = true;
    H::new(c)
}

fn significant(restart_type: RestartType) -> Option<WorkerOptions> {
    Some(
        WorkerOptions::new()
            .restart_type(restart_type)
            .significant(true),
    )
}

fn run_with(h: &mut H, id: &str, options: Option<WorkerOptions>) -> (Slot, Generation, u64) {
    let out = h.start_with(id, options).unwrap();
    let (slot, generation) = start_of(&out[0]);
    let (w, _) = h.complete(&out[0]);
    (slot, generation, w)
}

#[test]
fn any_significant_ends_the_runner_when_one_ends_by_itself() {
    // A transient one, cleanly.
    let mut h = auto(AutoShutdown::AnySignificant);
    let (s, g, _) = run_with(&mut h, "job", significant(RestartType::Transient));
    let (_, _, other) = h.run("other");
    let out = h.exit(s, g, None);
    assert!(events(&out).iter().any(|e| matches!(
        e,
        RunnerEvent::ShuttingDown { cause: ShutdownCause::AutoShutdown { id } } if &**id == "job"
    )));
    assert_eq!(kills(&out), vec![other]);
    // A temporary one, even with an error: the runner still ends cleanly.
    let mut h = auto(AutoShutdown::AnySignificant);
    let (s, g, _) = run_with(&mut h, "job", significant(RestartType::Temporary));
    let out = h.exit(s, g, Some("oops"));
    assert_eq!(finished(&out), Some(Ok(())));
}

#[test]
fn a_significant_transient_worker_that_fails_is_restarted_not_shut_down() {
    let mut h = auto(AutoShutdown::AnySignificant);
    let (s, g, _) = run_with(&mut h, "job", significant(RestartType::Transient));
    h.exit(s, g, Some("oops"));
    assert!(!h.m.is_dying());
    assert_eq!(starts(&h.advance(secs(1))).len(), 1);
}

#[test]
fn all_significant_waits_for_the_last_one() {
    let mut h = auto(AutoShutdown::AllSignificant);
    let (s1, g1, _) = run_with(&mut h, "one", significant(RestartType::Transient));
    let (s2, g2, _) = run_with(&mut h, "two", significant(RestartType::Temporary));
    h.run("bystander");
    h.exit(s1, g1, None);
    assert!(!h.m.is_dying(), "two is still running");
    h.exit(s2, g2, None);
    assert!(h.m.is_dying());
}

#[test]
fn a_significant_worker_the_runner_stops_never_triggers_a_shutdown() {
    let mut h = auto(AutoShutdown::AnySignificant);
    let (s, g, _) = run_with(&mut h, "job", significant(RestartType::Transient));
    h.stop("job");
    h.exit(s, g, None);
    assert!(!h.m.is_dying());
    // Under all_significant, a stopped one no longer counts as running.
    let mut h = auto(AutoShutdown::AllSignificant);
    let (s1, g1, _) = run_with(&mut h, "one", significant(RestartType::Transient));
    let (s2, g2, _) = run_with(&mut h, "two", significant(RestartType::Transient));
    h.stop("one");
    h.exit(s1, g1, None);
    assert!(!h.m.is_dying());
    h.exit(s2, g2, None);
    assert!(h.m.is_dying());
}

#[test]
fn a_significant_worker_killed_by_a_cascade_never_triggers_a_shutdown() {
    let mut c = none_fatal(config());
    c.machine.auto_shutdown = AutoShutdown::AnySignificant;
    c.machine.strategy = Strategy::OneForAll;
    let mut h = H::new(c);
    let (sa, ga, _) = h.run("a");
    let (st, gt, _) = run_with(&mut h, "t", significant(RestartType::Temporary));
    h.exit(sa, ga, Some("oops"));
    h.exit(st, gt, None);
    assert!(!h.m.is_dying());
}

#[test]
fn significant_workers_are_refused_without_auto_shutdown_or_when_permanent() {
    let mut h = auto(AutoShutdown::Never);
    let err = h
        .start_with("x", significant(RestartType::Transient))
        .unwrap_err();
    assert!(err.to_string().contains("auto_shutdown"), "{err}");
    let mut h = auto(AutoShutdown::AnySignificant);
    let err = h
        .start_with("x", significant(RestartType::Permanent))
        .unwrap_err();
    assert!(err.is::<crate::InvalidParams>());
    assert!(err.to_string().contains("permanent"), "{err}");
    assert!(h.m.names().is_empty());
}

// ----- events ---------------------------------------------------------------

#[test]
fn events_follow_a_workers_life_in_order() {
    let mut c = none_fatal(config());
    c.policy = crate::policy::RestartPolicy::fixed(secs(1)).intensity(1, secs(60));
    c.machine.events = true;
    let mut h = H::new(c);
    let out = h.start("a");
    let (_, first) = h.complete(&out[0]);
    assert_eq!(names(&first), vec!["worker started"]);
    let (slot, generation) = start_of(&out[0]);
    let out = h.exit(slot, generation, Some("oops"));
    assert_eq!(names(&out), vec!["worker failed", "worker restarting"]);
    let out = h.advance(secs(1));
    let (slot, generation) = start_of(&out[0]);
    h.complete(&out[0]);
    let out = h.exit(slot, generation, Some("again"));
    assert_eq!(
        names(&out),
        vec![
            "worker failed",
            "gave up on worker",
            "worker stopped",
            "runner shutting down"
        ]
    );
}

#[test]
fn without_a_hook_no_event_is_made() {
    let mut h = H::new(none_fatal(config()));
    let (slot, generation, _) = h.run("a");
    let out = h.exit(slot, generation, Some("oops"));
    assert!(events(&out).is_empty());
}

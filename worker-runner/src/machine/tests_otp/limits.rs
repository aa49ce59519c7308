//! The runner-wide intensity limit at its boundaries, and suture's failure
//! backoff.

use std::time::Duration;

use super::*;

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
        .find_map(|e| match &e.kind {
            EventKind::GaveUp { error } => Some((e.worker().unwrap().to_owned(), error.clone())),
            _ => None,
        })
        .expect("gave up");
    assert_eq!(gave_up.0, "a");
    let limit = gave_up.1.downcast_ref::<RunnerIntensityExceeded>().unwrap();
    assert_eq!((limit.max_restarts, limit.period), (2, secs(10)));
    assert_eq!(limit.last_error.as_ref().unwrap().to_string(), "a 2");
    assert!(events(&out).iter().any(|e| matches!(
        &e.kind,
        EventKind::ShuttingDown { cause: ShutdownCause::Fatal { worker: Some(id) } } if &**id == "a"
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
        .find_map(|e| match e.kind {
            EventKind::Paused { failures, backoff } => Some((failures, backoff)),
            _ => None,
        })
        .expect("paused");
    assert_eq!(paused, (2.0, secs(15)));
    // Their delays (1 s) pass: nothing starts during the pause.
    assert!(starts(&h.advance(secs(1))).is_empty());
    assert!(starts(&h.advance(secs(14) - Duration::from_nanos(1))).is_empty());
    let out = h.advance(Duration::from_nanos(1));
    assert_eq!(
        names(&out),
        vec!["restarts resumed", "worker starting", "worker starting"]
    );
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

//! Significant workers and automatic shutdown, and the events.

use super::*;

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
        &e.kind,
        EventKind::ShuttingDown { cause: ShutdownCause::AutoShutdown { worker } } if &**worker == "job"
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
    assert_eq!(names(&out), vec!["worker starting"]);
    let (_, first) = h.complete(&out[0]);
    assert_eq!(names(&first), vec!["worker started"]);
    let (slot, generation) = start_of(&out[0]);
    let out = h.exit(slot, generation, Some("oops"));
    assert_eq!(names(&out), vec!["worker failed", "worker restarting"]);
    let failed = events(&out)[0];
    assert_eq!(
        (failed.worker(), failed.generation),
        (Some("a"), generation)
    );
    assert!(matches!(
        &failed.kind,
        EventKind::Failed { error, fatal: false, end }
            if error.to_string() == "oops" && end.started && end.stopped_after.is_none()
    ));
    let out = h.advance(secs(1));
    assert_eq!(names(&out), vec!["worker starting"]);
    assert!(events(&out)[0].generation > generation, "a new incarnation");
    let (slot, generation) = start_of(&out[0]);
    h.complete(&out[0]);
    let out = h.exit(slot, generation, Some("again"));
    assert_eq!(
        names(&out),
        vec![
            "worker failed",
            "gave up on worker",
            "worker removed",
            "supervisor shutting down"
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

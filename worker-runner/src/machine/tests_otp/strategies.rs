//! Restart strategies: which workers a restart takes along, when they
//! start again, with restart types and fatal errors mixed in.

use std::time::Duration;

use worker_core::Error;

use super::*;

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
        .filter_map(|e| match &e.kind {
            EventKind::Restarting { because_of, .. } => Some((
                e.worker().unwrap().to_owned(),
                because_of.as_deref().map(str::to_owned),
            )),
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
            .any(|e| matches!(e.kind, EventKind::Restarting { .. } if e.worker() == Some("t"))),
        "a temporary worker is not restarted"
    );
    let out = h.exit(st, gt, None);
    assert_eq!(names(&out), vec!["worker stopped", "worker removed"]);
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

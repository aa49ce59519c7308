//! Ordered and forced shutdown, stuck start functions, and removals with a
//! timeout.

use std::time::Duration;

use super::*;

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
        e.kind,
        EventKind::Stuck { after, starting: false, forced: true }
            if e.worker() == Some("b") && after == secs(5)
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
            .any(|e| matches!(e.kind, EventKind::Stuck { forced: false, .. }))
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
        [e] if matches!(e.kind, EventKind::Stuck { after, starting: true, forced: false }
            if after == secs(5))
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
    let crate::RemoveError::TimedOut(timed_out) = *err else {
        panic!("expected a timeout, got {err}");
    };
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

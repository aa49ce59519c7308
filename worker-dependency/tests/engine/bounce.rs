//! Bounces: any start or stop of an input restarts its dependents (as in
//! Go: stop, then restart after the bounce delay; a starting dependent is
//! aborted).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use worker_core::{Error, Passive};
use worker_dependency::{Bounce, Manifold, Missing};

use crate::common::*;

#[test]
fn an_input_starting_restarts_a_dependent_that_was_missing_it() {
    let h = Harness::new("dep-bounce-missing");
    h.install("b", &["a"]);
    assert!(h.call_of("b").is_none());
    h.install("a", &[]);
    h.expect_started(&["a"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["b"]);
    assert_eq!(
        h.manifold_report("b")["why"],
        "input \"a\" started; restarted after 10ms"
    );
    h.stop().unwrap();
}

#[test]
fn an_input_stopping_restarts_its_running_dependents_transitively() {
    let h = Harness::new("dep-bounce-chain");
    h.install("a", &[]);
    h.expect_started(&["a"]);
    h.install("b", &["a"]);
    h.expect_started(&["b"]);
    h.install("c", &["b"]);
    h.expect_started(&["c"]);
    let workers = h.workers_of(&["a", "b", "c"]);
    // a fails: b is killed, and b stopping kills c.
    end(&workers[0].1, Some(err("a broke")));
    let errors = h.expect_stopped(&["a", "b", "c"]);
    assert_eq!(errors, vec![Some("a broke".to_owned()), None, None]);
    assert!(is_dead(&*workers[1].1));
    assert!(is_dead(&*workers[2].1));
    // b and c retry after the bounce delay, and find their inputs missing.
    // (The engine asks the clock for one timer, for its earliest deadline:
    // whether a's longer delay got one first depends on how the three ends
    // reached the loop, so wait for one timer, not two.)
    h.advance(BOUNCE_DELAY, 1);
    h.expect_stopped(&["b", "c"]);
    // a restarts after the error delay; then b, then c, one bounce each.
    h.advance(ERROR_DELAY - BOUNCE_DELAY, 1);
    h.expect_started(&["a"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["b"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["c"]);
    assert_eq!(
        h.manifold_report("c")["why"],
        "input \"b\" started; restarted after 10ms"
    );
    h.stop().unwrap();
}

#[test]
fn a_completed_dependent_is_restarted_when_an_input_restarts() {
    let h = Harness::new("dep-bounce-completed");
    let [a, b] = h.start_chain(["a", "b"]);
    end(&b, None);
    assert_eq!(h.expect_stopped(&["b"]), vec![None]);
    // Completed: not restarted by itself...
    h.assert_quiet();
    assert_eq!(h.state("b"), "stopped");
    // ...but an input's restart brings it back.
    end(&a, Some(Error::new(Bounce)));
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["a"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["b"]);
    h.stop().unwrap();
}

#[test]
fn a_dependent_never_holds_an_output_of_a_dead_input() {
    // b reads a's generation number at start; after any number of a's
    // restarts, b's current worker saw a's current generation.
    let h = Harness::new("dep-bounce-fresh");
    let generation = Arc::new(AtomicU32::new(0));
    let g = generation.clone();
    let (a_tx, a_workers) = crossbeam_channel::unbounded();
    let a = Manifold::new(move |_| {
        let w = Arc::new(Passive::new());
        a_tx.send(w.clone()).unwrap();
        Ok(w)
    })
    .output(move |_: &Arc<Passive>, out| out.put(g.fetch_add(1, Ordering::SeqCst) + 1));
    let (seen_tx, seen) = crossbeam_channel::unbounded();
    let b = Manifold::new(move |ctx| {
        let gen_a: u32 = ctx.get("a")?;
        seen_tx.send(gen_a).unwrap();
        Ok(Passive::new())
    })
    .inputs(["a"]);
    h.engine.install_all([("a", a), ("b", b)]).unwrap();
    h.expect_started(&["a"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["b"]);
    for round in 1..=3 {
        let a_worker = a_workers.recv_timeout(LONG).unwrap();
        end(&a_worker, Some(Error::new(Bounce)));
        h.advance(BOUNCE_DELAY, 1);
        h.expect_started(&["a"]);
        h.advance(BOUNCE_DELAY, 1);
        h.expect_started(&["b"]);
        let last = seen.try_iter().last().unwrap();
        assert_eq!(last, generation.load(Ordering::SeqCst), "round {round}");
    }
    h.stop().unwrap();
}

#[test]
fn a_start_in_progress_is_aborted_when_an_input_changes() {
    let h = Harness::new("dep-bounce-abort");
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let (aborted_tx, aborted) = crossbeam_channel::unbounded();
    h.install("a", &[]);
    h.expect_started(&["a"]);
    let a = h.call_of("a").unwrap();
    let slow = Manifold::new(move |ctx| {
        entered_tx.send(()).unwrap();
        // Block until the engine gives up on this start.
        let _ = ctx.abort().receiver().recv();
        aborted_tx.send(()).unwrap();
        Err::<Passive, _>(Error::new(Missing))
    })
    .inputs(["a"]);
    h.engine.install("slow", slow).unwrap();
    entered.recv_timeout(LONG).unwrap();
    assert_eq!(h.state("slow"), "starting");
    end(&a, Some(Error::new(Bounce)));
    aborted.recv_timeout(LONG).unwrap();
    h.stop().unwrap();
}

#[test]
fn a_dependent_failing_leaves_its_inputs_alone() {
    // Go's TestErrorPreservesDependents: bounces only flow downstream.
    let h = Harness::new("dep-bounce-downstream");
    let [a, b] = h.start_chain(["a", "b"]);
    end(&b, Some(err("b broke")));
    h.expect_stopped(&["b"]);
    assert!(!is_dead(&*a));
    assert_eq!(h.manifold_report("a")["start-count"], 1);
    h.advance(ERROR_DELAY, 1);
    h.expect_started(&["b"]);
    assert!(!is_dead(&*a));
    h.stop().unwrap();
}

//! Where start functions run: off the loop and off the caller's thread, on
//! a bounded number of start threads, with no start function able to hold
//! the others up for long; and start functions that use the runner.

use std::sync::{Arc, Weak};
use worker_core::Worker;

use crossbeam_channel::{bounded, unbounded};
use worker_core::threads::live_threads_with_prefix;
use worker_core::{Error, SharedWorker};
use worker_runner::Runner;

use crate::common::*;

#[test]
fn start_functions_run_on_the_runners_start_threads() {
    let r = runner("rt-starts-where", |p| p.is_fatal(none_fatal));
    let (names_tx, names) = unbounded();
    let starter = Arc::new(Starter::new(r.name()));
    let mut start = starter.start_fn();
    r.start_worker("id", move || {
        names_tx
            .send(std::thread::current().name().map(str::to_owned))
            .unwrap();
        start()
    })
    .unwrap();
    let name = names.recv_timeout(LONG).unwrap().unwrap_or_default();
    assert!(
        name.starts_with(&format!("{}-start-", r.name())),
        "ran on {name:?}"
    );
    assert!(finish(&r).is_ok());
}

/// A start function that blocks until `release` is dropped.
fn blocked(
    starter: &Arc<Starter>,
) -> (
    crossbeam_channel::Sender<()>,
    impl FnMut() -> Result<SharedWorker, Error> + Send + 'static + use<>,
) {
    let (release, gate) = bounded::<()>(0);
    let mut start = starter.start_fn();
    (release, move || {
        let _ = gate.recv();
        start()
    })
}

#[test]
fn blocked_start_functions_do_not_hold_up_the_others() {
    // One start thread, two blocked start functions: the quick one still
    // starts (the runner adds a thread when no start completes for a few
    // milliseconds while starts wait).
    let r = runner("rt-starts-blocked", |p| {
        p.is_fatal(none_fatal).start_threads(1)
    });
    let slow1 = Arc::new(Starter::new(r.name()));
    let slow2 = Arc::new(Starter::new(r.name()));
    let (release1, start1) = blocked(&slow1);
    let (release2, start2) = blocked(&slow2);
    r.start_worker("slow1", start1).unwrap();
    r.start_worker("slow2", start2).unwrap();
    let quick = Arc::new(Starter::new(r.name()));
    r.start_worker("quick", quick.start_fn()).unwrap();
    let w = r.worker("quick", None).unwrap();
    assert!(Arc::ptr_eq(&starter_of(&w), &quick));
    assert_eq!(slow1.calls() + slow2.calls(), 0);
    drop((release1, release2));
    r.worker("slow1", None).unwrap();
    r.worker("slow2", None).unwrap();
    assert!(finish(&r).is_ok());
}

#[test]
fn a_burst_of_starts_uses_a_bounded_number_of_threads() {
    let r = runner("rt-starts-burst", |p| p.is_fatal(none_fatal));
    let starters: Vec<Arc<Starter>> = (0..300).map(|_| Arc::new(Starter::new(r.name()))).collect();
    for (i, s) in starters.iter().enumerate() {
        r.start_worker(format!("w{i}"), s.start_fn()).unwrap();
    }
    for i in 0..starters.len() {
        r.worker(&format!("w{i}"), None).unwrap();
    }
    // Two start threads by default; a slow start on a loaded machine may
    // add one or two more, never one per start.
    let start_threads = live_threads_with_prefix(&format!("{}-start", r.name()));
    assert!(
        (1..=4).contains(&start_threads),
        "{start_threads} start threads for 300 starts"
    );
    assert!(finish(&r).is_ok());
}

#[test]
fn a_start_function_may_start_other_workers() {
    let r = Arc::new(runner("rt-starts-nested-start", |p| p.is_fatal(none_fatal)));
    let weak: Weak<Runner> = Arc::downgrade(&r);
    let child = Arc::new(Starter::new(r.name()));
    let parent = Arc::new(Starter::new(r.name()));
    let mut start_parent = parent.start_fn();
    let child_start = child.clone();
    r.start_worker("parent", move || {
        let runner = weak.upgrade().expect("runner alive");
        runner.start_worker("child", child_start.start_fn())?;
        start_parent()
    })
    .unwrap();
    r.worker("parent", None).unwrap();
    r.worker("child", None).unwrap();
    assert_eq!(r.worker_names(), vec!["child", "parent"]);
    assert!(finish(&r).is_ok());
}

#[test]
fn a_completion_callback_may_call_its_runner_and_a_wait_from_it_fails_fast() {
    // The runner kills workers off its loop, so a thread-less worker's
    // completion callbacks run on one of the runner's own threads. A
    // request the loop answers at once works from there; a wait for the
    // runner itself would wait forever, and fails at once instead.
    let r = Arc::new(runner("rt-starts-reentrant", |p| p.is_fatal(none_fatal)));
    let passive = Arc::new(worker_core::Passive::new());
    let (result_tx, result_rx) = bounded(1);
    let weak: Weak<Runner> = Arc::downgrade(&r);
    passive.tomb().on_done(move |_| {
        let runner = weak.upgrade().expect("runner alive");
        let started = runner.start_worker("from-callback", || Ok(worker_core::Passive::new()));
        let waited = runner.wait();
        let _ = result_tx.send((started, waited));
    });
    let w: SharedWorker = passive.clone();
    r.start_worker("passive", move || Ok(w.clone())).unwrap();
    r.worker("passive", None).unwrap();
    r.stop_worker("passive").unwrap();
    let (started, waited) = result_rx.recv_timeout(LONG).unwrap();
    started.expect("a request from a callback is answered");
    assert_is::<worker_core::WouldDeadlock>(&waited.unwrap_err());
    r.worker("from-callback", None).unwrap();
    assert!(finish(&r).is_ok());
}

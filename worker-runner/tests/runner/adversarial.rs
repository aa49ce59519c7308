//! Workers that break the rules cannot break the runner (issue 9): a
//! panicking or slow `Drop`, a blocking `kill`, start functions and worker
//! bodies that call back into their own runner, and `Duration::MAX`
//! settings. Each test failed (hung, crashed or lost an error) before the
//! runner ran no user code on its loop.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::bounded;
use worker_core::{Error, Passive, SharedWorker, Worker, WouldDeadlock, spawn};
use worker_runner::{Runner, Stage};
use worker_testing::misbehaving::{BlockingKill, PanicOnDrop, SlowDrop, SlowReport, WaitsInReport};

use crate::common::*;

#[test]
fn a_worker_whose_drop_panics_leaves_the_runner_working() {
    let r = runner("rt-adv-drop-panics", |p| p.is_fatal(none_fatal));
    r.start_worker("bad", || Ok(PanicOnDrop::new())).unwrap();
    let good = Arc::new(Starter::new(r.name()));
    r.start_worker("good", good.start_fn()).unwrap();
    good.assert_started(true);
    r.worker("bad", None).unwrap();
    // The bad worker ends and is dropped by the runner: its Drop panics.
    r.stop_and_remove_worker("bad", None).unwrap();
    assert_eq!(r.worker_names(), vec!["good"]);
    r.worker("good", None).unwrap();
    // Shutdown stops the good worker too, and wait returns.
    assert!(finish(&r).is_ok());
    good.assert_started(false);
}

#[test]
fn a_rejected_start_function_whose_state_panics_on_drop_changes_nothing() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("captured state exploded on drop");
            }
        }
    }
    let r = runner("rt-adv-rejected-bomb", |p| p.is_fatal(none_fatal));
    r.start_worker("id", || Ok(Passive::new())).unwrap();
    let bomb = Bomb;
    let err = r
        .start_worker("id", move || {
            let _keep = &bomb;
            Ok(Passive::new())
        })
        .unwrap_err();
    assert_is::<worker_core::AlreadyExists>(&err);
    assert_eq!(r.worker_names(), vec!["id"]);
    r.worker("id", None).unwrap();
    assert!(finish(&r).is_ok());
}

#[test]
fn a_blocking_kill_freezes_nothing_but_its_own_stop() {
    let (r, _clock) = clocked_runner("rt-adv-blocking-kill-one", |p| {
        p.stop_timeout(Duration::from_secs(1))
    });
    let (bad, gate) = BlockingKill::new();
    let bad: SharedWorker = Arc::new(bad);
    let w = bad.clone();
    r.start_worker("bad", move || Ok(w.clone())).unwrap();
    r.worker("bad", None).unwrap();
    r.stop_worker("bad").unwrap();
    gate.wait_entered().unwrap();
    // The runner goes on: queries, starts, lookups, stops of others.
    let other = Arc::new(Starter::new(r.name()));
    r.start_worker("other", other.start_fn()).unwrap();
    other.assert_started(true);
    r.worker("other", None).unwrap();
    r.stop_and_remove_worker("other", None).unwrap();
    other.assert_started(false);
    let waiting = r.waiting_for();
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        (waiting[0].id.as_str(), waiting[0].stage),
        ("bad", Stage::Stopping)
    );
    assert_eq!(r.worker_names(), vec!["bad"]);
    r.kill();
    gate.open();
    assert!(wait_gone(&r).is_ok());
    assert!(bad.wait().is_ok());
}

#[test]
fn a_blocking_kill_during_shutdown_delays_only_itself() {
    let r = runner("rt-adv-blocking-kill-all", |p| p.is_fatal(none_fatal));
    let (bad, gate) = BlockingKill::new();
    let bad: SharedWorker = Arc::new(bad);
    let w = bad.clone();
    r.start_worker("a-bad", move || Ok(w.clone())).unwrap();
    let others: Vec<Arc<Starter>> = (0..20).map(|_| Arc::new(Starter::new(r.name()))).collect();
    for (i, s) in others.iter().enumerate() {
        r.start_worker(format!("w{i}"), s.start_fn()).unwrap();
        s.assert_started(true);
    }
    r.worker("a-bad", None).unwrap();
    r.kill();
    gate.wait_entered().unwrap();
    // Every other worker is killed and ends although one kill blocks.
    for s in &others {
        s.assert_started(false);
    }
    // (Their ends may still be on their way to the loop.)
    let waiting: Vec<String> = r.waiting_for().into_iter().map(|w| w.id).collect();
    assert!(waiting.contains(&"a-bad".to_owned()), "{waiting:?}");
    gate.open();
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn a_slow_drop_stalls_no_query() {
    let r = runner("rt-adv-slow-drop", |p| p.is_fatal(none_fatal));
    let (slow, gate) = SlowDrop::new();
    let slow = std::sync::Mutex::new(Some(slow));
    r.start_worker("slow", move || {
        slow.lock()
            .unwrap()
            .take()
            .ok_or_else(|| Error::msg("started once only"))
    })
    .unwrap();
    r.worker("slow", None).unwrap();
    r.stop_and_remove_worker("slow", None).unwrap();
    // The runner drops it (off its loop): the Drop blocks meanwhile.
    gate.wait_entered().unwrap();
    assert!(r.worker_names().is_empty());
    r.start_worker("next", || Ok(Passive::new())).unwrap();
    r.worker("next", None).unwrap();
    r.kill();
    gate.open();
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn a_start_function_that_stops_its_own_runner_gets_an_error_not_a_deadlock() {
    let r = Arc::new(runner("rt-adv-start-stops-runner", |p| {
        p.is_fatal(none_fatal)
    }));
    let weak: Weak<Runner> = Arc::downgrade(&r);
    let (result_tx, result) = bounded(1);
    r.start_worker("suicidal", move || {
        let runner = weak.upgrade().expect("alive");
        let stopped = worker_core::stop(&*runner);
        let lookup = runner.worker("suicidal", None);
        let _ = result_tx.send((stopped, lookup.map(|_| ())));
        Ok(Passive::new())
    })
    .unwrap();
    let (stopped, lookup) = result.recv_timeout(LONG).unwrap();
    assert_is::<WouldDeadlock>(&stopped.unwrap_err());
    let err = lookup.unwrap_err();
    // The runner is dying by then (Dead), or the lookup is refused as a
    // wait for the very start function that makes the call.
    assert!(
        err.is::<WouldDeadlock>() || err.is::<worker_core::Dead>(),
        "{err}"
    );
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn a_start_function_that_waits_for_its_own_worker_gets_an_error() {
    let r = Arc::new(runner("rt-adv-start-waits-self", |p| {
        p.is_fatal(none_fatal)
    }));
    let weak: Weak<Runner> = Arc::downgrade(&r);
    let (result_tx, result) = bounded(1);
    r.start_worker("me", move || {
        let runner = weak.upgrade().expect("alive");
        let lookup = runner.worker("me", None).map(|_| ());
        let removal = runner.stop_and_remove_worker("me", None);
        let _ = result_tx.send((lookup, removal));
        Ok(Passive::new())
    })
    .unwrap();
    let (lookup, removal) = result.recv_timeout(LONG).unwrap();
    assert_is::<WouldDeadlock>(&lookup.unwrap_err());
    assert_is::<WouldDeadlock>(&removal.unwrap_err());
    r.worker("me", None).unwrap();
    assert!(finish(&r).is_ok());
}

#[test]
fn a_worker_body_that_stops_its_own_runner_gets_an_error_not_a_deadlock() {
    let r = Arc::new(runner("rt-adv-body-stops-runner", |p| {
        p.is_fatal(none_fatal)
    }));
    let weak: Weak<Runner> = Arc::downgrade(&r);
    let (result_tx, result) = bounded(1);
    let name = format!("{}-body", r.name());
    r.start_worker("w", move || {
        let weak = weak.clone();
        let result_tx = result_tx.clone();
        Ok(spawn(name.clone(), move |tomb| {
            let runner = weak.upgrade().expect("alive");
            let _ = result_tx.send(worker_core::stop(&*runner));
            let _ = tomb.dying().recv();
            Ok(())
        }))
    })
    .unwrap();
    let stopped = result.recv_timeout(LONG).unwrap();
    assert_is::<WouldDeadlock>(&stopped.unwrap_err());
    assert!(wait_gone(&r).is_ok());
}

#[test]
fn duration_max_settings_mean_never_and_break_nothing() {
    let (r, clock) = clocked_runner("rt-adv-duration-max", |p| {
        // (restart_delay(ZERO): the clocked runner's 1 s would replace
        // the policy's delay.)
        p.stop_timeout(Duration::MAX)
            .restart_policy(worker_runner::RestartPolicy::fixed(Duration::MAX))
            .restart_delay(Duration::ZERO)
    });
    let s = Arc::new(Starter::new(r.name()));
    r.start_worker("w", s.start_fn()).unwrap();
    s.assert_started(true);
    // A failure waits "forever" to restart.
    s.die(Some(Error::msg("oops")));
    s.assert_started(false);
    clock.wait_timers(1, LONG).unwrap();
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    // Handled after the clock moved: still waiting, ten years on.
    assert_eq!(json_report(&r)["workers"]["w"]["state"], "stopped");
    s.assert_no_notification();
    assert_eq!(s.calls(), 1);
    // A kill with a "forever" stop timeout works.
    let other = Arc::new(Starter::new(r.name()));
    r.start_worker("other", other.start_fn()).unwrap();
    other.assert_started(true);
    assert!(finish(&r).is_ok());
    other.assert_started(false);
}

#[test]
fn a_passive_worker_with_a_users_blocking_callback_is_not_killed_on_the_loop() {
    // The runner's loop kills the library's thread-free workers itself,
    // unless that would run someone else's code: here a completion
    // callback that blocks until released.
    let r = runner("rt-adv-user-callback", |p| p.is_fatal(none_fatal));
    let passive = Arc::new(Passive::new());
    let (entered_tx, entered) = bounded(1);
    let (release_tx, release) = bounded::<()>(0);
    passive.tomb().on_done(move |_| {
        let _ = entered_tx.send(());
        let _ = release.recv();
    });
    let w: SharedWorker = passive.clone();
    r.start_worker("p", move || Ok(w.clone())).unwrap();
    r.worker("p", None).unwrap();
    r.stop_worker("p").unwrap();
    entered.recv_timeout(LONG).unwrap();
    // The callback blocks, and yet the runner answers and starts workers.
    r.start_worker("other", || Ok(Passive::new())).unwrap();
    r.worker("other", None).unwrap();
    drop(release_tx);
    assert!(finish(&r).is_ok());
}

#[test]
fn policies_about_a_passive_worker_killed_by_the_loop_run_off_it() {
    let (seen_tx, seen) = crossbeam_channel::unbounded();
    let r = runner("rt-adv-policy-thread", move |p| {
        p.is_fatal(move |_| {
            let _ = seen_tx.send(std::thread::current().name().map(str::to_owned));
            false
        })
    });
    let passive = Arc::new(Passive::new());
    // Dying with an error: the loop's kill then finishes it with that
    // error, which is_fatal is asked about.
    passive.tomb().kill(Some(Error::msg("already failing")));
    let w: SharedWorker = passive.clone();
    r.start_worker("p", move || Ok(w.clone())).unwrap();
    r.worker("p", None).unwrap();
    r.stop_and_remove_worker("p", None).unwrap_err();
    let thread = seen.recv_timeout(LONG).unwrap().unwrap_or_default();
    assert!(!thread.ends_with("-loop"), "is_fatal ran on {thread}");
    assert!(finish(&r).is_ok());
}

/// Found by the chaos test: a report holds the workers it reports on
/// (their reports are taken on the caller's thread). When the runner let
/// go of a worker meanwhile and finished, the report held the last
/// reference: the worker's `Drop` ran on the caller's thread (a slow one
/// stalled `report()`), after the runner's `wait` had returned. The
/// report now gives its workers back, and the runner waits for them.
#[test]
fn a_runner_waits_for_the_workers_lent_to_a_report_and_drops_them_itself() {
    let name = "rt-adv-report-lent";
    let (stopped_tx, stopped) = bounded(1);
    let r = runner(name, |p| {
        p.is_fatal(none_fatal).on_event(move |e| {
            if let worker_core::events::EventKind::Removed = e.kind {
                let _ = stopped_tx.try_send(());
            }
        })
    });
    let (worker, gate, dropped) = SlowReport::new();
    r.start_worker_once("w", move || Ok(worker)).unwrap();
    drop(r.worker("w", None).unwrap());
    let reporter = {
        let r = r.clone();
        std::thread::spawn(move || r.report())
    };
    gate.wait_entered().unwrap();
    // The runner lets go of the worker while its report is taken; it
    // said so (and, without the fix, ended) before the report goes on.
    r.kill();
    stopped.recv_timeout(LONG).unwrap();
    let waiter = {
        let r = r.clone();
        std::thread::spawn(move || (r.wait(), dropped.thread()))
    };
    gate.open();
    let report = reporter.join().unwrap();
    assert_eq!(report.workers.len(), 1);
    let (result, dropped_on) = waiter.join().unwrap();
    assert!(result.is_ok());
    let thread = dropped_on.expect("the runner's wait returned before its worker was dropped");
    assert!(
        thread.starts_with(name),
        "the worker was dropped on {thread}"
    );
}

/// A worker's report that waits for its own runner would wait forever (the
/// runner waits for the workers lent to that report): it gets
/// [`WouldDeadlock`] at once.
#[test]
fn a_workers_report_that_waits_for_its_own_runner_gets_a_typed_error() {
    let r = runner("rt-adv-report-waits", |p| p.is_fatal(none_fatal));
    let (worker, waited) = WaitsInReport::new(Arc::new(r.clone()));
    r.start_worker_once("w", move || Ok(worker)).unwrap();
    drop(r.worker("w", None).unwrap());
    let reporter = {
        let r = r.clone();
        std::thread::spawn(move || r.report())
    };
    let e = waited.recv_timeout(LONG).unwrap().unwrap_err();
    assert_eq!(reporter.join().unwrap().workers.len(), 1);
    assert!(e.is::<WouldDeadlock>(), "{e:?}");
    assert!(finish(&r).is_ok());
}

//! Once `wait` returns, every bound worker has been waited for, so their
//! threads (and the catacomb's own) are gone: checked exactly, with no
//! grace period (issue 9).

mod common;

use std::sync::Arc;

use common::*;
use crossbeam_channel::Receiver;
use worker_catacomb::{Catacomb, Plan};
use worker_core::threads::JoinSlot;
use worker_core::{DoneCallback, Error, Tomb, Worker, spawn};
use worker_runner::{Runner, RunnerParams};
use worker_testing::{assert_threads_gone, check_alive};

/// A worker whose thread reports its end (its tomb is done), then goes on
/// until `linger` is dropped; `wait` joins the thread, as every worker
/// built on `spawn` does.
struct Lingering {
    tomb: Tomb,
    thread: JoinSlot,
}

impl Lingering {
    fn start(name: String, linger: Receiver<()>) -> Self {
        let tomb = Tomb::new();
        let thread = JoinSlot::default();
        let body = tomb.clone();
        thread
            .spawn(name, move || {
                let _ = body.dying().recv();
                body.done(Ok(()));
                let _ = linger.recv();
            })
            .unwrap();
        Lingering { tomb, thread }
    }
}

impl Worker for Lingering {
    fn kill(&self) {
        self.tomb.kill(None);
    }
    fn wait(&self) -> Result<(), Error> {
        let result = self.tomb.wait();
        self.thread.join();
        result
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Worker::on_done(&self.tomb, callback)
    }
}

/// Binds a [`Lingering`] worker to a new catacomb, kills one of them
/// (`worker_first`: the worker, then the catacomb; else the catacomb),
/// and checks that the catacomb is not dead while the worker's thread
/// lingers after reporting its end, and that nothing is left once it is.
fn dead_only_after_the_lingering_thread(test: &str, worker_first: bool) {
    let scope = Scope::new(test);
    let c = invoke_until_dying(scope.name("c"), vec![]);
    let (linger_tx, linger) = crossbeam_channel::bounded::<()>(0);
    let worker = Arc::new(Lingering::start(scope.name("lingering"), linger));
    c.add(worker.clone()).unwrap();
    if worker_first {
        worker.kill();
        fired(&worker.tomb.dead());
    }
    c.kill();
    fired(&worker.tomb.dead());
    // The worker has reported its end, but its thread runs on.
    check_alive(&c);
    drop(linger_tx);
    assert!(wait_for(&c).is_ok());
    assert_threads_gone(&scope.name(""));
}

/// Issue 9: the catacomb learnt of a worker's end from its completion
/// callback and never waited for it, so the catacomb was dead (and its
/// `wait` returned) while the worker's thread still ran.
#[test]
fn the_catacomb_is_not_dead_before_its_workers_have_been_waited_for() {
    dead_only_after_the_lingering_thread("waits_for_workers", false);
}

#[test]
fn a_worker_that_ended_while_the_catacomb_lived_is_waited_for_too() {
    dead_only_after_the_lingering_thread("waits_for_early_end", true);
}

/// The race as it was seen: a runner bound into a catacomb still had its
/// loop thread running right after the catacomb's `wait` returned, in 4
/// of 200 tries. Thread workers race the same way.
#[test]
fn no_bound_workers_thread_outlives_wait() {
    for i in 0..200 {
        let scope = Scope::new(&format!("outlives_wait{i}"));
        let runner = Runner::new(RunnerParams::new(scope.name("runner"))).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|k| {
                spawn(scope.name(&format!("thread{k}")), |tomb| {
                    let _ = tomb.dying().recv();
                    Ok(())
                })
            })
            .collect();
        let c = Catacomb::invoke(Plan::new(scope.name("c"), until_dying)).unwrap();
        c.add(runner).unwrap();
        for t in threads {
            c.add(t).unwrap();
        }
        c.kill();
        assert!(c.wait().is_ok());
        assert_threads_gone(&scope.name(""));
    }
}

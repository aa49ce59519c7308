//! Random interleavings of add, worker failure, kill and work return,
//! checked after every step against a model of the rules:
//! - the catacomb is alive, dying or dead exactly when the model says;
//! - the recorded error is the first real one (own dying errors never
//!   count, foreign ones become bad kills);
//! - it holds exactly the bound workers that have not finished;
//! - once dead, every worker ever added (bound or refused) has finished,
//!   and `wait` returns the same error to every caller.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use proptest::prelude::*;
use worker_catacomb::{AddError, Catacomb, ForeignDying, Plan, StillAlive};
use worker_core::{Error, Passive, TombState, Worker};

#[derive(Debug, Clone)]
enum Before {
    Alive,
    Failed,
    Ended,
}

#[derive(Debug, Clone)]
enum Op {
    /// Add a new passive worker, possibly finished before the add.
    Add(Before),
    /// Finish the (index mod len)-th added worker, with an error or not.
    Finish {
        index: usize,
        error: bool,
    },
    Kill {
        error: bool,
    },
    /// Kill with the catacomb's own `err_dying()`.
    KillOwnDying,
    /// Kill with another catacomb's dying error.
    KillForeignDying,
    /// Make the work return, with an error or not.
    WorkReturns {
        error: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop_oneof![Just(Before::Alive), Just(Before::Alive), Just(Before::Failed), Just(Before::Ended)]
            .prop_map(Op::Add),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(index, error)| Op::Finish { index, error }),
        1 => any::<bool>().prop_map(|error| Op::Kill { error }),
        1 => Just(Op::KillOwnDying),
        1 => Just(Op::KillForeignDying),
        1 => any::<bool>().prop_map(|error| Op::WorkReturns { error }),
    ]
}

/// What the rules say the catacomb should look like.
struct Model {
    state: TombState,
    reason: Option<String>,
    work_returned: bool,
    /// Per added worker: bound and not finished.
    running: Vec<bool>,
}

impl Model {
    fn kill(&mut self, reason: Option<String>) {
        match self.state {
            TombState::Dead => {}
            TombState::Alive => {
                self.state = TombState::Dying;
                self.reason = reason;
                // Every bound worker is killed, and passive workers finish
                // cleanly when killed.
                self.running.iter_mut().for_each(|r| *r = false);
            }
            TombState::Dying => {
                if self.reason.is_none() {
                    self.reason = reason;
                }
            }
        }
        if self.state == TombState::Dying && self.work_returned {
            self.state = TombState::Dead;
        }
    }
}

static CASE: AtomicUsize = AtomicUsize::new(0);

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let case = CASE.fetch_add(1, Ordering::Relaxed);
    let scope = Scope::new(&format!("prop{case}"));
    let other = invoke_until_dying(scope.name("other"), vec![]);
    other.kill_with(None);
    let (finish_work, work) = controlled();
    let c = Catacomb::invoke(Plan::new(scope.name("c"), work)).unwrap();
    let mut model = Model {
        state: TombState::Alive,
        reason: None,
        work_returned: false,
        running: Vec::new(),
    };
    let mut workers: Vec<Arc<Passive>> = Vec::new();
    // Per worker: says when its completion callbacks have run. Registered
    // after the catacomb's, so the catacomb has seen the end by then (kills
    // run on the catacomb's own threads, so a step that kills returns
    // before the workers end).
    let mut ended: Vec<crossbeam_channel::Receiver<()>> = Vec::new();
    let mut errors = 0;
    let mut next_error = || {
        errors += 1;
        format!("e{errors}")
    };

    let mut ops = ops;
    // Always end by killing, then letting the work return.
    ops.push(Op::Kill { error: false });
    ops.push(Op::WorkReturns { error: false });
    for op in ops {
        let was_running = model.running.clone();
        match op {
            Op::Add(before) => {
                let w = Arc::new(Passive::new());
                let failure = match before {
                    Before::Alive => None,
                    Before::Failed => {
                        let e = next_error();
                        w.finish(Err(Error::msg(&e)));
                        Some(e)
                    }
                    Before::Ended => {
                        w.finish(Ok(()));
                        None
                    }
                };
                let added = c.add(w.clone());
                let (ended_tx, ended_rx) = crossbeam_channel::bounded(1);
                let registered = Worker::on_done(
                    &*w,
                    Box::new(move |_: &worker_core::Outcome| {
                        let _ = ended_tx.send(());
                    }),
                );
                prop_assert!(registered.is_ok());
                ended.push(ended_rx);
                if model.state == TombState::Alive {
                    prop_assert!(added.is_ok(), "{added:?}");
                    model.running.push(matches!(before, Before::Alive));
                    if failure.is_some() {
                        model.kill(failure);
                    }
                } else {
                    prop_assert!(matches!(added, Err(AddError::Dying(_))), "{added:?}");
                    model.running.push(false);
                }
                workers.push(w);
            }
            Op::Finish { index, error } => {
                if workers.is_empty() {
                    continue;
                }
                let i = index % workers.len();
                let e = error.then(&mut next_error);
                workers[i].finish(e.clone().map_or(Ok(()), |e| Err(Error::msg(e))));
                if model.running[i] {
                    model.running[i] = false;
                    if e.is_some() {
                        model.kill(e);
                    }
                }
            }
            Op::Kill { error } => {
                let e = error.then(&mut next_error);
                c.kill_with(e.clone().map(Error::msg));
                model.kill(e);
            }
            Op::KillOwnDying => {
                c.kill_with(Some(c.err_dying()));
                let alive = StillAlive {
                    catacomb: c.name().to_owned(),
                };
                // While alive there is no dying error to give: the
                // StillAlive error is recorded. Once dying, it never counts.
                let reason = (model.state == TombState::Alive).then(|| alive.to_string());
                model.kill(reason);
            }
            Op::KillForeignDying => {
                c.kill_with(Some(other.err_dying()));
                let bad = ForeignDying {
                    receiver: c.name().to_owned(),
                    owner: other.name().to_owned(),
                };
                model.kill(Some(bad.to_string()));
            }
            Op::WorkReturns { error } => {
                if model.work_returned {
                    continue;
                }
                let e = error.then(&mut next_error);
                finish_work
                    .send(e.clone().map_or(Ok(()), |e| Err(Error::msg(e))))
                    .unwrap();
                model.work_returned = true;
                model.kill(e);
                // The work thread records the return; wait until it has,
                // so the next step sees a settled catacomb.
                fired(&c.dead());
            }
        }
        for (i, was) in was_running.iter().enumerate() {
            if *was && !model.running[i] {
                prop_assert!(ended[i].recv_timeout(TIMEOUT).is_ok(), "worker {i}");
            }
        }
        prop_assert_eq!(c.state(), model.state);
        prop_assert_eq!(c.err().map(|e| e.to_string()), model.reason.clone());
        prop_assert_eq!(
            c.worker_count(),
            model.running.iter().filter(|r| **r).count()
        );
        for (w, running) in workers.iter().zip(&model.running) {
            prop_assert_eq!(w.tomb().state() != TombState::Dead, *running);
        }
    }

    // Dead: every worker ever added has finished, and every caller of wait
    // gets the one recorded error.
    prop_assert!(workers.iter().all(|w| finished(w.tomb())));
    let waiter = {
        let c = c.clone();
        worker_core::threads::spawn_named(scope.name("waiter"), move || c.wait()).unwrap()
    };
    let here = wait_for(&c);
    let there = waiter.join().unwrap();
    prop_assert_eq!(here.as_ref().err().map(|e| e.to_string()), model.reason);
    match (&here, &there) {
        (Ok(()), Ok(())) => {}
        (Err(a), Err(b)) => prop_assert!(a.same(b)),
        _ => prop_assert!(false, "wait disagreed: {here:?} vs {there:?}"),
    }
    prop_assert_eq!(c.worker_count(), 0);
    prop_assert!(wait_for(&other).is_ok());
    Worker::kill(&c);
    scope.finish();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn interleavings_keep_the_invariants(ops in proptest::collection::vec(op(), 0..40)) {
        run(ops)?;
    }
}

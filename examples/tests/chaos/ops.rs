//! Runs the schedule. Every operation runs on a thread of its own (a
//! test thread, not a library one): one that must answer at once is
//! given [`FREEZE`] to do so, else the supervisor froze; one that may
//! wait (for a worker to stop, say) is collected and must have returned
//! within [`FREEZE`] once the tree is dead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use worker_core::Error;
use worker_dependency::UninstallError;
use worker_runner::{LookupError, RemoveError};

use crate::build::{self, WorkMsg};
use crate::case::{Case, Handle};
use crate::leaf;
use crate::plan::{KindSpec, Op};

/// How long anything may take before the test calls it frozen or hung:
/// a failure timeout, never a way to wait for something to happen.
pub(crate) const FREEZE: Duration = Duration::from_secs(10);

/// An operation still running.
pub(crate) struct Pending {
    what: String,
    done: Receiver<Result<(), String>>,
}

/// Runs `f` on a test thread; says when it returned, or how it panicked.
fn thread(what: &str, f: impl FnOnce() + Send + 'static) -> Receiver<Result<(), String>> {
    let (tx, rx) = bounded(1);
    std::thread::Builder::new()
        .name(format!("chaos op: {what}"))
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            });
            let _ = tx.send(result);
        })
        .expect("a test thread");
    rx
}

/// Runs `f`, which must return at once.
pub(crate) fn prompt(case: &Case, what: String, f: impl FnOnce() + Send + 'static) {
    let done = thread(&what, f);
    match done.recv_timeout(FREEZE) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => case.violation(format!("{what} panicked: {panic}")),
        Err(RecvTimeoutError::Timeout) => {
            crate::dump_stacks(&what);
            case.violation(format!("{what} did not return within {FREEZE:?}: frozen"))
        }
        Err(RecvTimeoutError::Disconnected) => unreachable!("the thread always answers"),
    }
}

/// Starts `f`, which may wait.
fn background(pending: &mut Vec<Pending>, what: String, f: impl FnOnce() + Send + 'static) {
    let done = thread(&what, f);
    pending.push(Pending { what, done });
}

/// Waits for every pending operation, for [`FREEZE`] in all.
pub(crate) fn finish(case: &Case, pending: Vec<Pending>) {
    let deadline = Instant::now() + FREEZE;
    for p in pending {
        let left = deadline.saturating_duration_since(Instant::now());
        match p.done.recv_timeout(left) {
            Ok(Ok(())) => {}
            Ok(Err(panic)) => case.violation(format!("{} panicked: {panic}", p.what)),
            Err(RecvTimeoutError::Timeout) => case.violation(format!(
                "{} had not returned {FREEZE:?} after the end: hung",
                p.what
            )),
            Err(RecvTimeoutError::Disconnected) => unreachable!("the thread always answers"),
        }
    }
}

/// Fails the case on an answer none of `allowed` explains.
fn expect(case: &Case, what: &str, result: Result<(), Error>, allowed: &[fn(&Error) -> bool]) {
    if let Err(e) = result {
        if !allowed.iter().any(|ok| ok(&e)) {
            case.violation(format!("{what}: unexpected {e:?}"));
        }
    }
}

fn dead(e: &Error) -> bool {
    e.is::<worker_core::Dead>()
}

fn not_found(e: &Error) -> bool {
    e.is::<worker_core::NotFound>()
}

fn shutting_down(e: &Error) -> bool {
    e.is::<worker_dependency::ShuttingDown>()
}

fn not_installed(e: &Error) -> bool {
    matches!(
        e.downcast_ref::<UninstallError>(),
        Some(UninstallError::NotInstalled(_))
    )
}

/// Runs `f`; a panic whose message contains `expected` is the caller's
/// to take (counted as `what`), any other goes on unwinding.
fn callers_panic(case: &Case, expected: &str, what: &'static str, f: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or("");
        if !message.contains(expected) {
            std::panic::resume_unwind(payload);
        }
        case.count(what);
    }
}

/// Runs `f`, which hands a start function to a supervisor. A supervisor
/// that refuses it (it is dying) drops it on this thread, the caller's,
/// whose own value it is: a panic in its `Drop` then comes back here,
/// as it would if the caller dropped it itself.
pub(crate) fn refused_bomb(case: &Case, f: impl FnOnce()) {
    let what = "refused start function's state panicked on the caller";
    callers_panic(case, "bomb]", what, f);
}

/// Drops a worker the caller was handed, whose `Drop` may be the
/// caller's to run (a panic in it comes back here).
fn callers_drop(case: &Case, worker: worker_core::SharedWorker) {
    let what = "a found worker's Drop panicked on the caller";
    callers_panic(case, "drop panic", what, || drop(worker));
}

pub(crate) fn run(case: &Arc<Case>, op: &Op, pending: &mut Vec<Pending>) {
    let (c, what) = (case.clone(), format!("{op:?}"));
    let short = what.chars().take(60).collect::<String>();
    match op {
        Op::Start { target, child } => {
            let sup = case.sup(*target);
            let child = child.clone();
            match sup.handle.get().cloned() {
                Some(Handle::Runner(_)) => prompt(case, short, move || {
                    sup.ids.lock().unwrap().push(child.id.clone());
                    build::start_child(&c, &sup, &child);
                }),
                Some(Handle::Engine(e)) => prompt(case, short.clone(), move || {
                    sup.ids.lock().unwrap().push(child.id.clone());
                    let m = build::manifold(&c, &sup, &child);
                    refused_bomb(&c, || {
                        let installed = e.install(child.id.clone(), m).map_err(Error::from);
                        let ok: &[fn(&Error) -> bool] = &[shutting_down];
                        expect(&c, &short, installed, ok);
                    });
                }),
                Some(Handle::Catacomb(cat)) => {
                    let by_work = !child.init
                        && sup
                            .work
                            .get()
                            .is_some_and(|w| w.send(WorkMsg::Add(child.clone())).is_ok());
                    if !by_work {
                        background(pending, short, move || build::add(&c, &sup, &cat, &child));
                    }
                }
                None => {}
            }
        }
        Op::Stop { target, pick } | Op::Remove { target, pick } | Op::Lookup { target, pick } => {
            let sup = case.sup(*target);
            let Some(id) = sup.id(*pick) else { return };
            match (sup.handle.get().cloned(), op) {
                (Some(Handle::Runner(r)), Op::Stop { .. }) => {
                    prompt(case, short.clone(), move || {
                        expect(&c, &short, r.stop_worker(&id).map_err(Error::from), &[dead]);
                    })
                }
                (Some(Handle::Runner(r)), Op::Remove { .. }) => {
                    background(pending, short.clone(), move || {
                        match r.stop_and_remove_worker(&id, None) {
                            Err(RemoveError::Stopped(e)) => {
                                sup.sink.removals.lock().unwrap().push((id, e));
                            }
                            other => {
                                let ok: &[fn(&Error) -> bool] = &[dead, not_found];
                                expect(&c, &short, other.map_err(Error::from), ok);
                            }
                        }
                    })
                }
                (Some(Handle::Runner(r)), _) => background(pending, short.clone(), move || {
                    // The caller shares the worker it found: if the runner
                    // let go of it meanwhile, its `Drop` is the caller's.
                    let found = r.worker(&id, None).map(|w| callers_drop(&c, w));
                    let ok = matches!(
                        found,
                        Ok(()) | Err(LookupError::NotFound(_) | LookupError::Dead(_))
                    );
                    if !ok {
                        c.violation(format!("{short}: unexpected {found:?}"));
                    }
                }),
                (Some(Handle::Engine(e)), Op::Stop { .. } | Op::Remove { .. }) => {
                    background(pending, short.clone(), move || {
                        let ok: &[fn(&Error) -> bool] = &[shutting_down, not_installed];
                        expect(&c, &short, e.uninstall(&id).map_err(Error::from), ok);
                    })
                }
                (Some(h), _) => report(case, h, short),
                (None, _) => {}
            }
        }
        Op::Report { target } | Op::WaitingFor { target } => {
            let sup = case.sup(*target);
            if let Some(h) = sup.handle.get().cloned() {
                report(case, h, short);
            }
        }
        Op::Kill { target, with_error } => {
            let sup = case.sup(*target);
            let with_error = *with_error;
            match sup.handle.get().cloned() {
                Some(Handle::Catacomb(cat)) if with_error => prompt(case, short, move || {
                    let reason = c.error("kill reason", &sup.name);
                    cat.kill_with(Some(reason.clone()));
                    if cat.err().is_some() {
                        sup.reasons.lock().unwrap().push(reason);
                    }
                }),
                Some(h) => prompt(case, short, move || h.worker().kill()),
                None => {}
            }
        }
        Op::End { pick, how } => {
            if let Some(l) = case.leaf(*pick) {
                let how = *how;
                prompt(case, short, move || leaf::end(&c, &l, how));
            }
        }
        Op::Work { target, fail } => {
            let sup = case.sup(*target);
            if let (KindSpec::Catacomb, Some(work)) = (&sup.kind, sup.work.get()) {
                let _ = work.send(if *fail {
                    WorkMsg::Fail
                } else {
                    WorkMsg::Return
                });
            }
        }
        Op::OpenGate { pick } => case.gates.open_one(*pick),
    }
}

/// A report and `waiting_for`, which must answer at once (a worker's
/// report panicking or calling back included).
fn report(case: &Case, h: Handle, what: String) {
    prompt(case, what, move || {
        let _ = h.report();
        let _ = h.waiting_for();
    });
}

//! The end of a case: no thread left, no worker left running, no error
//! lost.
//!
//! "Not lost" means, for each supervisor, what its docs promise:
//!
//! - **Runner**: every error a child ended with (its worker's result, or
//!   its start function's error or panic) is in a `RunnerEvent::Failed`
//!   for that id, or was handed to a `stop_and_remove_worker` caller of
//!   that id (`RemoveError::Stopped`). Its own result is the first
//!   `Failed` event marked fatal, or `Ok` if there was none.
//! - **Engine**: every such error reached `Metrics::record_stop` for that
//!   manifold. Its own result is the first of those errors that
//!   `is_fatal` picks (the default `worst_error` keeps the first), or
//!   `Ok`.
//! - **Catacomb**: "the first real error wins", so one error stands for
//!   all: if any bound worker ended with an error, or panicked in `kill`,
//!   `wait` or `Drop`, or the work failed, or it was killed with an error
//!   it recorded, its result is an error, and one of those. Otherwise it
//!   is `Ok` (or the `kill` or `Drop` panic of a worker it refused, which
//!   it contains on the caller's thread and records as its own error).
//!
//! A nested supervisor is a child like any other: its result is an error
//! its parent owes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::TryRecvError;
use worker_core::Error;
use worker_core::supervisor::SupervisorFailed;

use crate::case::{Case, Child, Key, Owed, SupRecord, tokens};
use crate::plan::KindSpec;

/// Whether a thread named `thread` belongs to the instance `name`.
fn belongs(thread: &str, name: &str) -> bool {
    thread
        .strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-') || rest.starts_with('/'))
}

/// The names of the instances nobody waits for: refused by a dying
/// catacomb.
pub(crate) fn orphans(case: &Case) -> Vec<String> {
    let sups = case.sups.lock().unwrap();
    let leaves = case.leaves.lock().unwrap();
    sups.iter()
        .filter(|s| s.orphan.load(Ordering::SeqCst))
        .map(|s| s.name.clone())
        .chain(
            leaves
                .iter()
                .filter(|l| l.orphan.load(Ordering::SeqCst))
                .map(|l| l.name.clone()),
        )
        .collect()
}

/// The library threads of the case alive now.
pub(crate) fn live_threads(case: &Case) -> Vec<String> {
    worker_core::threads::live_threads()
        .into_iter()
        .filter(|t| t.starts_with(&case.prefix))
        .collect()
}

/// Exact: of the threads `left` right after the root's `wait`, none is
/// there but those of orphans (known once every operation returned).
pub(crate) fn threads_joined(case: &Case, left: Vec<String>) {
    let orphans = orphans(case);
    let left: Vec<String> = left
        .into_iter()
        .filter(|t| !orphans.iter().any(|o| belongs(t, o)))
        .collect();
    if !left.is_empty() {
        case.violation(format!(
            "threads left when the root's wait returned: {left:?}"
        ));
    }
}

/// Waits for the orphan supervisors (no supervisor does), then for every
/// thread of the case to end (nothing joins an orphan leaf's thread).
pub(crate) fn orphans_gone(case: &Case) {
    let orphans: Vec<Arc<SupRecord>> = case
        .sups
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.orphan.load(Ordering::SeqCst))
        .cloned()
        .collect();
    for o in orphans {
        if let Some(h) = o.handle.get().cloned() {
            crate::ops::prompt(case, format!("wait of orphan {}", o.name), move || {
                let _ = h.worker().wait();
            });
        }
    }
    if let Err(left) = worker_core::threads::wait_threads_gone(&case.prefix, crate::ops::FREEZE) {
        case.violation(format!(
            "threads left {:?} after the end: {left:?}",
            crate::ops::FREEZE
        ));
    }
}

/// The result of a supervisor that must have ended.
fn result(case: &Case, s: &SupRecord) -> Option<Result<(), Error>> {
    let Some(h) = s.handle.get() else {
        case.violation(format!("{} was never made", s.name));
        return None;
    };
    if h.dead().try_recv() != Err(TryRecvError::Disconnected) {
        case.violation(format!(
            "{} is still running after the root's wait (waiting for {})",
            s.name,
            h.waiting_for()
        ));
        return None;
    }
    Some(h.worker().wait())
}

pub(crate) fn ledger(case: &Case) {
    let sups: Vec<Arc<SupRecord>> = case.sups.lock().unwrap().clone();
    for s in &sups {
        sup(case, s);
    }
}

fn sup(case: &Case, s: &SupRecord) {
    let Some(result) = result(case, s) else {
        return;
    };
    if let Err(e) = &result {
        if e.is::<SupervisorFailed>() || e.is::<worker_dependency::Internal>() {
            case.violation(format!("{} failed internally: {e}", s.name));
        }
    }
    let catacomb = matches!(s.kind, KindSpec::Catacomb);
    let mut owed: Vec<Owed> = s.owed.lock().unwrap().clone();
    let mut also_allowed: Vec<Key> = Vec::new();
    for (id, child) in s.children.lock().unwrap().iter() {
        match child {
            Child::Leaf(l) => {
                let orphan = l.orphan.load(Ordering::SeqCst);
                match l.tomb.try_result() {
                    None if !orphan => {
                        case.violation(format!("{} is still running after the root's wait", l.name))
                    }
                    Some(Err(e)) if !orphan => owed.push(Owed {
                        id: id.clone(),
                        key: Key::Error(e),
                    }),
                    _ => {}
                }
                if catacomb {
                    for message in l.panics.lock().unwrap().iter() {
                        let key = Key::Token(tokens(message)[0].to_owned());
                        if !orphan {
                            owed.push(Owed {
                                id: id.clone(),
                                key,
                            });
                        } else if message.contains("drop panic") || message.contains("kill panic") {
                            also_allowed.push(key);
                        }
                    }
                }
            }
            Child::Sup(c) if !c.orphan.load(Ordering::SeqCst) => {
                if let Some(h) = c.handle.get() {
                    if h.dead().try_recv() == Err(TryRecvError::Disconnected) {
                        if let Err(e) = h.worker().wait() {
                            owed.push(Owed {
                                id: id.clone(),
                                key: Key::Error(e),
                            });
                        }
                    }
                }
            }
            Child::Sup(_) => {}
        }
    }
    match &s.kind {
        KindSpec::Runner(_) => runner(case, s, &result, &owed),
        KindSpec::Engine(e) => engine(case, s, &result, &owed, e.fatal),
        KindSpec::Catacomb => catacomb_result(case, s, &result, owed, also_allowed),
    }
}

/// Fails unless `result` is `expected` (the same error, or `Ok`).
fn same_result(case: &Case, s: &SupRecord, result: &Result<(), Error>, expected: Option<&Error>) {
    let fine = match (result, expected) {
        (Ok(()), None) => true,
        (Err(e), Some(x)) => Key::Error(x.clone()).matches(e),
        _ => false,
    };
    if !fine {
        case.violation(format!(
            "{} ended with {result:?}; its first fatal error was {expected:?}",
            s.name
        ));
    }
}

fn runner(case: &Case, s: &SupRecord, result: &Result<(), Error>, owed: &[Owed]) {
    case.count("runner checked");
    for _ in owed {
        case.count("error owed by a runner");
    }
    let failures = s.sink.failures.lock().unwrap();
    let removals = s.sink.removals.lock().unwrap();
    for o in owed {
        let failed = failures
            .iter()
            .any(|f| f.id == o.id && o.key.matches(&f.error));
        let removed = removals
            .iter()
            .any(|(id, e)| *id == o.id && o.key.matches(e));
        if !failed && !removed {
            case.violation(format!(
                "runner {} lost the {} of {}: in no Failed event, no removal",
                s.name, o.key, o.id
            ));
        }
    }
    let first_fatal = failures.iter().find(|f| f.fatal).map(|f| &f.error);
    same_result(case, s, result, first_fatal);
}

fn engine(
    case: &Case,
    s: &SupRecord,
    result: &Result<(), Error>,
    owed: &[Owed],
    fatal: crate::plan::Fatal,
) {
    case.count("engine checked");
    for _ in owed {
        case.count("error owed by an engine");
    }
    let stops = s.sink.stops.lock().unwrap();
    for o in owed {
        let recorded = stops
            .iter()
            .any(|(id, e)| *id == o.id && e.as_ref().is_some_and(|e| o.key.matches(e)));
        if !recorded {
            case.violation(format!(
                "engine {} lost the {} of {}: never recorded as a stop",
                s.name, o.key, o.id
            ));
        }
    }
    let first_fatal = stops
        .iter()
        .find_map(|(_, e)| e.as_ref().filter(|e| crate::case::is_fatal(fatal, e)));
    same_result(case, s, result, first_fatal);
}

fn catacomb_result(
    case: &Case,
    s: &SupRecord,
    result: &Result<(), Error>,
    owed: Vec<Owed>,
    also_allowed: Vec<Key>,
) {
    case.count("catacomb checked");
    let mut required: Vec<Key> = owed.into_iter().map(|o| o.key).collect();
    if !required.is_empty() {
        case.count("catacomb owing errors");
    }
    required.extend(s.reasons.lock().unwrap().iter().cloned().map(Key::Error));
    match result {
        Ok(()) if required.is_empty() => {}
        Ok(()) => case.violation(format!(
            "catacomb {} ended Ok, losing {}",
            s.name,
            listed(&required)
        )),
        Err(e) => {
            if !required.iter().chain(&also_allowed).any(|k| k.matches(e)) {
                case.violation(format!(
                    "catacomb {} ended with {e:?}, which none of its workers returned \
                     (they returned: {})",
                    s.name,
                    listed(&required)
                ));
            }
        }
    }
}

/// `keys`, for a message.
fn listed(keys: &[Key]) -> String {
    keys.iter()
        .map(Key::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

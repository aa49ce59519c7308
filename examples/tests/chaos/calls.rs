//! Calls back into a supervisor from its own start functions, its
//! workers' `kill` and their bodies. None may hang; a call that would wait
//! for the supervisor itself must fail at once with the typed error
//! (`WouldDeadlock`, or a catacomb's `WaitError::OwnThread`).

use std::sync::Arc;

use worker_catacomb::WaitError;
use worker_core::{Error, Passive, WouldDeadlock};
use worker_dependency::Manifold;

use crate::case::{Case, Handle, SupRecord};
use crate::plan::{Call, From};

/// Whether `e` is the typed answer to a call that would wait for itself.
pub(crate) fn is_typed_deadlock(e: &Error) -> bool {
    e.is::<WouldDeadlock>()
        || matches!(
            e.downcast_ref::<WaitError>(),
            Some(WaitError::OwnThread { .. })
        )
}

/// Makes `call` on `sup`, from its child `own_id`'s code (`from`).
pub(crate) fn call_back(case: &Case, sup: &Arc<SupRecord>, own_id: &str, call: Call, from: From) {
    let Some(handle) = sup.handle.get() else {
        return; // a catacomb's init worker, killed before the work ran
    };
    // On the supervisor's own threads, a wait can only be refused: the
    // supervisor cannot end before this call returns.
    let own = from != From::Kill || sup.on_own_thread();
    let fresh = || format!("{own_id}+{}", case.fresh());
    let waited: Option<Result<(), Error>> = match (handle, call) {
        (Handle::Runner(r), Call::Add) => {
            let _ = r.start_worker(fresh(), || Ok(Passive::new()));
            None
        }
        (Handle::Engine(e), Call::Add) => {
            let _ = e.install(fresh(), Manifold::new(|_| Ok(Passive::new())));
            None
        }
        (Handle::Catacomb(c), Call::Add) => {
            let _ = c.add(Passive::new());
            None
        }
        (Handle::Runner(r), Call::StopSibling) => {
            if let Some(id) = sup.ids.lock().unwrap().iter().find(|id| *id != own_id) {
                let _ = r.stop_worker(id);
            }
            None
        }
        (Handle::Runner(r), Call::OwnId) => {
            Some(r.worker(own_id, None).map(drop).map_err(Error::from))
        }
        (Handle::Engine(e), Call::OwnId) => Some(e.uninstall(own_id).map_err(Error::from)),
        (h, Call::Report) => {
            let _ = h.report();
            None
        }
        (Handle::Catacomb(c), Call::KillWithError) => {
            let reason = case.error("kill reason from a worker's kill", &sup.name);
            c.kill_with(Some(reason.clone()));
            if c.err().is_some() {
                sup.reasons.lock().unwrap().push(reason);
            }
            None
        }
        (h, Call::Kill | Call::KillWithError) => {
            h.worker().kill();
            None
        }
        (h, Call::Wait) => Some(h.worker().wait()),
        (h, Call::Stop) => Some(worker_core::stop(h.worker())),
        (Handle::Runner(r), Call::Query) => {
            let _ = (r.worker_names(), r.waiting_for());
            None
        }
        (h, Call::Query) => {
            let _ = h.waiting_for();
            None
        }
        // Not a call this supervisor has.
        (_, Call::StopSibling | Call::OwnId) => None,
    };
    case.count(match from {
        From::Start => "call back from a start function",
        From::Kill => "call back from a kill",
        From::Body => "call back from a body",
    });
    let Some(result) = waited else { return };
    let waits_for_itself = call.waits_for_itself() || (call == Call::OwnId && from == From::Start);
    if waits_for_itself && own {
        match result {
            Err(e) if is_typed_deadlock(&e) => case.count("typed deadlock error"),
            other => case.violation(format!(
                "{call:?} on {} from {from:?} of {own_id} on thread {:?} returned {other:?}, \
                 not a typed deadlock error",
                sup.name,
                std::thread::current().name()
            )),
        }
    }
}

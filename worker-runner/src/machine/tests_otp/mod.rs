//! The machine driven by hand through the OTP and suture rules: restart
//! strategies (with restart types and fatal errors mixed in), the
//! runner-wide intensity limit and the failure backoff at their
//! boundaries, ordered and forced shutdown, stuck start functions, bounded
//! removal, significant workers, and the events.

use super::tests::{
    H, config, finished, finished_errors, kills, none_fatal, removed, secs, start_of, starts,
};
use super::*;
use crate::error::RunnerIntensityExceeded;
use crate::policy::WorkerOptions;
use worker_core::events::{Event as LifeEvent, ShutdownCause};

fn with(strategy: Strategy) -> H {
    let mut c = none_fatal(config());
    c.machine.strategy = strategy;
    c.machine.events = true;
    H::new(c)
}

fn events(out: &[Action<super::tests::TestIo>]) -> Vec<&LifeEvent> {
    out.iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(&**e),
            _ => None,
        })
        .collect()
}

fn names(out: &[Action<super::tests::TestIo>]) -> Vec<&'static str> {
    events(out).iter().map(|e| e.name()).collect()
}

fn aborts(out: &[Action<super::tests::TestIo>]) -> Vec<u64> {
    out.iter()
        .filter_map(|a| match a {
            Action::Abort { worker, .. } => Some(*worker),
            _ => None,
        })
        .collect()
}

/// The ids of the start actions in `out`, in order.
fn started_ids(out: &[Action<super::tests::TestIo>]) -> Vec<String> {
    out.iter()
        .filter_map(|a| match a {
            Action::Start { id, .. } => Some(id.to_string()),
            _ => None,
        })
        .collect()
}

/// Completes every start in `out`, returning (id, slot, generation,
/// instance) for each.
fn complete_all(
    h: &mut H,
    out: &[Action<super::tests::TestIo>],
) -> Vec<(String, Slot, Generation, u64)> {
    starts(out)
        .into_iter()
        .map(|a| {
            let (slot, generation) = start_of(a);
            let Action::Start { id, .. } = a else {
                unreachable!()
            };
            let (w, _) = h.complete(a);
            (id.to_string(), slot, generation, w)
        })
        .collect()
}

fn temporary() -> WorkerOptions {
    WorkerOptions::new().restart_type(RestartType::Temporary)
}

mod limits;
mod significant;
mod stopping;
mod strategies;

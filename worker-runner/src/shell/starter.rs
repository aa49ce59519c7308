//! The runner's start jobs, run off the loop on the driver's executor
//! threads: a start function, then the questions whose answers are user
//! code (is the worker a reporter? is its error fatal?), then the
//! completion callback that reports the worker's end with the policies'
//! verdict on it.

use std::cell::RefCell;
use std::sync::Arc;

use worker_core::supervisor::Events;
use worker_core::supervisor::offloop;
use worker_core::supervisor::offloop::OffLoop;
use worker_core::{Error, Outcome, SharedWorker, catch_panic};

use super::{Event, StartFn};
use crate::machine::{self, Generation, Policies, Slot, Started, Verdict};

/// One start function to run, for one incarnation.
pub(crate) struct StartJob {
    pub(crate) slot: Slot,
    pub(crate) generation: Generation,
    pub(crate) id: Arc<str>,
    pub(crate) start: StartFn,
    /// Restarted after a clean exit too.
    pub(crate) permanent: bool,
}

thread_local! {
    /// The runner and worker id whose start function this thread runs.
    static STARTING: RefCell<Option<(u64, Arc<str>)>> = const { RefCell::new(None) };
}

/// Whether this thread is running the start function of worker `id` of
/// runner `runner` (which must not wait for that worker).
pub(crate) fn starting(runner: u64, id: &str) -> bool {
    STARTING.with(|s| {
        s.borrow()
            .as_ref()
            .is_some_and(|(r, i)| *r == runner && &**i == id)
    })
}

/// The id whose start function this thread runs for runner `runner`, if
/// any (a readiness wait there must not include it).
pub(crate) fn starting_in(runner: u64) -> Option<Arc<str>> {
    STARTING.with(|s| {
        s.borrow()
            .as_ref()
            .filter(|(r, _)| *r == runner)
            .map(|(_, id)| id.clone())
    })
}

/// The verdict on a successful start, or on a clean exit that restarts
/// nothing (never looked at: only failures and restarts use one).
const STARTED: Verdict = Verdict {
    fatal: false,
    restart: true,
    jitter: 0.5,
};

/// Runs one start function, on an executor thread, and tells the loop.
pub(crate) fn run_job(
    runner: u64,
    name: &Arc<str>,
    policies: &Arc<Policies>,
    job: StartJob,
    events: &Events<Event>,
) {
    let StartJob {
        slot,
        generation,
        id,
        mut start,
        permanent,
    } = job;
    STARTING.with(|s| *s.borrow_mut() = Some((runner, id.clone())));
    // The incarnation's span: the start function runs in it, and so do
    // the bodies of the workers it spawns.
    let span = worker_core::events::worker_span(name, Some(&id), generation);
    let result = span.in_scope(|| {
        catch_panic(
            || format!("start function of worker {id:?}"),
            || start.call(),
        )
    });
    STARTING.with(|s| *s.borrow_mut() = None);
    let verdict = match &result {
        Ok(_) => STARTED,
        Err(e) => policies.verdict(&Err(e.clone())),
    };
    let worker = result.as_ref().ok().cloned();
    // Capabilities are user code too: a panic means "no".
    let has = |ask: &dyn Fn(&SharedWorker) -> bool| {
        worker.as_ref().is_some_and(|w| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ask(w))).unwrap_or(false)
        })
    };
    let reports = has(&|w| w.reporter().is_some());
    let abortable = has(&|w| w.abortable().is_some());
    // `Started` goes first, so the loop always learns of an instance before
    // its ending: the completion callback is registered only afterwards.
    let sent = events.send(Event::Machine(machine::Event::Started {
        slot,
        generation,
        started: Started {
            result: result.map(OffLoop::new),
            verdict,
            reports,
            abortable,
            start,
        },
    }));
    if let Some(worker) = worker {
        if sent.is_err() {
            // Cannot happen (the loop waits for every start); do not leave
            // a worker running unseen.
            worker.kill();
            return;
        }
        watch(
            name,
            policies,
            &worker,
            (slot, generation),
            permanent,
            events,
        );
    }
}

/// What a start job that no thread can be had for reports: a failed start,
/// restarted after the usual delay (no policy is asked: this runs on the
/// loop).
pub(crate) fn refused(job: StartJob, error: Error, events: &Events<Event>) {
    let _ = events.send(Event::Machine(machine::Event::Started {
        slot: job.slot,
        generation: job.generation,
        started: Started {
            result: Err(error.context("cannot run the start function")),
            verdict: STARTED,
            reports: false,
            abortable: false,
            start: job.start,
        },
    }));
}

/// Arranges for `Exited` to reach the loop when `worker` finishes, with the
/// policies' verdict: through the worker's completion callback when it has
/// one (no thread), else through a watcher thread named `<name>-watch`,
/// which the driver joins.
fn watch(
    name: &Arc<str>,
    policies: &Arc<Policies>,
    worker: &SharedWorker,
    (slot, generation): (Slot, Generation),
    permanent: bool,
    events: &Events<Event>,
) {
    let exited = events.clone();
    let policies = policies.clone();
    let thread = worker_core::supervisor::watch(
        worker,
        format_args!("{name}-watch"),
        move |outcome: &Outcome| {
            // A clean exit of a worker that is not restarted after one
            // needs no verdict (the commonest ending: a stop). Any other
            // asks the policies, and those that run user code are never
            // asked on the runner's loop (which kills the library's
            // thread-free workers itself).
            let asks_policies = outcome.is_err() || permanent;
            if asks_policies && offloop::on_loop() && policies.runs_user_code(outcome) {
                let outcome = outcome.clone();
                offloop::defer(move || {
                    let verdict = policies.verdict(&outcome);
                    let _ = exited.send(Event::Machine(machine::Event::Exited {
                        slot,
                        generation,
                        outcome,
                        verdict,
                    }));
                });
                return;
            }
            let verdict = if asks_policies {
                policies.verdict(outcome)
            } else {
                STARTED
            };
            let _ = exited.send(Event::Machine(machine::Event::Exited {
                slot,
                generation,
                outcome: outcome.clone(),
                verdict,
            }));
        },
    );
    if let Some(handle) = thread {
        events.watcher(handle);
    }
}

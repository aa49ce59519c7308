//! The runner's start jobs, run off the loop by the core's
//! [`StartQueue`]: up to `start_threads` threads take them one after
//! another, a start function that blocks holds the others up for about
//! [`STALL`] at most, and an idle runner soon has no start thread (see the
//! queue's docs for the rules and the measurements behind them).
//!
//! The loop pushes each start job and flushes the queue when a burst of
//! start requests pauses (see the shell), so a burst wakes the start
//! threads once rather than once per start.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use worker_core::{Outcome, SharedWorker, StartQueue, catch_panic, watch_named};

use super::{Msg, StartFn};
use crate::machine::{Generation, Slot};

/// How long waiting start jobs tolerate every start thread being busy
/// without any start completing, before another thread is added (real
/// time: see the queue's docs).
pub(crate) const STALL: Duration = Duration::from_millis(20);

/// How long an idle start thread waits for more work before it ends: long
/// enough that a steady flow of starts (a worker restarting every
/// microsecond, a caller starting workers one by one) never waits for a
/// new thread.
pub(crate) const LINGER: Duration = Duration::from_millis(200);

/// One start function to run, for one incarnation.
pub(crate) struct StartJob {
    pub(crate) slot: Slot,
    pub(crate) generation: Generation,
    pub(crate) id: Arc<str>,
    pub(crate) start: StartFn,
}

/// The loop's side of the start machinery: the runner's [`StartQueue`].
pub(crate) struct Starter(StartQueue<StartJob>);

impl Starter {
    /// A queue whose threads are named `<name>-start-<n>`, running at most
    /// `limit` of them while starts make progress, and reporting to the
    /// loop through `events`.
    pub(crate) fn new(name: Arc<str>, limit: usize, events: Sender<Msg>) -> Self {
        let refused = events.clone();
        let queue = StartQueue::new(
            format!("{name}-start"),
            move |job| run_job(&name, job, &events),
            move |job: StartJob, error| {
                // Nobody would ever run it: fail it, so the runner's policy
                // deals with it and nothing hangs.
                let _ = refused.send(Msg::Started {
                    slot: job.slot,
                    generation: job.generation,
                    result: Err(error.context("cannot run the start function")),
                    reports: false,
                    start: job.start,
                });
            },
        )
        .limit(limit)
        .stall(STALL)
        .linger(LINGER);
        Starter(queue)
    }
}

impl Deref for Starter {
    type Target = StartQueue<StartJob>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Starter {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Runs one start function, on a start thread, and tells the loop.
fn run_job(name: &Arc<str>, job: StartJob, events: &Sender<Msg>) {
    let StartJob {
        slot,
        generation,
        id,
        mut start,
    } = job;
    let result = catch_panic(|| format!("start function of worker {id:?}"), &mut start);
    let worker = result.as_ref().ok().cloned();
    let reports = worker.as_ref().is_some_and(|w| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.reporter().is_some()))
            .unwrap_or(false)
    });
    // `Started` goes first, so the loop always learns of an instance before
    // its ending: the completion callback is registered only afterwards.
    let sent = events.send(Msg::Started {
        slot,
        generation,
        result,
        reports,
        start,
    });
    if let Some(worker) = worker {
        if sent.is_err() {
            // Cannot happen (the loop waits for every start); do not leave
            // a worker running unseen.
            worker.kill();
            return;
        }
        watch(name, &worker, slot, generation, events);
    }
}

/// Arranges for `Exited` to reach the loop when `worker` finishes: through
/// the worker's completion callback when it has one (no thread), else
/// through a watcher thread named `<name>-watch`, which the loop joins.
fn watch(
    name: &Arc<str>,
    worker: &SharedWorker,
    slot: Slot,
    generation: Generation,
    events: &Sender<Msg>,
) {
    let exited = events.clone();
    let thread = watch_named(
        worker,
        format_args!("{name}-watch"),
        move |outcome: &Outcome| {
            let _ = exited.send(Msg::Exited {
                slot,
                generation,
                outcome: outcome.clone(),
            });
        },
    );
    if let Some(handle) = thread {
        let _ = events.send(Msg::Watcher(handle));
    }
}

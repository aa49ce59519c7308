//! Running start functions off the loop, on a bounded number of threads.
//!
//! Start jobs go into one queue. Up to `limit` *starters* (jobs on the
//! runner's [`ThreadPool`]) take them one after another and return to the
//! pool when the queue is empty, so a burst of 10,000 starts costs `limit`
//! threads, not 10,000, and an idle runner has no starter at all.
//!
//! A start function may block (on a network, a lock, a slow disk). One
//! that does holds up only its own starter; should all `limit` starters be
//! blocked while jobs wait, the loop notices that no start has completed
//! for [`OVERFLOW_AFTER`] of real time and adds one more starter, and again
//! after each such period. This watch is armed only while jobs are
//! waiting, and it measures the CPU's reality rather than the runner's
//! behaviour, so it uses real time, not the runner's clock: a fake clock in
//! a test must not be able to stall a start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use worker_core::{DoneCallback, Error, Outcome, SharedWorker, ThreadPool, catch_panic};

use super::{Msg, StartFn};
use crate::machine::{Generation, Slot};

/// How long waiting start jobs tolerate all starters being busy without
/// any completing, before another starter is added.
pub(crate) const OVERFLOW_AFTER: Duration = Duration::from_millis(20);

/// One start function to run, for one incarnation.
pub(crate) struct StartJob {
    pub(crate) slot: Slot,
    pub(crate) generation: Generation,
    pub(crate) id: Arc<str>,
    pub(crate) start: StartFn,
}

/// The loop's side of the start machinery.
pub(crate) struct Starter {
    name: Arc<str>,
    pool: ThreadPool,
    queue_tx: Sender<StartJob>,
    queue_rx: Receiver<StartJob>,
    events: Sender<Msg>,
    limit: usize,
    /// Starters running (not yet reported idle).
    active: usize,
    /// Start jobs completed so far.
    completed: u64,
    /// The overflow watch: its timer and `completed` when it was armed.
    overflow: Option<(Receiver<Instant>, u64)>,
}

impl Starter {
    pub(crate) fn new(name: Arc<str>, limit: usize, events: Sender<Msg>) -> Self {
        let (queue_tx, queue_rx) = crossbeam_channel::unbounded();
        Starter {
            pool: ThreadPool::new(format!("{name}-start")),
            name,
            queue_tx,
            queue_rx,
            events,
            limit,
            active: 0,
            completed: 0,
            overflow: None,
        }
    }

    /// Queues `job`, adding a starter if fewer than `limit` are running.
    pub(crate) fn dispatch(&mut self, job: StartJob) {
        // The receiver lives in `self`, so the queue is never closed here.
        let _ = self.queue_tx.send(job);
        if self.active < self.limit {
            self.add_starter();
        } else if self.overflow.is_none() {
            self.arm_overflow();
        }
    }

    /// A start job has completed.
    pub(crate) fn completed(&mut self) {
        self.completed += 1;
    }

    /// A starter found the queue empty and went back to the pool.
    pub(crate) fn starter_idle(&mut self) {
        self.active -= 1;
        // A job queued just after that starter last looked needs one.
        if !self.queue_tx.is_empty() && self.active < self.limit {
            self.add_starter();
        }
    }

    /// The overflow watch's timer, while armed.
    pub(crate) fn overflow_timer(&self) -> Option<&Receiver<Instant>> {
        self.overflow.as_ref().map(|(timer, _)| timer)
    }

    /// The overflow watch fired: if jobs still wait and nothing completed
    /// meanwhile, every starter is stuck, so add one.
    pub(crate) fn overflow_fired(&mut self) {
        let Some((_, completed_then)) = self.overflow.take() else {
            return;
        };
        if self.queue_tx.is_empty() {
            return;
        }
        if self.completed == completed_then {
            tracing::debug!(
                starters = self.active,
                waiting = self.queue_tx.len(),
                "start functions are slow; adding a start thread"
            );
            self.add_starter();
        }
        self.arm_overflow();
    }

    fn arm_overflow(&mut self) {
        self.overflow = Some((crossbeam_channel::after(OVERFLOW_AFTER), self.completed));
    }

    fn add_starter(&mut self) {
        let queue = self.queue_rx.clone();
        let events = self.events.clone();
        let name = self.name.clone();
        match self
            .pool
            .execute(move || run_starter(&name, &queue, &events))
        {
            Ok(()) => self.active += 1,
            Err(e) => {
                tracing::error!(error = %e, "cannot get a thread to run start functions");
                if self.active == 0 {
                    // Nobody would ever run the queued jobs: fail them, so
                    // the runner's policy deals with them and nothing hangs.
                    let e = e.context("cannot run the start function");
                    while let Ok(job) = self.queue_rx.try_recv() {
                        let _ = self.events.send(Msg::Started {
                            slot: job.slot,
                            generation: job.generation,
                            result: Err(e.clone()),
                            start: job.start,
                        });
                        self.completed += 1;
                    }
                }
            }
        }
    }

    /// Lets running jobs finish and joins the pool's threads; called when
    /// the runner has finished, so none is running.
    pub(crate) fn join(&self) {
        self.pool.join();
    }
}

/// A starter: runs queued start jobs until the queue is empty.
fn run_starter(name: &Arc<str>, queue: &Receiver<StartJob>, events: &Sender<Msg>) {
    while let Ok(job) = queue.try_recv() {
        run_job(name, job, events);
    }
    let _ = events.send(Msg::StarterIdle);
}

fn run_job(name: &Arc<str>, job: StartJob, events: &Sender<Msg>) {
    let StartJob {
        slot,
        generation,
        id,
        mut start,
    } = job;
    let result = catch_panic(|| format!("start function of worker {id:?}"), &mut start);
    let worker = result.as_ref().ok().cloned();
    // `Started` goes first, so the loop always learns of an instance before
    // its ending: the completion callback is registered only afterwards.
    let sent = events.send(Msg::Started {
        slot,
        generation,
        result,
        start,
    });
    if let Some(worker) = worker {
        if sent.is_err() {
            // Cannot happen (the loop waits for every start); do not leave
            // a worker running unseen.
            worker.kill();
            return;
        }
        watch(name, &id, &worker, slot, generation, events);
    }
}

/// Arranges for `Exited` to reach the loop when `worker` finishes: through
/// the worker's completion callback when it has one (no thread), else
/// through a watcher thread named after the runner.
fn watch(
    name: &Arc<str>,
    id: &str,
    worker: &SharedWorker,
    slot: Slot,
    generation: Generation,
    events: &Sender<Msg>,
) {
    let callback = |events: Sender<Msg>| -> DoneCallback {
        Box::new(move |outcome: &Outcome| {
            let _ = events.send(Msg::Exited {
                slot,
                generation,
                outcome: outcome.clone(),
            });
        })
    };
    let registered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        worker.on_done(callback(events.clone()))
    }));
    let fallback = match registered {
        Ok(Ok(())) => return,
        Ok(Err(callback)) => callback,
        Err(_) => {
            tracing::error!(%id, "the worker's on_done panicked; watching it with a thread");
            callback(events.clone())
        }
    };
    let w = worker.clone();
    let what = format!("wait of worker {id:?}");
    let spawned = worker_core::threads::spawn_named(format!("{name}-watch"), move || {
        let outcome = catch_panic(|| what, || w.wait());
        fallback(&outcome);
    });
    match spawned {
        Ok(handle) => {
            let _ = events.send(Msg::Watcher(handle));
        }
        Err(e) => {
            // Without a thread the ending cannot be observed. Stop the
            // worker and count it as ended, rather than hang forever.
            tracing::error!(%id, error = %e, "cannot start a thread to watch a worker; killing it");
            worker.kill();
            let _ = events.send(Msg::Exited {
                slot,
                generation,
                outcome: Err(Error::new(e).context("cannot watch the worker")),
            });
        }
    }
}

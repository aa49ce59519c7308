//! Running start functions off the loop, on a bounded number of threads,
//! with as few thread wake-ups as possible.
//!
//! Start jobs go into one queue, served by up to `limit` *starters*: jobs
//! on the runner's [`ThreadPool`] that take start jobs one after another.
//! A starter that finds the queue empty waits on it for [`LINGER`] of real
//! time before going back to the pool, so a steady flow of starts does not
//! pay a pool hand-off per job, and an idle runner soon holds no starter.
//! A burst of 10,000 starts therefore costs `limit` threads, not 10,000.
//!
//! The loop hands jobs over in batches ([`Starter::push`] collects,
//! [`Starter::flush`] sends): while callers keep sending start requests,
//! their jobs wait in the loop, and go out together when the burst pauses,
//! so a burst wakes a starter once rather than once per start.
//!
//! A start function may block (on a network, a lock, a slow disk). One
//! that does holds up only its own starter; should every starter be busy
//! while jobs wait, and no start complete for [`OVERFLOW_AFTER`] of real
//! time, the loop adds a starter, and again after each such period. This
//! watch is armed only while jobs wait. It measures the CPU's reality
//! rather than the runner's behaviour, so it uses real time, not the
//! runner's clock: a fake clock in a test must not be able to stall a
//! start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use worker_core::{DoneCallback, Error, Outcome, SharedWorker, ThreadPool, catch_panic};

use super::{Msg, StartFn};
use crate::machine::{Generation, Slot};

/// How long waiting start jobs tolerate every starter being busy without
/// any start completing, before another starter is added.
pub(crate) const OVERFLOW_AFTER: Duration = Duration::from_millis(20);

/// How long an idle starter waits for more work before it returns its
/// thread to the pool.
pub(crate) const LINGER: Duration = Duration::from_millis(200);

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
    /// Jobs not yet handed over.
    pending: Vec<StartJob>,
    limit: usize,
    /// Starters running (not yet reported gone).
    active: usize,
    /// Jobs handed over and not yet completed.
    in_flight: usize,
    /// Start jobs completed so far.
    completed: u64,
    /// The overflow watch: when it fires, and `completed` when armed.
    overflow: Option<(Instant, u64)>,
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
            pending: Vec::new(),
            limit,
            active: 0,
            in_flight: 0,
            completed: 0,
            overflow: None,
        }
    }

    /// Collects `job`; it is handed over at the next [`flush`](Self::flush).
    pub(crate) fn push(&mut self, job: StartJob) {
        self.pending.push(job);
    }

    /// How many jobs wait to be handed over.
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Hands the collected jobs to the starters, adding starters up to the
    /// limit as the work in flight needs them.
    pub(crate) fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.in_flight += self.pending.len();
        for job in self.pending.drain(..) {
            // The receiver lives in `self`, so the queue is never closed here.
            let _ = self.queue_tx.send(job);
        }
        self.staff();
    }

    /// A start job has completed.
    pub(crate) fn completed(&mut self) {
        self.completed += 1;
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// A starter found no work for a while and left.
    pub(crate) fn starter_gone(&mut self) {
        self.active -= 1;
        // A job queued just as it left needs someone.
        self.staff();
    }

    /// When the overflow watch fires, while armed.
    pub(crate) fn overflow_at(&self) -> Option<Instant> {
        self.overflow.map(|(at, _)| at)
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

    /// Makes sure enough starters run for the work in flight, and watches
    /// for stuck starters while jobs wait for one.
    fn staff(&mut self) {
        while self.active < self.limit.min(self.in_flight) {
            if !self.add_starter() {
                break;
            }
        }
        if self.in_flight > self.active && self.overflow.is_none() {
            self.arm_overflow();
        }
    }

    fn arm_overflow(&mut self) {
        self.overflow = Some((Instant::now() + OVERFLOW_AFTER, self.completed));
    }

    fn add_starter(&mut self) -> bool {
        let queue = self.queue_rx.clone();
        let events = self.events.clone();
        let name = self.name.clone();
        match self
            .pool
            .execute(move || run_starter(&name, &queue, &events))
        {
            Ok(()) => {
                self.active += 1;
                true
            }
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
                            reports: false,
                            start: job.start,
                        });
                    }
                }
                false
            }
        }
    }

    /// Closes the queue and joins the pool's threads; called when the
    /// runner has finished, so no job is left.
    pub(crate) fn join(self) {
        let Starter { pool, queue_tx, .. } = self;
        drop(queue_tx);
        pool.join();
    }
}

/// A starter: runs start jobs until none comes for [`LINGER`], or the
/// queue closes.
fn run_starter(name: &Arc<str>, queue: &Receiver<StartJob>, events: &Sender<Msg>) {
    loop {
        match queue.recv_timeout(LINGER) {
            Ok(job) => run_job(name, job, events),
            Err(RecvTimeoutError::Timeout) => {
                let _ = events.send(Msg::StarterGone);
                return;
            }
            // The runner has finished.
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
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
        watch(name, &id, &worker, slot, generation, events);
    }
}

/// Arranges for `Exited` to reach the loop when `worker` finishes: through
/// the worker's completion callback when it has one (no thread), else
/// through a watcher thread named after the runner, which the loop joins.
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

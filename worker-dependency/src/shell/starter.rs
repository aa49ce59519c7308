//! Running start functions off the loop without a thread per start.
//!
//! A burst of starts (a fan of 10,000 manifolds bouncing at once) would
//! make a plain thread pool start a thread whenever all its threads are
//! busy, growing to hundreds of threads for jobs of a few microseconds.
//! Instead, start jobs go into one queue per engine, and a few "drainer"
//! jobs on the engine's [`ThreadPool`] run them one after another until
//! the queue has been empty for [`LINGER`]: at most twice the number of
//! CPUs while starts make progress.
//!
//! A start function may block (on the network, say), and must not hold up
//! the others for long: when the queue has not moved for [`STALL`] of real
//! time (no start finished), one more drainer is started, and so on. So a
//! blocked start delays the ones queued behind it by about [`STALL`] at
//! most, and the pool only grows while starts are actually blocked. The
//! stall check runs only while starts are queued; an idle engine has no
//! timer at all.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, never, unbounded};
use worker_core::{Error, ThreadPool, catch_panic};

use super::Msg;
use crate::context::{Context, InputState};
use crate::graph::NodeId;
use crate::machine::Live;
use crate::{Manifold, Outputs};

/// How long the queue may sit still before another drainer starts. Real
/// time, not the engine's clock: it is about thread scheduling, not about
/// the engine's delays.
pub(crate) const STALL: Duration = Duration::from_millis(2);

/// How long a drainer waits for more work before it gives its thread back
/// to the pool: starts that come in a trickle (a chain bouncing, one link
/// per bounce delay) then find a drainer ready, and the pool is not asked
/// for a thread per start.
pub(crate) const LINGER: Duration = Duration::from_millis(5);

/// One start function to run.
pub(crate) struct StartJob {
    pub(crate) node: NodeId,
    pub(crate) generation: u64,
    pub(crate) name: Arc<str>,
    pub(crate) manifold: Manifold,
    pub(crate) inputs: Vec<(Arc<str>, InputState)>,
    pub(crate) abort: Receiver<Infallible>,
}

struct Queue {
    jobs: Receiver<StartJob>,
    drainers: AtomicUsize,
    results: Sender<Msg>,
}

/// The loop's side: see the module docs.
pub(crate) struct Starter {
    pool: ThreadPool,
    jobs: Sender<StartJob>,
    queue: Arc<Queue>,
    max_drainers: usize,
    /// Start results the loop has received.
    finished: u64,
    /// `finished` when the stall timer was armed.
    armed_at: Option<u64>,
    /// Fires [`STALL`] after arming; never while disarmed.
    pub(crate) stall: Receiver<Instant>,
}

impl Starter {
    pub(crate) fn new(name: &str, results: Sender<Msg>) -> Self {
        let (jobs, queue) = unbounded();
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Starter {
            pool: ThreadPool::new(format!("{name}-start")),
            jobs,
            queue: Arc::new(Queue {
                jobs: queue,
                drainers: AtomicUsize::new(0),
                results,
            }),
            max_drainers: (2 * cpus).max(2),
            finished: 0,
            armed_at: None,
            stall: never(),
        }
    }

    /// Queues `job`, starting a drainer if fewer than the maximum run.
    /// If no thread can be had for a drainer, the job stays queued and the
    /// stall check tries again.
    pub(crate) fn submit(&mut self, job: StartJob) {
        // The queue's receiver lives in `self.queue`: sending cannot fail.
        let _ = self.jobs.send(job);
        // Pairs with the fence in `drain`: either a drainer that is about
        // to leave sees this job, or this sees it leave.
        fence(Ordering::SeqCst);
        if self.queue.drainers.load(Ordering::SeqCst) < self.max_drainers {
            if let Err(e) = self.add_drainer() {
                tracing::error!(error = %e, "cannot start a start drainer; will retry");
            }
        }
    }

    fn add_drainer(&self) -> Result<(), Error> {
        self.queue.drainers.fetch_add(1, Ordering::SeqCst);
        let queue = self.queue.clone();
        self.pool.execute(move || drain(&queue)).inspect_err(|_| {
            self.queue.drainers.fetch_sub(1, Ordering::SeqCst);
        })
    }

    /// A start result reached the loop.
    pub(crate) fn finished_one(&mut self) {
        self.finished += 1;
    }

    /// Arms or disarms the stall timer; call after each loop iteration.
    pub(crate) fn watch(&mut self) {
        if self.queue.jobs.is_empty() {
            self.armed_at = None;
            self.stall = never();
        } else if self.armed_at.is_none() {
            self.armed_at = Some(self.finished);
            self.stall = crossbeam_channel::after(STALL);
        }
    }

    /// The stall timer fired: if no start finished since it was armed and
    /// starts are still queued, add a drainer.
    pub(crate) fn stalled(&mut self) {
        let armed_at = self.armed_at.take();
        self.stall = never();
        if armed_at == Some(self.finished) && !self.queue.jobs.is_empty() {
            tracing::debug!("start queue stalled; adding a drainer");
            if let Err(e) = self.add_drainer() {
                tracing::error!(error = %e, "cannot add a start drainer");
            }
        }
        self.watch();
    }

    /// Runs `job` on the engine's pool (for work the loop must not wait
    /// for); if no thread can be had, runs it here.
    pub(crate) fn background(&self, job: impl FnOnce() + Send + 'static) {
        let job = std::sync::Mutex::new(Some(job));
        let job = Arc::new(job);
        let for_pool = job.clone();
        let queued = self.pool.execute(move || {
            if let Some(job) = for_pool.lock().ok().and_then(|mut j| j.take()) {
                job();
            }
        });
        if queued.is_err() {
            if let Some(job) = job.lock().ok().and_then(|mut j| j.take()) {
                job();
            }
        }
    }

    /// How many threads the pool has started (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Closes the queue and joins every pool thread; no start may be
    /// queued or running.
    pub(crate) fn join(&mut self) {
        // Replacing the only sender closes the queue: lingering drainers
        // leave at once.
        self.jobs = unbounded().0;
        self.pool.join();
    }
}

/// A drainer: runs queued starts until the queue has been empty for
/// [`LINGER`] (or is closed).
fn drain(queue: &Queue) {
    loop {
        while let Ok(job) = queue.jobs.recv_timeout(LINGER) {
            let result = run_start(&job.name, &job.manifold, job.inputs, job.abort);
            let _ = queue.results.send(Msg::Started {
                node: job.node,
                generation: job.generation,
                result,
            });
        }
        queue.drainers.fetch_sub(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if queue.jobs.is_empty() {
            return;
        }
        // A job arrived as we were leaving, and its submitter may have
        // counted us: take it.
        queue.drainers.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs a start function and its output function.
fn run_start(
    name: &Arc<str>,
    manifold: &Manifold,
    inputs: Vec<(Arc<str>, InputState)>,
    abort: Receiver<Infallible>,
) -> Result<Live, Error> {
    let ctx = Context::new(name.clone(), inputs, abort);
    let started = catch_panic(
        || format!("start function of manifold {name:?}"),
        || (manifold.start)(&ctx),
    );
    ctx.expire();
    let worker = started?;
    let mut outputs = Outputs::new();
    if let Some(output) = &manifold.output {
        let offered = catch_panic(
            || format!("output function of manifold {name:?}"),
            || output(&worker, &mut outputs),
        );
        if let Err(e) = offered {
            // The worker was never offered: stop it here, off the loop.
            worker.kill();
            let _ = worker.wait();
            return Err(e);
        }
    }
    let reports = catch_panic(
        || format!("reporter of manifold {name:?}"),
        || Ok(worker.reporter().is_some()),
    )
    .unwrap_or(false);
    Ok(Live {
        worker,
        outputs: Arc::new(outputs),
        reports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use worker_core::Passive;

    fn job(node: NodeId, manifold: Manifold) -> StartJob {
        StartJob {
            node,
            generation: 1,
            name: Arc::from(format!("m{node}")),
            manifold,
            inputs: Vec::new(),
            abort: never(),
        }
    }

    #[test]
    fn a_burst_of_quick_starts_uses_few_threads() {
        let (tx, rx) = unbounded();
        let mut starter = Starter::new("starter-test-burst", tx);
        for i in 0..2000 {
            starter.submit(job(i, Manifold::new(|_| Ok(Passive::new()))));
        }
        for _ in 0..2000 {
            assert!(matches!(
                rx.recv_timeout(Duration::from_secs(10)).unwrap(),
                Msg::Started { result: Ok(_), .. }
            ));
        }
        assert!(
            starter.threads() <= starter.max_drainers,
            "{}",
            starter.threads()
        );
        starter.join();
    }

    #[test]
    fn no_job_is_stranded_when_drainers_leave_as_jobs_arrive() {
        // Without ever calling `watch`/`stalled`: the hand-off between a
        // leaving drainer and a new job must not lose the job.
        let (tx, rx) = unbounded();
        let mut starter = Starter::new("starter-test-handoff", tx);
        for round in 0..300 {
            for i in 0..(round % 5 + 1) {
                starter.submit(job(i, Manifold::new(|_| Ok(Passive::new()))));
            }
            for _ in 0..(round % 5 + 1) {
                assert!(
                    rx.recv_timeout(Duration::from_secs(10)).is_ok(),
                    "a job was stranded in round {round}"
                );
            }
        }
        starter.join();
    }

    #[test]
    fn blocked_starts_do_not_hold_up_the_queue() {
        let (tx, rx) = unbounded();
        let mut starter = Starter::new("starter-test-blocked", tx);
        let (release_tx, release) = crossbeam_channel::bounded::<()>(0);
        // More blocking starts than drainers, then a quick one.
        let blocked = starter.max_drainers + 2;
        for i in 0..blocked {
            let release = release.clone();
            let m = Manifold::new(move |_| {
                let _ = release.recv();
                Ok(Passive::new())
            });
            starter.submit(job(i, m));
        }
        starter.submit(job(99, Manifold::new(|_| Ok(Passive::new()))));
        // Only the stall timer can get the quick one going.
        let quick = loop {
            starter.watch();
            crossbeam_channel::select! {
                recv(rx) -> msg => break msg.unwrap(),
                recv(starter.stall) -> _ => starter.stalled(),
                default(Duration::from_secs(10)) => panic!("the quick start never ran"),
            }
        };
        assert!(matches!(quick, Msg::Started { node: 99, .. }));
        drop(release_tx);
        for _ in 0..blocked {
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        starter.join();
    }
}

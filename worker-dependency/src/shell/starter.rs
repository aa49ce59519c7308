//! The engine's start jobs, run off the loop by the core's [`StartQueue`].
//!
//! A burst of starts (a fan of 10,000 manifolds bouncing at once) is taken
//! by a few threads one job after another, at most twice the number of
//! CPUs while starts make progress, instead of a thread per start. A start
//! function that blocks (on the network, say) holds up the ones queued
//! behind it for about [`STALL`] at most: when no start has finished for
//! that long while starts wait, one more thread joins. The stall watch is
//! armed only while starts wait, so an idle engine has no timer, and its
//! start threads leave once they have had nothing to do for [`LINGER`].
//! (The queue's docs have the rules and the measurements behind them.)
//!
//! The same threads wait for workers that have ended, in batches, so that
//! the loop never blocks joining a worker's thread.

use std::convert::Infallible;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use worker_core::{Error, SharedWorker, StartQueue, catch_panic};

use super::{Msg, reap};
use crate::context::{Context, InputState};
use crate::graph::NodeId;
use crate::machine::Live;
use crate::{Manifold, Outputs};

/// How long the queue may sit still before another thread starts. Real
/// time, not the engine's clock: it is about thread scheduling, not about
/// the engine's delays.
pub(crate) const STALL: Duration = Duration::from_millis(2);

/// How long a start thread waits for more work before it ends: starts
/// that come in a trickle (a chain bouncing, one link per bounce delay)
/// then find a thread ready instead of starting one each.
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

/// What the engine's threads do for the loop.
pub(crate) enum Job {
    /// Run a start function; the loop hears `Started`.
    Start(StartJob),
    /// Wait for workers that have ended; the loop hears `Reaped`.
    Reap(Vec<SharedWorker>),
}

/// The loop's side: the engine's [`StartQueue`].
pub(crate) struct Starter(StartQueue<Job>);

impl Starter {
    /// A queue whose threads are named `<name>-start-<n>`, reporting to
    /// the loop through `results`.
    pub(crate) fn new(name: &str, results: Sender<Msg>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let refused = results.clone();
        let queue = StartQueue::new(
            format!("{name}-start"),
            move |job| {
                let _ = results.send(run(job));
            },
            move |job, error: Error| {
                // No thread can be had: a start fails (the machine retries
                // it after the error delay); ended workers are waited for
                // here, which is quick as they have ended.
                let msg = match job {
                    Job::Start(job) => Msg::Started {
                        node: job.node,
                        generation: job.generation,
                        result: Err(error.context("cannot run the start function")),
                    },
                    reap => run(reap),
                };
                let _ = refused.send(msg);
            },
        )
        .limit((2 * cpus).max(2))
        .stall(STALL)
        .linger(LINGER);
        Starter(queue)
    }

    /// Queues a start job and hands it over.
    pub(crate) fn submit(&mut self, job: StartJob) {
        self.0.push(Job::Start(job));
        self.0.flush();
    }

    /// Waits for `workers` on a start thread (they have ended, so this is
    /// quick, but may join their threads).
    pub(crate) fn reap(&mut self, workers: Vec<SharedWorker>) {
        self.0.push(Job::Reap(workers));
        self.0.flush();
    }
}

impl Deref for Starter {
    type Target = StartQueue<Job>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Starter {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Runs `job` on a start thread; returns what to tell the loop.
fn run(job: Job) -> Msg {
    match job {
        Job::Start(job) => Msg::Started {
            node: job.node,
            generation: job.generation,
            result: run_start(&job.name, &job.manifold, job.inputs, job.abort),
        },
        Job::Reap(workers) => {
            reap(workers);
            Msg::Reaped
        }
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

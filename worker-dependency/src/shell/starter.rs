//! The engine's start jobs, run off the loop on the driver's executor
//! threads: a start function and its output function, then the questions
//! whose answers are user code (is the worker a reporter? what do the
//! filter and `is_fatal` say about a failure? a jitter sample), then the
//! completion callback that reports the worker's end with the policies'
//! verdict on it.
//!
//! A burst of starts (a fan of 10,000 manifolds bouncing at once) is taken
//! by a few threads one job after another, at most twice the number of
//! CPUs while starts make progress, instead of a thread per start. A start
//! function that blocks (on the network, say) holds up the ones queued
//! behind it for about [`STALL`] at most: when no start has finished for
//! that long while starts wait, one more thread joins. An idle engine's
//! start threads leave once they have had nothing to do for [`LINGER`].
//! (The core's `StartQueue` docs have the rules and the measurements
//! behind them.)

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use worker_core::supervisor::Events;
use worker_core::supervisor::offloop;
use worker_core::supervisor::offloop::OffLoop;
use worker_core::{Error, Outcome, catch_panic};

use super::Event;
use crate::context::{Context, InputState};
use crate::graph::NodeId;
use crate::machine::{Live, Policies, Verdict};
use crate::manifold::FilterFn;
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
    pub(crate) manifold: OffLoop<Manifold>,
    pub(crate) inputs: OffLoop<Vec<(Arc<str>, InputState)>>,
    pub(crate) abort: worker_core::AbortSignal,
}

thread_local! {
    /// The engine and manifold whose start function this thread runs.
    static STARTING: RefCell<Option<(u64, Arc<str>)>> = const { RefCell::new(None) };
}

/// Whether this thread is running the start (or output) function of
/// manifold `name` of engine `engine`, which must not wait for that
/// manifold to stop.
pub(crate) fn starting(engine: u64, name: &str) -> bool {
    STARTING.with(|s| {
        s.borrow()
            .as_ref()
            .is_some_and(|(e, n)| *e == engine && &**n == name)
    })
}

/// The manifold whose start (or output) function this thread runs for
/// engine `engine`, if any (a readiness wait there must not include it).
pub(crate) fn starting_in(engine: u64) -> Option<Arc<str>> {
    STARTING.with(|s| {
        s.borrow()
            .as_ref()
            .filter(|(e, _)| *e == engine)
            .map(|(_, name)| name.clone())
    })
}

/// Runs one start job on an executor thread and tells the loop; never
/// panics (every call of user code is contained), so the loop always hears
/// of the start.
pub(crate) fn run_job(
    engine: u64,
    engine_name: &Arc<str>,
    policies: &Arc<Policies>,
    job: StartJob,
    events: &Events<Event>,
) {
    let StartJob {
        node,
        generation,
        name,
        manifold,
        inputs,
        abort,
    } = job;
    let manifold = manifold.into_inner();
    STARTING.with(|s| *s.borrow_mut() = Some((engine, name.clone())));
    // The incarnation's span: the start and output functions run in it,
    // and so do the bodies of the workers they spawn.
    let span = worker_core::events::worker_span(engine_name, Some(&name), generation);
    let result = span.in_scope(|| start(&name, &manifold, inputs.into_inner(), abort));
    STARTING.with(|s| *s.borrow_mut() = None);
    let verdict = match &result {
        Ok(_) => Verdict::started(policies.sample()),
        Err(e) => policies.verdict(&name, manifold.filter.as_ref(), Some(e.clone())),
    };
    let worker = result.as_ref().ok().map(|live| live.worker.clone());
    let filter = manifold.filter.clone();
    // The manifold may be the last holder of the user's closures.
    discard(&name, manifold);
    // `Started` goes first, so the loop always learns of a worker before
    // its end: the completion callback is registered only afterwards.
    let sent = events.send(Event::Started {
        node,
        generation,
        result: result.map(OffLoop::new),
        verdict,
    });
    let Some(worker) = worker else { return };
    if sent.is_err() {
        // Cannot happen (the loop waits for every start); do not leave a
        // worker running unseen.
        let _ = catch_panic(
            || format!("kill of manifold {name:?}"),
            || {
                worker.kill();
                Ok(())
            },
        );
        return;
    }
    let thread = worker_core::supervisor::watch(
        &worker,
        format_args!("{engine_name}-watch"),
        Ended {
            node,
            generation,
            name,
            filter,
            policies: policies.clone(),
            events: events.clone(),
        }
        .callback(),
    );
    if let Some(handle) = thread {
        events.watcher(handle);
    }
}

/// What a start job that no thread can be had for reports: a failed start,
/// retried after the error delay. No policy is asked (this runs on the
/// loop), and the job's values are dropped off the loop.
pub(crate) fn refused(job: StartJob, error: Error, events: &Events<Event>) {
    let error = error.context("cannot run the start function");
    let _ = events.send(Event::Started {
        node: job.node,
        generation: job.generation,
        result: Err(error.clone()),
        verdict: Verdict::unasked(error),
    });
}

/// Runs a start function and its output function, each under panic
/// containment, with a context that expires when the start function
/// returns.
fn start(
    name: &Arc<str>,
    manifold: &Manifold,
    inputs: Vec<(Arc<str>, InputState)>,
    abort: worker_core::AbortSignal,
) -> Result<Live, Error> {
    let ctx = Context::new(name.clone(), inputs, abort);
    let started = catch_panic(
        || format!("start function of manifold {name:?}"),
        || (manifold.start)(&ctx),
    );
    ctx.expire();
    // The context may hold the last reference to an input's outputs.
    discard(name, ctx);
    let worker = started?;
    let mut outputs = Outputs::new();
    if let Some(output) = &manifold.output {
        let offered = catch_panic(
            || format!("output function of manifold {name:?}"),
            || output(&worker, &mut outputs),
        );
        if let Err(e) = offered {
            // The worker was never offered: stop it here, off the loop.
            let _ = catch_panic(
                || format!("stopping the worker of manifold {name:?}"),
                || {
                    worker.kill();
                    let _ = worker.wait();
                    Ok(())
                },
            );
            discard(name, (worker, outputs));
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

/// Drops `value`, whose `Drop` may be user code, containing a panic.
fn discard<T>(name: &str, value: T) {
    if catch_unwind(AssertUnwindSafe(move || drop(value))).is_err() {
        tracing::error!(manifold = %name, "a value of the manifold panicked when dropped");
    }
}

/// What a worker's completion callback needs to tell the loop.
#[derive(Clone)]
struct Ended {
    node: NodeId,
    generation: u64,
    name: Arc<str>,
    filter: Option<FilterFn>,
    policies: Arc<Policies>,
    events: Events<Event>,
}

impl Ended {
    /// The callback: asks the policies about the outcome, on the thread
    /// that finished the worker, and sends the verdict with it. On the
    /// engine's loop (which kills the library's thread-free workers
    /// itself), it asks nothing there: a clean end with no filter and the
    /// library's own jitter source needs no user code; anything else is
    /// deferred off the loop.
    fn callback(self) -> impl FnOnce(&Outcome) + Clone + Send + 'static {
        move |outcome: &Outcome| {
            let outcome = outcome.clone();
            let no_user_code = outcome.is_ok()
                && self.filter.is_none()
                && worker_core::jitter::is_library_source(&*self.policies.jitter);
            if offloop::on_loop() && !no_user_code {
                offloop::defer(move || self.report(outcome));
            } else {
                self.report(outcome);
            }
        }
    }

    /// Sends the loop the end and the policies' verdict on it.
    fn report(self, outcome: Outcome) {
        let verdict =
            self.policies
                .verdict(&self.name, self.filter.as_ref(), outcome.clone().err());
        let _ = self.events.send(Event::Ended {
            node: self.node,
            generation: self.generation,
            outcome,
            verdict,
        });
        // The filter may be the last holder of the user's closure.
        let name = self.name.clone();
        discard(&name, self);
    }
}

//! Ready-made workers on top of [`Tomb`]: one backed by a thread, one with
//! no thread at all.

use crate::threads::JoinSlot;

use crate::worker::{DoneCallback, Signal, Worker};
use crate::{Error, Panicked, Tomb};

/// A worker whose body runs on a thread of its own; made by [`spawn`].
///
/// `kill` kills the tomb the body was given; the body is expected to watch
/// [`Tomb::dying`] and return. `wait` returns the body's result, and also
/// joins the thread, so after `wait` returns the thread is gone.
#[must_use = "a dropped ThreadWorker leaves its thread running and never joined; keep it, or stop it"]
pub struct ThreadWorker {
    tomb: Tomb,
    thread: JoinSlot,
}

/// Runs `body` on a new thread as a worker.
///
/// The body gets the worker's [`Tomb`]: it should return when
/// [`Tomb::dying`] fires, usually with `Ok(())`, which keeps the kill's
/// reason. Its result becomes the worker's result, subject to the tomb's
/// "first real error wins" rule. A panic in the body becomes the worker's
/// error ([`Panicked`], with the panic message); it never escapes.
///
/// A body that blocks where it cannot watch [`Tomb::dying`] (in `read`,
/// `accept`, a foreign library's call) registers a hook with
/// [`Tomb::on_dying`] that wakes it, for instance by shutting its socket
/// down; the killing thread runs it.
///
/// The body runs in the `tracing` span that is current when `spawn` is
/// called: called from a supervisor's start function, that is the
/// incarnation's span ([`events::worker_span`](crate::events::worker_span)),
/// so what the body logs names its worker.
///
/// If the system refuses a new thread, the worker is returned already dead,
/// with that refusal as its error, so no error is lost and callers need no
/// second error path.
///
/// ```
/// use crossbeam_channel::{select, tick};
/// use std::time::Duration;
/// use worker_core::{spawn, stop};
///
/// let w = spawn("ticker", |tomb| {
///     let ticks = tick(Duration::from_millis(1));
///     loop {
///         select! {
///             recv(tomb.dying()) -> _ => return Ok(()),
///             recv(ticks) -> _ => { /* do a bit of work */ }
///         }
///     }
/// });
/// assert!(stop(&w).is_ok());
/// ```
pub fn spawn<F>(name: impl Into<String>, body: F) -> ThreadWorker
where
    F: FnOnce(&Tomb) -> Result<(), Error> + Send + 'static,
{
    let tomb = Tomb::new();
    let name = name.into();
    let body_tomb = tomb.clone();
    let thread = JoinSlot::default();
    // The body runs in the span current here: inside a supervisor's start
    // function, the incarnation's (see `events::worker_span`).
    let span = tracing::Span::current();
    let spawned = thread.spawn(name.clone(), move || {
        let _span = span.enter();
        let what = || format!("body of worker {name:?}");
        let result =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&body_tomb))) {
                Ok(result) => result,
                Err(payload) => Err(Error::new(Panicked::from_payload(what(), &*payload))),
            };
        body_tomb.done(result);
    });
    if let Err(e) = spawned {
        tomb.done(Err(Error::new(e).context("cannot start worker thread")));
    }
    ThreadWorker { tomb, thread }
}

impl ThreadWorker {
    /// The worker's tomb, e.g. to kill it with a reason.
    pub fn tomb(&self) -> &Tomb {
        &self.tomb
    }
}

impl Worker for ThreadWorker {
    fn kill(&self) {
        self.tomb.kill(None);
    }

    fn wait(&self) -> Result<(), Error> {
        let result = self.tomb.wait();
        // Reap the thread: it has nothing left to do but return, so this is
        // quick, and every concurrent waiter returns only after it is gone.
        // (The body waiting on its own worker does not join itself.)
        self.thread.join();
        result
    }

    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Worker::on_done(&self.tomb, callback)
    }

    fn dead_signal(&self) -> Option<Signal> {
        Some(self.tomb.dead())
    }
}

impl std::fmt::Debug for ThreadWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadWorker")
            .field("tomb", &self.tomb)
            .finish_non_exhaustive()
    }
}

/// A worker with no thread: it is alive until killed or finished, and
/// killing it finishes it at once.
///
/// Use it for a resource that stays valid until someone stops it (a handle,
/// a registration, a lease), or as the cheapest possible worker in tests and
/// benchmarks: a `Passive` costs one small allocation and no thread, so a
/// supervisor can hold 100,000 of them.
///
/// ```
/// use worker_core::{Error, Passive, Worker};
///
/// let w = Passive::new();
/// w.kill();
/// assert!(w.wait().is_ok());
///
/// let failed = Passive::new();
/// failed.finish(Err(Error::msg("lease lost")));
/// assert_eq!(failed.wait().unwrap_err().to_string(), "lease lost");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Passive {
    tomb: Tomb,
}

impl Passive {
    /// A new, alive passive worker.
    #[must_use]
    pub fn new() -> Self {
        Passive { tomb: Tomb::new() }
    }

    /// Finishes the worker with `result` (as [`Tomb::done`]).
    pub fn finish(&self, result: Result<(), Error>) {
        self.tomb.done(result);
    }

    /// The worker's tomb, e.g. for [`Tomb::dying`] or [`Tomb::state`].
    pub fn tomb(&self) -> &Tomb {
        &self.tomb
    }
}

impl Worker for Passive {
    fn kill(&self) {
        self.tomb.kill(None);
        self.tomb.done(Ok(()));
    }

    crate::delegate_worker!(tomb, except kill);
}

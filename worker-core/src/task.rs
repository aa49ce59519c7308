//! Tokio tasks as workers (feature `tokio`).
//!
//! A thread worker costs an OS thread, which caps a process at some
//! thousands of them; a [`Passive`](crate::Passive) worker costs nothing
//! but does nothing. A task worker is the active worker that costs what a
//! task costs (a few hundred bytes): [`spawn`] runs a future on a tokio
//! runtime as a [`Worker`], so supervisors start, kill, restart and wait
//! for it like any other, and watch it without a thread (it is built on a
//! [`Tomb`]).
//!
//! The body is a closure that gets the worker's [`Tomb`] and returns the
//! future. The body watches [`Tomb::until_dying`] the way a thread body
//! watches [`Tomb::dying`]: awaited, or as one branch of a `select!`, so
//! that a kill is seen at the body's next await.
//!
//! ```
//! use std::time::Duration;
//! use worker_core::{task, Error, Worker};
//!
//! let runtime = tokio::runtime::Runtime::new()?;
//! let (jobs_tx, mut jobs) = tokio::sync::mpsc::unbounded_channel::<u32>();
//! // From any thread: a supervisor's start thread is not a runtime thread,
//! // so the runtime is named by its handle.
//! let worker = task::spawn_on(runtime.handle(), move |tomb| async move {
//!     let mut sum = 0;
//!     loop {
//!         tokio::select! {
//!             _ = tomb.until_dying() => return Ok(()),
//!             job = jobs.recv() => match job {
//!                 Some(n) => sum += n,
//!                 None => return Err(Error::msg(format!("job source closed at sum {sum}"))),
//!             },
//!         }
//!     }
//! });
//! jobs_tx.send(2)?;
//! drop(jobs_tx);
//! assert_eq!(worker.wait().unwrap_err().to_string(), "job source closed at sum 2");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How a task worker ends
//!
//! - The body returns: its result is the worker's (subject to the tomb's
//!   "first real error wins", as for every worker).
//! - The body panics (or its closure does): the worker's error is
//!   [`Panicked`]; the runtime and the supervisor go on.
//! - The runtime shuts down under it: the worker ends with
//!   [`RuntimeShutDown`], never a hang; so does a worker spawned on a
//!   runtime that has already shut down.
//! - [`spawn`] is called outside any runtime: the worker is returned
//!   already dead with [`NoRuntime`] (as a thread worker is when the
//!   system refuses a thread), so callers need no second error path.
//! - [`TaskWorker::abort_task`] forces it: see there for what that can and
//!   cannot do.
//!
//! The body's future is dropped before the worker is seen dead, so what
//! it held (a socket, a connection) is released by the time `wait`
//! returns.
//!
//! # Waiting in async code
//!
//! [`Worker::wait`] blocks its thread: in async code, await
//! [`finished`](crate::finished()) or [`Tomb::until_dead`] instead. The same
//! holds for every blocking check of `worker-testing`: call them from a
//! plain thread (a `#[test]` that builds its runtime), or from a
//! multi-threaded runtime with a thread to spare.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::Poll;

use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::worker::{Outcome, Worker};
use crate::{Error, Panicked, Tomb};

/// A worker whose body is a task on a tokio runtime; made by [`spawn`] or
/// [`spawn_on`].
///
/// `kill` kills the tomb the body was given, `wait` and the completion
/// callbacks give the body's result. It is 16 bytes: the tomb and the
/// task's abort handle.
#[derive(Debug)]
pub struct TaskWorker {
    tomb: Tomb,
    /// `None` when there was no runtime to spawn on.
    task: Option<AbortHandle>,
}

/// [`spawn`] was called on a thread with no tokio runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no tokio runtime to run the task worker on: call task::spawn inside a runtime, \
     or give the runtime's Handle to task::spawn_on"
)]
pub struct NoRuntime;

/// The runtime of a task worker shut down before the task finished (or
/// had already shut down when it was spawned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the tokio runtime of the task worker shut down before the task finished")]
pub struct RuntimeShutDown;

/// The task worker was forced to stop by [`TaskWorker::abort_task`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the task worker was aborted: its future was dropped at an await")]
pub struct TaskAborted;

/// Runs the future `body` returns as a worker, on the runtime this is
/// called from ([`Handle::current`]).
///
/// Outside a runtime (on a supervisor's start thread, say) there is no
/// current runtime: the worker is then returned already dead with
/// [`NoRuntime`]. Give a [`Handle`] to [`spawn_on`] there.
pub fn spawn<F, Fut>(body: F) -> TaskWorker
where
    F: FnOnce(Tomb) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    match Handle::try_current() {
        Ok(handle) => spawn_on(&handle, body),
        Err(_) => {
            let tomb = Tomb::new();
            tomb.done(Err(Error::new(NoRuntime)));
            TaskWorker { tomb, task: None }
        }
    }
}

/// Runs the future `body` returns as a worker, on the runtime of `handle`.
/// Works from any thread, inside a runtime or not.
///
/// `body` is called on the runtime when the task first runs, with the
/// worker's [`Tomb`]; its future should return when
/// [`Tomb::until_dying`] completes. The body and every poll of its future
/// run in the `tracing` span current when `spawn_on` is called (inside a
/// supervisor's start function, the incarnation's:
/// [`events::worker_span`](crate::events::worker_span)).
pub fn spawn_on<F, Fut>(handle: &Handle, body: F) -> TaskWorker
where
    F: FnOnce(Tomb) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let tomb = Tomb::new();
    let task = handle.spawn(supervised(Finish(Some(tomb.clone())), body, current_span()));
    TaskWorker {
        tomb,
        task: Some(task.abort_handle()),
    }
}

impl TaskWorker {
    /// The worker's tomb, e.g. to kill it with a reason, or to await its
    /// end with [`Tomb::until_dead`].
    pub fn tomb(&self) -> &Tomb {
        &self.tomb
    }

    /// Forces the task to stop, for when asking ([`kill`](Worker::kill))
    /// was not enough: the runtime drops the body's future the next time
    /// it would run it, so the body runs no further code (only the drops
    /// of what it holds). The worker then ends with [`TaskAborted`], unless
    /// it had already ended.
    ///
    /// What it cannot do, and nothing can: stop a body that never reaches
    /// an await (busy in a loop, or blocked in a call). Such a task goes on
    /// until it awaits, and a supervisor reports it stuck meanwhile. This
    /// is the brutal kill of OTP's supervisors, as far as tasks allow one.
    pub fn abort_task(&self) {
        self.tomb.kill(Some(Error::new(TaskAborted)));
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Worker for TaskWorker {
    fn kill(&self) {
        self.tomb.kill(None);
    }

    crate::delegate_worker!(tomb, except kill);

    /// A task can be forced: [`abort_task`](TaskWorker::abort_task). A
    /// supervisor's `Shutdown::Abort` (OTP's `brutal_kill`) uses it.
    fn abortable(&self) -> Option<&dyn crate::Abort> {
        Some(self)
    }
}

impl crate::Abort for TaskWorker {
    fn abort(&self) {
        self.abort_task();
    }
}

/// The span current where the task is spawned (inside a supervisor's
/// start function, the incarnation's), boxed so that a task spawned with
/// no span (no subscriber, or none entered) costs one pointer, not a span.
fn current_span() -> Option<Box<tracing::Span>> {
    let span = tracing::Span::current();
    (!span.is_none()).then(|| Box::new(span))
}

/// Marks the tomb dead when the task's future goes: with the body's result
/// through [`Finish::done`], or with [`RuntimeShutDown`] when the runtime
/// drops the future before that (it shut down, or the task was aborted, in
/// which case the abort's reason was recorded first and wins).
struct Finish(Option<Tomb>);

impl Finish {
    fn done(mut self, result: Outcome) {
        if let Some(tomb) = self.0.take() {
            tomb.done(result);
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        if let Some(tomb) = self.0.take() {
            tomb.done(Err(Error::new(RuntimeShutDown)));
        }
    }
}

/// The task: runs the body under panic containment, drops its future,
/// then marks the worker dead. The body, each poll of its future and its
/// drop run in `span`, if there is one.
async fn supervised<F, Fut>(finish: Finish, body: F, span: Option<Box<tracing::Span>>)
where
    F: FnOnce(Tomb) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    // (Entered only around synchronous code: a guard cannot be held
    // across an await, and a task moves between threads.)
    let enter = || span.as_deref().map(tracing::Span::enter);
    let panicked = |payload: &(dyn std::any::Any + Send)| {
        Err(Error::new(Panicked::from_payload(
            "body of a task worker",
            payload,
        )))
    };
    let tomb = finish.0.clone().expect("the tomb is there until finished");
    let result = match catch_unwind(AssertUnwindSafe(|| {
        let _span = enter();
        body(tomb)
    })) {
        Err(payload) => panicked(&*payload),
        Ok(future) => {
            let mut future = pin!(Some(future));
            let result = poll_fn(|cx| {
                let Some(running) = future.as_mut().as_pin_mut() else {
                    return Poll::Ready(Ok(()));
                };
                let _span = enter();
                match catch_unwind(AssertUnwindSafe(|| running.poll(cx))) {
                    Ok(poll) => poll,
                    Err(payload) => Poll::Ready(panicked(&*payload)),
                }
            })
            .await;
            // Drop the body's future (a panicked one included) before the
            // worker is seen dead; a panic while dropping is its error too.
            let _span = enter();
            match catch_unwind(AssertUnwindSafe(|| future.set(None))) {
                Err(payload) if result.is_ok() => panicked(&*payload),
                _ => result,
            }
        }
    };
    finish.done(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The task a benchmark-style worker makes: blocked on its dying
    /// moment. What the runtime allocates for it is this future plus
    /// tokio's task header.
    #[test]
    fn the_task_future_of_an_idle_worker_is_small() {
        let body = |tomb: Tomb| async move {
            tomb.until_dying().await;
            Ok(())
        };
        let future = supervised(Finish(None), body, None);
        let size = std::mem::size_of_val(&future);
        eprintln!("task future of an idle worker: {size} bytes");
        assert!(size <= 160, "the task future grew to {size} bytes");
        assert_eq!(std::mem::size_of::<TaskWorker>(), 16);
    }
}

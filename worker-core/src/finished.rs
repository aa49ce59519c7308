//! Awaiting any worker's end: the async counterpart of [`Worker::wait`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::worker::{Outcome, Worker, watch};

/// A future that completes when `worker` has finished, with the result
/// [`Worker::wait`] returns: `wait` for async code, on any executor.
///
/// It is built on the worker's completion callback ([`Worker::on_done`]),
/// registered when this is called: no thread, no `spawn_blocking`, and
/// polling never blocks. Every worker of this library supports it (the
/// supervisors too: `finished(&runner).await` waits for a runner's end).
/// The one exception is a foreign worker that does not: in an `Arc`, it
/// is watched by one thread blocked in its `wait` (as [`watch`] does),
/// which ends when the worker does; held any other way it cannot be
/// watched, and the future completes at once with
/// [`Unwatchable`](crate::Unwatchable) (see [`watch`]).
///
/// Cancel-safe: dropping the future before the worker ends leaves only
/// the registered callback, which runs (and finds nobody) when the worker
/// ends. So make it once, outside a loop, rather than in every round of a
/// `select!`; for a [`Tomb`](crate::Tomb)-based worker in a loop,
/// [`Tomb::until_dead`](crate::Tomb::until_dead) leaves nothing behind at
/// all. Any number of tasks may each await their own `finished` of the
/// same worker, and a future may move between tasks while it waits.
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     struct Unpark(std::thread::Thread);
/// #     impl std::task::Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } std::thread::park() }
/// # }
/// use worker_core::{finished, spawn, Error, Worker};
///
/// let worker = spawn("failing", |_tomb| Err(Error::msg("no disk")));
/// let result = block_on(finished(&worker)); // any executor
/// assert_eq!(result.unwrap_err().to_string(), "no disk");
/// ```
pub fn finished<W>(worker: &W) -> Finished
where
    W: Worker + ?Sized,
{
    let shared = Arc::new(Mutex::new(Slot::default()));
    let callback_slot = Arc::clone(&shared);
    watch(worker, move |outcome| {
        let waker = {
            let mut slot = callback_slot.lock().unwrap_or_else(PoisonError::into_inner);
            slot.outcome = Some(outcome.clone());
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    });
    Finished { shared }
}

/// The future returned by [`finished`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Finished {
    shared: Arc<Mutex<Slot>>,
}

/// Where the completion callback leaves the outcome, and finds the waker
/// of the task that waits for it.
#[derive(Debug, Default)]
struct Slot {
    outcome: Option<Outcome>,
    waker: Option<Waker>,
}

impl Future for Finished {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut slot = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(outcome) = &slot.outcome {
            return Poll::Ready(outcome.clone());
        }
        match &mut slot.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Finished {
    /// Lets go of the waiting task's waker at once: the callback holds the
    /// slot until the worker ends, and a waker may keep a whole task alive.
    fn drop(&mut self) {
        let waker = self
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waker
            .take();
        drop(waker);
    }
}

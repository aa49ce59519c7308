//! The `Worker` contract and the helpers every user of it needs.

use std::any::Any;
use std::convert::Infallible;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;

use crate::Error;
use crate::report::Reporter;

/// A receiver that never yields a value and *disconnects* when the event it
/// stands for has happened (a worker started dying, or finished).
///
/// Use it in `crossbeam_channel::select!` with `recv(signal) -> _ => ...`:
/// the arm fires once the signal has disconnected. `signal.recv()` blocks
/// until then.
pub type Signal = Receiver<Infallible>;

/// The result a finished worker hands to the callbacks registered with
/// [`Worker::on_done`] or [`watch`].
pub type Outcome = Result<(), Error>;

/// A completion callback: called exactly once, with how the worker ended.
///
/// It runs on whichever thread finished the worker (or on the registering
/// thread when the worker had already finished), so it must be quick and
/// must not block: send a message, bump a counter, drop a sender.
pub type DoneCallback = Box<dyn FnOnce(&Outcome) + Send + 'static>;

/// Anything with a bounded lifetime: it can be asked to stop, and waited for.
///
/// Most often a worker is a task running on threads of its own, but it can
/// as well be a resource that stays valid until killed (see
/// [`Passive`](crate::Passive)). Every method may be called from any thread,
/// any number of times.
///
/// The two required methods are the whole contract:
/// - [`kill`](Worker::kill) asks the worker to stop and returns at once; it
///   is idempotent.
/// - [`wait`](Worker::wait) blocks until the worker has stopped and returns
///   how it ended; every call, from every thread, returns the same result.
///
/// The provided methods are optional capabilities. A worker built on
/// [`Tomb`](crate::Tomb) can report its own end ([`on_done`](Worker::on_done),
/// [`dead_signal`](Worker::dead_signal)), which is what lets supervisors
/// manage 100,000 such workers without parking a thread for each one. A
/// worker that can be stopped without its cooperation (an async task, not
/// a thread) says so with [`abortable`](Worker::abortable).
///
/// `Worker` has `Any` as a supertrait, so an `Arc<dyn Worker>` can be turned
/// back into its concrete type with [`downcast_worker`].
pub trait Worker: Any + Send + Sync {
    /// Asks the worker to stop. Returns at once; idempotent.
    fn kill(&self);

    /// Blocks until the worker has stopped and returns how it ended. Every
    /// call returns the same result.
    fn wait(&self) -> Result<(), Error>;

    /// Registers `callback` to be called once when the worker has finished,
    /// with the same result [`wait`](Worker::wait) returns. If the worker has
    /// already finished, the callback runs before this returns.
    ///
    /// Workers that cannot notify return the callback back in `Err`; the
    /// [`watch`] helper then falls back to one thread that calls `wait`.
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Err(callback)
    }

    /// A [`Signal`] that disconnects when the worker has finished, if the
    /// worker keeps one (Go's optional `Dead()` method). [`dead`] uses it in
    /// preference to anything else.
    #[must_use = "the signal is the only way to see the end; dropping it asks for nothing"]
    fn dead_signal(&self) -> Option<Signal> {
        None
    }

    /// This very worker as a [`SharedWorker`], if the value is a handle
    /// that can be kept beyond a borrow: an `Arc` answers with a clone of
    /// itself (`Arc<dyn Worker>` is not wrapped again).
    ///
    /// [`watch`] and [`dead`] need it only for a worker that offers neither
    /// [`on_done`](Worker::on_done) nor [`dead_signal`](Worker::dead_signal):
    /// the thread that waits for such a worker must own it. A clonable
    /// handle type whose clones are the same worker may answer
    /// `Some(into_shared(self.clone()))`; anything else keeps the default.
    #[must_use]
    fn to_shared(&self) -> Option<SharedWorker> {
        None
    }

    /// This worker, given away, as a [`SharedWorker`]: what
    /// [`into_shared`] does. A new `Arc` for a plain worker; an `Arc` of a
    /// worker is shared as it is, never wrapped again, so that a
    /// supervisor hands back the very `Arc` a start function gave it. You
    /// never need to write it.
    fn into_shared_worker(self) -> SharedWorker
    where
        Self: Sized,
    {
        Arc::new(self)
    }

    /// This worker, killed when the returned guard is dropped: to tie a
    /// supervisor (which runs until it is killed, whatever happens to its
    /// handles) to a scope. The guard dereferences to the worker; it does
    /// not wait (call [`wait`](Worker::wait) for that).
    ///
    /// ```
    /// use worker_core::{Passive, Worker};
    ///
    /// let lease = Passive::new();
    /// let tomb = lease.tomb().clone();
    /// {
    ///     let _scoped = lease.kill_on_drop();
    /// }
    /// assert!(tomb.try_result().is_some(), "killed with the scope");
    /// ```
    #[must_use = "the guard kills the worker when dropped: dropped at once, it kills it at once"]
    fn kill_on_drop(self) -> KillOnDrop<Self>
    where
        Self: Sized,
    {
        KillOnDrop(Some(self))
    }

    /// The converse of [`into_shared_worker`](Worker::into_shared_worker)
    /// for handle types: an `Arc<T>` of the worker `shared` holds, sharing
    /// its allocation (`None` for other types, or a worker of another
    /// type). For code that was given a [`SharedWorker`] and expects the
    /// `Arc<T>` it started from. You never need to write it.
    fn from_shared(shared: &SharedWorker) -> Option<Self>
    where
        Self: Sized,
    {
        let _ = shared;
        None
    }

    /// This worker as a [`Reporter`], if it is one. Supervisors include the
    /// reports of the workers that are in their own reports.
    fn reporter(&self) -> Option<&dyn Reporter> {
        None
    }

    /// This worker as something that can be stopped without its
    /// cooperation ([`Abort`]), if it can be. Must give the same answer for
    /// the worker's whole life.
    ///
    /// `kill` asks; `abort` forces. A supervisor uses it on a worker that
    /// has outlived its shutdown timeout, or at once when told to stop it
    /// brutally (OTP's `brutal_kill`). The default, `None`, is the truth
    /// for a worker that runs on a thread: Rust cannot stop a thread from
    /// outside, so such a worker can only be asked.
    fn abortable(&self) -> Option<&dyn Abort> {
        None
    }
}

/// A worker that can be stopped without its cooperation; see
/// [`Worker::abortable`].
///
/// A task on an async runtime can be aborted (it is dropped at its next
/// `.await`); a thread cannot. After `abort`, the worker finishes soon
/// without running any more of its own code, and its
/// [`wait`](Worker::wait) returns whatever the worker says an aborted run
/// ends with (typically an error naming the abort).
///
/// ```
/// use worker_core::{delegate_worker, Abort, Error, Tomb, Worker};
///
/// /// A worker that ignores `kill` but can be aborted.
/// struct Stubborn {
///     tomb: Tomb,
/// }
///
/// impl Abort for Stubborn {
///     fn abort(&self) {
///         self.tomb.kill(Some(Error::msg("aborted")));
///         self.tomb.done(Ok(()));
///     }
/// }
///
/// impl Worker for Stubborn {
///     fn kill(&self) {} // ignored
///     fn abortable(&self) -> Option<&dyn Abort> {
///         Some(self)
///     }
///     delegate_worker!(tomb, except kill);
/// }
///
/// let w = Stubborn { tomb: Tomb::new() };
/// w.kill();
/// assert!(w.tomb.is_alive());
/// w.abortable().expect("it can be forced").abort();
/// assert_eq!(w.wait().unwrap_err().to_string(), "aborted");
/// ```
pub trait Abort: Send + Sync {
    /// Stops the worker now, whatever it is doing. Returns at once and is
    /// idempotent, like [`Worker::kill`].
    fn abort(&self);
}

/// A worker that is killed when this guard is dropped; see
/// [`Worker::kill_on_drop`].
#[must_use = "dropping the guard kills the worker at once"]
pub struct KillOnDrop<W: Worker>(Option<W>);

impl<W: Worker> KillOnDrop<W> {
    /// The worker, no longer killed on drop.
    pub fn into_inner(mut self) -> W {
        self.0
            .take()
            .expect("a guard holds its worker until dropped")
    }
}

impl<W: Worker> std::ops::Deref for KillOnDrop<W> {
    type Target = W;

    fn deref(&self) -> &W {
        self.0
            .as_ref()
            .expect("a guard holds its worker until dropped")
    }
}

impl<W: Worker> Drop for KillOnDrop<W> {
    fn drop(&mut self) {
        if let Some(worker) = &self.0 {
            worker.kill();
        }
    }
}

impl<W: Worker + std::fmt::Debug> std::fmt::Debug for KillOnDrop<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KillOnDrop").field(&self.0).finish()
    }
}

/// The methods a handle forwards to the worker it holds.
macro_rules! forward_to_pointee {
    () => {
        fn kill(&self) {
            (**self).kill()
        }
        fn wait(&self) -> Result<(), Error> {
            (**self).wait()
        }
        fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
            (**self).on_done(callback)
        }
        fn dead_signal(&self) -> Option<Signal> {
            (**self).dead_signal()
        }
        fn reporter(&self) -> Option<&dyn Reporter> {
            (**self).reporter()
        }
        fn abortable(&self) -> Option<&dyn Abort> {
            (**self).abortable()
        }
    };
}

/// An `Arc` of a worker is that worker: shared as it is, never wrapped
/// again, so what goes into a supervisor comes out (`Arc::ptr_eq` holds).
impl<W: Worker> Worker for Arc<W> {
    forward_to_pointee!();

    fn to_shared(&self) -> Option<SharedWorker> {
        let shared: Arc<W> = Arc::clone(self);
        Some(shared)
    }

    fn into_shared_worker(self) -> SharedWorker {
        self
    }

    fn from_shared(shared: &SharedWorker) -> Option<Self> {
        downcast_worker::<W>(shared)
    }
}

/// A [`SharedWorker`] is itself, shared as it is.
impl Worker for Arc<dyn Worker> {
    forward_to_pointee!();

    fn to_shared(&self) -> Option<SharedWorker> {
        Some(Arc::clone(self))
    }

    fn into_shared_worker(self) -> SharedWorker {
        self
    }

    fn from_shared(shared: &SharedWorker) -> Option<Self> {
        Some(Arc::clone(shared))
    }
}

impl<W: Worker + ?Sized> Worker for Box<W> {
    forward_to_pointee!();

    fn to_shared(&self) -> Option<SharedWorker> {
        (**self).to_shared()
    }
}

/// Implements the [`Worker`] methods of a type by delegating to one of its
/// fields: `kill` and `abortable` (how it stops, asked and forced), `wait`,
/// and the completion capabilities `on_done` and `dead_signal`, which keep
/// the type cheap for supervisors to watch. (`reporter` is left out: write
/// it if the type is a [`Reporter`].)
///
/// `delegate_worker!(field, except kill)` delegates everything but `kill`
/// and `abortable`, for a worker whose way of stopping is its own (a
/// [`Tomb`](crate::Tomb) plus a rule, say) while `wait` and completion are
/// the field's.
///
/// Use it inside the `impl Worker` block:
///
/// ```
/// use worker_core::{delegate_worker, Passive, Worker};
///
/// /// A database handle that stays valid while its lease holds.
/// struct Handle {
///     dsn: String,
///     lease: Passive,
/// }
///
/// impl Worker for Handle {
///     delegate_worker!(lease);
/// }
///
/// let h = Handle { dsn: "db".into(), lease: Passive::new() };
/// h.kill();
/// assert!(h.wait().is_ok());
/// assert!(h.dead_signal().is_some()); // watched without a thread
/// ```
///
/// The field may be a tuple field, named by its index:
///
/// ```
/// use worker_core::{delegate_worker, Passive, Worker};
///
/// /// A lease, as a newtype.
/// struct Lease(Passive);
///
/// impl Worker for Lease {
///     delegate_worker!(0);
/// }
///
/// let lease = Lease(Passive::new());
/// lease.kill();
/// assert!(lease.wait().is_ok());
/// ```
#[macro_export]
macro_rules! delegate_worker {
    // `tt`, not `ident`: a tuple field's index (`0`) is a literal.
    ($field:tt) => {
        fn kill(&self) {
            $crate::Worker::kill(&self.$field)
        }
        fn abortable(&self) -> ::std::option::Option<&dyn $crate::Abort> {
            $crate::Worker::abortable(&self.$field)
        }
        $crate::delegate_worker!($field, except kill);
    };
    ($field:tt, except kill) => {
        fn wait(&self) -> ::std::result::Result<(), $crate::Error> {
            $crate::Worker::wait(&self.$field)
        }
        fn on_done(
            &self,
            callback: $crate::DoneCallback,
        ) -> ::std::result::Result<(), $crate::DoneCallback> {
            $crate::Worker::on_done(&self.$field, callback)
        }
        fn dead_signal(&self) -> ::std::option::Option<$crate::Signal> {
            $crate::Worker::dead_signal(&self.$field)
        }
    };
}

/// Shows a type-erased worker as `Worker { .. }`, so that results holding
/// one (`Result<SharedWorker, Error>`) can be `unwrap`ped and printed.
impl std::fmt::Debug for dyn Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

/// A shared, type-erased worker: what supervisors store and hand out.
pub type SharedWorker = Arc<dyn Worker>;

/// Kills `worker`, then waits for it and returns its result (exactly one
/// kill, strictly before the wait).
pub fn stop<W: Worker + ?Sized>(worker: &W) -> Result<(), Error> {
    worker.kill();
    worker.wait()
}

/// Calls `callback` once when `worker` has finished, with its result.
///
/// Takes any worker, by reference. When the worker supports
/// [`Worker::on_done`] this costs one boxed closure and no thread.
/// Otherwise (a foreign worker) one thread, named `worker-watch`, calls
/// [`Worker::wait`] and then the callback; that thread must own the
/// worker, so it is given the worker's [`Worker::to_shared`] handle (any
/// `Arc` has one), ends when the worker does, and nobody joins it.
/// Supervisors use [`watch_named`], which names the thread and hands it
/// over to be joined.
///
/// A foreign worker with no shared handle (held by value or in a `Box`)
/// cannot be watched: it is killed (it would otherwise run with nobody
/// learning of its end), an error is logged, and the callback is called at
/// once with [`Unwatchable`](crate::Unwatchable). Put such a worker in an
/// `Arc`, or build it on [`Tomb`](crate::Tomb).
///
/// ```
/// use worker_core::{spawn, watch, Worker};
///
/// let worker = spawn("watched", |tomb| {
///     let _ = tomb.dying().recv();
///     Ok(())
/// });
/// let (tx, rx) = crossbeam_channel::bounded(1);
/// watch(&worker, move |outcome| {
///     let _ = tx.send(outcome.is_ok());
/// });
/// worker.kill();
/// assert_eq!(rx.recv(), Ok(true));
/// ```
pub fn watch<W>(worker: &W, callback: impl FnOnce(&Outcome) + Send + 'static)
where
    W: Worker + ?Sized,
{
    let _detached = watch_with(worker, &"worker-watch", callback, None);
}

/// [`watch`] for supervisors: the fallback thread (if one is needed) is
/// named `thread_name`, so that
/// [`threads::wait_threads_gone`](crate::threads::wait_threads_gone) can
/// account for it under its supervisor's name, and its handle is returned,
/// so that the supervisor can join it before it says it has stopped.
///
/// Returns `None` when no thread was started: the worker took the callback
/// (no thread needed), or it cannot be watched. It cannot be watched when
/// the system refuses the thread, or when a foreign worker has no shared
/// handle (see [`watch`]; a supervisor holding [`SharedWorker`]s never
/// meets this). Such a worker is killed (it would otherwise run
/// unsupervised), the failure is logged, and the callback is called at
/// once with an error saying so, so that nobody waits forever for a
/// completion that would never be reported.
///
/// The worker's own code is kept from hurting the caller: a panic in its
/// [`wait`](Worker::wait) becomes the outcome ([`Panicked`](crate::Panicked)),
/// and a panic in its [`on_done`](Worker::on_done) is logged, after which a
/// watcher thread reports the end with a copy of the callback (which is why
/// it must be `Clone`; a closure that captures a sender and a few ids is).
/// A worker that kept the callback before panicking may then call it too.
///
/// `thread_name` is formatted only if a thread is started, so pass
/// `format_args!("{name}-watch")` rather than a `String` made for nothing.
///
/// ```
/// use std::sync::Arc;
/// use worker_core::{watch_named, Error, Worker};
///
/// /// A worker that cannot report its own end.
/// struct Foreign(crossbeam_channel::Receiver<()>);
///
/// impl Worker for Foreign {
///     fn kill(&self) {}
///     fn wait(&self) -> Result<(), Error> {
///         let _ = self.0.recv();
///         Ok(())
///     }
/// }
///
/// let (end, ended) = crossbeam_channel::bounded(0);
/// let w = Arc::new(Foreign(ended));
/// let (tx, rx) = crossbeam_channel::unbounded();
/// let name = "docs-supervisor";
/// let thread = watch_named(&w, format_args!("{name}-watch"), move |outcome| {
///     let _ = tx.send(outcome.is_ok());
/// });
/// drop(end);
/// assert_eq!(rx.recv(), Ok(true));
/// thread.expect("a foreign worker needs a thread").join().unwrap();
/// ```
#[must_use = "join the watcher thread, if one was started, before the supervisor says it stopped"]
pub fn watch_named<W, C>(
    worker: &W,
    thread_name: impl std::fmt::Display,
    callback: C,
) -> Option<JoinHandle<()>>
where
    W: Worker + ?Sized,
    C: FnOnce(&Outcome) + Clone + Send + 'static,
{
    let spare = callback.clone();
    watch_with(worker, &thread_name, callback, Some(spare))
}

/// The body of [`watch`] and [`watch_named`]; `spare` is what the watcher
/// thread calls if the worker's `on_done` panics with the callback.
fn watch_with<W, C>(
    worker: &W,
    thread_name: &dyn std::fmt::Display,
    callback: C,
    spare: Option<C>,
) -> Option<JoinHandle<()>>
where
    W: Worker + ?Sized,
    C: FnOnce(&Outcome) + Send + 'static,
{
    let registered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        worker.on_done(Box::new(callback))
    }));
    let callback: DoneCallback = match registered {
        Ok(Ok(())) => return None,
        Ok(Err(callback)) => callback,
        Err(payload) => {
            let panicked = crate::Panicked::from_payload("on_done of a watched worker", &*payload);
            let Some(spare) = spare else {
                tracing::error!(error = %panicked, "on_done panicked; the worker's end may go unnoticed");
                return None;
            };
            tracing::error!(error = %panicked, thread = %thread_name, "on_done panicked; watching the worker with a thread");
            Box::new(spare)
        }
    };
    let Some(watched) = worker.to_shared() else {
        let error = Error::new(crate::Unwatchable);
        tracing::error!(error = %error, thread = %thread_name, "killing a worker nobody can watch");
        give_up(worker, callback, error);
        return None;
    };
    let name = thread_name.to_string();
    // Shared between the thread and this function: whichever ends up with
    // it calls it, so a refused spawn can still report.
    let slot = Arc::new(std::sync::Mutex::new(Some(callback)));
    let thread_slot = Arc::clone(&slot);
    let label = name.clone();
    let spawned = crate::threads::spawn_named(name, move || {
        let outcome = crate::catch_panic(
            || format!("wait of a worker watched by {label:?}"),
            || watched.wait(),
        );
        let taken = thread_slot.lock().map(|mut c| c.take()).ok().flatten();
        if let Some(callback) = taken {
            callback(&outcome);
        }
    });
    match spawned {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::error!(error = %e, thread = %thread_name, "cannot start a thread to watch a worker; killing it");
            let taken = slot.lock().map(|mut c| c.take()).ok().flatten();
            if let Some(callback) = taken {
                give_up(
                    worker,
                    callback,
                    Error::new(e).context("cannot watch the worker"),
                );
            }
            None
        }
    }
}

/// What happens to a worker whose end nobody can learn: it is killed,
/// and its watcher is told at once, with `error`.
fn give_up<W: Worker + ?Sized>(worker: &W, callback: DoneCallback, error: Error) {
    worker.kill();
    callback(&Err(error));
}

/// A [`Signal`] that disconnects when `worker` has finished.
///
/// Takes any worker, by reference. Uses the worker's own
/// [`Worker::dead_signal`] when it has one, else a completion callback
/// ([`Worker::on_done`]): neither costs a thread. Only a foreign worker
/// that offers neither is waited for by one watcher thread (the cost Go
/// pays on every call), which needs its shared handle (any `Arc`); a
/// foreign worker without one cannot be watched and is killed, as
/// [`watch`] says, and the signal disconnects at once. Usable in
/// `select!`:
///
/// ```
/// use crossbeam_channel::select;
/// use worker_core::{dead, Passive, Worker};
///
/// let w = Passive::new();
/// let signal = dead(&w);
/// w.kill();
/// select! {
///     recv(signal) -> _ => println!("worker finished"),
/// }
/// ```
#[must_use = "the signal is the only way to see the end; dropping it asks for nothing"]
pub fn dead<W>(worker: &W) -> Signal
where
    W: Worker + ?Sized,
{
    if let Some(signal) = worker.dead_signal() {
        return signal;
    }
    let (tx, rx) = crossbeam_channel::bounded::<Infallible>(0);
    watch(worker, move |_| drop(tx));
    rx
}

/// Makes any worker a [`SharedWorker`], without wrapping one that already
/// is: supervisors accept any `W: Worker` from start functions and store
/// it with this, so users never write `Arc::new(..) as SharedWorker`.
///
/// ```
/// use std::sync::Arc;
/// use worker_core::{into_shared, Passive, SharedWorker};
///
/// let shared: SharedWorker = Arc::new(Passive::new());
/// assert!(Arc::ptr_eq(&into_shared(shared.clone()), &shared)); // not wrapped twice
/// let mine = Arc::new(Passive::new());
/// let as_shared = into_shared(mine.clone()); // nor is an Arc of a worker
/// assert!(std::ptr::addr_eq(Arc::as_ptr(&as_shared), Arc::as_ptr(&mine)));
/// let _plain: SharedWorker = into_shared(Passive::new());
/// ```
#[must_use]
pub fn into_shared<W: Worker>(worker: W) -> SharedWorker {
    worker.into_shared_worker()
}

/// Turns a shared worker back into its concrete type, if it is a `T`.
///
/// ```
/// use std::sync::Arc;
/// use worker_core::{downcast_worker, Passive, SharedWorker};
///
/// let w: SharedWorker = Arc::new(Passive::new());
/// assert!(downcast_worker::<Passive>(&w).is_some());
/// ```
#[must_use]
pub fn downcast_worker<T: Worker>(worker: &SharedWorker) -> Option<Arc<T>> {
    let any: Arc<dyn Any + Send + Sync> = worker.clone();
    any.downcast::<T>().ok()
}

#[cfg(test)]
mod watch_named_tests {
    use super::*;
    use crate::threads::live_threads_with_prefix;
    use crate::{Panicked, Passive};
    use std::time::Duration;

    const LONG: Duration = Duration::from_secs(10);

    /// A worker with neither callbacks nor a signal: it ends when `end`
    /// is dropped, and its `wait` panics if `panics`.
    struct Foreign {
        end: Receiver<()>,
        panics: bool,
    }

    impl Worker for Foreign {
        fn kill(&self) {}
        fn wait(&self) -> Result<(), Error> {
            let _ = self.end.recv();
            assert!(!self.panics, "wait exploded");
            Err(Error::msg("foreign ended"))
        }
    }

    fn foreign(panics: bool) -> (Arc<Foreign>, crossbeam_channel::Sender<()>) {
        let (tx, rx) = crossbeam_channel::bounded(0);
        (Arc::new(Foreign { end: rx, panics }), tx)
    }

    fn reporter() -> (
        impl FnOnce(&Outcome) + Clone + Send + 'static,
        Receiver<Outcome>,
    ) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (move |o: &Outcome| tx.send(o.clone()).unwrap(), rx)
    }

    #[test]
    fn a_worker_with_callbacks_needs_no_thread() {
        let w = Arc::new(Passive::new());
        let (callback, outcomes) = reporter();
        assert!(watch_named(&w, "watch-named-test-none", callback).is_none());
        w.kill();
        assert!(outcomes.recv_timeout(LONG).unwrap().is_ok());
        assert_eq!(live_threads_with_prefix("watch-named-test-none"), 0);
    }

    #[test]
    fn a_foreign_worker_gets_a_named_thread_to_join() {
        let (w, end) = foreign(false);
        let (callback, outcomes) = reporter();
        let name = "watch-named-test-join";
        let handle = watch_named(&w, format_args!("{name}-watch"), callback)
            .expect("a foreign worker is watched by a thread");
        assert_eq!(handle.thread().name(), Some("watch-named-test-join-watch"));
        assert_eq!(live_threads_with_prefix(name), 1);
        drop(end);
        let outcome = outcomes.recv_timeout(LONG).unwrap();
        assert_eq!(outcome.unwrap_err().to_string(), "foreign ended");
        handle.join().unwrap();
        assert_eq!(live_threads_with_prefix(name), 0);
    }

    #[test]
    fn a_panicking_wait_is_the_outcome() {
        let (w, end) = foreign(true);
        let (callback, outcomes) = reporter();
        let handle = watch_named(&w, "watch-named-test-wait-panics", callback).unwrap();
        drop(end);
        let err = outcomes.recv_timeout(LONG).unwrap().unwrap_err();
        assert!(err.is::<Panicked>(), "{err}");
        assert!(err.to_string().contains("wait exploded"), "{err}");
        handle.join().expect("the panic did not escape the thread");
    }

    /// A worker whose `on_done` panics (dropping the callback).
    struct BadCallbacks(Foreign);

    impl Worker for BadCallbacks {
        fn kill(&self) {}
        fn wait(&self) -> Result<(), Error> {
            self.0.wait()
        }
        fn on_done(&self, _callback: DoneCallback) -> Result<(), DoneCallback> {
            panic!("on_done exploded")
        }
    }

    #[test]
    fn a_panicking_on_done_falls_back_to_a_thread() {
        let (inner, end) = foreign(false);
        let inner = Arc::into_inner(inner).unwrap();
        let w = Arc::new(BadCallbacks(inner));
        let (callback, outcomes) = reporter();
        let handle = watch_named(&w, "watch-named-test-on-done-panics", callback)
            .expect("watched by a thread instead");
        drop(end);
        let outcome = outcomes.recv_timeout(LONG).unwrap();
        assert_eq!(outcome.unwrap_err().to_string(), "foreign ended");
        assert!(outcomes.try_recv().is_err(), "reported once");
        handle.join().unwrap();
    }
}

#[cfg(test)]
mod delegate_tests {
    use super::*;
    use crate::Tomb;

    /// A newtype over a tomb that stops with a reason of its own: the
    /// tuple-field form of the macro, with `except kill`.
    struct Stubborn(Tomb);

    impl Worker for Stubborn {
        fn kill(&self) {
            self.0.kill(Some(Error::msg("stopped my way")));
            self.0.done(Ok(()));
        }

        crate::delegate_worker!(0, except kill);
    }

    #[test]
    fn a_tuple_field_delegates_wait_and_completion_but_not_kill() {
        let w = Stubborn(Tomb::new());
        let signal = w.dead_signal().expect("delegated to the tomb");
        let (tx, rx) = crossbeam_channel::bounded(1);
        assert!(
            w.on_done(Box::new(move |o| tx.send(o.clone()).unwrap()))
                .is_ok()
        );
        w.kill();
        assert!(signal.recv().is_err(), "disconnected: finished");
        assert_eq!(
            rx.recv().unwrap().unwrap_err().to_string(),
            "stopped my way"
        );
        assert_eq!(w.wait().unwrap_err().to_string(), "stopped my way");
    }
}

#[cfg(test)]
mod abort_tests {
    use super::*;
    use crate::{Passive, Tomb};

    /// Ignores `kill`; ends when aborted.
    struct Stubborn {
        tomb: Tomb,
    }

    impl Abort for Stubborn {
        fn abort(&self) {
            self.tomb.kill(Some(Error::msg("aborted")));
            self.tomb.done(Ok(()));
        }
    }

    impl Worker for Stubborn {
        fn kill(&self) {}
        fn abortable(&self) -> Option<&dyn Abort> {
            Some(self)
        }
        crate::delegate_worker!(tomb, except kill);
    }

    /// Delegates everything to a `Stubborn`.
    struct Wrapper {
        inner: Stubborn,
    }

    impl Worker for Wrapper {
        crate::delegate_worker!(inner);
    }

    /// Delegates all but stopping.
    struct OwnStop {
        inner: Stubborn,
    }

    impl Worker for OwnStop {
        fn kill(&self) {}
        crate::delegate_worker!(inner, except kill);
    }

    fn stubborn() -> Stubborn {
        Stubborn { tomb: Tomb::new() }
    }

    #[test]
    fn a_worker_cannot_be_forced_unless_it_says_so() {
        assert!(Passive::new().abortable().is_none());
        let shared: SharedWorker = Arc::new(Passive::new());
        assert!(shared.abortable().is_none());
        assert!(OwnStop { inner: stubborn() }.abortable().is_none());
    }

    #[test]
    fn abortable_is_forwarded_through_handles_and_delegation() {
        let shared: SharedWorker = Arc::new(stubborn());
        shared.kill();
        assert!(
            downcast_worker::<Stubborn>(&shared)
                .unwrap()
                .tomb
                .is_alive()
        );
        shared.abortable().expect("forwarded by Arc").abort();
        assert_eq!(shared.wait().unwrap_err().to_string(), "aborted");

        let boxed: Box<dyn Worker> = Box::new(stubborn());
        boxed.abortable().expect("forwarded by Box").abort();
        assert!(boxed.wait().is_err());

        let wrapper = Wrapper { inner: stubborn() };
        wrapper.abortable().expect("delegated").abort();
        assert!(wrapper.wait().is_err());
    }
}

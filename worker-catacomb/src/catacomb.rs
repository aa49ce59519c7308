//! The catacomb handle: invoke, kill and the dying-error algebra, and the
//! path by which a catacomb becomes dead.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use worker_core::threads::JoinSlot;
use worker_core::{
    DoneCallback, Error, Panicked, Reporter, SharedWorker, Signal, Tomb, TombState, Worker,
};

use crate::bindings::Bindings;
use crate::{Dying, ForeignDying, InvokeError, IoError, Plan, StillAlive};

/// Catacomb ids start at 1; 0 means "no catacomb" in the self-add check.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Binds the lifetimes and the errors of a group of workers to one owner.
///
/// Made by [`Catacomb::invoke`]; see the [crate docs](crate) for the model.
/// The handle is cheap to clone; every clone is the same catacomb.
/// Dropping handles does not stop it (its work holds one): kill it.
///
/// There is no other way to make one, so there is no "not yet invoked"
/// catacomb to misuse:
///
/// ```compile_fail
/// let c = worker_catacomb::Catacomb::default();
/// ```
#[derive(Clone)]
pub struct Catacomb {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// The catacomb's lifetime: dying when killed, dead once the work has
    /// returned and every bound worker has finished.
    pub(crate) tomb: Tomb,
    pub(crate) state: Mutex<State>,
    /// Wakes the finishing thread when the last binding is released.
    settled: Condvar,
    /// The work thread, joined by `wait`.
    thread: JoinSlot,
}

pub(crate) struct State {
    /// Whether adds are accepted: true until the catacomb starts dying.
    pub(crate) open: bool,
    /// Bound workers that have not finished.
    pub(crate) bindings: Bindings,
    /// Whether the work has returned (and the finishing thread waits).
    work_done: bool,
    /// Threads waiting for workers that cannot notify their completion.
    pub(crate) watchers: Vec<JoinHandle<()>>,
}

impl Catacomb {
    /// Starts a catacomb: binds the plan's `init` workers, then runs its
    /// `work` on a new thread named after the plan.
    ///
    /// The catacomb dies when the work returns, whether with `Ok` or
    /// `Err`: its lifetime is the work's. Before that it dies when killed or
    /// when a bound worker fails.
    ///
    /// The catacomb owns the `init` workers from this call on. If `invoke`
    /// fails, each of them has been stopped (killed, then waited for) when
    /// it returns: none is left running.
    ///
    /// A panic in the work becomes the catacomb's error
    /// ([`Panicked`](worker_core::Panicked), with the panic message).
    pub fn invoke(plan: Plan) -> Result<Catacomb, InvokeError> {
        if let Err(e) = plan.validate() {
            tracing::warn!(error = %e, "catacomb plan refused; stopping its init workers");
            stop_all(&plan.init);
            return Err(e);
        }
        let Plan { name, work, init } = plan;
        let catacomb = Catacomb {
            shared: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                name,
                tomb: Tomb::new(),
                state: Mutex::new(State {
                    open: true,
                    bindings: Bindings::default(),
                    work_done: false,
                    watchers: Vec::new(),
                }),
                settled: Condvar::new(),
                thread: JoinSlot::default(),
            }),
        };
        for worker in init {
            catacomb.bind_init(worker);
        }

        // The slot keeps the handle before the thread can run, so any `wait`
        // (from a clone the work hands out) finds it to join.
        let body = catacomb.clone();
        let spawned = catacomb
            .shared
            .thread
            .spawn(catacomb.shared.name.clone(), move || {
                let what = || format!("work of catacomb {:?}", body.shared.name);
                let result = worker_core::catch_panic(what, || work(&body));
                body.finish(result);
            });
        match spawned {
            Ok(()) => {
                tracing::debug!(catacomb = %catacomb.shared.name, "catacomb invoked");
                Ok(catacomb)
            }
            Err(e) => {
                let error = InvokeError::Spawn {
                    catacomb: catacomb.shared.name.clone(),
                    source: IoError::from(e),
                };
                // No work will run: finish here, which kills and waits for
                // every init worker.
                catacomb.finish(Err(Error::new(error.clone())));
                Err(error)
            }
        }
    }

    /// The catacomb's name, as given in its [`Plan`].
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Kills the catacomb, recording `reason` according to the dying-error
    /// algebra:
    ///
    /// - the first real error wins: a `Some` replaces an earlier `None`,
    ///   nothing replaces a `Some`, and nothing changes once dead;
    /// - this catacomb's own [`Dying`] error (found anywhere in `reason`'s
    ///   source chain) counts as `None`: it never overwrites;
    /// - another catacomb's [`Dying`] error is recorded as a
    ///   [`ForeignDying`] error, because handing it over is a bug.
    ///
    /// The first kill closes the catacomb to new workers and kills every
    /// bound worker, on this thread, outside any lock. It returns without
    /// waiting for them.
    ///
    /// [`Worker::kill`] is `kill_with(None)`. (Go's `Kill(err)`; the name
    /// differs so that `c.kill()` is the worker's kill, as on every other
    /// worker.)
    pub fn kill_with(&self, reason: Option<Error>) {
        let reason = reason.and_then(|e| self.classify(e));
        self.shared.tomb.kill(reason);
        let doomed = {
            let mut state = self.lock_state();
            if !state.open {
                return;
            }
            state.open = false;
            state.bindings.workers()
        };
        tracing::debug!(
            catacomb = %self.shared.name,
            workers = doomed.len(),
            "catacomb dying: killing its workers"
        );
        for worker in &doomed {
            self.kill_worker(worker);
        }
    }

    /// What a kill reason really means to this catacomb (see
    /// [`kill_with`](Catacomb::kill_with)).
    fn classify(&self, reason: Error) -> Option<Error> {
        match reason.downcast_ref::<Dying>() {
            None => Some(reason),
            Some(dying) if dying.id == self.shared.id => None,
            Some(dying) => Some(Error::new(ForeignDying {
                receiver: self.shared.name.clone(),
                owner: dying.name.clone(),
            })),
        }
    }

    /// Kills one bound worker; a panic in its `kill` becomes the
    /// catacomb's error.
    pub(crate) fn kill_worker(&self, worker: &SharedWorker) {
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.kill()));
        if let Err(payload) = killed {
            let what = format!("kill of a worker bound to catacomb {:?}", self.shared.name);
            let error = Panicked::from_payload(what, &*payload);
            tracing::error!(catacomb = %self.shared.name, error = %error, "worker kill panicked");
            self.shared.tomb.kill(Some(Error::new(error)));
        }
    }

    /// A [`Signal`] that disconnects when the catacomb starts dying. The
    /// work selects on it and then returns [`err_dying`](Catacomb::err_dying).
    pub fn dying(&self) -> Signal {
        self.shared.tomb.dying()
    }

    /// A [`Signal`] that disconnects when the catacomb is dead: the work
    /// has returned and every bound worker has finished.
    pub fn dead(&self) -> Signal {
        self.shared.tomb.dead()
    }

    /// Where the catacomb is in its life.
    pub fn state(&self) -> TombState {
        self.shared.tomb.state()
    }

    /// The reason recorded so far: `None` while alive, or while it was only
    /// killed without an error (Go returns a "still alive" sentinel; use
    /// [`state`](Catacomb::state) to tell the two apart).
    pub fn err(&self) -> Option<Error> {
        self.shared.tomb.err()
    }

    /// The error the work should return when it sees
    /// [`dying`](Catacomb::dying): this catacomb's [`Dying`] error, which
    /// the catacomb never records, so the kill reason stays what it was.
    ///
    /// While the catacomb is alive there is nothing to report, and this
    /// returns a [`StillAlive`] error (which *is* recorded if it is used to
    /// kill the catacomb, as in Go).
    pub fn err_dying(&self) -> Error {
        if self.shared.tomb.is_alive() {
            Error::new(StillAlive {
                catacomb: self.shared.name.clone(),
            })
        } else {
            Error::new(self.dying_error())
        }
    }

    pub(crate) fn dying_error(&self) -> Dying {
        Dying {
            name: self.shared.name.clone(),
            id: self.shared.id,
        }
    }

    /// Blocks until the catacomb is dead, and returns its result: the first
    /// real error, or `Ok`. Every call returns the same result. Also joins
    /// the work thread, so once `wait` returns no thread of the catacomb is
    /// left.
    pub fn wait(&self) -> Result<(), Error> {
        let result = self.shared.tomb.wait();
        // From a completion callback on the work thread itself, this
        // returns at once; the work's panics are caught inside the thread.
        self.shared.thread.join();
        result
    }

    /// How many bound workers have not finished yet. A worker that
    /// finishes is forgotten at once (its memory released), so this is what
    /// the catacomb still holds.
    pub fn worker_count(&self) -> usize {
        self.lock_state().bindings.len()
    }

    pub(crate) fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// Ends the work: records its result as a kill, waits until every bound
    /// worker has finished, joins the watcher threads, and marks the
    /// catacomb dead. Runs on the work thread (or on the invoking thread
    /// when the work thread could not start).
    fn finish(&self, result: Result<(), Error>) {
        if let Err(e) = &result {
            tracing::debug!(catacomb = %self.shared.name, error = %e, "catacomb work failed");
        }
        self.kill_with(result.err());
        let watchers = {
            let mut state = self.lock_state();
            state.work_done = true;
            while !state.bindings.is_empty() {
                state = self
                    .shared
                    .settled
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            std::mem::take(&mut state.watchers)
        };
        for watcher in watchers {
            // A watcher's panics are caught inside it.
            let _ = watcher.join();
        }
        self.shared.tomb.done(Ok(()));
        tracing::debug!(
            catacomb = %self.shared.name,
            error = ?self.shared.tomb.err(),
            "catacomb dead"
        );
    }

    /// Called when a bound worker has finished: its error (if any) kills
    /// the catacomb, then its binding is released, waking the finishing
    /// thread if it was the last one.
    ///
    /// The error is recorded *before* the binding is released, so the
    /// catacomb cannot be marked dead in between and lose it.
    pub(crate) fn released(&self, key: crate::bindings::Key, outcome: &Result<(), Error>) {
        if let Err(e) = outcome {
            self.kill_with(Some(e.clone()));
        }
        self.release(key);
    }

    /// Releases a binding without looking at any outcome.
    pub(crate) fn release(&self, key: crate::bindings::Key) {
        let (worker, settled) = {
            let mut state = self.lock_state();
            let worker = state.bindings.remove(key);
            state.bindings.shrink_if_empty();
            (worker, state.work_done && state.bindings.is_empty())
        };
        if settled {
            self.shared.settled.notify_all();
        }
        // The worker's last reference may go here: drop it outside the lock.
        drop(worker);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under the catacomb's locks, so a poisoned lock can
    // only come from a bug here, and the data is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stops every worker of a refused plan: kills them all first, so they stop
/// concurrently, then waits for each. Errors are not anyone's business any
/// more (as in Go), panics are contained.
fn stop_all(workers: &[SharedWorker]) {
    for worker in workers {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.kill()));
    }
    for worker in workers {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.wait()));
    }
}

/// A catacomb is a worker: `kill` is [`kill_with(None)`](Catacomb::kill_with), `wait` is
/// [`Catacomb::wait`], and it notifies its completion without a thread, so
/// a supervisor (or a parent catacomb) holds it at no extra cost.
impl Worker for Catacomb {
    fn kill(&self) {
        self.kill_with(None);
    }

    fn wait(&self) -> Result<(), Error> {
        Catacomb::wait(self)
    }

    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        if crate::add::is_adding_to(self) {
            // Some catacomb's `add` asked to learn of our completion, and
            // that catacomb is us: refuse, so `add` can report it.
            return Err(callback);
        }
        Worker::on_done(&self.shared.tomb, callback)
    }

    fn dead_signal(&self) -> Option<Signal> {
        Some(self.shared.tomb.dead())
    }

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

/// A catacomb's report: its state (`"alive"`, `"dying"` or `"dead"`), its
/// error once it has one, and how many bound workers are still running.
impl Reporter for Catacomb {
    fn report(&self) -> worker_core::Report {
        let mut report = worker_core::Report::new();
        let state = match self.state() {
            TombState::Alive => "alive",
            TombState::Dying => "dying",
            TombState::Dead => "dead",
        };
        report.insert(worker_core::KEY_STATE.into(), state.into());
        if let Some(e) = self.err() {
            report.insert("error".into(), e.to_string().into());
        }
        report.insert("workers".into(), self.worker_count().into());
        report
    }
}

impl fmt::Debug for Catacomb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catacomb")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .field("err", &self.err())
            .field("workers", &self.worker_count())
            .finish()
    }
}

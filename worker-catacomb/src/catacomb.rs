//! The catacomb handle: invoke, kill and the dying-error algebra, wait,
//! and what a bound worker's end does to the catacomb.

use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use worker_core::events::{EventKind, ShutdownCause};
use worker_core::supervisor::QuietKill;
use worker_core::threads::JoinSlot;
use worker_core::{DoneCallback, Error, Reporter, SharedWorker, Signal, Tomb, TombState, Worker};

use crate::bindings::{Bindings, Key, Released};
use crate::errands::{Errand, Errands};
use crate::events::{Events, Told};
use crate::kill_batch::KillBatch;
use crate::{Dying, ForeignDying, InvokeError, IoError, Plan, StillAlive, WaitError};

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
    /// Where `stop_within` takes its time from.
    pub(crate) clock: Arc<dyn worker_core::Clock>,
    /// The catacomb's lifetime: dying when killed, dead once the work has
    /// returned and every bound worker has finished and been waited for.
    pub(crate) tomb: Tomb,
    pub(crate) state: Mutex<State>,
    /// Wakes the finishing thread when the last binding is released or the
    /// last errand is done.
    pub(crate) settled: Condvar,
    /// Errands handed to the errand queue and not yet done (see
    /// [`errands`](crate::errands)); counted without the lock by the
    /// threads that run them.
    pub(crate) errands_pending: AtomicUsize,
    /// The work thread, joined by `wait`.
    pub(crate) thread: JoinSlot,
    /// The hooks, and how events are made.
    pub(crate) events: Events,
}

pub(crate) struct State {
    /// Whether adds are accepted: true until the catacomb starts dying.
    pub(crate) open: bool,
    /// Bound workers that have not finished.
    pub(crate) bindings: Bindings,
    /// Whether the work has returned (and the finishing thread waits).
    pub(crate) work_done: bool,
    /// Workers that have reported their end, to be waited for by the
    /// reaping errand.
    pub(crate) ended: Vec<SharedWorker>,
    /// Whether a reaping errand is queued or running: it takes `ended`
    /// until it finds it empty, and clears this under the same lock.
    pub(crate) reaping: bool,
    /// Kills and waits of bound workers, run off the callers' threads.
    pub(crate) errands: Errands,
    /// Threads waiting for workers that cannot notify their completion.
    pub(crate) watchers: Vec<JoinHandle<()>>,
    /// When the catacomb started dying, if anybody listens to its events
    /// (how long its workers then take to stop).
    pub(crate) dying_since: Option<Instant>,
    /// Bindings whose end has been told (`failed` or `stopped`) and that
    /// are not released yet: a shutdown in between does not tell them
    /// `stopping` (see [`Catacomb::released`]).
    pub(crate) told_ended: Vec<Key>,
    /// Kills of the library's own workers going on on a killer's thread
    /// (`Catacomb::kill_here`): the catacomb does not finish before they
    /// have given back the workers they hold.
    pub(crate) killing_here: usize,
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
            stop_all(plan.init);
            return Err(e);
        }
        let Plan {
            name,
            work,
            init,
            clock,
            hooks,
        } = plan;
        let catacomb = Catacomb {
            shared: Arc::new(Shared {
                id: worker_core::threads::supervisor_id(),
                clock,
                tomb: Tomb::new(),
                state: Mutex::new(State {
                    open: true,
                    bindings: Bindings::default(),
                    work_done: false,
                    ended: Vec::new(),
                    reaping: false,
                    errands: Errands::default(),
                    watchers: Vec::new(),
                    dying_since: None,
                    told_ended: Vec::new(),
                    killing_here: 0,
                }),
                settled: Condvar::new(),
                errands_pending: AtomicUsize::new(0),
                thread: JoinSlot::default(),
                events: Events::new(&name, hooks),
                name,
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
    /// The first kill closes the catacomb to new workers and has every
    /// bound worker killed, on the catacomb's own threads
    /// (`<name>-stop-<n>`): it does not call any worker's code itself, so
    /// it returns at once, even if a worker's `kill` blocks. (Only if the
    /// system refuses that thread are the kills made here instead.) The
    /// library's own workers ([`Passive`](worker_core::Passive) ones, and
    /// those [`spawn`](worker_core::spawn()) and task workers make) are the
    /// exception: their kill runs no user code unless the user gave them a
    /// dying hook or a completion callback, so this kills them itself, and
    /// a passive worker is dead by the time it returns.
    ///
    /// [`Worker::kill`] is `kill_with(None)`. (Go's `Kill(err)`; the name
    /// differs so that `c.kill()` is the worker's kill, as on every other
    /// worker.)
    pub fn kill_with(&self, reason: Option<Error>) {
        let cause = match self.record(reason) {
            true => ShutdownCause::Fatal { worker: None },
            false => ShutdownCause::Killed,
        };
        self.close(cause);
    }

    /// Records a kill `reason` (see [`kill_with`](Catacomb::kill_with));
    /// returns whether it was a real error.
    pub(crate) fn record(&self, reason: Option<Error>) -> bool {
        let reason = reason.and_then(|e| self.classify(e));
        let real = reason.is_some();
        self.shared.tomb.kill(reason);
        real
    }

    /// Closes the catacomb to new workers and has every bound worker
    /// killed (the first time), saying why it shuts down.
    pub(crate) fn close(&self, cause: ShutdownCause) {
        let mut told = Told::default();
        let (stranded, here) = {
            let mut state = self.lock_state();
            if !state.open {
                return;
            }
            state.open = false;
            let observed = self.shared.events.observed();
            if observed {
                state.dying_since = Some(Instant::now());
                self.tell(&mut state, &mut told, 0, EventKind::ShuttingDown { cause });
            }
            let workers = state.bindings.lend_all();
            if observed {
                for (key, _) in &workers {
                    if !state.told_ended.contains(key) {
                        self.tell(&mut state, &mut told, key.number(), EventKind::Stopping);
                    }
                }
            }
            let mut stranded = self.hand_over(&mut state, &told);
            // The library's own workers are killed here, the others by
            // kill errands.
            let (here, errands): (Vec<_>, Vec<_>) = workers
                .into_iter()
                .partition(|(_, worker)| worker_core::supervisor::can_kill_quietly(worker));
            if !errands.is_empty() {
                KillBatch::push(&mut state.errands, self, errands);
                stranded.extend(state.errands.flush(&self.shared));
            }
            if !here.is_empty() {
                // Until `kill_here` has given the workers back, the
                // catacomb must not finish: this thread holds workers that
                // may have ended without being waited for.
                state.killing_here += 1;
            }
            (stranded, here)
        };
        self.run_stranded(stranded);
        told.log();
        self.kill_here(here);
    }

    /// Kills the library's own workers among those lent for a kill, on
    /// this thread: their kill runs no user code (no thread hop, as a
    /// supervisor's loop kills them: see
    /// [`kill_quietly`](worker_core::supervisor::kill_quietly)), and the
    /// callback each reports its end with is the catacomb's, which runs
    /// none either. A worker that has finished with it (a passive one) is
    /// let go of here, since it has no thread to wait for; one still
    /// running goes back to its binding, or to the reaping errand if it
    /// has ended meanwhile; one whose kill would run user code after all
    /// (a hook registered since it was added) goes to a kill errand.
    ///
    /// `close` counts it in `killing_here` when `workers` is not empty;
    /// this uncounts it.
    fn kill_here(&self, workers: Vec<(Key, SharedWorker)>) {
        if workers.is_empty() {
            return;
        }
        let mut running = Vec::new();
        let mut refused = Vec::new();
        for (key, worker) in workers {
            match worker_core::supervisor::kill_quietly(&worker) {
                // Its binding was released inside the kill.
                QuietKill::Finished => drop(worker),
                QuietKill::Refused => refused.push((key, worker)),
                _ => running.push((key, worker)),
            }
        }
        let stranded = {
            let mut state = self.lock_state();
            let mut stranded = self.lend_back(&mut state, running);
            if !refused.is_empty() {
                KillBatch::push(&mut state.errands, self, refused);
                stranded.extend(state.errands.flush(&self.shared));
            }
            // Done (see `close`); the finishing thread may be waiting for
            // it, and checks the count under this lock.
            state.killing_here -= 1;
            if state.killing_here == 0 {
                self.shared.settled.notify_all();
            }
            stranded
        };
        self.run_stranded(stranded);
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

    /// Kills one worker on this thread; a panic in its `kill` becomes the
    /// catacomb's error.
    pub(crate) fn kill_worker(&self, worker: &SharedWorker) {
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.kill()));
        if let Err(payload) = killed {
            self.contained("kill", &*payload);
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
    /// real error, or `Ok`. Every call returns the same result.
    ///
    /// Once it returns, no thread of the catacomb is left, and every bound
    /// worker has been waited for (its own `wait` has returned, which joins
    /// a well-behaved worker's threads).
    ///
    /// # Errors
    ///
    /// Besides the catacomb's own error: [`WaitError::OwnThread`], at once,
    /// if called before the catacomb is dead on a thread that the catacomb
    /// must see return before it can be dead: its work thread, or a thread
    /// on which it kills, waits for or watches a bound worker. Waiting
    /// there would deadlock. A bound worker's *own* thread cannot be told
    /// apart from any other: waiting there (from the worker's body, or a
    /// completion callback it runs) still deadlocks, as in Go.
    pub fn wait(&self) -> Result<(), Error> {
        if let Some(result) = self.shared.tomb.try_result() {
            // From a completion callback on the work thread itself, this
            // returns at once; the work's panics are caught inside the thread.
            self.shared.thread.join();
            return result;
        }
        if self.on_own_thread() {
            let error = WaitError::OwnThread {
                catacomb: self.shared.name.clone(),
                thread: std::thread::current().name().unwrap_or("").to_owned(),
            };
            tracing::warn!(error = %error, "refused a wait that would deadlock");
            return Err(Error::new(error));
        }
        let result = self.shared.tomb.wait();
        self.shared.thread.join();
        result
    }

    /// Whether the calling thread is one that the catacomb must see return
    /// before it can be dead.
    pub(crate) fn on_own_thread(&self) -> bool {
        worker_core::threads::serves(self.shared.id)
            || self.shared.thread.thread_id() == Some(std::thread::current().id())
    }

    /// How many bound workers have not finished yet. A worker that
    /// finishes is no longer counted (the catacomb then only waits for it
    /// to return from `wait`, and lets go of it).
    pub fn worker_count(&self) -> usize {
        self.lock_state().bindings.len()
    }

    pub(crate) fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// Called when a bound worker has finished: its error (if any) kills
    /// the catacomb, then its binding is released and the worker is handed
    /// to the reaping errand, to be waited for (which joins its threads;
    /// it cannot be done here, which may be the worker's own thread).
    ///
    /// The error is recorded *before* the binding is released, so the
    /// catacomb cannot be marked dead in between and lose it. The worker's
    /// end is told before either: the shutdown its error causes is told
    /// after its failure, and tells it no `stopping`.
    pub(crate) fn released(&self, key: Key, outcome: &Result<(), Error>) {
        if self.shared.events.observed() {
            let mut told = Told::default();
            let stranded = {
                let mut state = self.lock_state();
                if state.bindings.holds(key) {
                    let end = self.end_now(&state);
                    let kind = match outcome {
                        Err(error) => EventKind::Failed {
                            error: error.clone(),
                            fatal: true,
                            end,
                        },
                        Ok(()) => EventKind::Stopped { end, reason: None },
                    };
                    self.tell(&mut state, &mut told, key.number(), kind);
                    state.told_ended.push(key);
                }
                self.hand_over(&mut state, &told)
            };
            self.run_stranded(stranded);
            told.log();
        }
        if let Err(e) = outcome {
            self.record(Some(e.clone()));
        }
        let stranded = {
            let mut state = self.lock_state();
            let released = state.bindings.release(key);
            if let Some(at) = state.told_ended.iter().position(|k| *k == key) {
                state.told_ended.swap_remove(at);
            }
            let mut stranded = Vec::new();
            match released {
                Released::Unknown => {}
                Released::Worker(worker) => {
                    state.bindings.shrink_if_empty();
                    stranded.extend(self.reap_later(&mut state, worker));
                }
                Released::Lent => {
                    // The kill errand holding it waits for it: now if it
                    // ended inside that kill, else when it gives it back.
                    state.bindings.shrink_if_empty();
                    crate::kill_batch::ended_in_its_kill(self.shared.id, key);
                }
            }
            stranded
        };
        self.run_stranded(stranded);
        // Its error (recorded above) now kills the others.
        if outcome.is_err() {
            let cause = ShutdownCause::Fatal { worker: None };
            self.close(cause);
        }
    }

    /// Hands a worker that has ended to the reaping errand, starting one
    /// unless one runs. Returns the errands no thread could be had for.
    #[must_use]
    pub(crate) fn reap_later(&self, state: &mut State, worker: SharedWorker) -> Vec<Errand> {
        state.ended.push(worker);
        if state.reaping {
            return Vec::new();
        }
        state.reaping = true;
        state.errands.push(self, Errand::Reap);
        state.errands.flush(&self.shared)
    }

    /// Releases a binding without looking at any outcome, and hands its
    /// worker back (for a worker that was never really bound).
    pub(crate) fn unbind(&self, key: Key) -> Option<SharedWorker> {
        let mut told = Told::default();
        let (released, settled, stranded) = {
            let mut state = self.lock_state();
            let released = state.bindings.release(key);
            if !matches!(released, Released::Unknown) && self.shared.events.observed() {
                let end = self.end_now(&state);
                let kind = EventKind::Stopped { end, reason: None };
                self.tell(&mut state, &mut told, key.number(), kind);
            }
            let stranded = self.hand_over(&mut state, &told);
            state.bindings.shrink_if_empty();
            (
                released,
                state.work_done && state.bindings.is_empty(),
                stranded,
            )
        };
        self.run_stranded(stranded);
        told.log();
        if settled {
            self.shared.settled.notify_all();
        }
        match released {
            Released::Worker(worker) => Some(worker),
            // Lent: the catacomb was killed meanwhile, and the kill errand
            // holding the worker hands it on to be waited for.
            Released::Unknown | Released::Lent => None,
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under the catacomb's locks, so a poisoned lock can
    // only come from a bug here, and the data is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stops every worker of a refused plan: kills them all first, so they stop
/// concurrently, then waits for each and lets go of it. Errors are not
/// anyone's business any more (as in Go); panics are contained and logged,
/// since there is no catacomb to fail.
fn stop_all(workers: Vec<SharedWorker>) {
    let contained = |what: &str, f: &mut dyn FnMut()| {
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            let what = format!("{what} of an init worker of a refused catacomb plan");
            let error = worker_core::Panicked::from_payload(what, &*payload);
            tracing::error!(error = %error, "init worker panicked");
        }
    };
    for worker in &workers {
        contained("kill", &mut || worker.kill());
    }
    for worker in workers {
        contained("wait", &mut || {
            let _ = worker.wait();
        });
        let mut worker = Some(worker);
        contained("drop", &mut || drop(worker.take()));
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

/// [`Catacomb::report`], as a [`Report`](worker_core::Report) to nest in
/// another's.
impl Reporter for Catacomb {
    fn report(&self) -> worker_core::Report {
        worker_core::Report::new(Catacomb::report(self))
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

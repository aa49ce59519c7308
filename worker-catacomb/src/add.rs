//! Binding a worker to a catacomb.
//!
//! The hot path is one short lock (take a slot in the bindings) and one
//! completion callback registered on the worker: no thread, no channel.
//! Only a worker that cannot notify its completion costs a watcher thread,
//! which is named after the catacomb and joined before the catacomb is dead.
//!
//! # Adding a catacomb to itself
//!
//! A catacomb is dead only once every bound worker has finished; bound to
//! itself, it would wait for itself forever (Go deadlocks). `add` detects it
//! while registering the completion callback: a thread-local names the
//! catacomb being added to, and a catacomb asked for a completion callback
//! while it is itself the one being added to refuses. That catches the
//! catacomb, its clones, and any wrapper that forwards `on_done` to it; a
//! wrapper that only forwards `dead_signal` is caught by comparing signals.

use std::cell::Cell;

use worker_core::events::EventKind;
use worker_core::{DoneCallback, Error, SharedWorker, Worker, into_shared};

use crate::bindings::Key;
use crate::events::Told;
use crate::kill_batch::KillBatch;
use crate::{AddError, Catacomb, IoError};

thread_local! {
    /// The id of the catacomb whose `add` is registering a completion
    /// callback on this thread, 0 if none, or [`ITSELF`] once that catacomb
    /// was asked for its own completion.
    static ADDING_TO: Cell<u64> = const { Cell::new(0) };
}

/// Marks, in [`ADDING_TO`], that the catacomb was asked for its own
/// completion. Catacomb ids never reach it.
const ITSELF: u64 = u64::MAX;

/// Called by [`Catacomb`]'s `on_done`: whether this thread is inside that
/// very catacomb's `add`. If so, marks the add as a self-add.
pub(crate) fn is_adding_to(catacomb: &Catacomb) -> bool {
    ADDING_TO.with(|adding| {
        if adding.get() == catacomb.shared.id {
            adding.set(ITSELF);
            true
        } else {
            false
        }
    })
}

/// Runs `f` with [`ADDING_TO`] set to `id` and restores the previous value
/// (adds may nest through user code); returns `f`'s result and whether the
/// catacomb was asked for its own completion meanwhile.
fn while_adding_to<T>(id: u64, f: impl FnOnce() -> T) -> (T, bool) {
    let previous = ADDING_TO.with(|adding| adding.replace(id));
    let result = f();
    let itself = ADDING_TO.with(|adding| adding.replace(previous)) == ITSELF;
    (result, itself)
}

/// Runs a completion callback with [`ADDING_TO`] cleared, so that code it
/// triggers (which is not the add's) is never mistaken for a self-add.
fn outside_add<T>(f: impl FnOnce() -> T) -> T {
    let previous = ADDING_TO.with(|adding| adding.replace(0));
    let result = f();
    ADDING_TO.with(|adding| adding.set(previous));
    result
}

impl Catacomb {
    /// Binds `worker` to the catacomb: when the catacomb dies the worker is
    /// killed, and the catacomb is not dead until the worker has finished
    /// and been waited for. If the worker finishes with an error, the
    /// catacomb is killed with it (subject to "first real error wins"); if
    /// it finishes with `Ok`, it is let go of and the catacomb carries on.
    ///
    /// Any worker will do: a value the catacomb then owns, or a
    /// [`SharedWorker`] the caller keeps a clone of (kept as it is, not
    /// wrapped again; see [`into_shared`]).
    ///
    /// Costs no thread when the worker supports completion notification
    /// ([`Worker::on_done`]: every
    /// [`Tomb`](worker_core::Tomb)-based worker, catacombs included);
    /// otherwise one watcher thread, named `<catacomb>-watcher`, waits for
    /// it. Once the worker has ended, the catacomb waits for it (its `wait`
    /// joins its threads) and lets go of it, on a thread of its own.
    ///
    /// Never waits for the worker. Calls only its `on_done` (or, when that
    /// is refused, `dead_signal`) on this thread, and its `kill` if it is
    /// refused.
    ///
    /// A worker that had already failed is bound, and kills the catacomb at
    /// once with its error.
    ///
    /// Adding the same worker twice binds it twice: harmless, since `kill`
    /// is idempotent and each binding is released when the worker finishes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use worker_catacomb::{Catacomb, Plan};
    /// use worker_core::{Passive, SharedWorker, Worker};
    ///
    /// let c = Catacomb::invoke(Plan::new("add-docs", |c: &Catacomb| {
    ///     let _ = c.dying().recv();
    ///     Err(c.err_dying())
    /// }))
    /// .unwrap();
    /// c.add(Passive::new()).unwrap(); // owned by the catacomb
    /// let kept: SharedWorker = Arc::new(Passive::new());
    /// c.add(kept.clone()).unwrap(); // shared with the caller
    /// assert_eq!(c.worker_count(), 2);
    /// c.kill();
    /// assert!(c.wait().is_ok());
    /// assert!(kept.wait().is_ok()); // killed with the catacomb
    /// ```
    ///
    /// # Errors
    ///
    /// - [`AddError::Dying`] if the catacomb is dying or dead: the worker is
    ///   killed at once, on this thread (it is still the caller's worker),
    ///   and not waited for. Its source is the catacomb's own
    ///   [`Dying`](crate::Dying) error, so work may pass it on with `?`.
    /// - [`AddError::ItSelf`] if `worker` is this catacomb (or forwards its
    ///   completion to it); nothing is bound or killed.
    /// - [`AddError::NoWatcher`] if the worker needs a watcher thread and
    ///   none could be started: the worker and the catacomb are killed.
    pub fn add<W: Worker>(&self, worker: W) -> Result<(), AddError> {
        let worker = into_shared(worker);
        let mut told = Told::default();
        let (key, stranded) = {
            let mut state = self.lock_state();
            match state.open {
                false => (None, Vec::new()),
                true => {
                    let key = state.bindings.insert(worker.clone());
                    if self.shared.events.observed() {
                        let kind = EventKind::Started;
                        self.tell(&mut state, &mut told, key.number(), kind);
                    }
                    (Some(key), self.hand_over(&mut state, &told))
                }
            }
        };
        self.run_stranded(stranded);
        told.log();
        let added = match key {
            Some(key) => self.watch(&worker, key),
            None => {
                self.kill_worker(&worker);
                Err(AddError::Dying(self.dying_error()))
            }
        };
        // The worker may have ended and been let go of meanwhile: this can
        // be the last reference.
        self.discard(worker);
        added
    }

    /// Binds an `init` worker of the plan: unlike [`add`](Catacomb::add) it
    /// binds even when the catacomb is already dying (an earlier init
    /// worker had failed), so the catacomb still waits for it, and has it
    /// killed.
    pub(crate) fn bind_init(&self, worker: SharedWorker) {
        let mut told = Told::default();
        let (key, stranded) = {
            let mut state = self.lock_state();
            let observed = self.shared.events.observed();
            if state.open {
                let key = state.bindings.insert(worker.clone());
                if observed {
                    self.tell(&mut state, &mut told, key.number(), EventKind::Started);
                }
                (key, self.hand_over(&mut state, &told))
            } else {
                let key = state.bindings.insert_lent();
                if observed {
                    self.tell(&mut state, &mut told, key.number(), EventKind::Started);
                    self.tell(&mut state, &mut told, key.number(), EventKind::Stopping);
                }
                KillBatch::push(&mut state.errands, self, vec![(key, worker.clone())]);
                (key, state.errands.flush(&self.shared))
            }
        };
        self.run_stranded(stranded);
        told.log();
        // A fresh catacomb cannot be its own init worker, and a failure to
        // watch has already killed the catacomb with its reason.
        let _ = self.watch(&worker, key);
        self.discard(worker);
    }

    /// Arranges for `released(key, outcome)` to run once `worker` finishes.
    fn watch(&self, worker: &SharedWorker, key: Key) -> Result<(), AddError> {
        // The library's own thread-free workers take the callback as a
        // supervisor's, which lets a kill of the catacomb kill them on the
        // killer's thread (see `Catacomb::kill_here`): the callback runs no
        // user code.
        let callback = match worker_core::supervisor::on_done_quietly(worker, self.completion(key))
        {
            Ok(()) => return Ok(()),
            Err(callback) => callback,
        };
        let (registered, itself) = while_adding_to(self.shared.id, || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.on_done(callback)))
        });
        match registered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) if itself => self.refuse_itself(key),
            Ok(Err(callback)) => self.watch_with_thread(worker, key, callback),
            Err(payload) => {
                // We cannot know whether the worker kept the callback; a
                // watcher thread makes sure we learn of its end. Should the
                // callback fire as well, its release finds nothing to do.
                self.contained("on_done", &*payload);
                self.watch_with_thread(worker, key, self.completion(key))
            }
        }
    }

    /// The callback that releases binding `key` with the worker's outcome.
    fn completion(&self, key: Key) -> DoneCallback {
        let catacomb = self.clone();
        Box::new(move |outcome| outside_add(|| catacomb.released(key, outcome)))
    }

    fn refuse_itself(&self, key: Key) -> Result<(), AddError> {
        if let Some(worker) = self.unbind(key) {
            self.discard(worker);
        }
        tracing::warn!(catacomb = %self.shared.name, "refused to add a catacomb to itself");
        Err(AddError::ItSelf {
            catacomb: self.shared.name.clone(),
        })
    }

    /// Waits for a worker that cannot notify its completion on a thread of
    /// its own. The thread is started and recorded under the state lock (no
    /// user code runs there), so the finishing thread, which needs the same
    /// lock, always finds it to join.
    fn watch_with_thread(
        &self,
        worker: &SharedWorker,
        key: Key,
        callback: DoneCallback,
    ) -> Result<(), AddError> {
        // A wrapper that forwards only its dead signal to this catacomb.
        let signal =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.dead_signal()));
        if let Ok(Some(signal)) = signal {
            if signal.same_channel(&self.dead()) {
                return self.refuse_itself(key);
            }
        }
        let name = format!("{}-watcher", self.shared.name);
        let spawned = {
            let mut state = self.lock_state();
            reap_finished(&mut state.watchers);
            let what = format!("wait of a worker bound to catacomb {:?}", self.shared.name);
            let watched = worker.clone();
            let catacomb = self.clone();
            let spawned = worker_core::threads::spawn_named(name, move || {
                worker_core::threads::serving(catacomb.shared.id, || {
                    let outcome = worker_core::catch_panic(|| what, || watched.wait());
                    callback(&outcome);
                    catacomb.discard(watched);
                });
            });
            spawned.map(|handle| state.watchers.push(handle))
        };
        spawned.map_err(|e| {
            let error = AddError::NoWatcher {
                catacomb: self.shared.name.clone(),
                source: IoError::from(e),
            };
            tracing::error!(catacomb = %self.shared.name, error = %error, "cannot watch a worker");
            // Unbound first, so that killing the catacomb does not count on
            // its end, which nothing would report.
            if let Some(worker) = self.unbind(key) {
                self.discard(worker);
            }
            self.kill_worker(worker);
            self.kill_with(Some(Error::new(error.clone())));
            error
        })
    }
}

/// Joins the watcher threads that have already returned, so a long-lived
/// catacomb that watches many short-lived workers does not pile them up.
fn reap_finished(watchers: &mut Vec<std::thread::JoinHandle<()>>) {
    let mut i = 0;
    while i < watchers.len() {
        if watchers[i].is_finished() {
            // Returned already: joining does not block.
            let _ = watchers.swap_remove(i).join();
        } else {
            i += 1;
        }
    }
}

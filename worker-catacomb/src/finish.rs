//! How a catacomb becomes dead, once its work has returned.
//!
//! The work thread does it, in order:
//!
//! 1. records the work's result as a kill, which has every bound worker
//!    killed by errands (see [`errands`](crate::errands));
//! 2. waits until every binding has been released (each bound worker has
//!    reported its end) and every errand is done (so each ended worker has
//!    been waited for, which joins its threads, and let go of), driving
//!    the errand queue's stall rule meanwhile, so that kills that block
//!    are worked around;
//! 3. joins the errand queue's threads and the watcher threads;
//! 4. marks the catacomb dead, which runs its completion callbacks, and
//!    returns; [`Catacomb::wait`] joins the work thread.
//!
//! A panic in a worker's code along the way is that worker's failure and is
//! recorded before step 4, so it becomes the catacomb's error rather than
//! lost. Should this code itself panic (a bug), the catacomb is marked dead
//! with that panic as its error anyway, so that no `wait` hangs.

use std::time::Instant;

use worker_core::events::ShutdownCause;
use worker_core::{Error, Panicked};

use crate::catacomb::Catacomb;

impl Catacomb {
    /// Ends the work and the catacomb (see the [module docs](self)). Runs
    /// on the work thread (or on the invoking thread when the work thread
    /// could not start).
    pub(crate) fn finish(&self, result: Result<(), Error>) {
        let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.finish_in_order(result);
        }));
        if let Err(payload) = finished {
            let what = format!("finishing catacomb {:?}", self.shared.name);
            let error = Panicked::from_payload(what, &*payload);
            tracing::error!(catacomb = %self.shared.name, %error, "catacomb bug; marking it dead");
            self.shared.tomb.done(Err(Error::new(error)));
        }
    }

    fn finish_in_order(&self, result: Result<(), Error>) {
        if let Err(e) = &result {
            tracing::debug!(catacomb = %self.shared.name, error = %e, "catacomb work failed");
        }
        // The cause is the error the catacomb dies of, whoever recorded
        // it: a bound worker's error may have woken the work before that
        // worker's own shutdown began.
        self.record(result.err());
        let cause = match self.shared.tomb.err().is_some() {
            true => ShutdownCause::Fatal { worker: None },
            false => ShutdownCause::Finished,
        };
        self.close(cause);
        self.settle();
        let (queue, watchers) = {
            let mut state = self.lock_state();
            (
                state.errands.take_queue(),
                std::mem::take(&mut state.watchers),
            )
        };
        if let Some(mut queue) = queue {
            // Every errand is done: its threads are idle, and leave as soon
            // as the queue closes.
            queue.join();
        }
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

    /// Waits until no binding is held, no errand is pending and no killer
    /// holds lent workers (so every bound worker has ended and been waited
    /// for), applying the errand queue's stall rule meanwhile.
    fn settle(&self) {
        let mut state = self.lock_state();
        state.work_done = true;
        loop {
            let (next_stall, stranded) = state.errands.drive(&self.shared);
            if !stranded.is_empty() {
                drop(state);
                self.run_stranded(stranded);
                state = self.lock_state();
                continue;
            }
            let pending = self
                .shared
                .errands_pending
                .load(std::sync::atomic::Ordering::Acquire);
            if state.bindings.is_empty() && pending == 0 && state.killing_here == 0 {
                debug_assert!(state.ended.is_empty(), "reaped before its errand ended");
                return;
            }
            state = match next_stall {
                None => self
                    .shared
                    .settled
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(at) => {
                    let timeout = at.saturating_duration_since(Instant::now());
                    self.shared
                        .settled
                        .wait_timeout(state, timeout)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

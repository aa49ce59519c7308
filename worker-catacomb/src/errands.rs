//! Errands: the calls into bound workers' code (`kill`, `wait` and the
//! last `Drop`) that the catacomb makes off its callers' threads.
//!
//! (The library's own thread-free workers are the exception: killing them
//! runs no user code, so a kill of the catacomb kills them on its
//! caller's thread, as a supervisor's loop does; see
//! `Catacomb::kill_here`.)
//!
//! # Why not on the caller's thread
//!
//! Whoever kills a catacomb may be a runner's or an engine's thread, or a
//! bound worker's completion callback: none of them may be held up by a
//! bound worker whose `kill` blocks (which breaks the worker contract, but
//! a supervisor exists to survive such code). And a bound worker must be
//! waited for before the catacomb is dead, since its `wait` is what joins
//! its threads; a worker whose end was reported by a callback running on
//! its own thread cannot be waited for there.
//!
//! # How
//!
//! Errands are run by a [`StartQueue`] that the catacomb keeps in its state
//! (its methods run no user code, so they may run under the state lock):
//! threads named `<catacomb>-stop-<n>` take errands one after another, one
//! that blocks holding up only its own thread. There are two kinds:
//!
//! - a kill errand works through a [`KillBatch`](crate::kill_batch), the workers bound when
//!   the catacomb was killed; a worker that reports its end inside its own
//!   kill (a worker without threads) is waited for and let go of by the
//!   same errand;
//! - a reap errand waits for every worker that has reported its end
//!   elsewhere (on its own thread, say), and lets go of it; one runs at a
//!   time, taking the ended workers a batch at a time.
//!
//! The queue runs one thread while errands make progress. While the
//! catacomb finishes (after its work has returned) its work thread drives
//! the queue's stall rule: when errands wait and none has finished for the
//! stall time, another thread is started. So a blocked kill delays the
//! others by about the stall time, and a catacomb that never kills
//! anything, and whose workers never end while it lives, costs no thread.
//!
//! `pending` counts the errands handed to the queue and not yet done: the
//! catacomb is not dead before it is zero, and the queue's threads are
//! joined before it is dead. A panic in an errand's user code is the
//! worker's failure, and so the catacomb's error.
//!
//! # Knowing the threads
//!
//! While a thread runs an errand (or watches a worker) for a catacomb, a
//! thread-local names that catacomb, so that its `wait`, called from the
//! worker's code there, answers with an error at once rather than waiting
//! for itself.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crossbeam_channel::{Receiver, Sender};
use worker_core::{Panicked, SharedWorker, StartQueue};

use crate::catacomb::{Catacomb, Shared};
use crate::kill_batch::KillBatch;

/// Calls into bound workers' code.
pub(crate) enum Errand {
    /// Kill bound workers: the catacomb is dying.
    Kill(Arc<KillBatch>),
    /// Wait for the workers that have reported their end, and let go of
    /// them, until none is left.
    Reap,
    /// Deliver the queued events to the hooks.
    Deliver,
}

/// The catacomb's errand queue, kept in its state.
#[derive(Default)]
pub(crate) struct Errands {
    /// Started at the first errand; taken out to be joined when the
    /// catacomb finishes.
    queue: Option<StartQueue<Errand>>,
    /// Where the queue puts errands that no thread could be started for,
    /// to be run on the caller's thread instead.
    stranded: Option<Receiver<Errand>>,
    /// Errands pushed so far.
    pushed: usize,
    /// Errands reported to the queue as finished so far.
    reported: usize,
}

impl Errands {
    /// Queues `errand`; it runs once [`flush`](Errands::flush) is called.
    pub(crate) fn push(&mut self, catacomb: &Catacomb, errand: Errand) {
        let shared = &catacomb.shared;
        let queue = match &mut self.queue {
            Some(queue) => queue,
            None => {
                let dying = matches!(errand, Errand::Kill(_));
                let (queue, stranded) = new_queue(catacomb, dying);
                self.stranded = Some(stranded);
                self.queue.insert(queue)
            }
        };
        // Counted before any thread can run it.
        shared.errands_pending.fetch_add(1, Ordering::Relaxed);
        self.pushed += 1;
        queue.push(errand);
    }

    /// Hands the queued errands to the queue's threads; returns those that
    /// no thread could be had for, to run on the caller's thread.
    #[must_use]
    pub(crate) fn flush(&mut self, shared: &Shared) -> Vec<Errand> {
        self.catch_up(shared);
        if let Some(queue) = &mut self.queue {
            let watched = queue.stall_deadline().is_some();
            queue.flush();
            if !watched && queue.stall_deadline().is_some() {
                // Errands wait now: the finishing thread, if it waits for
                // them, must learn when to apply the stall rule.
                shared.settled.notify_all();
            }
        }
        self.take_stranded()
    }

    /// Applies the queue's stall rule if its time has come, and says when
    /// to look again (`None`: when woken). Returns the errands no thread
    /// could be had for, as [`flush`](Errands::flush) does.
    #[must_use]
    pub(crate) fn drive(&mut self, shared: &Shared) -> (Option<std::time::Instant>, Vec<Errand>) {
        self.catch_up(shared);
        let Some(queue) = &mut self.queue else {
            return (None, Vec::new());
        };
        queue.check_stall();
        let next = queue.stall_deadline();
        (next, self.take_stranded())
    }

    /// Tells the queue how many errands have finished since it was last
    /// told: their threads are free again, and the stall rule sees
    /// progress. (Errands count themselves in an atomic rather than take
    /// the state lock to say so.)
    fn catch_up(&mut self, shared: &Shared) {
        let Some(queue) = &mut self.queue else {
            return;
        };
        // Errands are counted pending when pushed, under the lock that
        // guards `pushed`, so there are never more pending than pushed.
        let done = self.pushed - shared.errands_pending.load(Ordering::Acquire);
        debug_assert!(done >= self.reported, "errands finished twice");
        for _ in self.reported..done {
            queue.finished();
        }
        self.reported = self.reported.max(done);
    }

    fn take_stranded(&mut self) -> Vec<Errand> {
        match &self.stranded {
            Some(stranded) if !stranded.is_empty() => stranded.try_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Takes the queue out, to be joined outside the state lock once no
    /// errand is pending. Later errands would start a new queue; none come,
    /// since the catacomb is closed by then.
    pub(crate) fn take_queue(&mut self) -> Option<StartQueue<Errand>> {
        self.stranded = None;
        self.queue.take()
    }
}

/// The catacomb's queue, and where it puts errands it cannot run.
///
/// A queue started by a kill belongs to a catacomb that is finishing: its
/// threads do not linger once out of errands, since the finishing thread
/// would only have to wake them to join them. (That saves a few percent of
/// the S3 bench's kill phase; the threads of a queue started earlier, to
/// reap workers that end while the catacomb lives, linger as usual.)
fn new_queue(catacomb: &Catacomb, dying: bool) -> (StartQueue<Errand>, Receiver<Errand>) {
    // Weak: the queue lives in the catacomb.
    let weak: Weak<Shared> = Arc::downgrade(&catacomb.shared);
    let (stranded_tx, stranded): (Sender<Errand>, _) = crossbeam_channel::unbounded();
    let queue = StartQueue::new(
        format!("{}-stop", catacomb.shared.name),
        move |errand| {
            // The catacomb outlives its errands: its work thread holds it
            // until every errand is done and the queue joined.
            if let Some(shared) = weak.upgrade() {
                Catacomb { shared }.run_errand(errand, true);
            }
        },
        move |errand, error| {
            tracing::error!(%error, "no thread for a catacomb errand; running it on the caller's thread");
            let _ = stranded_tx.send(errand);
        },
    )
    // One thread while errands make progress: they are short, and two
    // would only contend for the state lock. The stall rule adds more.
    .limit(1);
    let queue = if dying {
        queue.linger(std::time::Duration::ZERO)
    } else {
        queue
    };
    (queue, stranded)
}

impl Catacomb {
    /// Runs one errand, containing its panics, and counts it done.
    /// `queued`: on one of the queue's threads (rather than stranded on
    /// the caller's).
    fn run_errand(&self, errand: Errand, queued: bool) {
        worker_core::threads::serving(self.shared.id, || match errand {
            Errand::Kill(batch) => self.run_kills(batch, queued),
            Errand::Reap => self.reap_ended(),
            Errand::Deliver => self.deliver_events(),
        });
        if self.shared.errands_pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The finishing thread may wait for the last errand. Taking
            // the lock orders this after its check, so it is not missed.
            let _state = self.lock_state();
            self.shared.settled.notify_all();
        }
    }

    /// Runs errands that no thread could be had for, here.
    pub(crate) fn run_stranded(&self, stranded: Vec<Errand>) {
        for errand in stranded {
            self.run_errand(errand, false);
        }
    }

    /// Reaps the workers that have reported their end, a batch at a time,
    /// until none is left. One such errand runs at a time: a worker whose
    /// `wait` blocks holds up the others' reaping, which cannot make the
    /// catacomb dead any later than that worker itself does.
    fn reap_ended(&self) {
        loop {
            let ended = {
                let mut state = self.lock_state();
                if state.ended.is_empty() {
                    state.reaping = false;
                    state.ended = Vec::new();
                    return;
                }
                std::mem::take(&mut state.ended)
            };
            for worker in ended {
                self.reap(worker);
            }
        }
    }

    /// Waits for a worker that has reported its end (which joins its
    /// threads), then lets go of it.
    pub(crate) fn reap(&self, worker: SharedWorker) {
        self.wait_for(&worker);
        self.discard(worker);
    }

    /// Waits for a worker that has reported its end; its outcome came with
    /// its completion, so `wait` only has to return.
    pub(crate) fn wait_for(&self, worker: &SharedWorker) {
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.wait()));
        if let Err(payload) = waited {
            self.contained("wait", &*payload);
        }
    }

    /// Drops a reference to a bound worker, which may be the last: a panic
    /// in the worker's `Drop` becomes the catacomb's error.
    pub(crate) fn discard(&self, worker: SharedWorker) {
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(worker)));
        if let Err(payload) = dropped {
            self.contained("drop", &*payload);
        }
    }

    /// Records a panic in a bound worker's `what` (its `kill`, `wait`,
    /// `drop`...) as the catacomb's error: it is that worker's failure.
    pub(crate) fn contained(&self, what: &str, payload: &(dyn std::any::Any + Send)) {
        let what = format!(
            "{what} of a worker bound to catacomb {:?}",
            self.shared.name
        );
        let error = Panicked::from_payload(what, payload);
        tracing::error!(catacomb = %self.shared.name, error = %error, "bound worker panicked");
        self.kill_with(Some(worker_core::Error::new(error)));
    }
}

//! Killing the bound workers of a dying catacomb: the batch its kill
//! errands share (see [`errands`](crate::errands) for how errands run).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use worker_core::SharedWorker;

use crate::bindings::Key;
use crate::catacomb::{Catacomb, State};
use crate::errands::{Errand, Errands};

/// The workers one kill of the catacomb must kill, lent by its bindings
/// and shared by the errands that kill them: each claims the next worker
/// until none is left.
///
/// One errand per worker would cost a trip through the queue for each of
/// them (2-4 times the cost of the kills themselves, for workers without
/// threads). Instead a batch always has an errand waiting in the queue
/// behind the one at work (it is queued with two, and an errand that
/// starts on it as the last one waiting queues another if workers are
/// left): if a kill blocks, the waiting errand is what the stall rule
/// starts a thread for, and it carries on with the rest. A batch whose
/// kills all return costs two errands.
///
/// A worker that ends inside its kill is waited for at once by the errand
/// that killed it. When the last errand is done with the batch, it lets go
/// of those workers and gives the others back to their bindings (or to
/// the reaping errand, if they have ended meanwhile).
pub(crate) struct KillBatch {
    workers: Box<[(Key, SharedWorker)]>,
    /// Per worker: ended inside its kill, and waited for.
    reaped: Box<[AtomicBool]>,
    /// The next worker to claim.
    next: AtomicUsize,
    /// Errands queued for this batch that have not started.
    waiting: AtomicUsize,
}

impl KillBatch {
    /// Queues the errands that kill `workers` (see [`KillBatch`]).
    pub(crate) fn push(
        errands: &mut Errands,
        catacomb: &Catacomb,
        workers: Vec<(Key, SharedWorker)>,
    ) {
        let reaped = workers.iter().map(|_| AtomicBool::new(false)).collect();
        let batch = Arc::new(KillBatch {
            workers: workers.into_boxed_slice(),
            reaped,
            next: AtomicUsize::new(0),
            waiting: AtomicUsize::new(2),
        });
        errands.push(catacomb, Errand::Kill(Arc::clone(&batch)));
        errands.push(catacomb, Errand::Kill(batch));
    }

    fn is_empty(&self) -> bool {
        self.next.load(Ordering::Relaxed) >= self.workers.len()
    }
}

thread_local! {
    /// The binding whose worker this thread is killing for a catacomb (by
    /// id), and whether that worker reported its end during the kill.
    static KILLING: Cell<Option<(u64, Key, bool)>> = const { Cell::new(None) };
}

/// Called when a catacomb releases binding `key` whose worker is lent to
/// a kill errand: if that worker ended inside the kill this thread is
/// making, marks it so, and the errand waits for it at once (it has just
/// ended: its `wait` returns at once, or as soon as its threads have).
pub(crate) fn ended_in_its_kill(id: u64, key: Key) {
    KILLING.with(|killing| {
        if let Some((killer, killed, _)) = killing.get() {
            if killer == id && killed == key {
                killing.set(Some((id, key, true)));
            }
        }
    });
}

impl Catacomb {
    /// Kills the workers of `batch` one after the other, until none is
    /// left; a worker that ends inside its kill is waited for here too.
    /// (Stranded on the caller's thread, where no queue thread could be
    /// had, it queues no other errand: that one would be stranded too.)
    pub(crate) fn run_kills(&self, batch: Arc<KillBatch>, queued: bool) {
        let last_waiting = batch.waiting.fetch_sub(1, Ordering::AcqRel) == 1;
        if !batch.is_empty() {
            if queued && last_waiting {
                // Keep an errand waiting on this batch, in case a kill blocks.
                batch.waiting.fetch_add(1, Ordering::AcqRel);
                let stranded = {
                    let mut state = self.lock_state();
                    state.errands.push(self, Errand::Kill(Arc::clone(&batch)));
                    state.errands.flush(&self.shared)
                };
                self.run_stranded(stranded);
            }
            self.kill_batch(&batch);
        }
        if let Some(batch) = Arc::into_inner(batch) {
            self.close_batch(batch);
        }
    }

    fn kill_batch(&self, batch: &KillBatch) {
        loop {
            let i = batch.next.fetch_add(1, Ordering::Relaxed);
            let Some((key, worker)) = batch.workers.get(i) else {
                return;
            };
            // Restored after, in case the kill runs other errands here.
            let previous = KILLING.with(|k| k.replace(Some((self.shared.id, *key, false))));
            self.kill_worker(worker);
            let mine = KILLING.with(|k| k.replace(previous));
            if mine.is_some_and(|(_, _, ended)| ended) {
                self.wait_for(worker);
                batch.reaped[i].store(true, Ordering::Relaxed);
            }
        }
    }

    /// Done with a batch (this was its last errand): lets go of the
    /// workers waited for, and gives the others back to their bindings, or
    /// to the reaping errand if they have ended meanwhile.
    fn close_batch(&self, batch: KillBatch) {
        let KillBatch {
            workers, reaped, ..
        } = batch;
        let mut running = Vec::new();
        for ((key, worker), reaped) in workers.into_vec().into_iter().zip(reaped.iter()) {
            if reaped.load(Ordering::Relaxed) {
                self.discard(worker);
            } else {
                running.push((key, worker));
            }
        }
        if running.is_empty() {
            return;
        }
        let stranded = self.lend_back(&mut self.lock_state(), running);
        self.run_stranded(stranded);
    }

    /// Gives killed workers that may still run back to their bindings, or
    /// to the reaping errand if they have ended meanwhile (their bindings
    /// are gone). Returns the errands no thread could be had for.
    #[must_use]
    pub(crate) fn lend_back(
        &self,
        state: &mut State,
        workers: Vec<(Key, SharedWorker)>,
    ) -> Vec<Errand> {
        let mut stranded = Vec::new();
        for (key, worker) in workers {
            if let Err(ended) = state.bindings.lend_back(key, worker) {
                stranded.extend(self.reap_later(state, ended));
            }
        }
        stranded
    }
}

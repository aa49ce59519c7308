//! The handshake between the owner handing jobs over and a drainer
//! leaving; see `README.md` beside this file for why it is needed and why
//! it is enough. Model-checked with loom (`loom_handshake` below).

use crate::sync::{AtomicUsize, Ordering, fence};

/// How many drainers are running, counted from before their thread starts
/// until they decide to end.
#[derive(Debug, Default)]
pub(crate) struct Drainers {
    running: AtomicUsize,
}

impl Drainers {
    /// How many run now (a moment's view).
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// A drainer is about to be started: count it before its thread
    /// exists, so the owner never starts two for one gap.
    pub(crate) fn arrive(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    /// A drainer's thread could not be started after all; returns how many
    /// are left.
    pub(crate) fn not_started(&self) -> usize {
        self.running.fetch_sub(1, Ordering::SeqCst) - 1
    }

    /// The owner has just put jobs in the queue: how many drainers run, as
    /// seen after the jobs were published.
    pub(crate) fn after_publish(&self) -> usize {
        // Pairs with the fence in `try_leave`.
        fence(Ordering::SeqCst);
        self.running.load(Ordering::SeqCst)
    }

    /// A drainer found the queue empty for its linger time and wants to
    /// end: returns whether it may. It stops counting itself first, then
    /// looks at the queue again; a job that came meanwhile keeps it (the
    /// owner may have counted on it).
    pub(crate) fn try_leave(&self, queue_is_empty: impl Fn() -> bool) -> bool {
        self.running.fetch_sub(1, Ordering::SeqCst);
        // Pairs with the fence in `after_publish`.
        fence(Ordering::SeqCst);
        if queue_is_empty() {
            return true;
        }
        self.running.fetch_add(1, Ordering::SeqCst);
        false
    }
}

#[cfg(all(test, loom))]
mod loom_handshake {
    use super::Drainers;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread;

    /// One drainer leaves as the owner publishes one job: in every
    /// interleaving, the drainer stays or the owner sees it gone (and
    /// starts another). The job is never stranded.
    #[test]
    fn loom_handshake_no_job_is_stranded() {
        loom::model(|| {
            let drainers = Arc::new(Drainers::default());
            // The queue, as a count of jobs not taken.
            let queued = Arc::new(AtomicUsize::new(0));
            drainers.arrive();
            let leaving = {
                let drainers = drainers.clone();
                let queued = queued.clone();
                thread::spawn(move || !drainers.try_leave(|| queued.load(Ordering::SeqCst) == 0))
            };
            queued.fetch_add(1, Ordering::SeqCst);
            let owner_starts_one = drainers.after_publish() < 1;
            let drainer_stays = leaving.join().unwrap();
            assert!(drainer_stays || owner_starts_one, "the job was stranded");
        });
    }

    /// Two drainers leave as the owner publishes a job: at least one stays
    /// or the owner starts one.
    #[test]
    fn loom_handshake_two_leaving_drainers() {
        loom::model(|| {
            let drainers = Arc::new(Drainers::default());
            let queued = Arc::new(AtomicUsize::new(0));
            drainers.arrive();
            drainers.arrive();
            let leave = |drainers: Arc<Drainers>, queued: Arc<AtomicUsize>| {
                thread::spawn(move || !drainers.try_leave(|| queued.load(Ordering::SeqCst) == 0))
            };
            let a = leave(drainers.clone(), queued.clone());
            let b = leave(drainers.clone(), queued.clone());
            queued.fetch_add(1, Ordering::SeqCst);
            let owner_starts_one = drainers.after_publish() < 1;
            let stays = a.join().unwrap() | b.join().unwrap();
            assert!(stays || owner_starts_one, "the job was stranded");
        });
    }
}

//! A fake watcher: a worker with a change channel the test fills by hand.

use std::sync::Mutex;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use worker_core::{Error, Worker};

use crate::workers::{ErrorWorker, error_worker};

/// [`FakeWatcher::new`] was asked to preload more changes than the channel
/// holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot preload {preload} changes into a channel of capacity {capacity}")]
pub struct PreloadTooLarge {
    /// The requested capacity.
    pub capacity: usize,
    /// The requested number of preloaded changes.
    pub preload: usize,
}

/// A stand-in for a watcher (Go's `NotAWatcher`): a worker that runs until
/// killed, with a channel of change notifications the test sends itself
/// with [`ping`](Self::ping) and ends with [`close`](Self::close).
///
/// Code under test reads [`changes`](Self::changes) as it would a real
/// watcher's, and stops the watcher through [`Worker`] or
/// [`stop`](Self::stop).
///
/// ```
/// use worker_core::Worker;
/// use worker_testing::FakeWatcher;
///
/// let watcher = FakeWatcher::new(4, 1).unwrap();
/// let changes = watcher.changes();
/// assert!(changes.try_recv().is_ok());  // the preloaded change
/// watcher.ping();
/// assert!(changes.try_recv().is_ok());
/// watcher.close();
/// assert!(changes.recv().is_err());      // closed: no more changes
/// assert!(watcher.stop().is_ok());
/// ```
#[derive(Debug)]
pub struct FakeWatcher {
    worker: ErrorWorker,
    sender: Mutex<Option<Sender<()>>>,
    changes: Receiver<()>,
}

impl FakeWatcher {
    /// A watcher whose change channel holds `capacity` notifications, with
    /// `preload` of them already sent.
    pub fn new(capacity: usize, preload: usize) -> Result<Self, PreloadTooLarge> {
        if capacity < preload {
            return Err(PreloadTooLarge { capacity, preload });
        }
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        for _ in 0..preload {
            tx.try_send(())
                .expect("the channel has room for the preload");
        }
        Ok(FakeWatcher {
            worker: error_worker(None),
            sender: Mutex::new(Some(tx)),
            changes: rx,
        })
    }

    /// The channel of change notifications; it disconnects after
    /// [`close`](Self::close) once drained.
    pub fn changes(&self) -> Receiver<()> {
        self.changes.clone()
    }

    fn sender(&self) -> Option<Sender<()>> {
        self.sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends one change notification, blocking while the channel is full.
    /// Does nothing after [`close`](Self::close).
    pub fn ping(&self) {
        if let Some(tx) = self.sender() {
            // The watcher holds a receiver itself, so the send cannot fail.
            let _ = tx.send(());
        }
    }

    /// Sends one change notification if there is room; says whether it did.
    pub fn try_ping(&self) -> bool {
        match self.sender() {
            Some(tx) => !matches!(tx.try_send(()), Err(TrySendError::Full(()))),
            None => false,
        }
    }

    /// Closes the change channel: readers see it disconnect once they have
    /// drained what was sent. Idempotent.
    pub fn close(&self) {
        self.sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    /// Stops the watcher (kill, then wait) and returns how it ended.
    pub fn stop(&self) -> Result<(), Error> {
        worker_core::stop(&self.worker)
    }

    /// The watcher's error so far: `None` while it runs or when it ended
    /// cleanly.
    pub fn err(&self) -> Option<Error> {
        self.worker.tomb().err()
    }
}

impl Worker for FakeWatcher {
    worker_core::delegate_worker!(worker);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_larger_than_capacity_is_refused() {
        assert_eq!(
            FakeWatcher::new(1, 2).unwrap_err(),
            PreloadTooLarge {
                capacity: 1,
                preload: 2
            }
        );
        assert_eq!(
            PreloadTooLarge {
                capacity: 1,
                preload: 2
            }
            .to_string(),
            "cannot preload 2 changes into a channel of capacity 1"
        );
    }

    #[test]
    fn preload_fills_the_channel() {
        let w = FakeWatcher::new(2, 2).unwrap();
        assert_eq!(w.changes().len(), 2);
        assert!(!w.try_ping());
        w.changes().recv().unwrap();
        assert!(w.try_ping());
    }

    #[test]
    fn stop_really_stops_and_err_reports_the_truth() {
        let w = FakeWatcher::new(0, 0).unwrap();
        assert!(w.err().is_none());
        assert!(w.tomb_is_alive());
        assert!(w.stop().is_ok());
        assert!(!w.tomb_is_alive());
        assert!(w.err().is_none());
    }

    #[test]
    fn close_disconnects_after_the_pending_changes() {
        let w = FakeWatcher::new(3, 2).unwrap();
        w.close();
        w.close();
        w.ping();
        assert!(!w.try_ping());
        let changes = w.changes();
        assert!(changes.recv().is_ok());
        assert!(changes.recv().is_ok());
        assert!(changes.recv().is_err());
    }

    impl FakeWatcher {
        fn tomb_is_alive(&self) -> bool {
            self.worker.tomb().is_alive()
        }
    }
}

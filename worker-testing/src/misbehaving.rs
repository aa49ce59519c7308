//! Workers that break the rules, for testing that a supervisor survives
//! them: one whose `Drop` panics, one whose `kill` blocks, one whose `Drop`
//! blocks, one whose report blocks and which says where it was dropped,
//! and one whose report waits for its own supervisor. A supervisor must at worst report such a worker stuck; it must
//! never freeze, crash, or lose another worker's error because of it.
//!
//! Each is a thread-free [`Tomb`]-based worker, so supervisors watch it
//! without a thread; the blocking ones block until their [`Gate`] opens,
//! and say (on the gate) when they have started blocking, so a test
//! waits for facts, not for time.
//!
//! ```
//! use std::sync::Arc;
//! use worker_core::{Worker, stop};
//! use worker_testing::misbehaving::BlockingKill;
//!
//! let (worker, gate) = BlockingKill::new();
//! let worker = Arc::new(worker);
//! let killer = {
//!     let worker = worker.clone();
//!     std::thread::spawn(move || worker.kill())
//! };
//! gate.wait_entered().unwrap(); // kill() is now blocked
//! gate.open();
//! killer.join().unwrap();
//! assert!(worker.wait().is_ok());
//! ```

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use worker_core::{Error, Report, Reporter, SharedWorker, Tomb, Worker};

use crate::KILL_TIMEOUT;

/// Holds a misbehaving worker's blocking call until opened; tells when the
/// call has started blocking.
#[derive(Debug)]
pub struct Gate {
    /// Dropped to open.
    open: Mutex<Option<Sender<Infallible>>>,
    entered: Receiver<()>,
}

/// The worker's side of a [`Gate`].
#[derive(Debug)]
struct Latch {
    opened: Receiver<Infallible>,
    entered: Sender<()>,
}

impl Latch {
    /// Says it has started blocking, then blocks until the gate opens.
    fn block(&self) {
        let _ = self.entered.try_send(());
        let _ = self.opened.recv();
    }
}

fn gate() -> (Gate, Latch) {
    let (open, opened) = bounded(0);
    let (entered_tx, entered) = bounded(64);
    (
        Gate {
            open: Mutex::new(Some(open)),
            entered,
        },
        Latch {
            opened,
            entered: entered_tx,
        },
    )
}

impl Gate {
    /// Lets every blocked (and future) call through.
    pub fn open(&self) {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    /// Waits until the worker's blocking call has started blocking, for at
    /// most [`KILL_TIMEOUT`].
    pub fn wait_entered(&self) -> Result<(), Error> {
        self.wait_entered_within(KILL_TIMEOUT)
    }

    /// Waits until the worker's blocking call has started blocking, for at
    /// most `timeout`.
    pub fn wait_entered_within(&self, timeout: Duration) -> Result<(), Error> {
        self.entered.recv_timeout(timeout).map_err(|_| {
            Error::msg(format!(
                "the blocking call was not entered within {timeout:?}"
            ))
        })
    }
}

impl Drop for Gate {
    /// A forgotten gate must not leave a thread blocked forever.
    fn drop(&mut self) {
        self.open();
    }
}

/// A worker whose `Drop` panics. Otherwise a well-behaved thread-free
/// worker: killing it finishes it.
#[derive(Debug, Default)]
pub struct PanicOnDrop {
    tomb: Tomb,
}

impl PanicOnDrop {
    /// A new, alive worker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Its tomb, to finish it with an error, say.
    pub fn tomb(&self) -> &Tomb {
        &self.tomb
    }
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("PanicOnDrop was dropped");
        }
    }
}

impl Worker for PanicOnDrop {
    fn kill(&self) {
        self.tomb.kill(None);
        self.tomb.done(Ok(()));
    }

    worker_core::delegate_worker!(tomb, except kill);
}

/// A worker whose `kill` blocks until its [`Gate`] opens (then kills it).
/// A contract breaker: `kill` must return at once.
#[derive(Debug)]
pub struct BlockingKill {
    tomb: Tomb,
    latch: Latch,
}

impl BlockingKill {
    /// A new, alive worker and the gate that holds its `kill`.
    pub fn new() -> (Self, Gate) {
        let (gate, latch) = gate();
        (
            BlockingKill {
                tomb: Tomb::new(),
                latch,
            },
            gate,
        )
    }
}

impl Worker for BlockingKill {
    fn kill(&self) {
        self.latch.block();
        self.tomb.kill(None);
        self.tomb.done(Ok(()));
    }

    worker_core::delegate_worker!(tomb, except kill);
}

/// A worker whose `Drop` blocks until its [`Gate`] opens: a slow `Drop`
/// (flushing a buffer over the network, say).
#[derive(Debug)]
pub struct SlowDrop {
    tomb: Tomb,
    latch: Latch,
}

impl SlowDrop {
    /// A new, alive worker and the gate that holds its `Drop`.
    pub fn new() -> (Self, Gate) {
        let (gate, latch) = gate();
        (
            SlowDrop {
                tomb: Tomb::new(),
                latch,
            },
            gate,
        )
    }
}

impl Drop for SlowDrop {
    fn drop(&mut self) {
        self.latch.block();
    }
}

impl Worker for SlowDrop {
    fn kill(&self) {
        self.tomb.kill(None);
        self.tomb.done(Ok(()));
    }

    worker_core::delegate_worker!(tomb, except kill);
}

/// A worker whose report blocks until its [`Gate`] opens, and which
/// records the thread its `Drop` ran on ([`DroppedOn`]): it catches a
/// caller that holds a worker's last reference while the supervisor lets
/// go of it (a report in progress, say), and so runs the worker's `Drop`
/// itself, or a supervisor whose `wait` returns before it was dropped.
#[derive(Debug)]
pub struct SlowReport {
    tomb: Tomb,
    latch: Latch,
    dropped: DroppedOn,
}

/// Where a [`SlowReport`] was dropped.
#[derive(Debug, Clone, Default)]
pub struct DroppedOn(Arc<Mutex<Option<String>>>);

impl DroppedOn {
    /// The name of the thread that dropped it (`"<unnamed>"` for a thread
    /// without a name), or `None` while it lives.
    pub fn thread(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl SlowReport {
    /// A new, alive worker, the gate that holds its report, and where it
    /// will have been dropped.
    pub fn new() -> (Self, Gate, DroppedOn) {
        let (gate, latch) = gate();
        let dropped = DroppedOn::default();
        let worker = SlowReport {
            tomb: Tomb::new(),
            latch,
            dropped: dropped.clone(),
        };
        (worker, gate, dropped)
    }
}

impl Reporter for SlowReport {
    fn report(&self) -> Report {
        self.latch.block();
        Report::new("reported late")
    }
}

impl Drop for SlowReport {
    fn drop(&mut self) {
        let thread = std::thread::current()
            .name()
            .unwrap_or("<unnamed>")
            .to_owned();
        *self
            .dropped
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(thread);
    }
}

impl Worker for SlowReport {
    fn kill(&self) {
        self.tomb.kill(None);
        self.tomb.done(Ok(()));
    }

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }

    worker_core::delegate_worker!(tomb, except kill);
}

/// A worker whose report waits for another worker (its own supervisor,
/// say) and says what that wait returned: a supervisor must refuse a wait
/// made from within its own report, which holds workers it lent.
#[derive(Debug)]
pub struct WaitsInReport {
    tomb: Tomb,
    target: SharedWorker,
    waited: Sender<Result<(), Error>>,
}

impl WaitsInReport {
    /// A new, alive worker whose report waits for `target`, and where the
    /// results of those waits go.
    pub fn new(target: SharedWorker) -> (Self, Receiver<Result<(), Error>>) {
        let (waited, results) = crossbeam_channel::unbounded();
        let worker = WaitsInReport {
            tomb: Tomb::new(),
            target,
            waited,
        };
        (worker, results)
    }
}

impl Reporter for WaitsInReport {
    fn report(&self) -> Report {
        let _ = self.waited.send(self.target.wait());
        Report::new("waited")
    }
}

impl Worker for WaitsInReport {
    fn kill(&self) {
        self.tomb.kill(None);
        self.tomb.done(Ok(()));
    }

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }

    worker_core::delegate_worker!(tomb, except kill);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_on_drop_panics_only_when_dropped() {
        let w = PanicOnDrop::new();
        w.kill();
        assert!(w.wait().is_ok());
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(w)));
        assert!(dropped.is_err());
    }

    #[test]
    fn slow_drop_blocks_until_opened() {
        let (w, gate) = SlowDrop::new();
        let dropper = std::thread::spawn(move || drop(w));
        gate.wait_entered().unwrap();
        assert!(!dropper.is_finished());
        gate.open();
        dropper.join().unwrap();
    }

    #[test]
    fn slow_report_blocks_its_report_and_records_where_it_was_dropped() {
        let (w, gate, dropped) = SlowReport::new();
        let w = Arc::new(w);
        let reporter = {
            let w = w.clone();
            std::thread::spawn(move || {
                let _ = w.reporter().unwrap().report();
            })
        };
        gate.wait_entered().unwrap();
        assert!(!reporter.is_finished());
        gate.open();
        reporter.join().unwrap();
        assert_eq!(dropped.thread(), None);
        std::thread::Builder::new()
            .name("the dropper".into())
            .spawn(move || drop(w))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(dropped.thread().as_deref(), Some("the dropper"));
    }

    #[test]
    fn blocking_kill_blocks_until_opened() {
        let (w, gate) = BlockingKill::new();
        let w = Arc::new(w);
        let killer = {
            let w = w.clone();
            std::thread::spawn(move || w.kill())
        };
        gate.wait_entered().unwrap();
        assert!(w.tomb.is_alive());
        gate.open();
        killer.join().unwrap();
        assert!(w.wait().is_ok());
    }
}

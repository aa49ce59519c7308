//! Learning that a worker has finished: callbacks for workers that support
//! them, one watcher thread for those that do not.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use worker_core::threads::{live_threads_with_prefix, wait_threads_gone};
use worker_core::{Error, Outcome, Passive, Worker, dead, stop, watch};

const LONG: Duration = Duration::from_secs(10);

/// A worker that knows nothing of callbacks or signals: it ends when its
/// channel is closed, and counts how often it was waited for and killed.
struct Foreign {
    end: Receiver<()>,
    kills: AtomicUsize,
    waits: AtomicUsize,
}

fn foreign() -> (Arc<Foreign>, Sender<()>) {
    let (tx, rx) = crossbeam_channel::bounded(0);
    let w = Foreign {
        end: rx,
        kills: AtomicUsize::new(0),
        waits: AtomicUsize::new(0),
    };
    (Arc::new(w), tx)
}

impl Worker for Foreign {
    fn kill(&self) {
        self.kills.fetch_add(1, Ordering::SeqCst);
    }
    fn wait(&self) -> Result<(), Error> {
        self.waits.fetch_add(1, Ordering::SeqCst);
        let _ = self.end.recv();
        Err(Error::msg("foreign ended"))
    }
}

#[test]
fn watch_uses_the_callback_of_a_tomb_worker_and_no_thread() {
    let w = Arc::new(Passive::new());
    let (tx, rx) = crossbeam_channel::unbounded::<Outcome>();
    let before = live_threads_with_prefix("worker-watch");
    watch(&w, move |outcome| tx.send(outcome.clone()).unwrap());
    assert_eq!(live_threads_with_prefix("worker-watch"), before);
    w.finish(Err(Error::msg("done")));
    assert_eq!(
        rx.recv_timeout(LONG).unwrap().unwrap_err().to_string(),
        "done"
    );
    assert!(rx.try_recv().is_err(), "the callback ran more than once");
}

#[test]
fn watch_falls_back_to_one_thread_that_waits_once() {
    let (w, end) = foreign();
    let (tx, rx) = crossbeam_channel::unbounded::<Outcome>();
    watch(&w, move |outcome| tx.send(outcome.clone()).unwrap());
    drop(end);
    let outcome = rx.recv_timeout(LONG).unwrap();
    assert_eq!(outcome.unwrap_err().to_string(), "foreign ended");
    assert_eq!(w.waits.load(Ordering::SeqCst), 1);
    assert_eq!(w.kills.load(Ordering::SeqCst), 0);
    // The watcher thread ends with the worker.
    wait_threads_gone("worker-watch", LONG).unwrap();
}

#[test]
fn dead_of_a_foreign_worker_disconnects_when_it_ends() {
    let (w, end) = foreign();
    let signal = dead(&w);
    assert_eq!(
        signal.recv_timeout(Duration::from_millis(5)),
        Err(crossbeam_channel::RecvTimeoutError::Timeout),
        "dead fired while the worker runs"
    );
    drop(end);
    // Disconnected, not a value: recv errs once the worker has ended.
    assert_eq!(
        signal.recv_timeout(LONG),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn dead_prefers_the_workers_own_signal() {
    let w = Arc::new(Passive::new());
    let signal = dead(&w);
    w.kill();
    assert_eq!(
        signal.recv_timeout(LONG),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn stop_kills_once_then_waits() {
    let (w, end) = foreign();
    drop(end);
    assert_eq!(stop(&*w).unwrap_err().to_string(), "foreign ended");
    assert_eq!(w.kills.load(Ordering::SeqCst), 1);
    assert_eq!(w.waits.load(Ordering::SeqCst), 1);
}

#[test]
fn watch_named_names_the_fallback_thread() {
    let (w, end) = foreign();
    let (tx, rx) = crossbeam_channel::unbounded::<Outcome>();
    worker_core::watch_named(&w, "watch-test-named", move |outcome| {
        tx.send(outcome.clone()).unwrap()
    });
    assert_eq!(live_threads_with_prefix("watch-test-named"), 1);
    drop(end);
    assert!(rx.recv_timeout(LONG).unwrap().is_err());
    wait_threads_gone("watch-test-named", LONG).unwrap();
}

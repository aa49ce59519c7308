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
    let thread = worker_core::watch_named(&w, "watch-test-named", move |outcome| {
        tx.send(outcome.clone()).unwrap()
    })
    .expect("a foreign worker is watched by a thread");
    assert_eq!(live_threads_with_prefix("watch-test-named"), 1);
    drop(end);
    assert!(rx.recv_timeout(LONG).unwrap().is_err());
    thread.join().unwrap();
    assert_eq!(live_threads_with_prefix("watch-test-named"), 0);
}

/// A worker that offers `on_done` but no dead signal: a `Tomb` behind a
/// worker that hides its signal.
struct CallbackOnly(worker_core::Tomb);

impl Worker for CallbackOnly {
    fn kill(&self) {
        self.0.kill(None);
        self.0.done(Ok(()));
    }
    fn wait(&self) -> Result<(), Error> {
        self.0.wait()
    }
    fn on_done(
        &self,
        callback: worker_core::DoneCallback,
    ) -> Result<(), worker_core::DoneCallback> {
        Worker::on_done(&self.0, callback)
    }
}

fn disconnected(signal: &worker_core::Signal) -> bool {
    signal.recv_timeout(LONG) == Err(crossbeam_channel::RecvTimeoutError::Disconnected)
}

fn still_running(signal: &worker_core::Signal) -> bool {
    signal.try_recv() == Err(crossbeam_channel::TryRecvError::Empty)
}

#[test]
fn dead_takes_any_worker_by_reference() {
    // A thread worker held by value, a passive one, and a trait object.
    let thread = worker_core::spawn("watch-test-any", |tomb| {
        let _ = tomb.dying().recv();
        Ok(())
    });
    let signal = dead(&thread);
    assert!(still_running(&signal));
    thread.kill();
    assert!(disconnected(&signal));
    assert!(thread.wait().is_ok());

    let passive = Passive::new();
    let as_object: &dyn Worker = &passive;
    let signal = dead(as_object);
    assert!(still_running(&signal));
    passive.kill();
    assert!(disconnected(&signal));
}

#[test]
fn dead_of_a_worker_with_only_on_done_needs_no_thread() {
    // Held by value, so it has no shared handle: a thread could not own
    // it, and it would be killed as unwatchable. It runs on instead.
    let w = CallbackOnly(worker_core::Tomb::new());
    assert!(w.dead_signal().is_none());
    let signal = dead(&w);
    assert!(still_running(&signal));
    assert!(w.0.is_alive());
    w.0.done(Err(Error::msg("done")));
    assert!(disconnected(&signal));
}

#[test]
fn an_arc_is_its_own_shared_handle_and_a_box_is_none() {
    let shared: worker_core::SharedWorker = Arc::new(Passive::new());
    let handle = shared.to_shared().expect("an Arc is shared");
    assert!(Arc::ptr_eq(&handle, &shared), "not wrapped twice");
    let (w, _end) = foreign();
    assert!(w.to_shared().is_some());
    let (w, _end) = foreign();
    let boxed: Box<dyn Worker> = Box::new(Arc::into_inner(w).unwrap());
    assert!(boxed.to_shared().is_none());
    assert!(Passive::new().to_shared().is_none());
}

#[test]
fn a_foreign_worker_without_a_shared_handle_is_killed_and_reported_unwatchable() {
    let (w, _end) = foreign();
    let w = Arc::into_inner(w).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded::<Outcome>();
    watch(&w, move |outcome| tx.send(outcome.clone()).unwrap());
    let err = rx.try_recv().expect("reported at once").unwrap_err();
    assert!(err.is::<worker_core::Unwatchable>(), "{err}");
    assert_eq!(w.kills.load(Ordering::SeqCst), 1);
    assert_eq!(w.waits.load(Ordering::SeqCst), 0);
    // dead() follows the same rule: the signal disconnects at once.
    let signal = dead(&w);
    assert_eq!(
        signal.try_recv(),
        Err(crossbeam_channel::TryRecvError::Disconnected)
    );
    assert_eq!(w.kills.load(Ordering::SeqCst), 2);
}

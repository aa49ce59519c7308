//! Helpers shared by the behaviour tests: unique names, works with known
//! behaviour, and workers with unusual capabilities.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select};
use worker_catacomb::{Catacomb, Plan};
use worker_core::{DoneCallback, Error, Outcome, SharedWorker, Signal, Tomb, TombState, Worker};

/// Generous failure timeout: only reached when something is already wrong.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Names for one test: every catacomb and thread of the test is named
/// `ct:<test>:<what>`, so `finish` can check that none of them is left.
pub struct Scope {
    prefix: String,
}

impl Scope {
    pub fn new(test: &str) -> Self {
        Scope {
            prefix: format!("ct:{test}:"),
        }
    }

    pub fn name(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    /// Fails unless no library thread of this test is left.
    pub fn finish(self) {
        worker_testing::assert_threads_gone(&self.prefix);
    }
}

/// Work that runs until the catacomb dies, then reports "dying" (the
/// intended usage: the kill reason is kept).
pub fn until_dying(c: &Catacomb) -> Result<(), Error> {
    let _ = c.dying().recv();
    Err(c.err_dying())
}

/// Invokes a catacomb whose work runs until it dies.
pub fn invoke_until_dying(name: String, init: Vec<SharedWorker>) -> Catacomb {
    Catacomb::invoke(Plan::new(name, until_dying).init(init)).expect("invoke")
}

/// Work that returns exactly when told to, with the result it is sent,
/// whatever happens to the catacomb meanwhile.
pub fn controlled() -> (
    Sender<Outcome>,
    impl FnOnce(&Catacomb) -> Outcome + Send + 'static,
) {
    let (tx, rx) = crossbeam_channel::bounded::<Outcome>(1);
    let work = move |_: &Catacomb| rx.recv().unwrap_or(Ok(()));
    (tx, work)
}

/// Waits for the catacomb (with a failure timeout) and returns its result.
pub fn wait_for(c: &Catacomb) -> Result<(), Error> {
    let done = worker_testing::check_killed(c);
    // `check_killed` observed the end; `wait` also joins the work thread.
    let waited = c.wait();
    assert_eq!(
        format!("{done:?}"),
        format!("{waited:?}"),
        "wait disagrees with the completion signal"
    );
    waited
}

/// Fails unless `signal` disconnects within [`TIMEOUT`].
pub fn fired(signal: &Signal) {
    select! {
        recv(signal) -> _ => {},
        default(TIMEOUT) => panic!("signal did not fire within {TIMEOUT:?}"),
    }
}

/// A shared worker from a concrete one.
pub fn shared<W: Worker>(w: &Arc<W>) -> SharedWorker {
    w.clone()
}

/// Whether a tomb-based test worker has finished.
pub fn finished(tomb: &Tomb) -> bool {
    tomb.state() == TombState::Dead
}

/// A worker that offers no completion capability: supervisors must wait
/// for it on a thread. Killing it finishes it with `on_kill`.
#[derive(Debug)]
pub struct Foreign {
    pub tomb: Tomb,
    on_kill: Result<(), Error>,
}

impl Foreign {
    pub fn new(on_kill: Result<(), Error>) -> Arc<Self> {
        Arc::new(Foreign {
            tomb: Tomb::new(),
            on_kill,
        })
    }
}

impl Worker for Foreign {
    fn kill(&self) {
        self.tomb.done(self.on_kill.clone());
    }
    fn wait(&self) -> Result<(), Error> {
        self.tomb.wait()
    }
}

/// A worker that finishes only when released, whatever kill says, and
/// reports when it was killed: for checking that the catacomb waits.
#[derive(Debug)]
pub struct Stubborn {
    pub tomb: Tomb,
    killed_tx: Sender<()>,
    pub killed: Receiver<()>,
}

impl Stubborn {
    pub fn new() -> Arc<Self> {
        let (killed_tx, killed) = crossbeam_channel::unbounded();
        Arc::new(Stubborn {
            tomb: Tomb::new(),
            killed_tx,
            killed,
        })
    }

    pub fn release(&self, result: Result<(), Error>) {
        self.tomb.done(result);
    }
}

impl Worker for Stubborn {
    fn kill(&self) {
        let _ = self.killed_tx.send(());
    }
    fn wait(&self) -> Result<(), Error> {
        self.tomb.wait()
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Worker::on_done(&self.tomb, callback)
    }
}

/// An owner type that wraps a catacomb and forwards everything to it, the
/// way Go owners do.
#[derive(Debug)]
pub struct Owner {
    pub catacomb: Catacomb,
    /// Forward `on_done` (true) or only `dead_signal` (false).
    pub forward_on_done: bool,
}

impl Worker for Owner {
    fn kill(&self) {
        Worker::kill(&self.catacomb);
    }
    fn wait(&self) -> Result<(), Error> {
        self.catacomb.wait()
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        if self.forward_on_done {
            Worker::on_done(&self.catacomb, callback)
        } else {
            Err(callback)
        }
    }
    fn dead_signal(&self) -> Option<Signal> {
        Some(self.catacomb.dead())
    }
}

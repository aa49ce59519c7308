//! The shell: one loop thread per engine that owns the [`Machine`], turns
//! requests, start results, worker ends and timer firings into events,
//! and carries out the machine's actions.
//!
//! Start functions run off the loop, from the engine's start queue
//! ([`starter`]); a worker's end is learnt through its completion callback
//! ([`Worker::on_done`]), so no thread waits on a worker (only a foreign
//! worker without completion callbacks gets one watcher thread, named
//! after the engine and joined when the engine stops). The loop asks the
//! clock for a timer only when the earliest deadline changes, and blocks
//! in `select!` otherwise: an idle engine does nothing.

use std::collections::HashMap;
use std::convert::Infallible;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, never, select};
use worker_core::{Clock, Error, SharedWorker, Tomb, Worker};

use crate::config::Metrics;
use crate::context::InputState;
use crate::graph::NodeId;
use crate::machine::{Action, Live, Machine, Snapshot};
use crate::manifold::FilterFn;
use crate::{InstallError, Manifold, ShuttingDown, UninstallError};

pub(crate) mod starter;

use starter::{StartJob, Starter};

/// A message to the loop: a request from a handle, or news from a start
/// job or a worker.
pub(crate) enum Msg {
    Install {
        batch: Vec<(String, Manifold)>,
        reply: Sender<Result<(), InstallError>>,
    },
    Uninstall {
        name: String,
        reply: Sender<Result<(), UninstallError>>,
    },
    Report {
        reply: Sender<Snapshot>,
    },
    WaitingFor {
        reply: Sender<Vec<String>>,
    },
    Started {
        node: NodeId,
        generation: u64,
        result: Result<Live, Error>,
    },
    Ended {
        node: NodeId,
        generation: u64,
        outcome: Result<(), Error>,
    },
    /// A batch of ended workers has been waited for.
    Reaped,
}

/// Everything the loop thread owns.
pub(crate) struct Shell {
    pub(crate) name: Arc<str>,
    pub(crate) machine: Machine,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<dyn Metrics>,
    pub(crate) filter: Option<FilterFn>,
    pub(crate) tx: Sender<Msg>,
    pub(crate) final_snapshot: Arc<OnceLock<Snapshot>>,
    pub(crate) starter: Starter,
    pub(crate) aborts: Vec<Option<Sender<Infallible>>>,
    pub(crate) uninstalls: HashMap<NodeId, Vec<Sender<Result<(), UninstallError>>>>,
    pub(crate) watchers: Vec<JoinHandle<()>>,
    /// Workers that ended and have not been waited for yet.
    pub(crate) ended: Vec<SharedWorker>,
    pub(crate) timer: Receiver<Instant>,
    pub(crate) timer_at: Option<Instant>,
    pub(crate) out: Vec<Action>,
}

impl Shell {
    /// The loop: runs until every manifold has stopped after a kill (or a
    /// fatal or internal error), then returns the engine's result.
    pub(crate) fn run(mut self, tomb: &Tomb, rx: Receiver<Msg>) -> Result<(), Error> {
        let mut dying = tomb.dying();
        loop {
            // Fires only while starts wait for a thread.
            let stall = self.starter.stall_timer().clone();
            select! {
                recv(rx) -> msg => {
                    // The loop holds a sender itself, so the channel never
                    // disconnects while it runs.
                    if let Ok(msg) = msg {
                        self.handle(msg);
                    }
                    // Take more of what is queued: one wake-up for a burst
                    // of events, but bounded, so that a kill or a timer is
                    // never starved by a flood (say, a worker bouncing with
                    // no delay).
                    for msg in rx.try_iter().take(BURST) {
                        self.handle(msg);
                    }
                }
                recv(dying) -> _ => {
                    dying = never();
                    let now = self.clock.now();
                    self.machine.kill(now, &mut self.out);
                    self.run_actions();
                    self.update_timer();
                }
                recv(self.timer) -> _ => {
                    self.timer = never();
                    self.timer_at = None;
                    let now = self.clock.now();
                    self.machine.tick(now, &mut self.out);
                    self.run_actions();
                    self.update_timer();
                }
                recv(stall) -> _ => self.starter.check_stall(),
            }
            if self.machine.is_dying() && tomb.is_alive() {
                // A fatal or internal error: let everyone see the engine
                // is stopping (our own dying signal then fires: harmless).
                tomb.kill(None);
            }
            if self.machine.is_finished() {
                break;
            }
        }
        self.finish(rx)
    }

    fn finish(mut self, rx: Receiver<Msg>) -> Result<(), Error> {
        let now = self.clock.now();
        let _ = self.final_snapshot.set(self.machine.snapshot(now));
        // Requests that raced with the end get a clear answer.
        drop(self.tx);
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Install { reply, .. } => {
                    let _ = reply.send(Err(ShuttingDown(self.name.to_string()).into()));
                }
                Msg::Uninstall { reply, .. } => {
                    let _ = reply.send(Err(ShuttingDown(self.name.to_string()).into()));
                }
                Msg::Report { reply } => {
                    let _ = reply.send(self.machine.snapshot(now));
                }
                Msg::WaitingFor { reply } => {
                    let _ = reply.send(Vec::new());
                }
                Msg::Started { .. } | Msg::Ended { .. } | Msg::Reaped => {}
            }
        }
        for (_, replies) in self.uninstalls.drain() {
            for reply in replies {
                let _ = reply.send(Err(ShuttingDown(self.name.to_string()).into()));
            }
        }
        // Every worker has ended; wait for each (joining its thread, if it
        // has one), so that none is still winding down when `wait` returns.
        reap(std::mem::take(&mut self.ended));
        self.starter.join();
        for watcher in self.watchers.drain(..) {
            let _ = watcher.join();
        }
        if self.machine.has_internal_error() {
            return Err(self
                .machine
                .error()
                .unwrap_or_else(|| Error::msg("internal error")));
        }
        let worst = self.machine.error();
        let result = match &self.filter {
            Some(filter) => match catch_unwind(AssertUnwindSafe(|| filter(worst))) {
                Ok(result) => result,
                Err(payload) => Some(Error::new(worker_core::Panicked::from_payload(
                    "engine filter",
                    &*payload,
                ))),
            },
            None => worst,
        };
        match result {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn handle(&mut self, msg: Msg) {
        let now = self.clock.now();
        match msg {
            Msg::Install { batch, reply } => {
                let result = self.machine.install(batch, now, &mut self.out);
                let _ = reply.send(result);
            }
            Msg::Uninstall { name, reply } => {
                match self.machine.uninstall(&name, now, &mut self.out) {
                    Ok(node) => self.uninstalls.entry(node).or_default().push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Msg::Report { reply } => {
                let _ = reply.send(self.machine.snapshot(now));
            }
            Msg::WaitingFor { reply } => {
                let _ = reply.send(self.machine.waiting_for());
            }
            Msg::Started {
                node,
                generation,
                result,
            } => {
                self.starter.finished();
                if let Some(abort) = self.aborts.get_mut(node) {
                    *abort = None;
                }
                let wall = self.clock.wall_now();
                self.machine
                    .start_done(node, generation, result, now, wall, &mut self.out);
            }
            Msg::Ended {
                node,
                generation,
                outcome,
            } => {
                self.machine
                    .worker_done(node, generation, outcome, now, &mut self.out);
            }
            Msg::Reaped => self.starter.finished(),
        }
        self.run_actions();
        // After every message, not once per burst: a request that follows
        // (say, a report) then sees the timers of everything before it.
        self.update_timer();
    }

    fn update_timer(&mut self) {
        let next = self.machine.next_deadline();
        if next == self.timer_at {
            return;
        }
        self.timer_at = next;
        self.timer = match next {
            Some(at) => self
                .clock
                .after(at.saturating_duration_since(self.clock.now())),
            None => never(),
        };
    }

    fn run_actions(&mut self) {
        loop {
            let actions = std::mem::take(&mut self.out);
            if actions.is_empty() {
                return;
            }
            for action in actions {
                self.execute(action);
            }
        }
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::Start {
                node,
                generation,
                name,
                manifold,
                inputs,
            } => self.start(node, generation, name, manifold, inputs),
            Action::Abort { node } => {
                if let Some(abort) = self.aborts.get_mut(node) {
                    *abort = None;
                }
            }
            Action::Kill { name, worker } => {
                if catch_unwind(AssertUnwindSafe(|| worker.kill())).is_err() {
                    tracing::error!(engine = %self.name, manifold = %name, "kill panicked");
                }
            }
            Action::Watch {
                node,
                generation,
                worker,
            } => self.watch(node, generation, worker),
            Action::RecordStart { name } => {
                let metrics = &self.metrics;
                if catch_unwind(AssertUnwindSafe(|| metrics.record_start(&name))).is_err() {
                    tracing::error!(engine = %self.name, manifold = %name, "metrics hook panicked");
                }
            }
            Action::RecordStop { name, error } => {
                let metrics = &self.metrics;
                if catch_unwind(AssertUnwindSafe(|| {
                    metrics.record_stop(&name, error.as_ref())
                }))
                .is_err()
                {
                    tracing::error!(engine = %self.name, manifold = %name, "metrics hook panicked");
                }
            }
            Action::Removed { node } => {
                for reply in self.uninstalls.remove(&node).unwrap_or_default() {
                    let _ = reply.send(Ok(()));
                }
            }
            Action::Reap { worker } => {
                self.ended.push(worker);
                if self.ended.len() >= REAP_BATCH {
                    let batch = std::mem::take(&mut self.ended);
                    self.starter.reap(batch);
                }
            }
            Action::Stuck { name, waited } => {
                tracing::warn!(engine = %self.name, manifold = %name, ?waited, "manifold is slow to stop");
            }
        }
    }

    fn start(
        &mut self,
        node: NodeId,
        generation: u64,
        name: Arc<str>,
        manifold: Manifold,
        inputs: Vec<(Arc<str>, InputState)>,
    ) {
        let (abort_tx, abort_rx) = crossbeam_channel::bounded::<Infallible>(0);
        if self.aborts.len() <= node {
            self.aborts.resize_with(node + 1, || None);
        }
        self.aborts[node] = Some(abort_tx);
        let job = StartJob {
            node,
            generation,
            name,
            manifold,
            inputs,
            abort: abort_rx,
        };
        self.starter.submit(job);
    }

    fn watch(&mut self, node: NodeId, generation: u64, worker: SharedWorker) {
        let tx = self.tx.clone();
        // A worker without completion callbacks gets one watcher thread,
        // joined when the engine stops.
        let thread = worker_core::watch_named(
            &worker,
            format_args!("{}-watch", self.name),
            move |outcome: &Result<(), Error>| {
                let _ = tx.send(Msg::Ended {
                    node,
                    generation,
                    outcome: outcome.clone(),
                });
            },
        );
        if let Some(handle) = thread {
            self.watchers.retain(|w| !w.is_finished());
            self.watchers.push(handle);
        }
    }
}

/// How many queued messages the loop handles in one go before it looks at
/// its other inputs (kill, timers) again.
const BURST: usize = 1024;

/// How many ended workers the loop collects before waiting for them on a
/// pool thread.
const REAP_BATCH: usize = 256;

/// Waits for workers that have ended (their completion callback ran), so
/// their threads, if any, are joined. Quick: they have nothing left to do.
fn reap(workers: Vec<SharedWorker>) {
    for worker in workers {
        let _ = catch_unwind(AssertUnwindSafe(|| worker.wait()));
    }
}

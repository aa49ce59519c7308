//! The thin shell around the state machine: one loop thread per runner.
//!
//! The loop owns the [`Machine`] and is the only thread that touches it.
//! Everything reaches it as a [`Msg`] on one channel: requests from the
//! [`Runner`](crate::Runner) handle, start results from the starters,
//! endings from completion callbacks. It turns each message into a call
//! on the machine and carries out the actions that come back. Time enters
//! in one place: the loop asks the clock for a single timer, for the
//! machine's earliest deadline, and only when that deadline moves earlier
//! (or the timer has fired), so a fake clock sees exactly the timers the
//! runner needs.

pub(crate) mod starter;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, select};
use worker_core::{Clock, Error, Outcome, SharedWorker, Tomb, Worker, catch_panic};

use crate::machine::{Action, Actions, EntrySnapshot, Generation, Io, Machine, Slot, WaiterId};
use crate::policy::WorkerOptions;
use crate::status::WaitingFor;

use self::starter::{StartJob, Starter};

/// A start function, boxed: what the runner calls to make each incarnation.
pub(crate) type StartFn = Box<dyn FnMut() -> Result<SharedWorker, Error> + Send + 'static>;

/// The answer to a `worker()` or `stop_and_remove_worker()` call: first,
/// at once, either the result or `Waiting`; then, if waiting, the result.
pub(crate) enum Answer<R> {
    Waiting,
    Done(R),
}

/// Everything the loop can be told.
pub(crate) enum Msg {
    Start {
        id: String,
        options: Option<WorkerOptions>,
        start: StartFn,
        reply: Sender<Result<(), Error>>,
    },
    Stop {
        id: String,
    },
    StopAndRemove {
        id: String,
        waiter: WaiterId,
        reply: Sender<Answer<Result<(), Error>>>,
    },
    Lookup {
        id: String,
        waiter: WaiterId,
        reply: Sender<Answer<Result<SharedWorker, Error>>>,
    },
    Cancel {
        id: String,
        waiter: WaiterId,
    },
    Snapshot {
        reply: Sender<Vec<EntrySnapshot<SharedWorker>>>,
    },
    WaitingFor {
        reply: Sender<Vec<WaitingFor>>,
    },
    Names {
        reply: Sender<Vec<String>>,
    },
    Kill,
    /// A start function returned.
    Started {
        slot: Slot,
        generation: Generation,
        result: Result<SharedWorker, Error>,
        start: StartFn,
    },
    /// An instance finished.
    Exited {
        slot: Slot,
        generation: Generation,
        outcome: Outcome,
    },
    /// A starter went back to the pool.
    StarterIdle,
    /// A watcher thread was started for a worker without `on_done`.
    Watcher(JoinHandle<()>),
}

/// The shell's types, as the machine sees them.
pub(crate) struct ShellIo;

impl Io for ShellIo {
    type Start = StartFn;
    type Worker = SharedWorker;
    type WorkerReply = Sender<Answer<Result<SharedWorker, Error>>>;
    type RemoveReply = Sender<Answer<Result<(), Error>>>;
}

/// The most messages handled between two looks at the clock, so a flood
/// of messages cannot delay due restarts indefinitely.
const BATCH: usize = 256;

/// The loop thread's state.
pub(crate) struct Loop {
    pub(crate) machine: Machine<ShellIo>,
    pub(crate) rx: Receiver<Msg>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) tomb: Tomb,
    pub(crate) starter: Starter,
    /// The timer for the earliest deadline, and that deadline.
    pub(crate) timer: Option<(Receiver<Instant>, Instant)>,
    pub(crate) watchers: Vec<JoinHandle<()>>,
    pub(crate) result: Option<Result<(), Error>>,
    pub(crate) out: Actions<ShellIo>,
}

impl Loop {
    /// Runs until the machine has finished, then leaves nothing behind:
    /// pending requests are dropped (their callers see `Dead`), the start
    /// threads and watcher threads are joined, and only then does the
    /// runner's tomb say it is dead.
    pub(crate) fn run(mut self) {
        while !self.machine.is_finished() {
            self.wait_and_handle();
            for _ in 0..BATCH {
                if self.machine.is_finished() {
                    break;
                }
                match self.rx.try_recv() {
                    Ok(msg) => self.handle(msg),
                    Err(_) => break,
                }
            }
            self.tick_due();
            self.arm_timer();
        }
        let Loop {
            rx,
            tomb,
            starter,
            watchers,
            result,
            ..
        } = self;
        drop(rx);
        starter.join();
        for handle in watchers {
            let _ = handle.join();
        }
        tracing::debug!("runner finished");
        tomb.done(result.unwrap_or(Ok(())));
    }

    /// Blocks until a message or a timer, and handles it.
    fn wait_and_handle(&mut self) {
        let deadline_timer = self.timer.as_ref().map(|(t, _)| t.clone());
        let overflow_timer = self.starter.overflow_timer().cloned();
        if deadline_timer.is_none() && overflow_timer.is_none() {
            // The loop holds a sender of its own channel: never closed.
            if let Ok(msg) = self.rx.recv() {
                self.handle(msg);
            }
            return;
        }
        let never = crossbeam_channel::never();
        select! {
            recv(self.rx) -> msg => {
                if let Ok(msg) = msg {
                    self.handle(msg);
                }
            }
            recv(deadline_timer.as_ref().unwrap_or(&never)) -> _ => {
                self.timer = None;
            }
            recv(overflow_timer.as_ref().unwrap_or(&never)) -> _ => {
                self.starter.overflow_fired();
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        // Whatever arrives after time has passed a deadline sees that
        // deadline's effects, even if the timer's wake-up is still queued.
        self.tick_due();
        let now = self.clock.now();
        let mut out = std::mem::take(&mut self.out);
        match msg {
            Msg::Start {
                id,
                options,
                start,
                reply,
            } => {
                let result = self.machine.start(id, options, start, now, &mut out);
                let _ = reply.send(result);
            }
            Msg::Stop { id } => self.machine.stop(&id, now, &mut out),
            Msg::StopAndRemove { id, waiter, reply } => {
                let ack = reply.clone();
                self.machine
                    .stop_and_remove(&id, waiter, reply, now, &mut out);
                if !answers(&out, &ack) {
                    let _ = ack.send(Answer::Waiting);
                }
            }
            Msg::Lookup { id, waiter, reply } => {
                let ack = reply.clone();
                self.machine.lookup(&id, waiter, reply, &mut out);
                if !replies(&out, &ack) {
                    let _ = ack.send(Answer::Waiting);
                }
            }
            Msg::Cancel { id, waiter } => self.machine.cancel_wait(&id, waiter),
            Msg::Snapshot { reply } => {
                let _ = reply.send(self.machine.snapshot());
            }
            Msg::WaitingFor { reply } => {
                let _ = reply.send(self.machine.waiting_for(now));
            }
            Msg::Names { reply } => {
                let _ = reply.send(self.machine.names());
            }
            Msg::Kill => self.machine.kill(now, &mut out),
            Msg::Started {
                slot,
                generation,
                result,
                start,
            } => {
                self.starter.completed();
                self.machine
                    .started(slot, generation, result, start, now, &mut out);
            }
            Msg::Exited {
                slot,
                generation,
                outcome,
            } => self
                .machine
                .exited(slot, generation, outcome, now, &mut out),
            Msg::StarterIdle => self.starter.starter_idle(),
            Msg::Watcher(handle) => {
                self.watchers.retain(|h| !h.is_finished());
                self.watchers.push(handle);
            }
        }
        self.execute(&mut out);
        self.out = out;
    }

    /// Starts the restarts that are due (repeatedly: a zero delay makes a
    /// deadline that is due at once).
    fn tick_due(&mut self) {
        while let Some(deadline) = self.machine.next_deadline() {
            let now = self.clock.now();
            if deadline > now {
                break;
            }
            let mut out = std::mem::take(&mut self.out);
            self.machine.tick(now, &mut out);
            self.execute(&mut out);
            self.out = out;
        }
    }

    /// Asks the clock for a timer for the earliest deadline, unless the
    /// current timer fires no later than that.
    fn arm_timer(&mut self) {
        let Some(deadline) = self.machine.next_deadline() else {
            return;
        };
        if let Some((_, armed)) = &self.timer {
            if *armed <= deadline {
                return;
            }
        }
        let now = self.clock.now();
        let timer = self.clock.after(deadline.saturating_duration_since(now));
        self.timer = Some((timer, deadline));
    }

    fn execute(&mut self, out: &mut Actions<ShellIo>) {
        for action in out.drain(..) {
            match action {
                Action::Start {
                    slot,
                    generation,
                    id,
                    start,
                } => self.starter.dispatch(StartJob {
                    slot,
                    generation,
                    id,
                    start,
                }),
                Action::Kill { id, worker } => {
                    let killed = catch_panic(
                        || format!("kill of worker {id:?}"),
                        || {
                            worker.kill();
                            Ok(())
                        },
                    );
                    if let Err(e) = killed {
                        tracing::error!(%id, error = %e, "killing a worker panicked");
                    }
                }
                Action::Reap { worker } => {
                    // The worker has finished, so this returns at once; for
                    // a thread-backed worker it joins the thread.
                    let _ =
                        catch_panic(|| "wait of a finished worker".to_owned(), || worker.wait());
                }
                Action::Reply { to, result } => {
                    let _ = to.send(Answer::Done(result));
                }
                Action::Removed { to, result } => {
                    let _ = to.send(Answer::Done(result));
                }
                Action::Stuck { id, after } => {
                    tracing::warn!(%id, ?after, "worker has not stopped since it was killed; still waiting for it");
                }
                Action::Dying => self.tomb.kill(None),
                Action::Finished { result } => self.result = Some(result),
            }
        }
    }
}

/// Whether `out` already answers the `worker()` caller behind `ack`.
fn replies(out: &Actions<ShellIo>, ack: &<ShellIo as Io>::WorkerReply) -> bool {
    out.iter()
        .any(|a| matches!(a, Action::Reply { to, .. } if to.same_channel(ack)))
}

/// Whether `out` already answers the `stop_and_remove_worker()` caller
/// behind `ack`.
fn answers(out: &Actions<ShellIo>, ack: &<ShellIo as Io>::RemoveReply) -> bool {
    out.iter()
        .any(|a| matches!(a, Action::Removed { to, .. } if to.same_channel(ack)))
}

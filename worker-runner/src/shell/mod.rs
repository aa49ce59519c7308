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

pub(crate) mod reply;
pub(crate) mod starter;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, select};
use worker_core::{Clock, Error, Outcome, SharedWorker, Tomb, Worker, catch_panic};

use crate::machine::{
    Action, Actions, EntrySnapshot, Generation, Io, Machine, Slot, Started, WaiterId,
};
use crate::policy::WorkerOptions;
use crate::status::WaitingFor;

use self::reply::{ReplyTo, Spin, acknowledge, answer};
use self::starter::{StartJob, Starter};

/// A start function, boxed: what the runner calls to make each incarnation.
pub(crate) type StartFn = Box<dyn FnMut() -> Result<SharedWorker, Error> + Send + 'static>;

/// Everything the loop can be told.
pub(crate) enum Msg {
    Start {
        id: String,
        options: Option<Box<WorkerOptions>>,
        start: StartFn,
        reply: ReplyTo<Result<(), Error>>,
    },
    Stop {
        id: String,
    },
    StopAndRemove {
        id: String,
        waiter: WaiterId,
        reply: ReplyTo<Result<(), Error>>,
    },
    Lookup {
        id: String,
        waiter: WaiterId,
        reply: ReplyTo<Result<SharedWorker, Error>>,
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
        /// Whether the worker is a [`Reporter`](worker_core::Reporter),
        /// asked once on the start thread (as Go's type assertion, it does
        /// not change).
        reports: bool,
        start: StartFn,
    },
    /// An instance finished.
    Exited {
        slot: Slot,
        generation: Generation,
        outcome: Outcome,
    },
    /// A watcher thread was started for a worker without `on_done`.
    Watcher(JoinHandle<()>),
}

/// The shell's types, as the machine sees them.
pub(crate) struct ShellIo;

impl Io for ShellIo {
    type Start = StartFn;
    type Worker = SharedWorker;
    type WorkerReply = ReplyTo<Result<SharedWorker, Error>>;
    type RemoveReply = ReplyTo<Result<(), Error>>;
}

/// The most messages handled between two looks at the clock, so a flood
/// of messages cannot delay a due restart.
const BATCH: usize = 256;

/// The most start jobs held back while start requests keep coming. Jobs
/// from a burst of requests are handed over when the burst pauses: the
/// starters then run while the callers wait, rather than taking the
/// CPU from the callers and the loop in the middle of it (on a two-core
/// machine that turns a burst's quick exchanges into thread switches).
const HOLD_BACK: usize = 8192;

/// How long the loop waits for more work, after a message, before it
/// hands held-back start jobs over and blocks. The requests of a caller
/// making many calls in a row arrive well within it, so a burst is seen as
/// one; and a deadline due within it is waited for directly, without a
/// clock timer (a timer sleep overshoots by tens of microseconds of timer
/// slack). It is real time: a matter of CPU scheduling, not of the
/// runner's behaviour.
const SPIN: Duration = Duration::from_micros(5);

/// How many kills the loop carries out before it handles the endings they
/// caused.
const KILL_CHUNK: usize = 512;

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
            self.block();
            self.stay_busy();
            self.starter.flush();
            self.arm_timer();
        }
        let Loop {
            rx,
            tomb,
            mut starter,
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
    fn block(&mut self) {
        let stall_at = self.starter.stall_deadline();
        let Some((timer, _)) = &self.timer else {
            match stall_at {
                // The loop holds a sender of its own channel: never closed.
                None => {
                    if let Ok(msg) = self.rx.recv() {
                        self.handle(msg);
                    }
                }
                Some(at) => match self.rx.recv_deadline(at) {
                    Ok(msg) => self.handle(msg),
                    Err(RecvTimeoutError::Timeout) => self.starter.check_stall(),
                    Err(RecvTimeoutError::Disconnected) => {}
                },
            }
            return;
        };
        let timer = timer.clone();
        let timeout = stall_at.map_or(Duration::MAX, |at| {
            at.saturating_duration_since(Instant::now())
        });
        select! {
            recv(self.rx) -> msg => {
                if let Ok(msg) = msg {
                    self.handle(msg);
                }
            }
            recv(timer) -> _ => self.timer = None,
            default(timeout) => self.starter.check_stall(),
        }
    }

    /// Goes on handling messages and due deadlines while they keep coming,
    /// looking for more for up to [`SPIN`] before the loop blocks again.
    ///
    /// The look is a bounded spin ([`Spin`]), not a sleep: a timed sleep
    /// overshoots by tens of microseconds (timer slack), longer than the
    /// gaps it is meant to bridge.
    fn stay_busy(&mut self) {
        let mut handled = 0usize;
        let mut spin = Spin::new();
        while !self.machine.is_finished() {
            match self.rx.try_recv() {
                Ok(msg) => {
                    self.handle(msg);
                    spin = Spin::new();
                    handled += 1;
                    if handled % BATCH == 0 {
                        self.tick_due();
                        self.starter.check_stall();
                    }
                    continue;
                }
                Err(_) => self.tick_due(),
            }
            if !spin.again(SPIN) {
                self.starter.check_stall();
                return;
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        // Whatever arrives after time has passed a deadline sees that
        // deadline's effects, even if the timer's wake-up is still queued.
        self.tick_due();
        let now = self.clock.now();
        let mut out = std::mem::take(&mut self.out);
        // Start jobs from callers' requests are collected, to go out in a
        // batch when the burst pauses; any other message sends them.
        let mut flush = true;
        match msg {
            Msg::Start {
                id,
                options,
                start,
                reply,
            } => {
                let result = self.machine.start(id, options, start, now, &mut out);
                answer(reply, result);
                flush = false;
            }
            Msg::Stop { id } => self.machine.stop(&id, now, &mut out),
            Msg::StopAndRemove { id, waiter, reply } => {
                let ack = reply.clone();
                self.machine
                    .stop_and_remove(&id, waiter, reply, now, &mut out);
                if !answers(&out, &ack) {
                    acknowledge(&ack);
                }
            }
            Msg::Lookup { id, waiter, reply } => {
                let ack = reply.clone();
                self.machine.lookup(&id, waiter, reply, &mut out);
                if !replies(&out, &ack) {
                    acknowledge(&ack);
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
                reports,
                start,
            } => {
                self.starter.finished();
                self.machine.started(
                    slot,
                    generation,
                    Started {
                        result,
                        reports,
                        start,
                    },
                    now,
                    &mut out,
                );
            }
            Msg::Exited {
                slot,
                generation,
                outcome,
            } => self
                .machine
                .exited(slot, generation, outcome, now, &mut out),
            Msg::Watcher(handle) => {
                self.watchers.retain(|h| !h.is_finished());
                self.watchers.push(handle);
            }
        }
        self.execute(&mut out);
        self.out = out;
        if flush || self.starter.held() >= HOLD_BACK {
            self.starter.flush();
        }
    }

    /// Starts the restarts that are due (repeatedly: a zero delay makes a
    /// deadline that is due at once), and hands them to the starters.
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
            self.starter.flush();
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
        let mut kills = 0usize;
        for action in out.drain(..) {
            match action {
                Action::Start {
                    slot,
                    generation,
                    id,
                    start,
                } => self.starter.push(StartJob {
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
                    // Killing a whole runner of thread-less workers makes
                    // each report its end at once; handle those as we go,
                    // so 100,000 endings never wait in the queue together.
                    kills += 1;
                    if kills % KILL_CHUNK == 0 {
                        while let Ok(msg) = self.rx.try_recv() {
                            self.handle(msg);
                        }
                    }
                }
                Action::Reap { worker } => {
                    // The worker has finished, so this returns at once; for
                    // a thread-backed worker it joins the thread.
                    let _ =
                        catch_panic(|| "wait of a finished worker".to_owned(), || worker.wait());
                }
                Action::Reply { to, result } => answer(to, result),
                Action::Removed { to, result } => answer(to, result),
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

#[cfg(test)]
mod tests {
    /// Messages and actions queue up by the hundred thousand when a big
    /// runner stops; they must stay small.
    #[test]
    fn messages_and_actions_stay_small() {
        use std::mem::size_of;
        assert!(
            size_of::<super::Msg>() <= 80,
            "Msg: {}",
            size_of::<super::Msg>()
        );
        let action = size_of::<crate::machine::Action<super::ShellIo>>();
        assert!(action <= 48, "Action: {action}");
    }
}

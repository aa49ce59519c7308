//! `Runner`: the handle users hold. Each method sends a message to the
//! runner's loop thread and, where it needs an answer, waits for the reply.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ThreadId;

use crossbeam_channel::{Sender, select};
use worker_core::threads::JoinSlot;
use worker_core::{
    Aborted, Clock, Dead, DoneCallback, Error, Report, Reporter, SharedWorker, Signal, Tomb,
    Worker, into_shared,
};

use crate::error::CalledFromLoop;
use crate::machine::Machine;
use crate::params::RunnerParams;
use crate::policy::WorkerOptions;
use crate::report::{self, RunnerReport};
use crate::shell::reply::{Answer, Cached, Channel, recv_answer};
use crate::shell::starter::Starter;
use crate::shell::{Loop, Msg, StartFn};
use crate::status::WaitingFor;

/// Runs named workers, restarting them when they fail; see the
/// [crate docs](crate) for the model and an example.
///
/// A runner is itself a [`Worker`] (kill it, wait for it, nest it in
/// another supervisor) and a [`Reporter`]. Every method can be called from
/// any thread. Once the runner has finished, every method fails at once
/// with [`Dead`] (or returns an empty answer, for the queries).
///
/// Dropping the last handle kills the runner (its workers are stopped in
/// the background); call [`wait`](Worker::wait) first to wait for them.
pub struct Runner {
    name: Arc<str>,
    tx: Sender<Msg>,
    tomb: Tomb,
    clock: Arc<dyn Clock>,
    next_waiter: AtomicU64,
    loop_thread: ThreadId,
    thread: JoinSlot,
}

impl Runner {
    /// Makes a runner and starts its loop thread (named `"<name>-loop"`).
    ///
    /// Fails with [`InvalidParams`](crate::InvalidParams) for unusable
    /// parameters (an empty name, a backoff factor below 1, ...), or if the
    /// system refuses a thread.
    pub fn new(params: RunnerParams) -> Result<Runner, Error> {
        params.validate()?;
        let parts = params.into_parts();
        let name: Arc<str> = parts.name.into();
        let (tx, rx) = crossbeam_channel::unbounded();
        let tomb = Tomb::new();
        let event_loop = Loop {
            machine: Machine::new(parts.config, parts.clock.now()),
            rx,
            clock: parts.clock.clone(),
            tomb: tomb.clone(),
            starter: Starter::new(name.clone(), parts.start_threads, tx.clone()),
            timer: None,
            watchers: Vec::new(),
            result: None,
            out: Vec::new(),
        };
        // At ERROR level so that the runner's name accompanies its events
        // whatever level a subscriber lets through.
        let span = tracing::error_span!("runner", name = %name);
        let thread = JoinSlot::default();
        thread
            .spawn(format!("{name}-loop"), move || {
                let _entered = span.enter();
                event_loop.run();
            })
            .map_err(|e| Error::new(e).context(format!("cannot start runner {name:?}")))?;
        let loop_thread = thread
            .thread_id()
            .expect("the loop thread was just started");
        Ok(Runner {
            name,
            tx,
            tomb,
            clock: parts.clock,
            next_waiter: AtomicU64::new(0),
            loop_thread,
            thread,
        })
    }

    /// The runner's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts a worker under `id`, with the runner's default restart type
    /// and policy: `start` is called (on one of the runner's start threads,
    /// never on the caller's) to make each incarnation.
    ///
    /// Returns once the id is registered, so an immediate
    /// [`worker`](Self::worker) or duplicate `start_worker` sees it. Fails
    /// with [`EmptyId`](crate::EmptyId), with
    /// [`AlreadyExists`](worker_core::AlreadyExists) while the id is known
    /// in any state (running, starting, waiting to restart, stopping), with
    /// [`Dying`](crate::Dying) while the runner shuts down and with
    /// [`Dead`] once it has.
    ///
    /// A start function that returns an error or panics counts as an
    /// incarnation that failed at once: `is_fatal` and the restart policy
    /// decide what follows.
    pub fn start_worker<W, F>(&self, id: impl Into<String>, mut start: F) -> Result<(), Error>
    where
        W: Worker,
        F: FnMut() -> Result<W, Error> + Send + 'static,
    {
        self.start_boxed(id.into(), None, Box::new(move || start().map(into_shared)))
    }

    /// [`start_worker`](Self::start_worker) with per-worker
    /// [`WorkerOptions`] (restart type, restart policy); fails with
    /// [`InvalidParams`](crate::InvalidParams) for an unusable policy.
    pub fn start_worker_with<W, F>(
        &self,
        id: impl Into<String>,
        options: WorkerOptions,
        mut start: F,
    ) -> Result<(), Error>
    where
        W: Worker,
        F: FnMut() -> Result<W, Error> + Send + 'static,
    {
        options.validate()?;
        let options = (options != WorkerOptions::default()).then(|| Box::new(options));
        self.start_boxed(
            id.into(),
            options,
            Box::new(move || start().map(into_shared)),
        )
    }

    fn start_boxed(
        &self,
        id: String,
        options: Option<Box<WorkerOptions>>,
        start: StartFn,
    ) -> Result<(), Error> {
        self.not_on_loop()?;
        let mut channel = Channel::take();
        self.send(Msg::Start {
            id,
            options,
            start,
            reply: channel.sender(),
        })?;
        match recv_answer(&channel.rx) {
            Ok(Answer::Done(result, back)) => {
                channel.reuse(back);
                result
            }
            // A start request is never acknowledged before its answer.
            Ok(Answer::Waiting) => unreachable!("start requests do not wait"),
            Err(_) => Err(Dead.into()),
        }
    }

    /// Stops the worker `id`: it is killed (at once, or as soon as its
    /// start function returns; a worker waiting to restart is removed at
    /// once) and never restarted. Returns without waiting for it to finish;
    /// an unknown id is ignored. Fails only with [`Dead`].
    ///
    /// As in Go, an error the worker returns when stopped goes to
    /// `is_fatal`; use [`stop_and_remove_worker`](Self::stop_and_remove_worker)
    /// to receive it instead.
    pub fn stop_worker(&self, id: &str) -> Result<(), Error> {
        self.send(Msg::Stop { id: id.to_owned() })
    }

    /// Stops the worker `id` as [`stop_worker`](Self::stop_worker) does,
    /// waits until the runner has forgotten it, and returns how its last
    /// incarnation ended (`Ok` if it was waiting to restart). That error
    /// is the caller's: it does not go to `is_fatal`. Any number of callers
    /// may wait for the same removal.
    ///
    /// Fails at once with [`NotFound`](worker_core::NotFound) for an
    /// unknown id and with [`Dead`] while the runner shuts down; with
    /// [`Aborted`] if `abort` fires (disconnects) while waiting, in which
    /// case the worker is still stopped.
    pub fn stop_and_remove_worker(&self, id: &str, abort: Option<&Signal>) -> Result<(), Error> {
        self.not_on_loop()?;
        let waiter = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let mut channel = Channel::take();
        self.send(Msg::StopAndRemove {
            id: id.to_owned(),
            waiter,
            reply: channel.sender(),
        })?;
        self.await_answer(id, waiter, channel, abort)?
    }

    /// The running instance of `id`, waiting while it is starting or
    /// waiting to restart (never a dead instance).
    ///
    /// Fails with [`NotFound`](worker_core::NotFound) if the id is unknown
    /// or goes away while waiting, with [`Dead`] if the runner is (or
    /// starts) shutting down, and with [`Aborted`] if `abort` fires while
    /// waiting. `abort` is a [`Signal`]: it fires when its sender is
    /// dropped, so `Some(&tomb.dying())` ties the wait to a worker's life.
    /// As in Go, `abort` is not looked at when the answer is immediate.
    pub fn worker(&self, id: &str, abort: Option<&Signal>) -> Result<SharedWorker, Error> {
        self.not_on_loop()?;
        let waiter = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let mut channel = Channel::take();
        self.send(Msg::Lookup {
            id: id.to_owned(),
            waiter,
            reply: channel.sender(),
        })?;
        self.await_answer(id, waiter, channel, abort)?
    }

    /// Waits for the answer of a request that may wait: the immediate part
    /// without looking at `abort`, then the rest until `abort` fires.
    fn await_answer<R: Cached>(
        &self,
        id: &str,
        waiter: u64,
        channel: Channel<R>,
        abort: Option<&Signal>,
    ) -> Result<R, Error> {
        let dead = |_| Error::new(Dead);
        let answer = match recv_answer(&channel.rx).map_err(dead)? {
            Answer::Waiting => match abort {
                None => channel.rx.recv().map_err(dead)?,
                Some(abort) => select! {
                    recv(channel.rx) -> answer => answer.map_err(dead)?,
                    recv(abort) -> _ => {
                        // The channel is dropped, not reused: the answer
                        // may still come.
                        let _ = self.send(Msg::Cancel { id: id.to_owned(), waiter });
                        return Err(Aborted.into());
                    }
                },
            },
            done => done,
        };
        match answer {
            Answer::Done(result, back) => {
                channel.reuse(back);
                Ok(result)
            }
            Answer::Waiting => unreachable!("a request is acknowledged once"),
        }
    }

    /// The ids the runner knows, in any state, sorted. Racy by nature: an
    /// id may come or go right after. Empty once the runner has finished.
    pub fn worker_names(&self) -> Vec<String> {
        self.query(|reply| Msg::Names { reply }).unwrap_or_default()
    }

    /// The workers the runner was asked to stop and is still waiting for
    /// (killed and not finished, or still in their start function), with
    /// how long and whether they count as stuck. While
    /// [`wait`](Worker::wait) blocks, this says on whom.
    pub fn waiting_for(&self) -> Vec<WaitingFor> {
        self.query(|reply| Msg::WaitingFor { reply })
            .unwrap_or_default()
    }

    fn query<R>(&self, msg: impl FnOnce(Sender<R>) -> Msg) -> Result<R, Error> {
        self.not_on_loop()?;
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.send(msg(reply))?;
        rx.recv().map_err(|_| Error::new(Dead))
    }

    fn send(&self, msg: Msg) -> Result<(), Error> {
        self.tx.send(msg).map_err(|_| Error::new(Dead))
    }

    /// A blocking request from the loop thread itself (from a completion
    /// callback the loop runs) would wait for itself forever.
    fn not_on_loop(&self) -> Result<(), Error> {
        if std::thread::current().id() == self.loop_thread {
            return Err(CalledFromLoop.into());
        }
        Ok(())
    }
}

impl Worker for Runner {
    /// Starts shutting down: every worker is killed, none is started or
    /// restarted again. Returns at once; idempotent.
    fn kill(&self) {
        let _ = self.tx.send(Msg::Kill);
    }

    /// Waits until every worker has finished and every thread the runner
    /// started has been joined, and returns the most important fatal error
    /// (`Ok` if there was none).
    fn wait(&self) -> Result<(), Error> {
        let result = self.tomb.wait();
        self.thread.join();
        result
    }

    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Worker::on_done(&self.tomb, callback)
    }

    fn dead_signal(&self) -> Option<Signal> {
        Some(self.tomb.dead())
    }

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

impl Runner {
    /// Every worker's state, start time, own report and restart reason;
    /// see the [crate docs](crate#reports). The workers' own reports are
    /// called on this thread, never on the runner's loop, so a slow one
    /// delays only this call. Empty once the runner has finished.
    pub fn report(&self) -> RunnerReport {
        let snapshot = self
            .query(|reply| Msg::Snapshot { reply })
            .unwrap_or_default();
        // The runner's identity for the recursion guard (a worker whose
        // report asks for this report again gets a marker): the address of
        // its name, allocated once per runner and shared, not copied, by
        // everything that holds it.
        report::build(snapshot, &*self.clock, Arc::as_ptr(&self.name).cast())
    }
}

/// [`Runner::report`], as a [`Report`] to nest in another's.
impl Reporter for Runner {
    fn report(&self) -> Report {
        Report::new(Runner::report(self))
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Kill);
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("name", &self.name)
            .field("state", &self.tomb.state())
            .finish_non_exhaustive()
    }
}

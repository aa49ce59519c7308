//! `Runner`: the handle users hold. Each method sends an event to the
//! runner's loop thread (run by the core's supervisor driver) and, where it
//! needs an answer, waits for the reply.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use worker_core::supervisor::{
    AsyncCall, Call, CallError, DriverConfig, Handle, Lending, Lent, Reply,
};
use worker_core::{
    AbortSignal, Aborted, Clock, Dead, DoneCallback, Error, Report, ReportScope, Reporter,
    SharedWorker, Signal, Worker, WouldDeadlock, into_shared,
};

use crate::error::{LookupError, NewError, RemoveError, StartError};
use crate::machine::{self, Machine};
use crate::params::RunnerParams;
use crate::policy::WorkerOptions;
use crate::report::{self, RunnerReport};
use crate::shell::starter::{self, StartJob};
use crate::shell::{Event, Shell, StartFn};
use crate::status::WaitingFor;

/// Runs named workers, restarting them when they fail; see the
/// [crate docs](crate) for the model and an example.
///
/// A runner is itself a [`Worker`] (kill it, wait for it, nest it in
/// another supervisor) and a [`Reporter`]. Every method can be called from
/// any thread. Once the runner has finished, every method fails at once
/// with [`Dead`] (or returns an empty answer, for the queries).
///
/// A `Runner` is a handle: cheap to clone (an `Arc`), `Send + Sync`, and
/// every clone is the same runner. The runner runs until it is killed (by
/// [`kill`](Worker::kill), by a fatal error, or by the supervisor it runs
/// in); dropping handles, even the last one, never stops it, so a worker
/// may hold a clone of its own runner (to start siblings, say) without
/// keeping anything alive by accident, and with no `Weak`. To tie a runner
/// to a scope, hold it through [`kill_on_drop`](Worker::kill_on_drop).
#[derive(Clone)]
pub struct Runner {
    pub(crate) handle: Handle<Event>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Numbers waiting callers, for any runner: unique in the process, so
/// that clones of one runner never hand out the same number.
static NEXT_WAITER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn next_waiter() -> u64 {
    NEXT_WAITER.fetch_add(1, Ordering::Relaxed)
}

impl Runner {
    /// Makes a runner and starts its loop thread (named `"<name>-loop"`).
    ///
    /// Fails with [`NewError::InvalidParams`] for unusable parameters (an
    /// empty name, a backoff factor below 1, ...), or
    /// [`NewError::Thread`] if the system refuses a thread.
    pub fn new(params: RunnerParams) -> Result<Runner, NewError> {
        params.validate().map_err(NewError::InvalidParams)?;
        let parts = params.into_parts();
        let name: Arc<str> = parts.name.into();
        let policies = Arc::new(parts.policies);
        let shell = Shell {
            machine: Machine::new(parts.config, parts.clock.now()),
            policies: policies.clone(),
            hooks: worker_core::events::Delivery::new(name.clone(), parts.hooks),
            out: Vec::new(),
            lending: Lending::default(),
        };
        let config = DriverConfig::new(name.clone(), parts.clock.clone())
            .threads(parts.start_threads)
            .stall(starter_timing::STALL)
            .linger(starter_timing::LINGER);
        // The job runner needs the runner's id, known once the driver
        // has started: it is handed over through this slot before any job
        // can run (no job runs before the first request).
        let id_slot = Arc::new(std::sync::OnceLock::new());
        let job_id = id_slot.clone();
        let job_name = name.clone();
        let handle = worker_core::supervisor::start(
            config,
            shell,
            move |job: StartJob, events| {
                let runner = job_id.get().copied().unwrap_or(0);
                starter::run_job(runner, &job_name, &policies, job, events)
            },
            starter::refused,
        )
        .map_err(|e| NewError::Thread {
            name: name.to_string(),
            source: Arc::new(e),
        })?;
        let _ = id_slot.set(handle.id());
        Ok(Runner {
            handle,
            clock: parts.clock,
        })
    }

    /// The runner's name.
    pub fn name(&self) -> &str {
        self.handle.name()
    }

    /// Starts a worker under `id`, with the runner's default restart type
    /// and policy: `start` is called (on one of the runner's start threads,
    /// never on the caller's) to make each incarnation.
    ///
    /// Returns once the id is registered, so an immediate
    /// [`worker`](Self::worker) or duplicate `start_worker` sees it. Fails
    /// ([`StartError`]) for an empty id, an id the runner knows in any
    /// state (running, starting, waiting to restart, stopping), while the
    /// runner shuts down ([`Dying`](crate::Dying)) and once it has
    /// ([`Dead`]).
    ///
    /// A start function that returns an error or panics counts as an
    /// incarnation that failed at once: `is_fatal` and the restart policy
    /// decide what follows.
    pub fn start_worker<W, F>(&self, id: impl Into<String>, mut start: F) -> Result<(), StartError>
    where
        W: Worker,
        F: FnMut() -> Result<W, Error> + Send + 'static,
    {
        self.start_boxed(
            id.into(),
            None,
            StartFn::new(move || start().map(into_shared)),
        )
    }

    /// [`start_worker`](Self::start_worker) with per-worker
    /// [`WorkerOptions`] (restart type, restart policy); fails with
    /// [`StartError::InvalidParams`] for an unusable policy.
    pub fn start_worker_with<W, F>(
        &self,
        id: impl Into<String>,
        options: WorkerOptions,
        mut start: F,
    ) -> Result<(), StartError>
    where
        W: Worker,
        F: FnMut() -> Result<W, Error> + Send + 'static,
    {
        options.validate().map_err(StartError::InvalidParams)?;
        let options = (options != WorkerOptions::default()).then(|| Box::new(options));
        self.start_boxed(
            id.into(),
            options,
            StartFn::new(move || start().map(into_shared)),
        )
    }

    /// Starts a worker that is never restarted (a
    /// [temporary](crate::RestartType::Temporary) one), from a start
    /// function called once: a connection's handler, say, which takes the
    /// socket it is given. Its end removes the id; a failure goes to
    /// `is_fatal` as any other.
    ///
    /// ```
    /// use worker_core::{Passive, Worker};
    /// use worker_runner::{Runner, RunnerParams};
    ///
    /// let runner = Runner::new(RunnerParams::new("doc-once").is_fatal(|_| false))?;
    /// let lease = Passive::new(); // moved in: no Option::take dance
    /// runner.start_worker_once("lease", move || Ok(lease))?;
    /// runner.worker("lease", None)?;
    /// runner.kill();
    /// runner.wait()?;
    /// # Ok::<(), worker_core::Error>(())
    /// ```
    pub fn start_worker_once<W, F>(&self, id: impl Into<String>, start: F) -> Result<(), StartError>
    where
        W: Worker,
        F: FnOnce() -> Result<W, Error> + Send + 'static,
    {
        let mut start = Some(start);
        let options = WorkerOptions::new().restart_type(crate::RestartType::Temporary);
        self.start_boxed(
            id.into(),
            Some(Box::new(options)),
            StartFn::new(move || match start.take() {
                Some(start) => start().map(into_shared),
                // A temporary worker is never started twice.
                None => Err(Error::msg("a one-shot start function was called twice")),
            }),
        )
    }

    /// Hands the runner a worker already made, to supervise under `id` and
    /// never restart: [`start_worker_once`](Self::start_worker_once) with
    /// a start function that returns it.
    pub fn adopt<W: Worker>(&self, id: impl Into<String>, worker: W) -> Result<(), StartError> {
        self.start_worker_once(id, move || Ok(worker))
    }

    fn start_boxed(
        &self,
        id: String,
        options: Option<Box<WorkerOptions>>,
        start: StartFn,
    ) -> Result<(), StartError> {
        let (call, reply) = Call::new();
        self.send(machine::Event::Start {
            id,
            options,
            start,
            reply,
        })
        .map_err(|_| StartError::Dead(Dead))?;
        call.wait().map_err(|_| StartError::Dead(Dead))?
    }

    /// Stops the worker `id`: it is killed (at once, or as soon as its
    /// start function returns; a worker waiting to restart is removed at
    /// once) and never restarted. Returns without waiting for it to finish;
    /// an unknown id is ignored (and so is every id while the runner shuts
    /// down). Fails only with [`Dead`], once the runner has finished.
    ///
    /// As in Go, an error the worker returns when stopped goes to
    /// `is_fatal`; use [`stop_and_remove_worker`](Self::stop_and_remove_worker)
    /// to receive it instead.
    pub fn stop_worker(&self, id: &str) -> Result<(), Dead> {
        self.send(machine::Event::Stop { id: id.to_owned() })
    }

    /// Stops the worker `id` as [`stop_worker`](Self::stop_worker) does,
    /// waits until the runner has forgotten it, and returns how its last
    /// incarnation ended (`Ok` if it was waiting to restart). That error
    /// is the caller's: it does not go to `is_fatal`. Any number of callers
    /// may wait for the same removal.
    ///
    /// Fails ([`RemoveError`]) with the stopped incarnation's own error
    /// ([`RemoveError::Stopped`]); at once for an unknown id and while the
    /// runner shuts down; when `abort` fires while waiting, in which case
    /// the worker is still stopped; and when called from `id`'s own start
    /// function (the removal would wait for it: [`WouldDeadlock`]).
    pub fn stop_and_remove_worker(
        &self,
        id: &str,
        abort: Option<&AbortSignal>,
    ) -> Result<(), RemoveError> {
        self.remove(id, None, abort, "stop_and_remove_worker")
    }

    /// [`stop_and_remove_worker`](Self::stop_and_remove_worker), waiting at
    /// most `timeout` by the runner's clock.
    ///
    /// Past the timeout it fails with [`RemoveError::TimedOut`],
    /// which says what happened to the worker: whether it is still in its
    /// start function or killed and running on, and whether it had been
    /// reported stuck or forced by then (as its
    /// [`Shutdown`](crate::Shutdown) says). The stop goes on: the worker
    /// is removed once it ends, and its error is logged, not handed to
    /// `is_fatal`. The other failures are those of
    /// `stop_and_remove_worker`.
    pub fn stop_and_remove_worker_within(
        &self,
        id: &str,
        timeout: Duration,
        abort: Option<&AbortSignal>,
    ) -> Result<(), RemoveError> {
        self.remove(id, Some(timeout), abort, "stop_and_remove_worker_within")
    }

    fn remove(
        &self,
        id: &str,
        timeout: Option<Duration>,
        abort: Option<&AbortSignal>,
        call: &'static str,
    ) -> Result<(), RemoveError> {
        self.not_own_start(id, call)
            .map_err(RemoveError::WouldDeadlock)?;
        let waiter = next_waiter();
        let (answer, reply) = Call::new();
        self.send(machine::Event::StopAndRemove {
            id: id.to_owned(),
            waiter,
            reply,
            timeout,
        })
        .map_err(RemoveError::Dead)?;
        let abort = abort.map(AbortSignal::receiver);
        let answer = answer.wait_or_abort(abort.as_ref());
        self.answered(id, waiter, answer, RemoveError::Dead, RemoveError::Aborted)?
    }

    /// The running instance of `id`, waiting while it is starting or
    /// waiting to restart (never a dead instance).
    ///
    /// Fails ([`LookupError`]) if the id is unknown or goes away while
    /// waiting, if the runner is (or starts) shutting down, if `abort`
    /// fires while waiting, and when called from `id`'s own start function
    /// ([`WouldDeadlock`]). `Some(&tomb.abort_signal())` ties the wait to
    /// a worker's life. As in Go, `abort` is not looked at when the answer
    /// is immediate.
    pub fn worker(
        &self,
        id: &str,
        abort: Option<&AbortSignal>,
    ) -> Result<SharedWorker, LookupError> {
        self.not_own_start(id, "worker")
            .map_err(LookupError::WouldDeadlock)?;
        let waiter = next_waiter();
        let (call, reply) = Call::new();
        self.send(machine::Event::Lookup {
            id: id.to_owned(),
            waiter,
            reply,
        })
        .map_err(LookupError::Dead)?;
        let abort = abort.map(AbortSignal::receiver);
        let answer = call.wait_or_abort(abort.as_ref());
        self.answered(id, waiter, answer, LookupError::Dead, LookupError::Aborted)?
    }

    /// [`worker`](Self::worker) for async code: a future of the running
    /// instance of `id`, on any executor, with no thread behind it (the
    /// runner's answer wakes the task). `abort` ends the wait with
    /// [`Aborted`] once the request waits, like the blocking call's.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// use worker_core::{Passive, Worker};
    /// use worker_runner::{Runner, RunnerParams};
    ///
    /// let runner = Runner::new(RunnerParams::new("doc-worker-async"))?;
    /// runner.start_worker("lease", || Ok(Passive::new()))?;
    /// let lease = runner.worker_async("lease", None).await?;
    /// # let _ = lease;
    /// runner.kill();
    /// worker_core::finished(&runner).await?;
    /// # Ok::<(), worker_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn worker_async(
        &self,
        id: &str,
        abort: Option<&AbortSignal>,
    ) -> Result<SharedWorker, LookupError> {
        let waiter = next_waiter();
        let (call, reply) = AsyncCall::new(abort);
        self.send(machine::Event::Lookup {
            id: id.to_owned(),
            waiter,
            reply,
        })
        .map_err(LookupError::Dead)?;
        let answer = call.await;
        self.answered(id, waiter, answer, LookupError::Dead, LookupError::Aborted)?
    }

    /// [`stop_and_remove_worker`](Self::stop_and_remove_worker) for async
    /// code: the same stop, and a future of the removal (with the stopped
    /// incarnation's result), on any executor, with no thread behind it.
    pub async fn stop_and_remove_worker_async(
        &self,
        id: &str,
        abort: Option<&AbortSignal>,
    ) -> Result<(), RemoveError> {
        let waiter = next_waiter();
        let (call, reply) = AsyncCall::new(abort);
        self.send(machine::Event::StopAndRemove {
            id: id.to_owned(),
            waiter,
            reply,
            timeout: None,
        })
        .map_err(RemoveError::Dead)?;
        let answer = call.await;
        self.answered(id, waiter, answer, RemoveError::Dead, RemoveError::Aborted)?
    }

    /// Turns the end of a request that may wait into the caller's result;
    /// an abort withdraws the caller.
    fn answered<R, E>(
        &self,
        id: &str,
        waiter: u64,
        answer: Result<R, CallError>,
        dead: impl FnOnce(Dead) -> E,
        aborted: impl FnOnce(Aborted) -> E,
    ) -> Result<R, E> {
        match answer {
            Ok(answer) => Ok(answer),
            Err(CallError::Closed) => Err(dead(Dead)),
            Err(CallError::Aborted) => {
                let _ = self.send(machine::Event::Cancel {
                    id: id.to_owned(),
                    waiter,
                });
                Err(aborted(Aborted))
            }
        }
    }

    /// The ids the runner knows, in any state, sorted. Racy by nature: an
    /// id may come or go right after. Empty once the runner has finished.
    pub fn worker_names(&self) -> Vec<String> {
        self.query(|reply| Event::Names { reply })
            .unwrap_or_default()
    }

    /// The workers the runner was asked to stop and is still waiting for
    /// (killed and not finished, or still in their start function), with
    /// how long and whether they count as stuck. While
    /// [`wait`](Worker::wait) blocks, this says on whom.
    pub fn waiting_for(&self) -> Vec<WaitingFor> {
        self.query(|reply| Event::WaitingFor { reply })
            .unwrap_or_default()
    }

    pub(crate) fn query<R: Send + 'static>(
        &self,
        event: impl FnOnce(Reply<R>) -> Event,
    ) -> Option<R> {
        let (call, reply) = Call::new();
        self.handle.send(event(reply)).ok()?;
        call.wait().ok()
    }

    pub(crate) fn send(&self, event: machine::Event<crate::shell::ShellIo>) -> Result<(), Dead> {
        // An event the loop refused (it has finished) is dropped here, on
        // the caller's thread.
        self.handle.send(Event::Machine(event)).map_err(|_| Dead)
    }

    /// The runner's identity for the report's recursion guard (a worker
    /// whose report asks for this report again gets a marker): the address
    /// of its name, allocated once per runner and shared, not copied, by
    /// everything that holds it.
    fn report_id(&self) -> *const () {
        Arc::as_ptr(self.handle.name()).cast()
    }

    /// A start function waiting for its own worker would wait forever.
    fn not_own_start(&self, id: &str, call: &'static str) -> Result<(), WouldDeadlock> {
        if starter::starting(self.handle.id(), id) {
            return Err(WouldDeadlock {
                supervisor: self.name().to_owned(),
                call,
            });
        }
        Ok(())
    }
}

/// The start threads' timing: see the core's `StartQueue` docs for the
/// rules and the measurements behind them.
mod starter_timing {
    use std::time::Duration;

    /// How long waiting start jobs tolerate every start thread being busy
    /// without any start completing, before another thread is added.
    pub(super) const STALL: Duration = Duration::from_millis(20);

    /// How long an idle start thread waits for more work before it ends:
    /// long enough that a steady flow of starts (a worker restarting every
    /// microsecond, a caller starting workers one by one) never waits for
    /// a new thread.
    pub(super) const LINGER: Duration = Duration::from_millis(200);
}

impl Worker for Runner {
    /// Starts shutting down: every worker is killed, none is started or
    /// restarted again. Returns at once; idempotent.
    fn kill(&self) {
        self.handle.kill();
    }

    /// Waits until every worker has finished and every thread the runner
    /// started has been joined, and returns the most important fatal error
    /// (`Ok` if there was none). Fails at once with [`WouldDeadlock`] on
    /// one of the runner's own threads, and within its own report (a
    /// worker's report: the runner waits for the workers lent to it).
    fn wait(&self) -> Result<(), Error> {
        if ReportScope::in_progress(self.report_id()) {
            return Err(Error::new(WouldDeadlock {
                supervisor: self.name().to_owned(),
                call: "wait (from the runner's own report)",
            }));
        }
        self.handle.wait()
    }

    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        self.handle.on_done(callback);
        Ok(())
    }

    fn dead_signal(&self) -> Option<Signal> {
        Some(self.handle.dead_signal())
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
    ///
    /// The workers are lent to this call while it asks for their reports,
    /// and go back to the runner afterwards (even if this call panics): if
    /// the runner let go of one meanwhile, it is still the runner that
    /// drops it, off its loop, and a runner that is stopping waits for
    /// them before it ends. So a report never runs a worker's `Drop`, and
    /// once [`wait`](Worker::wait) returns every worker has been dropped;
    /// but a worker whose own report is slow delays the end of a runner
    /// that stops meanwhile, as a slow `Drop` would. A worker's report
    /// that waits for its own runner, which would then wait forever, gets
    /// [`WouldDeadlock`] at once.
    pub fn report(&self) -> RunnerReport {
        let home = self.handle.clone();
        let (snapshot, lent) = self
            .query(|reply| Event::Snapshot { reply, home })
            .unwrap_or_else(|| (Vec::new(), Lent::none()));
        let report = report::build(snapshot, &*self.clock, self.report_id());
        // The snapshot's references are gone: the lent ones go home.
        drop(lent);
        report
    }
}

/// [`Runner::report`], as a [`Report`] to nest in another's.
impl Reporter for Runner {
    fn report(&self) -> Report {
        Report::new(Runner::report(self))
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("name", &self.name())
            .field("state", &self.handle.tomb().state())
            .finish_non_exhaustive()
    }
}

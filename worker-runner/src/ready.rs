//! Readiness: [`Runner::wait_ready`] and its async twin, waiting until
//! named workers (or all of them) have started. The runner's machine
//! keeps the callers and answers them when it registers a start (see
//! `machine/ready.rs`); this is the caller's side.

use std::time::Duration;

use worker_core::supervisor::{AsyncCall, Call, CallError, Reply};
use worker_core::{AbortSignal, Aborted, Names, ReadyError, SupervisorStopped, WouldDeadlock};

use crate::machine;
use crate::runner::{Runner, next_waiter};
use crate::shell::starter;

impl Runner {
    /// Waits until the workers `which` names (ids, or
    /// [`Names::All`]) have started: each one's start function has
    /// returned a worker and the runner has registered it, so that
    /// [`worker(id)`](Self::worker) hands it out at once. Waits at most
    /// `timeout` by the runner's clock (`Duration::MAX`: no limit), and
    /// gives up when `abort` fires. Go's tests get this from
    /// `NewRunnerWithNotify`; here every program can.
    ///
    /// The rules (in full in [`worker_core::ready`]): an id counts as
    /// started if it runs when the call is made or a start of it
    /// registers after; [`Names::All`] is every id the runner knows at the
    /// call, except ids it is stopping (ids started later are not waited
    /// for); a start is an event, so a worker may fail again right after.
    ///
    /// Fails ([`ReadyError`]) with:
    /// - [`NotFound`](ReadyError::NotFound), at once, for an id the runner
    ///   does not know or is stopping (as `worker(id)`: start it first,
    ///   then wait), and later for one that goes away before it started
    ///   (stopped, removed, or not restarted after a failed start);
    /// - [`TimedOut`](ReadyError::TimedOut), naming the ids not started;
    /// - [`Aborted`](ReadyError::Aborted) when `abort` fires while waiting
    ///   (an answer ready at once wins, as for `worker(id)`);
    /// - [`Stopped`](ReadyError::Stopped) when the runner shuts down (or
    ///   has), with the fatal error that made it stop, if any;
    /// - [`WouldDeadlock`](ReadyError::WouldDeadlock) from the start
    ///   function of a worker it would wait for.
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_core::{Names, Passive, ReadyError, Worker};
    /// use worker_runner::{Runner, RunnerParams};
    ///
    /// let runner = Runner::new(RunnerParams::new("doc-ready").is_fatal(|_| false))?;
    /// runner.start_worker("db", || Ok(Passive::new()))?;
    /// runner.start_worker("http", || Ok(Passive::new()))?;
    /// runner.wait_ready(Names::All, Duration::from_secs(10), None)?;
    /// runner.wait_ready(["db"], Duration::ZERO, None)?; // started: answered at once
    ///
    /// // Start first, then wait: an unknown id fails at once.
    /// let err = runner.wait_ready("cache", Duration::MAX, None).unwrap_err();
    /// assert!(matches!(err, ReadyError::NotFound(_)));
    /// runner.kill();
    /// runner.wait()?;
    /// # Ok::<(), worker_core::Error>(())
    /// ```
    pub fn wait_ready(
        &self,
        which: impl Into<Names>,
        timeout: Duration,
        abort: Option<&AbortSignal>,
    ) -> Result<(), ReadyError> {
        let which = which.into();
        self.not_waiting_for_own_start(&which)?;
        let waiter = next_waiter();
        let (call, reply) = Call::new();
        if self
            .send(ready_event(&which, waiter, timeout, reply))
            .is_err()
        {
            return Err(self.finished_before(&which));
        }
        let abort = abort.map(AbortSignal::receiver);
        let answer = call.wait_or_abort(abort.as_ref());
        self.ready_answered(&which, waiter, answer)
    }

    /// [`wait_ready`](Self::wait_ready) for async code: a future of the
    /// same answer, on any executor, with no thread behind it: the
    /// runner's loop wakes the task when the last start registers, the
    /// timeout passes on the runner's clock, or `abort` fires.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// use std::time::Duration;
    /// use worker_core::{Passive, Worker};
    /// use worker_runner::{Runner, RunnerParams};
    ///
    /// let runner = Runner::new(RunnerParams::new("doc-ready-async"))?;
    /// runner.start_worker("lease", || Ok(Passive::new()))?;
    /// runner.wait_ready_async(["lease"], Duration::from_secs(10), None).await?;
    /// runner.kill();
    /// worker_core::finished(&runner).await?;
    /// # Ok::<(), worker_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn wait_ready_async(
        &self,
        which: impl Into<Names>,
        timeout: Duration,
        abort: Option<&AbortSignal>,
    ) -> Result<(), ReadyError> {
        let which = which.into();
        self.not_waiting_for_own_start(&which)?;
        let waiter = next_waiter();
        let (call, reply) = AsyncCall::new(abort);
        if self
            .send(ready_event(&which, waiter, timeout, reply))
            .is_err()
        {
            return Err(self.finished_before(&which));
        }
        let answer = call.await;
        self.ready_answered(&which, waiter, answer)
    }

    /// A start function waiting for its own worker (by id, or as one of
    /// all of them) would wait for itself.
    fn not_waiting_for_own_start(&self, which: &Names) -> Result<(), ReadyError> {
        let Some(own) = starter::starting_in(self.handle.id()) else {
            return Ok(());
        };
        let includes = match which {
            Names::All => true,
            Names::Only(names) => names.iter().any(|n| **n == *own),
        };
        if includes {
            return Err(ReadyError::WouldDeadlock(WouldDeadlock {
                supervisor: self.name().to_owned(),
                call: "wait_ready",
            }));
        }
        Ok(())
    }

    fn ready_answered(
        &self,
        which: &Names,
        waiter: u64,
        answer: Result<Result<(), ReadyError>, CallError>,
    ) -> Result<(), ReadyError> {
        match answer {
            Ok(answer) => answer,
            // The loop dropped the request: it ended before it could say.
            Err(CallError::Closed) => Err(self.finished_before(which)),
            Err(CallError::Aborted) => {
                let _ = self.send(machine::Event::CancelReady { waiter });
                Err(ReadyError::Aborted(Aborted))
            }
        }
    }

    /// The runner has finished (or finishes): nothing starts any more.
    fn finished_before(&self, which: &Names) -> ReadyError {
        let mut not_started = match which {
            Names::All => Vec::new(),
            Names::Only(names) => names.clone(),
        };
        not_started.sort();
        not_started.dedup();
        ReadyError::Stopped(SupervisorStopped {
            not_started,
            error: self.handle.tomb().try_result().and_then(Result::err),
        })
    }
}

fn ready_event(
    which: &Names,
    waiter: u64,
    timeout: Duration,
    reply: Reply<Result<(), ReadyError>>,
) -> machine::Event<crate::shell::ShellIo> {
    machine::Event::Ready {
        which: Box::new(which.clone()),
        waiter,
        timeout,
        reply,
    }
}

//! Readiness: [`Runner::wait_ready`] and its async twin, waiting until
//! named workers (or all of them) have started. The runner's machine
//! keeps the callers and answers them when it registers a start (see
//! `machine/ready.rs`); the caller's side is the core's, shared with the
//! engine.

use std::time::Duration;

use worker_core::supervisor::ready::{ReadyCaller, ReadyRequest};
use worker_core::{AbortSignal, Names, ReadyError};

use crate::machine;
use crate::runner::Runner;
use crate::shell::{Event, starter};

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
        self.ready_caller().wait(which.into(), timeout, abort)
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
        self.ready_caller()
            .wait_async(which.into(), timeout, abort)
            .await
    }

    fn ready_caller(&self) -> ReadyCaller<'_, Event> {
        ReadyCaller {
            handle: &self.handle,
            own_start: starter::starting_in(self.handle.id()),
            request: |r: ReadyRequest| {
                Event::Machine(machine::Event::Ready {
                    which: r.which,
                    waiter: r.waiter,
                    timeout: r.timeout,
                    reply: r.reply,
                })
            },
            cancel: |waiter| Event::Machine(machine::Event::CancelReady { waiter }),
        }
    }
}

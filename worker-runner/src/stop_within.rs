//! Bounded shutdown: [`Runner::stop_within`].

use std::time::Duration;

use worker_core::{StopError, Worker, wait_naming_stragglers};

use crate::runner::Runner;
use crate::shell::Event;

impl Runner {
    /// Kills the runner and waits for it to finish, for at most `timeout`
    /// by the runner's clock: [`stop`](worker_core::stop) with a bound.
    /// `Duration::MAX` is no bound (it is `stop`).
    ///
    /// Returns `Ok` or [`StopError::Failed`] (what [`wait`](Worker::wait)
    /// returns) if the runner finished in time. Past the deadline it
    /// fails with [`StopError::TimedOut`], whose
    /// [`StopTimedOut::waiting_for`](worker_core::StopTimedOut::waiting_for) lists every worker the runner still
    /// waits for, by id: killed and not finished
    /// ([`Stopping`](worker_core::WorkerState::Stopping)), still in its
    /// start function ([`Starting`](worker_core::WorkerState::Starting):
    /// killed as soon as it returns), or, in an ordered shutdown
    /// ([`ShutdownOrder::Reverse`](crate::ShutdownOrder::Reverse)), not
    /// asked to stop yet ([`Started`](worker_core::WorkerState::Started)),
    /// each with how long it has been stopping and whether it was
    /// reported stuck or forced. An empty list means every worker has
    /// ended and the runner is still letting go of them (a slow `wait` or
    /// `Drop`, or the event hook).
    ///
    /// What becomes of those workers: the shutdown goes on. They stay
    /// killed, and the runner still waits for them: a later
    /// [`wait`](Worker::wait) (or `stop_within`) returns once they have
    /// ended, and [`waiting_for`](Runner::waiting_for) and the report go
    /// on saying who they are. A worker that can be forced
    /// ([`Worker::abortable`]: an async task) is forced when its
    /// [`Shutdown`](crate::Shutdown) says so (`Abort`, or `Timeout` once
    /// that passes), deadline or not; a thread cannot be forced.
    ///
    /// Fails with [`StopError::WouldDeadlock`] at once (having killed the
    /// runner) on one of the runner's own threads.
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_core::{Passive, StopError};
    /// use worker_runner::{Runner, RunnerParams};
    /// use worker_testing::misbehaving::BlockingKill;
    ///
    /// let runner = Runner::new(RunnerParams::new("doc-stop-within"))?;
    /// let (stubborn, gate) = BlockingKill::new(); // its kill blocks until the gate opens
    /// runner.start_worker_once("stubborn", move || Ok(stubborn))?;
    /// runner.worker("stubborn", None)?;
    ///
    /// match runner.stop_within(Duration::from_millis(50)) {
    ///     Err(StopError::TimedOut(e)) => assert_eq!(e.waiting_for[0].name, "stubborn"),
    ///     other => panic!("{other:?}"),
    /// }
    /// gate.open(); // the worker's kill returns, and so does the runner
    /// runner.stop_within(Duration::MAX)?;
    /// # Ok::<(), worker_core::Error>(())
    /// ```
    pub fn stop_within(&self, timeout: Duration) -> Result<(), StopError> {
        self.kill();
        self.handle
            .check_not_own_thread("stop_within")
            .map_err(StopError::WouldDeadlock)?;
        wait_naming_stragglers(self, self.name(), &*self.clock, timeout, || {
            let named = self.query(|reply| Event::Stragglers { reply });
            (named.unwrap_or_default(), 0)
        })
    }
}

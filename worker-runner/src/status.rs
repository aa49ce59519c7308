//! What a runner can tell about the workers it is waiting for.

use std::time::Duration;

/// Why the runner is waiting for a worker; see [`WaitingFor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Its start function has not returned yet; the worker will be killed
    /// as soon as it does.
    Starting,
    /// It was killed and has not finished yet.
    Stopping,
}

/// A worker that was asked to stop and has not finished: what
/// [`Runner::waiting_for`](crate::Runner::waiting_for) lists, and what a
/// runner's `wait()` is blocked on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingFor {
    /// The worker's id.
    pub id: String,
    /// Whether it is still starting or already killed.
    pub stage: Stage,
    /// How long it has been in that stage (by the runner's clock).
    pub elapsed: Duration,
    /// Whether it has outlived its stop timeout (its
    /// [`Shutdown::Timeout`](crate::Shutdown::Timeout), or else
    /// [`RunnerParams::stop_timeout`](crate::RunnerParams::stop_timeout)).
    pub stuck: bool,
}

//! The runner's lifecycle events: what programs that act on a worker's
//! life (count restarts, page someone when a worker gives up, restart a
//! dependent elsewhere) receive through
//! [`RunnerParams::on_event`](crate::RunnerParams::on_event), and what the
//! runner logs through `tracing`. One vocabulary for both: each event is
//! logged with its name as the message's first words (`"worker started"`,
//! `"worker failed"`, ...) and its fields as tracing fields.

use std::sync::Arc;
use std::time::Duration;

use worker_core::Error;

use crate::status::Stage;

/// Receives the runner's [`RunnerEvent`]s, in order; see
/// [`RunnerParams::on_event`](crate::RunnerParams::on_event).
pub type EventHook = Arc<dyn Fn(&RunnerEvent) + Send + Sync>;

/// Something that happened to a worker of the runner, or to the runner.
///
/// The runner's `tracing` events use the same names; see
/// [`name`](RunnerEvent::name).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RunnerEvent {
    /// An incarnation of `id` is running: its start function returned it.
    Started {
        /// The worker.
        id: Arc<str>,
    },
    /// An incarnation of `id` ended with an error, or its start function
    /// failed. What the runner does about it follows (restarting, stopped,
    /// gave up, shutting down).
    Failed {
        /// The worker.
        id: Arc<str>,
        /// How it ended.
        error: Error,
        /// Whether `is_fatal` said the error ends the runner.
        fatal: bool,
    },
    /// `id` will be started again after `delay`.
    Restarting {
        /// The worker.
        id: Arc<str>,
        /// How long until the start (a sibling cascade or a failure
        /// backoff pause may add to it).
        delay: Duration,
        /// Which consecutive restart of `id` this is (1 for the first).
        attempt: u32,
        /// The worker whose restart causes this one, when it is another
        /// (a cascade of the runner's [`Strategy`](crate::Strategy)).
        because_of: Option<Arc<str>>,
    },
    /// The runner gave up restarting: too many restarts (a worker's own
    /// intensity limit, or the runner's). `error` is the fatal error the
    /// runner ends with.
    GaveUp {
        /// The worker whose restart was one too many.
        id: Arc<str>,
        /// The escalated error.
        error: Error,
    },
    /// Every restart of the runner is paused for `backoff`: the failure
    /// count is above the threshold of the runner's
    /// [`FailureBackoff`](crate::FailureBackoff).
    Paused {
        /// The decayed failure count.
        failures: f64,
        /// How long restarts pause.
        backoff: Duration,
    },
    /// Restarts resumed after a pause.
    Resumed,
    /// `id` was asked to stop `after` ago and has not finished: reported
    /// once, when its shutdown timeout (or the runner's stop timeout)
    /// passes.
    Stuck {
        /// The worker.
        id: Arc<str>,
        /// Still in its start function, or killed and not finished.
        stage: Stage,
        /// How long ago it was asked to stop.
        after: Duration,
        /// Whether the runner has forced it
        /// ([`Worker::abortable`](worker_core::Worker::abortable)); a
        /// worker on a thread cannot be forced.
        forced: bool,
    },
    /// `id` ended for good and the runner forgot it (a clean exit, a stop,
    /// an error that is not restarted, a shutdown).
    Stopped {
        /// The worker.
        id: Arc<str>,
    },
    /// The runner began to shut down.
    ShuttingDown {
        /// Why.
        cause: ShutdownCause,
    },
}

/// Why a runner shuts down; see [`RunnerEvent::ShuttingDown`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownCause {
    /// It was killed.
    Killed,
    /// A worker's error was fatal, or it gave up restarting this worker.
    Fatal {
        /// The worker.
        id: Arc<str>,
    },
    /// A significant worker ended by itself (see
    /// [`AutoShutdown`](crate::AutoShutdown)).
    AutoShutdown {
        /// The worker.
        id: Arc<str>,
    },
}

impl RunnerEvent {
    /// The event's name, also the first words of its `tracing` message:
    /// `"worker started"`, `"worker failed"`, `"worker restarting"`,
    /// `"gave up on worker"`, `"restarts paused"`, `"restarts resumed"`,
    /// `"worker stuck"`, `"worker stopped"`, `"runner shutting down"`.
    pub fn name(&self) -> &'static str {
        match self {
            RunnerEvent::Started { .. } => "worker started",
            RunnerEvent::Failed { .. } => "worker failed",
            RunnerEvent::Restarting { .. } => "worker restarting",
            RunnerEvent::GaveUp { .. } => "gave up on worker",
            RunnerEvent::Paused { .. } => "restarts paused",
            RunnerEvent::Resumed => "restarts resumed",
            RunnerEvent::Stuck { .. } => "worker stuck",
            RunnerEvent::Stopped { .. } => "worker stopped",
            RunnerEvent::ShuttingDown { .. } => "runner shutting down",
        }
    }

    /// The worker the event is about, if it is about one.
    pub fn id(&self) -> Option<&str> {
        match self {
            RunnerEvent::Started { id }
            | RunnerEvent::Failed { id, .. }
            | RunnerEvent::Restarting { id, .. }
            | RunnerEvent::GaveUp { id, .. }
            | RunnerEvent::Stuck { id, .. }
            | RunnerEvent::Stopped { id } => Some(id),
            RunnerEvent::Paused { .. }
            | RunnerEvent::Resumed
            | RunnerEvent::ShuttingDown { .. } => None,
        }
    }

    /// Logs the event through `tracing`, at its level: trace for a start,
    /// debug for the routine (stopped, shutting down), info for a restart
    /// and the end of a pause, warn for what needs a look (a non-fatal
    /// failure, a stuck worker, a pause), error for what ends the runner.
    pub(crate) fn trace(&self) {
        match self {
            RunnerEvent::Started { id } => tracing::trace!(%id, "worker started"),
            RunnerEvent::Failed {
                id,
                error,
                fatal: true,
            } => tracing::error!(%id, %error, "worker failed; the error is fatal"),
            RunnerEvent::Failed {
                id,
                error,
                fatal: false,
            } => tracing::warn!(%id, %error, "worker failed"),
            RunnerEvent::Restarting {
                id,
                delay,
                attempt,
                because_of,
            } => match because_of {
                None => tracing::info!(%id, ?delay, attempt, "worker restarting"),
                Some(cause) => {
                    tracing::info!(%id, ?delay, attempt, because_of = %cause, "worker restarting")
                }
            },
            RunnerEvent::GaveUp { id, error } => {
                tracing::error!(%id, %error, "gave up on worker: restart intensity exceeded")
            }
            RunnerEvent::Paused { failures, backoff } => {
                tracing::warn!(failures, ?backoff, "restarts paused: too many failures")
            }
            RunnerEvent::Resumed => tracing::info!("restarts resumed"),
            RunnerEvent::Stuck {
                id,
                stage,
                after,
                forced,
            } => tracing::warn!(
                %id,
                ?stage,
                ?after,
                forced,
                "worker stuck: has not stopped since it was asked to{}",
                if *forced {
                    "; forced"
                } else {
                    "; still waiting for it"
                }
            ),
            RunnerEvent::Stopped { id } => tracing::debug!(%id, "worker stopped"),
            RunnerEvent::ShuttingDown { cause } => {
                tracing::debug!(?cause, "runner shutting down")
            }
        }
    }
}

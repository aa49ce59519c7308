//! The events through `tracing`: each logged at its level under its name,
//! with the same fields everywhere, and the span of a worker incarnation.

use tracing::Level;

use super::{Event, EventKind};

/// Logs `$event` at `$level` with the common fields, the kind's own
/// fields, and `$message` (the event's name).
macro_rules! log_at {
    ($level:ident, $event:expr, $message:literal $(, $($field:tt)*)?) => {
        tracing::event!(
            target: "worker_core::events",
            Level::$level,
            supervisor = &*$event.supervisor,
            worker = $event.worker.as_deref(),
            generation = $event.generation,
            $($($field)*,)?
            $message
        )
    };
}

impl Event {
    /// The level the event is logged at: trace for starts, debug for the
    /// routine (stopping, stopped, bouncing, removed, shutting down), info
    /// for a restart and the end of a pause, warn for what needs a look (a
    /// failure that is not fatal, a stuck worker, a pause), error for what
    /// ends the supervisor (a fatal failure, giving up).
    pub fn level(&self) -> Level {
        match &self.kind {
            EventKind::Starting | EventKind::Started => Level::TRACE,
            EventKind::Stopping
            | EventKind::Stopped { .. }
            | EventKind::Bouncing { .. }
            | EventKind::Removed
            | EventKind::ShuttingDown { .. } => Level::DEBUG,
            EventKind::Restarting { .. } | EventKind::Resumed => Level::INFO,
            EventKind::Failed { fatal: false, .. }
            | EventKind::Stuck { .. }
            | EventKind::Paused { .. } => Level::WARN,
            EventKind::Failed { fatal: true, .. } | EventKind::GaveUp { .. } => Level::ERROR,
        }
    }

    /// Logs the event through `tracing`, as every supervisor does: at its
    /// [level](Event::level), with its [name](Event::name) as the message
    /// and its fields as fields (`supervisor`, `worker`, `generation`,
    /// then the kind's own: `error`, `fatal`, `started`, `stopped_after`,
    /// `stuck`, `reason`, `delay`, `attempt`, `because_of`, `input`,
    /// `after`, `starting`, `forced`, `failures`, `backoff`, `cause`), under the
    /// target `worker_core::events` (so `RUST_LOG=worker_core::events=debug`
    /// shows every supervisor's routine events).
    pub fn log(&self) {
        let e = self;
        match &self.kind {
            EventKind::Starting => log_at!(TRACE, e, "worker starting"),
            EventKind::Started => log_at!(TRACE, e, "worker started"),
            EventKind::Stopping => log_at!(DEBUG, e, "worker stopping"),
            EventKind::Stuck {
                after,
                starting,
                forced,
            } => log_at!(WARN, e, "worker stuck", after = ?after, starting = starting,
                forced = forced),
            EventKind::Failed { error, fatal, end } => {
                if *fatal {
                    log_at!(ERROR, e, "worker failed", error = %error, fatal = true,
                        started = end.started, stopped_after = ?end.stopped_after, stuck = end.stuck)
                } else {
                    log_at!(WARN, e, "worker failed", error = %error, fatal = false,
                        started = end.started, stopped_after = ?end.stopped_after, stuck = end.stuck)
                }
            }
            EventKind::Stopped { end, reason } => log_at!(DEBUG, e, "worker stopped",
                started = end.started, stopped_after = ?end.stopped_after, stuck = end.stuck,
                reason = reason.as_ref().map(tracing::field::display)),
            EventKind::Restarting {
                delay,
                attempt,
                because_of,
            } => log_at!(INFO, e, "worker restarting", delay = ?delay, attempt = attempt,
                because_of = because_of.as_deref()),
            EventKind::Bouncing { input, delay } => {
                log_at!(DEBUG, e, "worker bouncing", input = input.as_deref(), delay = ?delay)
            }
            EventKind::Removed => log_at!(DEBUG, e, "worker removed"),
            EventKind::GaveUp { error } => log_at!(ERROR, e, "gave up on worker", error = %error),
            EventKind::Paused { failures, backoff } => {
                log_at!(WARN, e, "restarts paused", failures = failures, backoff = ?backoff)
            }
            EventKind::Resumed => log_at!(INFO, e, "restarts resumed"),
            EventKind::ShuttingDown { cause } => {
                log_at!(DEBUG, e, "supervisor shutting down", cause = ?cause)
            }
        }
    }
}

/// Whether any `tracing` subscriber may want the supervisors' events: a
/// supervisor that has no hook builds no event unless this says so.
pub fn logging() -> bool {
    tracing::level_filters::LevelFilter::current() != tracing::level_filters::LevelFilter::OFF
}

/// The span of one worker incarnation: named `worker`, with the fields
/// `supervisor`, `worker` (absent for a catacomb's unnamed workers) and
/// `generation`, the same as the events'.
///
/// The supervisors enter it around a start function, and
/// [`spawn`](crate::spawn()) and `task::spawn` carry the span current when
/// they are called into the worker's body, so everything a worker logs,
/// from its start function to its last line, is in its incarnation's span.
/// A supervisor of your own does the same with
/// [`Span::in_scope`](tracing::Span::in_scope).
///
/// It is an `ERROR`-level span, like the supervisor span of the loop
/// threads: a span's level only decides whether it exists, and this one
/// must exist whenever anything a worker logs is kept. Without a
/// subscriber it costs nothing.
pub fn worker_span(supervisor: &str, worker: Option<&str>, generation: u64) -> tracing::Span {
    tracing::error_span!("worker", supervisor, worker, generation)
}

//! The vocabulary: [`Event`], what it says ([`EventKind`]) and how an
//! incarnation ended ([`End`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{Error, Panicked};

/// Something that happened to a worker of a supervisor, or to the
/// supervisor: what every supervisor of the family hands its hooks and
/// logs through `tracing`. See the [module docs](super) for the life of
/// an incarnation in these events.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Event {
    /// The supervisor's name (a runner's or catacomb's name, an engine's).
    pub supervisor: Arc<str>,
    /// The worker: a runner's id, an engine's manifold. `None` for an
    /// event about the supervisor itself, and for a catacomb's workers,
    /// which have no names (their `generation` tells them apart).
    pub worker: Option<Arc<str>>,
    /// The incarnation the event is about: a number the supervisor never
    /// gives twice (a catacomb numbers its bindings). For `Restarting` and
    /// `Bouncing`, the incarnation that ended; the next one gets its
    /// number at its `Starting`. 0 for an event about the supervisor.
    pub generation: u64,
    /// What happened.
    pub kind: EventKind,
}

/// What happened; see [`Event`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventKind {
    /// Its start function is about to run (runner, engine).
    Starting,
    /// It runs: its start function returned it (runner, engine), or it was
    /// bound (catacomb).
    Started,
    /// It was asked to stop: killed, or (still in its start function)
    /// to be stopped as soon as that returns.
    Stopping,
    /// It has not stopped `after` it was asked to, past its stop timeout:
    /// reported once per incarnation (runner, engine).
    Stuck {
        /// How long ago it was asked to stop.
        after: Duration,
        /// Whether it is still in its start function (which cannot be
        /// stopped; it will be killed as soon as that returns).
        starting: bool,
        /// Whether the supervisor forced it
        /// ([`Worker::abortable`](crate::Worker::abortable)); a thread
        /// cannot be forced.
        forced: bool,
    },
    /// The incarnation ended with an error: its start function failed, or
    /// the worker ended with one. What the supervisor does about it
    /// follows (`Restarting`, `Removed`, `GaveUp`, `ShuttingDown`).
    Failed {
        /// How it ended.
        error: Error,
        /// Whether the error ends the supervisor (its `is_fatal` said so;
        /// in a catacomb, every error does).
        fatal: bool,
        /// How far it got.
        end: End,
    },
    /// The incarnation ended without a failure: by itself, after it was
    /// asked to stop, or its start was given up (an engine's manifold
    /// whose input is missing).
    Stopped {
        /// How far it got.
        end: End,
        /// The error it ended with that is not a failure, if any: an
        /// engine's control errors (`Missing`, `Bounce`, `Uninstall`), or
        /// the error of a worker a runner removed or forced.
        reason: Option<Error>,
    },
    /// It will be started again after `delay`, because it failed (or, in
    /// a runner's cascade, because a sibling did).
    Restarting {
        /// How long until the start (a cascade or a paused runner may add
        /// to it).
        delay: Duration,
        /// Which consecutive restart this is (1 for the first): a runner's
        /// attempt, an engine's backoff step.
        attempt: u32,
        /// The worker whose restart causes this one, when it is another
        /// (a runner's one-for-all or rest-for-one strategy).
        because_of: Option<Arc<str>>,
    },
    /// It will be started again after `delay` without having failed
    /// (engine): one of its inputs started or stopped, or it asked to be
    /// (`Bounce`).
    Bouncing {
        /// The input that changed; `None` when the worker asked.
        input: Option<Arc<str>>,
        /// How long until the start.
        delay: Duration,
    },
    /// The supervisor forgot the worker: a runner's id is gone (stopped,
    /// removed, or ended for good), an engine's manifold was uninstalled.
    Removed,
    /// A runner gave up restarting the worker: it restarted too often (its
    /// own intensity limit, or the runner's). `error` is the fatal error
    /// the runner ends with.
    GaveUp {
        /// The escalated error.
        error: Error,
    },
    /// A runner paused every restart for `backoff`: its failure count
    /// passed the threshold of its failure backoff.
    Paused {
        /// The decayed failure count.
        failures: f64,
        /// How long restarts pause.
        backoff: Duration,
    },
    /// A runner's restarts resumed after a pause.
    Resumed,
    /// The supervisor began to shut down.
    ShuttingDown {
        /// Why.
        cause: ShutdownCause,
    },
}

/// How far an incarnation got, told with its end ([`EventKind::Failed`],
/// [`EventKind::Stopped`]): what metrics need to keep their gauges right
/// without remembering every incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct End {
    /// Whether it had started (a `Started` event came for it): false when
    /// its start function failed or its start was given up.
    pub started: bool,
    /// How long after it was asked to stop it ended; `None` when it ended
    /// on its own.
    pub stopped_after: Option<Duration>,
    /// Whether a `Stuck` event came for it.
    pub stuck: bool,
}

impl End {
    /// The end of an incarnation that had `started`, asked to stop
    /// `stopped_after` ago (if it was), and reported `stuck` (or not).
    pub fn new(started: bool, stopped_after: Option<Duration>, stuck: bool) -> Self {
        End {
            started,
            stopped_after,
            stuck,
        }
    }
}

/// Why a supervisor shuts down; see [`EventKind::ShuttingDown`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownCause {
    /// It was killed.
    Killed,
    /// An error ends it: a worker's fatal error (the worker is named when
    /// the supervisor names its workers), a runner that gave up, or a
    /// catacomb killed with an error.
    Fatal {
        /// The worker whose error it was, if known by name.
        worker: Option<Arc<str>>,
    },
    /// A significant worker of a runner ended by itself (OTP's automatic
    /// shutdown).
    AutoShutdown {
        /// The worker.
        worker: Arc<str>,
    },
    /// A catacomb's work returned without an error.
    Finished,
}

/// What kind of failure an [`EventKind::Failed`] is, for metrics:
/// [`Event::failure_kind`]. Each failure has exactly one kind, the first
/// that applies in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// It ends the supervisor (`fatal`).
    Fatal,
    /// Its start function failed: no worker ran.
    Start,
    /// The worker panicked ([`Panicked`]).
    Panic,
    /// The worker ended with an error.
    Error,
}

impl FailureKind {
    /// The kind as a metric label: `fatal`, `start`, `panic`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Fatal => "fatal",
            FailureKind::Start => "start",
            FailureKind::Panic => "panic",
            FailureKind::Error => "error",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// An event of `supervisor` about `worker`'s incarnation `generation`
    /// (for a supervisor of your own, or to test a hook).
    pub fn new(
        supervisor: Arc<str>,
        worker: Option<Arc<str>>,
        generation: u64,
        kind: EventKind,
    ) -> Self {
        Event {
            supervisor,
            worker,
            generation,
            kind,
        }
    }

    /// The event's name, also its `tracing` message: `"worker starting"`,
    /// `"worker started"`, `"worker stopping"`, `"worker stuck"`,
    /// `"worker failed"`, `"worker stopped"`, `"worker restarting"`,
    /// `"worker bouncing"`, `"worker removed"`, `"gave up on worker"`,
    /// `"restarts paused"`, `"restarts resumed"`,
    /// `"supervisor shutting down"`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            EventKind::Starting => "worker starting",
            EventKind::Started => "worker started",
            EventKind::Stopping => "worker stopping",
            EventKind::Stuck { .. } => "worker stuck",
            EventKind::Failed { .. } => "worker failed",
            EventKind::Stopped { .. } => "worker stopped",
            EventKind::Restarting { .. } => "worker restarting",
            EventKind::Bouncing { .. } => "worker bouncing",
            EventKind::Removed => "worker removed",
            EventKind::GaveUp { .. } => "gave up on worker",
            EventKind::Paused { .. } => "restarts paused",
            EventKind::Resumed => "restarts resumed",
            EventKind::ShuttingDown { .. } => "supervisor shutting down",
        }
    }

    /// The worker's name, if the event is about a named worker.
    pub fn worker(&self) -> Option<&str> {
        self.worker.as_deref()
    }

    /// How the incarnation ended, if the event is its end (`Failed` or
    /// `Stopped`).
    pub fn end(&self) -> Option<End> {
        match &self.kind {
            EventKind::Failed { end, .. } | EventKind::Stopped { end, .. } => Some(*end),
            _ => None,
        }
    }

    /// The kind of failure, if the event is one (see [`FailureKind`]).
    pub fn failure_kind(&self) -> Option<FailureKind> {
        let EventKind::Failed { error, fatal, end } = &self.kind else {
            return None;
        };
        Some(if *fatal {
            FailureKind::Fatal
        } else if !end.started {
            FailureKind::Start
        } else if error.is::<Panicked>() {
            FailureKind::Panic
        } else {
            FailureKind::Error
        })
    }
}

impl fmt::Display for Event {
    /// `<supervisor>: <name> [<worker>#<generation>]`, e.g.
    /// `agent: worker started [db#3]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.supervisor, self.name())?;
        match (&self.worker, self.generation) {
            (Some(worker), g) => write!(f, " [{worker}#{g}]"),
            (None, 0) => Ok(()),
            (None, g) => write!(f, " [#{g}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event::new("sup".into(), Some("w".into()), 3, kind)
    }

    #[test]
    fn failures_have_one_kind_each() {
        let failed = |error: Error, fatal, started| {
            event(EventKind::Failed {
                error,
                fatal,
                end: End::new(started, None, false),
            })
            .failure_kind()
        };
        let panic = Error::new(Panicked {
            what: "body".into(),
            message: "boom".into(),
        });
        assert_eq!(
            failed(Error::msg("x"), true, false),
            Some(FailureKind::Fatal)
        );
        assert_eq!(
            failed(panic.clone(), false, false),
            Some(FailureKind::Start)
        );
        assert_eq!(failed(panic, false, true), Some(FailureKind::Panic));
        assert_eq!(
            failed(Error::msg("x"), false, true),
            Some(FailureKind::Error)
        );
        assert_eq!(event(EventKind::Started).failure_kind(), None);
        assert_eq!(FailureKind::Start.to_string(), "start");
    }

    #[test]
    fn names_ends_and_display() {
        let stopped = event(EventKind::Stopped {
            end: End::new(true, Some(Duration::from_millis(5)), true),
            reason: None,
        });
        assert_eq!(stopped.name(), "worker stopped");
        assert_eq!(
            stopped.end(),
            Some(End::new(true, Some(Duration::from_millis(5)), true))
        );
        assert_eq!(stopped.to_string(), "sup: worker stopped [w#3]");
        let down = Event::new(
            "sup".into(),
            None,
            0,
            EventKind::ShuttingDown {
                cause: ShutdownCause::Killed,
            },
        );
        assert_eq!(down.to_string(), "sup: supervisor shutting down");
        assert_eq!(down.end(), None);
        let bound = Event::new("c".into(), None, 7, EventKind::Started);
        assert_eq!(bound.to_string(), "c: worker started [#7]");
    }
}

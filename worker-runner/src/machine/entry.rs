//! One supervised id: its state, and what the machine remembers about it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use worker_core::Error;

use super::{Generation, Io, WaiterId};
use crate::policy::WorkerOptions;

/// A time, as nanoseconds since the machine's epoch: half the size of an
/// `Instant`, which counts when there are 100,000 entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp(u64);

impl Stamp {
    pub(crate) fn new(epoch: Instant, at: Instant) -> Stamp {
        let nanos = at.saturating_duration_since(epoch).as_nanos();
        Stamp(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    pub(crate) fn instant(self, epoch: Instant) -> Instant {
        epoch + Duration::from_nanos(self.0)
    }
}

/// Where one id is in its life. The transitions all live in
/// [`Machine`](super::Machine); this enum is also what the report prints.
///
/// ```text
///            start_worker
///                 |
///                 v       start fn returned a worker
///   +-------> Starting ---------------------------> Running
///   |             |  start fn failed                 |   |
///   | delay over  v                                  |   | kill (stop, shutdown,
///   +-------- Delayed <------------------------------+   v  a sibling's cascade)
///   |    restartable ending                          Stopping
///   |                                                    |
///   +-------- Held <-------------------------------------+
///   group       killed by a cascade: waits for the group
///   released
///
///   (any ending that is not restarted removes the id)
/// ```
pub(crate) enum State<W> {
    /// The start function is running (off the loop); `stop` is set once
    /// the incarnation was asked to stop (it is killed when it arrives).
    Starting { stop: Option<StopMark> },
    /// The current incarnation is running.
    Running(W),
    /// The current incarnation was killed (or aborted) and has not
    /// finished yet.
    Stopping { worker: W, mark: StopMark },
    /// Waiting out the delay before the next start.
    Delayed { until: Instant },
    /// Ended as part of a cascade of the runner's strategy: waits until
    /// every worker of the cascade has ended and the delay is over.
    Held,
}

/// When an incarnation was asked to stop, and what came of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StopMark {
    /// When it was asked to stop.
    pub(crate) since: Stamp,
    /// Whether it has outlived its stop timeout (reported once).
    pub(crate) stuck: bool,
    /// Whether the runner has forced it (aborted it).
    pub(crate) forced: bool,
}

impl StopMark {
    pub(crate) fn new(since: Stamp) -> Self {
        StopMark {
            since,
            stuck: false,
            forced: false,
        }
    }
}

/// An entry's part in a cascade of the runner's strategy (see
/// [`Group`](super::restart::Group)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Member {
    /// Not in a cascade.
    #[default]
    No,
    /// Killed by the cascade; the cascade waits for it to end.
    Stopping,
    /// Ended; waits for the cascade to be released.
    Held,
}

/// Why an incarnation was started (or, while [`State::Delayed`], will be):
/// the ending of the previous one and the backoff step.
#[derive(Debug, Clone)]
pub(crate) struct RestartCause {
    /// The previous incarnation's error; `None` for a clean exit of a
    /// permanent worker.
    pub(crate) error: Option<Error>,
    /// Which consecutive restart this is (1 for the first).
    pub(crate) attempt: u32,
    /// The delay that was waited before it.
    pub(crate) delay: Duration,
    /// The worker whose restart caused this one, when it is another (a
    /// cascade of the runner's strategy).
    pub(crate) because_of: Option<Arc<str>>,
}

/// A `stop_and_remove_worker()` caller waiting for its removal.
pub(crate) struct Remover<T: Io> {
    pub(crate) waiter: WaiterId,
    pub(crate) reply: T::RemoveReply,
    /// The caller's timeout (a deadline is set for it).
    pub(crate) timeout: Option<Duration>,
}

/// What most entries never need, kept out of line so that an idle entry
/// stays small (100,000 of them must fit in a few tens of MiB).
pub(crate) struct Extra<T: Io> {
    /// `worker()` callers waiting for an instance.
    pub(crate) worker_waiters: Vec<(WaiterId, T::WorkerReply)>,
    /// `stop_and_remove_worker()` callers waiting for removal, with how
    /// long they wait at most.
    pub(crate) removers: Vec<Remover<T>>,
    /// Times of recent restarts, for the intensity limit.
    pub(crate) recent_restarts: VecDeque<Instant>,
    /// Why the current (or next) incarnation was started; `None` for the
    /// first start.
    pub(crate) cause: Option<RestartCause>,
}

impl<T: Io> Default for Extra<T> {
    fn default() -> Self {
        Extra {
            worker_waiters: Vec::new(),
            removers: Vec::new(),
            recent_restarts: VecDeque::new(),
            cause: None,
        }
    }
}

/// The machine's record of one id.
pub(crate) struct Entry<T: Io> {
    pub(crate) id: Arc<str>,
    /// The generation of the current (or last) incarnation.
    pub(crate) generation: Generation,
    pub(crate) state: State<T::Worker>,
    /// The start function, while it is not out running.
    pub(crate) start: Option<T::Start>,
    /// Per-worker overrides of the runner's defaults.
    pub(crate) options: Option<Box<WorkerOptions>>,
    /// When the current (or last) incarnation was started.
    pub(crate) started_at: Stamp,
    /// Consecutive restarts without a healthy run (for backoff).
    pub(crate) attempts: u32,
    /// Never restart again: stopped, being removed, or the runner is dying.
    pub(crate) stop_requested: bool,
    /// `stop_and_remove_worker` was asked: the ending's error belongs to
    /// its callers (or, once they have gone, to the log), never to
    /// `is_fatal`.
    pub(crate) removing: bool,
    /// Whether the current instance is a reporter (reports include only
    /// those instances).
    pub(crate) reports: bool,
    /// Whether the current instance can be aborted.
    pub(crate) abortable: bool,
    /// Its part in a cascade of the runner's strategy.
    pub(crate) member: Member,
    /// Its place in the start order (the order of `start_worker` calls;
    /// kept across restarts).
    pub(crate) seq: u64,
    pub(crate) extra: Option<Box<Extra<T>>>,
}

impl<T: Io> Entry<T> {
    pub(crate) fn extra_mut(&mut self) -> &mut Extra<T> {
        self.extra.get_or_insert_with(Default::default)
    }

    pub(crate) fn cause(&self) -> Option<&RestartCause> {
        self.extra.as_ref().and_then(|x| x.cause.as_ref())
    }
}

/// The state names of the report (Go's `KeyState` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateName {
    Starting,
    Started,
    Stopping,
    Stopped,
}

impl StateName {
    /// The name, for the machine's tests (the report has its own type).
    #[cfg(test)]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StateName::Starting => "starting",
            StateName::Started => "started",
            StateName::Stopping => "stopping",
            StateName::Stopped => "stopped",
        }
    }
}

impl<W> State<W> {
    pub(crate) fn name(&self) -> StateName {
        match self {
            State::Starting { .. } => StateName::Starting,
            State::Running(_) => StateName::Started,
            State::Stopping { .. } => StateName::Stopping,
            State::Delayed { .. } | State::Held => StateName::Stopped,
        }
    }

    /// Moves the instance out of a `Running` state, for the caller to
    /// make it `Stopping`; meanwhile the state is `Held`. (Moved, not
    /// cloned: a handle let go of on the loop costs a burial.)
    pub(crate) fn take_running(&mut self) -> W {
        match std::mem::replace(self, State::Held) {
            State::Running(worker) => worker,
            _ => unreachable!("take_running: not running"),
        }
    }

    pub(crate) fn worker(&self) -> Option<&W> {
        match self {
            State::Running(w) | State::Stopping { worker: w, .. } => Some(w),
            State::Starting { .. } | State::Delayed { .. } | State::Held => None,
        }
    }
}

/// One id as the report shows it: taken on the loop, turned into JSON (and
/// the worker's own report called) on the caller's thread.
#[derive(Debug, Clone)]
pub(crate) struct EntrySnapshot<W> {
    pub(crate) id: Arc<str>,
    pub(crate) state: StateName,
    pub(crate) worker: Option<W>,
    pub(crate) started_at: Instant,
    pub(crate) cause: Option<RestartCause>,
    /// Set when the incarnation is stuck: when it was asked to stop.
    pub(crate) stuck_since: Option<Instant>,
}

impl<W> EntrySnapshot<W> {
    /// The same snapshot with the worker handle converted.
    pub(crate) fn map_worker<V>(self, f: impl FnOnce(W) -> V) -> EntrySnapshot<V> {
        EntrySnapshot {
            id: self.id,
            state: self.state,
            worker: self.worker.map(f),
            started_at: self.started_at,
            cause: self.cause,
            stuck_since: self.stuck_since,
        }
    }
}

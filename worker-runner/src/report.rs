//! The runner's report: typed, built on the caller's thread from the
//! loop's snapshot.
//!
//! The loop only copies out ids, states, times and worker handles (a few
//! tens of nanoseconds per worker); the typed entries and the workers' own
//! `report()` calls are made here, so a slow worker report delays the
//! caller of `report()` and nothing else. Nothing is formatted, and the
//! ids are not sorted, until the report is serialised (as Go's encoder
//! sorts a map's keys when it writes it).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use worker_core::{Clock, Error, Report, ReportScope, SharedWorker, WorkerState, format_duration};

use crate::machine::{EntrySnapshot, RestartCause, StateName};

/// Report key: why the worker was last (re)started; absent after a first
/// start.
pub const KEY_REASON: &str = "reason";

/// Report key: present when the worker has not stopped within the stop
/// timeout after it was killed.
pub const KEY_STUCK: &str = "stuck";

/// Report key of the runner's map of workers, by id (Go's).
pub const KEY_WORKERS: &str = "workers";

/// What [`Runner::report`](crate::Runner::report) returns: every id the
/// runner knows, in any state. Serialised, `{"workers": {<id>: {...}}}`
/// (Go's layout), ids in order.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct RunnerReport {
    /// One entry per id, in no particular order (a list is the cheapest to
    /// build; [`worker`](RunnerReport::worker) finds one, and JSON shows
    /// them by id).
    #[serde(serialize_with = "by_id")]
    pub workers: Vec<WorkerReport>,
}

impl RunnerReport {
    /// The entry of `id`, if the runner knew it. A linear search: for many
    /// lookups in a large report, collect [`workers`](Self::workers) into a
    /// map first.
    pub fn worker(&self, id: &str) -> Option<&WorkerReport> {
        self.workers.iter().find(|w| &*w.id == id)
    }
}

fn by_id<S: Serializer>(workers: &[WorkerReport], serializer: S) -> Result<S::Ok, S::Error> {
    worker_core::report::sorted_map(workers.iter().map(|w| (&w.id, w)), serializer)
}

/// One worker of a [`RunnerReport`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct WorkerReport {
    /// The worker's id (the key of its entry in JSON).
    #[serde(skip)]
    pub id: Arc<str>,
    /// Where the worker is ([`KEY_STATE`](worker_core::KEY_STATE)).
    pub state: WorkerState,
    /// When its current or last incarnation was asked for
    /// ([`KEY_LAST_START`](worker_core::KEY_LAST_START)); RFC 3339 in JSON.
    #[serde(serialize_with = "worker_core::report::rfc3339")]
    pub started: SystemTime,
    /// The worker's own report, if it is a
    /// [`Reporter`](worker_core::Reporter)
    /// ([`KEY_REPORT`](worker_core::KEY_REPORT)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    /// Why it was last restarted ([`KEY_REASON`]); `None` after a first
    /// start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Restart>,
    /// How long ago it was killed, if it has not stopped within the stop
    /// timeout since ([`KEY_STUCK`]); `"not stopped 30s after kill"` in
    /// JSON.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "stuck")]
    pub stuck: Option<Duration>,
}

/// Why a worker was restarted. Reads (and serialises) as
/// `restart 3 after error: connection reset (delay 1.5s)`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Restart {
    /// Which consecutive restart this is (1 for the first).
    pub attempt: u32,
    /// How the previous incarnation ended: its error, or `None` for a
    /// clean exit (of a permanent worker).
    pub error: Option<Error>,
    /// The delay waited before restarting.
    pub delay: Duration,
    /// The worker whose restart caused this one, when it was another (a
    /// cascade of the runner's one-for-all or rest-for-one strategy).
    pub because_of: Option<Arc<str>>,
}

impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(trigger) = &self.because_of {
            return write!(
                f,
                "restarted with worker {trigger:?} (delay {})",
                format_duration(self.delay)
            );
        }
        write!(f, "restart {} after ", self.attempt)?;
        match &self.error {
            Some(e) => write!(f, "error: {e}")?,
            None => f.write_str("clean exit")?,
        }
        write!(f, " (delay {})", format_duration(self.delay))
    }
}

impl Serialize for Restart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl From<RestartCause> for Restart {
    fn from(cause: RestartCause) -> Restart {
        Restart {
            attempt: cause.attempt,
            error: cause.error,
            delay: cause.delay,
            because_of: cause.because_of,
        }
    }
}

fn stuck<S: Serializer>(after: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match after {
        Some(after) => serializer.collect_str(&format_args!(
            "not stopped {} after kill",
            format_duration(*after)
        )),
        None => serializer.serialize_none(),
    }
}

impl From<StateName> for WorkerState {
    fn from(state: StateName) -> WorkerState {
        match state {
            StateName::Starting => WorkerState::Starting,
            StateName::Started => WorkerState::Started,
            StateName::Stopping => WorkerState::Stopping,
            StateName::Stopped => WorkerState::Stopped,
        }
    }
}

/// The report of the runner identified by `runner` (for the recursion
/// guard), from the loop's snapshot (whose references to the workers it
/// drops: the runner lent them, and the caller sends them home).
pub(crate) fn build(
    snapshot: Vec<EntrySnapshot<SharedWorker>>,
    clock: &dyn Clock,
    runner: *const (),
) -> RunnerReport {
    let scope = ReportScope::enter(runner);
    let now = clock.now();
    let wall_now = clock.wall_now();
    let workers = snapshot
        .into_iter()
        .map(|entry| WorkerReport {
            id: entry.id,
            state: entry.state.into(),
            started: wall_at(entry.started_at, now, wall_now),
            report: entry.worker.and_then(|w| scope.worker_report(&*w)),
            reason: entry.cause.map(Restart::from),
            stuck: entry
                .stuck_since
                .map(|since| now.saturating_duration_since(since)),
        })
        .collect();
    RunnerReport { workers }
}

/// The wall time of monotonic instant `at`, given the clock's two "nows".
fn wall_at(at: Instant, now: Instant, wall_now: SystemTime) -> SystemTime {
    wall_now
        .checked_sub(now.saturating_duration_since(at))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restarts_read_well() {
        let r = Restart::from(RestartCause {
            error: Some(Error::msg("boom")),
            attempt: 3,
            delay: Duration::from_millis(1500),
            because_of: None,
        });
        assert_eq!(r.to_string(), "restart 3 after error: boom (delay 1.5s)");
        let r = Restart::from(RestartCause {
            error: None,
            attempt: 1,
            delay: Duration::ZERO,
            because_of: None,
        });
        assert_eq!(r.to_string(), "restart 1 after clean exit (delay 0s)");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!("restart 1 after clean exit (delay 0s)")
        );
        let r = Restart {
            because_of: Some("db".into()),
            ..r
        };
        assert_eq!(r.to_string(), "restarted with worker \"db\" (delay 0s)");
    }

    #[test]
    fn the_keys_are_the_documented_ones() {
        let entry = WorkerReport {
            id: Arc::from("w"),
            state: WorkerState::Stopping,
            started: UNIX_EPOCH,
            report: Some(Report::new(json!({"own": 1}))),
            reason: Some(Restart {
                attempt: 1,
                error: None,
                delay: Duration::from_secs(1),
                because_of: None,
            }),
            stuck: Some(Duration::from_secs(30)),
        };
        let json = serde_json::to_value(RunnerReport {
            workers: vec![entry],
        })
        .unwrap();
        let mut expected = serde_json::Map::new();
        expected.insert(worker_core::KEY_STATE.into(), json!("stopping"));
        expected.insert(
            worker_core::KEY_LAST_START.into(),
            json!("1970-01-01T00:00:00Z"),
        );
        expected.insert(worker_core::KEY_REPORT.into(), json!({"own": 1}));
        expected.insert(
            KEY_REASON.into(),
            json!("restart 1 after clean exit (delay 1s)"),
        );
        expected.insert(KEY_STUCK.into(), json!("not stopped 30s after kill"));
        assert_eq!(json, json!({ KEY_WORKERS: { "w": expected } }));
    }
}

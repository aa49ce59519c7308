//! Turning the loop's snapshot into the runner's report, on the caller's
//! thread.
//!
//! The loop only copies out ids, states, times and worker handles (a few
//! tens of nanoseconds per worker); the JSON, the time formatting and the
//! workers' own `report()` calls happen here, so a slow worker report
//! delays the caller of `report()` and nothing else.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use worker_core::{Clock, KEY_LAST_START, KEY_REPORT, KEY_STATE, Report, SharedWorker, TimeLabels};

use crate::machine::{EntrySnapshot, RestartCause};

/// Report key: why the worker was last (re)started; absent after a first
/// start.
pub const KEY_REASON: &str = "reason";

/// Report key: present when the worker has not stopped within the stop
/// timeout after it was killed.
pub const KEY_STUCK: &str = "stuck";

/// Report key of the runner's map of workers, by id (Go's).
pub const KEY_WORKERS: &str = "workers";

pub(crate) fn build(snapshot: Vec<EntrySnapshot<SharedWorker>>, clock: &dyn Clock) -> Report {
    let now = clock.now();
    let wall_now = clock.wall_now();
    let mut times = TimeLabels::default();
    // Collected: a B-tree made from an iterator is sorted once and built
    // in one pass, where inserting 10,000 ids one by one walks the tree
    // each time.
    let workers: Map<String, Value> = snapshot
        .into_iter()
        .map(|entry| {
            let mut w = Map::new();
            w.insert(KEY_STATE.into(), entry.state.as_str().into());
            let started = times.label(wall_at(entry.started_at, now, wall_now));
            w.insert(KEY_LAST_START.into(), started.into());
            if let Some(report) = entry.worker.as_ref().and_then(worker_report) {
                w.insert(KEY_REPORT.into(), report.into());
            }
            if let Some(cause) = &entry.cause {
                w.insert(KEY_REASON.into(), describe(cause).into());
            }
            if let Some(since) = entry.stuck_since {
                let after = now.saturating_duration_since(since);
                let stuck = format!("not stopped {after:?} after kill");
                w.insert(KEY_STUCK.into(), stuck.into());
            }
            (entry.id.to_string(), Value::Object(w))
        })
        .collect();
    let mut report = Map::new();
    report.insert(KEY_WORKERS.into(), Value::Object(workers));
    report
}

/// The worker's own report, if it is a reporter and says something. A
/// panicking report shows as an error instead of spoiling the runner's.
fn worker_report(worker: &SharedWorker) -> Option<Report> {
    let reporter = worker.reporter()?;
    let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reporter.report()));
    match report {
        Ok(r) if r.is_empty() => None,
        Ok(r) => Some(r),
        Err(payload) => {
            let p = worker_core::Panicked::from_payload("worker report", &*payload);
            let mut r = Map::new();
            r.insert("error".into(), p.to_string().into());
            Some(r)
        }
    }
}

fn describe(cause: &RestartCause) -> String {
    if let Some(trigger) = &cause.because_of {
        return format!(
            "restarted with worker {trigger:?} (delay {:?})",
            cause.delay
        );
    }
    let ending = match &cause.error {
        Some(e) => format!("error: {e}"),
        None => "clean exit".to_owned(),
    };
    format!(
        "restart {} after {ending} (delay {:?})",
        cause.attempt, cause.delay
    )
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
    use std::time::Duration;

    #[test]
    fn causes_read_well() {
        let c = RestartCause {
            error: Some(worker_core::Error::msg("boom")),
            attempt: 3,
            delay: Duration::from_millis(1500),
            because_of: None,
        };
        assert_eq!(describe(&c), "restart 3 after error: boom (delay 1.5s)");
        let c = RestartCause {
            error: None,
            attempt: 1,
            delay: Duration::ZERO,
            because_of: None,
        };
        assert_eq!(describe(&c), "restart 1 after clean exit (delay 0ns)");
        let c = RestartCause {
            because_of: Some("db".into()),
            ..c
        };
        assert_eq!(describe(&c), "restarted with worker \"db\" (delay 0ns)");
    }
}

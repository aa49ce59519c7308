//! Reports: what a worker says about itself, for humans and for tools.

use std::time::{SystemTime, UNIX_EPOCH};

/// A report: a JSON object, printable with `serde_json` and nestable (a
/// supervisor puts each worker's report under [`KEY_REPORT`] in its own).
pub type Report = serde_json::Map<String, serde_json::Value>;

/// Something that can describe its current state.
///
/// Reports are for people and dashboards; keep the [`KEY_STATE`],
/// [`KEY_REPORT`] and [`KEY_LAST_START`] conventions where they fit, but no
/// code should depend on the exact shape of another component's report.
/// `report` may be called from any thread at any time, so it must not block
/// for long.
pub trait Reporter: Send + Sync {
    /// Describes the receiver's state now.
    fn report(&self) -> Report;
}

/// Report key of a worker's state: `"starting"`, `"started"`, `"stopping"`
/// or `"stopped"` for the supervisors of this family (other reporters may
/// use other values).
pub const KEY_STATE: &str = "state";

/// Report key under which a supervisor nests the report of a worker that is
/// itself a [`Reporter`].
pub const KEY_REPORT: &str = "report";

/// Report key of the time a worker was last started, formatted by
/// [`format_time`].
pub const KEY_LAST_START: &str = "started";

/// Formats a wall-clock time the way reports show it: UTC,
/// `YYYY-MM-DD HH:MM:SS` (Go's report format). Times before 1970 print as
/// the epoch.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use worker_core::format_time;
///
/// let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(format_time(t), "2023-11-14 22:13:20");
/// ```
pub fn format_time(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// [`format_time`] with a memory of the last second it formatted.
///
/// A report of 10,000 workers started within the same few seconds formats
/// the same few labels over and over; this formats each second once.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use worker_core::TimeLabels;
///
/// let mut labels = TimeLabels::default();
/// let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
/// assert_eq!(labels.label(t), "2023-11-14 22:13:20");
/// assert_eq!(labels.label(t + Duration::from_millis(500)), "2023-11-14 22:13:20");
/// ```
#[derive(Debug, Default, Clone)]
pub struct TimeLabels {
    last: Option<(u64, String)>,
}

impl TimeLabels {
    /// `time` as [`format_time`] shows it.
    pub fn label(&mut self, time: SystemTime) -> String {
        let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match &self.last {
            Some((s, text)) if *s == secs => text.clone(),
            _ => {
                let text = format_time(time);
                self.last = Some((secs, text.clone()));
                text
            }
        }
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month,
/// day), using the era arithmetic of H. Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn labels_are_reused_within_a_second_only() {
        let mut labels = TimeLabels::default();
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(labels.label(t), "2023-11-14 22:13:20");
        assert_eq!(
            labels.label(t + Duration::from_millis(999)),
            "2023-11-14 22:13:20"
        );
        assert_eq!(
            labels.label(t + Duration::from_secs(1)),
            "2023-11-14 22:13:21"
        );
    }

    #[test]
    fn formats_known_dates() {
        let at = |s| format_time(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01 00:00:00");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(at(4_107_542_399), "2100-02-28 23:59:59");
        assert_eq!(at(1_795_564_800), "2026-11-25 00:00:00");
        assert_eq!(
            format_time(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01 00:00:00"
        );
    }
}

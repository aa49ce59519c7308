//! How times, durations and maps read in a report, and the serialisers
//! that write them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// Formats a wall-clock time the way reports show it: RFC 3339 in UTC, to
/// the second (`2023-11-14T22:13:20Z`). Times before 1970 print as the
/// epoch.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use worker_core::format_time;
///
/// let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
/// assert_eq!(format_time(t), "2023-11-14T22:13:20Z");
/// ```
pub fn format_time(time: SystemTime) -> String {
    Rfc3339(time).to_string()
}

/// Formats a duration the way reports show it, in Go's form: `0s`, `750ns`,
/// `1.5µs`, `250ms`, `1.5s`, `1m30s`, `2h0m5s`.
///
/// ```
/// use std::time::Duration;
/// use worker_core::format_duration;
///
/// assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
/// assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
/// assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
/// ```
pub fn format_duration(duration: Duration) -> String {
    Human(duration).to_string()
}

/// Serialises a time as [`format_time`] shows it, for
/// `#[serde(serialize_with = "worker_core::report::rfc3339")]`.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use serde::Serialize;
///
/// #[derive(Serialize)]
/// struct Sync {
///     #[serde(serialize_with = "worker_core::report::rfc3339")]
///     last: SystemTime,
/// }
///
/// let s = Sync { last: UNIX_EPOCH + Duration::from_secs(1_700_000_000) };
/// assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"last":"2023-11-14T22:13:20Z"}"#);
/// ```
pub fn rfc3339<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    let ascii = Rfc3339(*time).ascii();
    match ascii.as_ref().and_then(|a| std::str::from_utf8(a).ok()) {
        Some(text) => serializer.serialize_str(text),
        None => serializer.collect_str(&Rfc3339(*time)),
    }
}

/// [`rfc3339`] for an optional time (`None` serialises as a unit; pair it
/// with `skip_serializing_if = "Option::is_none"` to leave the key out).
pub fn rfc3339_option<S: Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(t) => rfc3339(t, serializer),
        None => serializer.serialize_none(),
    }
}

/// Serialises a duration as [`format_duration`] shows it, for
/// `#[serde(serialize_with = "worker_core::report::human_duration")]`.
pub fn human_duration<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&Human(*duration))
}

/// [`human_duration`] for an optional duration (`None` serialises as a
/// unit).
pub fn human_duration_option<S: Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(d) => human_duration(d, serializer),
        None => serializer.serialize_none(),
    }
}

/// A time, displayed as RFC 3339 UTC to the second.
struct Rfc3339(SystemTime);

impl Rfc3339 {
    /// The text, written digit by digit into a buffer: a report of 10,000
    /// times neither allocates nor goes through the formatting machinery
    /// for each. `None` past the year 9999, which needs more digits.
    fn ascii(&self) -> Option<[u8; 20]> {
        let secs = self.0.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let year = u32::try_from(year).ok().filter(|&y| y <= 9999)?;
        let rem = (secs % 86_400) as u32;
        let mut out = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, rem / 3600);
        put(14, 2, (rem / 60) % 60);
        put(17, 2, rem % 60);
        Some(out)
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ascii = self.ascii();
        if let Some(text) = ascii.as_ref().and_then(|a| std::str::from_utf8(a).ok()) {
            return f.write_str(text);
        }
        let secs = self.0.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }
}

/// A duration, displayed in Go's form.
struct Human(Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let nanos = d.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        if nanos < 1_000 {
            return write!(f, "{nanos}ns");
        }
        if nanos < 1_000_000 {
            return decimal(f, nanos, 1_000, "µs");
        }
        if nanos < 1_000_000_000 {
            return decimal(f, nanos, 1_000_000, "ms");
        }
        let secs = d.as_secs();
        let (hours, minutes) = (secs / 3600, (secs / 60) % 60);
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if hours > 0 || minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        let seconds = u128::from(secs % 60) * 1_000_000_000 + u128::from(d.subsec_nanos());
        decimal(f, seconds, 1_000_000_000, "s")
    }
}

/// Writes `value / unit` with as many decimals as it needs, then `suffix`.
fn decimal(f: &mut fmt::Formatter<'_>, value: u128, unit: u128, suffix: &str) -> fmt::Result {
    write!(f, "{}", value / unit)?;
    let mut fraction = value % unit;
    if fraction > 0 {
        let mut width = unit.ilog10() as usize;
        while fraction % 10 == 0 {
            fraction /= 10;
            width -= 1;
        }
        write!(f, ".{fraction:0width$}")?;
    }
    f.write_str(suffix)
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

/// Serialises `(key, value)` pairs as a map in key order, the way Go's
/// JSON encoder writes maps. For a report that keeps its entries in a
/// `Vec` (the cheapest to build) and shows them by name: only serialising
/// sorts.
///
/// ```
/// use serde::{Serialize, Serializer};
///
/// #[derive(Serialize)]
/// struct Peers {
///     #[serde(serialize_with = "by_name")]
///     peers: Vec<Peer>,
/// }
///
/// #[derive(Serialize)]
/// struct Peer {
///     #[serde(skip)]
///     name: String,
///     lag: u32,
/// }
///
/// fn by_name<S: Serializer>(peers: &[Peer], s: S) -> Result<S::Ok, S::Error> {
///     worker_core::report::sorted_map(peers.iter().map(|p| (&p.name, p)), s)
/// }
///
/// let peers = vec![Peer { name: "b".into(), lag: 2 }, Peer { name: "a".into(), lag: 1 }];
/// assert_eq!(
///     serde_json::to_string(&Peers { peers }).unwrap(),
///     r#"{"peers":{"a":{"lag":1},"b":{"lag":2}}}"#
/// );
/// ```
pub fn sorted_map<K, V, S>(
    entries: impl IntoIterator<Item = (K, V)>,
    serializer: S,
) -> Result<S::Ok, S::Error>
where
    K: Ord + Serialize,
    V: Serialize,
    S: Serializer,
{
    let mut entries: Vec<(K, V)> = entries.into_iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    serializer.collect_map(entries)
}

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::json;

use super::*;
use crate::{Passive, Worker};

#[test]
fn times_read_as_rfc_3339_utc() {
    let at = |s| format_time(UNIX_EPOCH + Duration::from_secs(s));
    assert_eq!(at(0), "1970-01-01T00:00:00Z");
    assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
    assert_eq!(at(1_795_564_800), "2026-11-25T00:00:00Z");
    assert_eq!(
        format_time(UNIX_EPOCH + Duration::from_millis(1_533_647_742_999)),
        "2018-08-07T13:15:42Z"
    );
    assert_eq!(
        format_time(UNIX_EPOCH - Duration::from_secs(5)),
        "1970-01-01T00:00:00Z"
    );
    // Past four digits of year, the slow path takes over.
    assert_eq!(at(253_402_300_799), "9999-12-31T23:59:59Z");
    assert_eq!(at(253_402_300_800), "10000-01-01T00:00:00Z");
}

#[test]
fn serialised_times_match_the_displayed_ones() {
    // The serialiser writes digits itself; it must agree with `Display`.
    let mut secs: u64 = 1;
    while secs < 300_000_000_000 {
        let t = UNIX_EPOCH + Duration::from_secs(secs);
        #[derive(Serialize)]
        struct At(#[serde(serialize_with = "rfc3339")] SystemTime);
        assert_eq!(
            serde_json::to_value(At(t)).unwrap(),
            json!(format_time(t)),
            "{secs}"
        );
        secs = secs * 3 + 7;
    }
}

#[test]
fn durations_read_as_go_prints_them() {
    let cases = [
        (Duration::ZERO, "0s"),
        (Duration::from_nanos(1), "1ns"),
        (Duration::from_nanos(999), "999ns"),
        (Duration::from_nanos(1_500), "1.5µs"),
        (Duration::from_micros(250), "250µs"),
        (Duration::from_nanos(1_000_001), "1.000001ms"),
        (Duration::from_millis(250), "250ms"),
        (Duration::from_millis(1500), "1.5s"),
        (Duration::from_nanos(1_000_000_001), "1.000000001s"),
        (Duration::from_secs(59), "59s"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_secs(120), "2m0s"),
        (Duration::from_secs(3600), "1h0m0s"),
        (Duration::from_millis(7_205_500), "2h0m5.5s"),
    ];
    for (d, text) in cases {
        assert_eq!(format_duration(d), text, "{d:?}");
    }
    // The largest duration does not overflow.
    assert!(format_duration(Duration::MAX).ends_with('s'));
}

#[derive(Debug, Serialize)]
struct Sample {
    #[serde(serialize_with = "rfc3339")]
    at: SystemTime,
    #[serde(serialize_with = "human_duration")]
    took: Duration,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_option"
    )]
    maybe_at: Option<SystemTime>,
    #[serde(serialize_with = "human_duration_option")]
    maybe_took: Option<Duration>,
}

#[test]
fn the_serialisers_write_the_report_formats() {
    let sample = Sample {
        at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        took: Duration::from_millis(1500),
        maybe_at: Some(UNIX_EPOCH),
        maybe_took: None,
    };
    assert_eq!(
        serde_json::to_value(&sample).unwrap(),
        json!({
            "at": "2023-11-14T22:13:20Z",
            "took": "1.5s",
            "maybe_at": "1970-01-01T00:00:00Z",
            "maybe_took": null,
        })
    );
    let sample = Sample {
        maybe_at: None,
        ..sample
    };
    assert!(
        serde_json::to_value(&sample)
            .unwrap()
            .get("maybe_at")
            .is_none()
    );
}

#[test]
fn a_report_serialises_as_its_value_and_gives_it_back() {
    let report = Report::new(Sample {
        at: UNIX_EPOCH,
        took: Duration::ZERO,
        maybe_at: None,
        maybe_took: None,
    });
    assert_eq!(
        serde_json::to_string(&report).unwrap(),
        r#"{"at":"1970-01-01T00:00:00Z","took":"0s","maybe_took":null}"#
    );
    assert_eq!(report.downcast_ref::<Sample>().unwrap().at, UNIX_EPOCH);
    assert!(report.downcast_ref::<String>().is_none());
    assert!(format!("{report:?}").starts_with("Sample {"));
    // A report given a report keeps the value it holds.
    let again = Report::new(report.clone());
    assert!(again.downcast_ref::<Sample>().is_some());
    let tree = Report::new(json!({"a": [1, 2]}));
    assert_eq!(serde_json::to_value(&tree).unwrap(), json!({"a": [1, 2]}));
}

#[test]
fn an_error_serialises_as_its_message_with_its_chain() {
    let e = Error::msg("disk full").context("saving");
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!("saving: disk full")
    );
}

#[test]
fn a_missing_report_serialises_as_an_error() {
    assert_eq!(
        serde_json::to_value(NoReport::Panicked("worker report panicked: bug".into())).unwrap(),
        json!({"error": "worker report panicked: bug"})
    );
    let recursive = serde_json::to_value(NoReport::Recursive).unwrap();
    assert!(
        recursive["error"]
            .as_str()
            .unwrap()
            .starts_with("recursive report")
    );
}

/// A worker whose report counts its calls and, optionally, panics.
struct Counting {
    passive: Passive,
    calls: AtomicUsize,
    panics: bool,
}

impl Counting {
    fn new(panics: bool) -> Counting {
        Counting {
            passive: Passive::new(),
            calls: AtomicUsize::new(0),
            panics,
        }
    }
}

impl Worker for Counting {
    crate::delegate_worker!(passive);

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

impl Reporter for Counting {
    fn report(&self) -> Report {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.panics {
            panic!("report bug");
        }
        Report::new(json!({"fine": true}))
    }
}

fn id(n: &u8) -> *const () {
    (n as *const u8).cast()
}

#[test]
fn a_scope_is_nested_only_inside_one_of_the_same_supervisor_on_the_same_thread() {
    let (a, b) = (0u8, 0u8);
    let outer = ReportScope::enter(id(&a));
    assert!(!outer.is_nested());
    assert!(!ReportScope::enter(id(&b)).is_nested());
    let inner = ReportScope::enter(id(&a));
    assert!(inner.is_nested());
    // Another thread builds its own reports.
    let addr = id(&a) as usize;
    let elsewhere = std::thread::spawn(move || ReportScope::enter(addr as *const ()).is_nested());
    assert!(!elsewhere.join().unwrap());
    // Dropping the nested scope leaves the outer one in force.
    drop(inner);
    assert!(ReportScope::enter(id(&a)).is_nested());
    drop(outer);
    assert!(!ReportScope::enter(id(&a)).is_nested());
}

#[test]
fn a_scope_asks_reporters_only_and_contains_their_panics() {
    let me = 0u8;
    let scope = ReportScope::enter(id(&me));
    assert!(scope.worker_report(&Passive::new()).is_none());
    let fine = Counting::new(false);
    let report = scope.worker_report(&fine).unwrap();
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        json!({"fine": true})
    );
    let panicky = Counting::new(true);
    let report = scope.worker_report(&panicky).unwrap();
    assert_eq!(
        report.downcast_ref::<NoReport>(),
        Some(&NoReport::Panicked(
            "worker report panicked: report bug".into()
        ))
    );
}

#[test]
fn a_nested_scope_shows_the_marker_without_asking_the_worker() {
    let me = 0u8;
    let _outer = ReportScope::enter(id(&me));
    let nested = ReportScope::enter(id(&me));
    let worker = Counting::new(false);
    let report = nested.worker_report(&worker).unwrap();
    assert_eq!(
        report.downcast_ref::<NoReport>(),
        Some(&NoReport::Recursive)
    );
    assert_eq!(worker.calls.load(Ordering::SeqCst), 0);
    // A worker that is no reporter has nothing to mark.
    assert!(nested.worker_report(&Passive::new()).is_none());
}

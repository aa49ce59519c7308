//! What an operator sees of a catacomb: its bound workers' events, with
//! the fields every supervisor shares, in the `tracing` log and as the
//! metrics of `MetricsFacade`.
//!
//! A binary of its own: `traces::capture` installs the process's
//! subscriber.

use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use worker_catacomb::{Catacomb, Plan};
use worker_core::events::{Event, EventKind, MetricsFacade, ShutdownCause};
use worker_core::{Error, Passive};
use worker_testing::traces::{self, Logged};
use worker_testing::{TestRecorder, assert_threads_gone};

const LONG: Duration = Duration::from_secs(10);

#[track_caller]
fn next(events: &Receiver<Event>) -> Event {
    events.recv_timeout(LONG).expect("an event")
}

fn logged(catacomb: &str, message: &str) -> Vec<Logged> {
    traces::capture()
        .with_field("supervisor", catacomb)
        .into_iter()
        .filter(|l| l.target == "worker_core::events" && l.message == message)
        .collect()
}

#[test]
fn bound_workers_lives_in_events_logs_and_metrics() {
    traces::capture();
    let name = "ct-observe-life";
    let recorder = TestRecorder::new();
    let (tx, events) = unbounded();
    let (first, second, third) = (Passive::new(), Passive::new(), Passive::new());
    let c = Catacomb::invoke(
        Plan::new(name, |c: &Catacomb| {
            let _ = c.dying().recv();
            Err(c.err_dying())
        })
        .init([worker_core::into_shared(first.clone())])
        .hook(recorder.hook(MetricsFacade::new()))
        .on_event(move |e| tx.send(e.clone()).unwrap()),
    )
    .unwrap();
    c.add(second.clone()).unwrap();
    c.add(third.clone()).unwrap();
    let started: Vec<(&str, u64)> = (0..3)
        .map(|_| {
            let e = next(&events);
            (e.name(), e.generation)
        })
        .collect();
    assert_eq!(
        started,
        [
            ("worker started", 1),
            ("worker started", 2),
            ("worker started", 3)
        ]
    );
    let supervisor = [("supervisor", name)];
    assert_eq!(recorder.gauge("worker_live", &supervisor), 3.0);

    // One ends by itself: stopped, not asked to.
    first.finish(Ok(()));
    let e = next(&events);
    assert_eq!((e.name(), e.generation), ("worker stopped", 1));
    assert!(matches!(
        e.kind,
        EventKind::Stopped { end, reason: None } if end.started && end.stopped_after.is_none()
    ));

    // One fails: always fatal; the catacomb shuts down and stops the last.
    second.finish(Err(Error::msg("lease lost")));
    let e = next(&events);
    assert_eq!((e.name(), e.generation), ("worker failed", 2));
    assert!(matches!(&e.kind, EventKind::Failed { fatal: true, .. }));
    let e = next(&events);
    assert!(matches!(
        e.kind,
        EventKind::ShuttingDown {
            cause: ShutdownCause::Fatal { worker: None }
        }
    ));
    let e = next(&events);
    assert_eq!((e.name(), e.generation), ("worker stopping", 3));
    let e = next(&events);
    assert_eq!((e.name(), e.generation), ("worker stopped", 3));
    assert!(matches!(
        e.kind,
        EventKind::Stopped { end, .. } if end.stopped_after.is_some()
    ));
    assert_eq!(c.wait().unwrap_err().to_string(), "lease lost");
    assert_threads_gone(name);

    // The log: same names and fields, no `worker` (a catacomb's workers
    // have no names), the binding's number as the generation.
    let failed = logged(name, "worker failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].level, tracing::Level::ERROR);
    assert_eq!(failed[0].fields["generation"], "2");
    assert_eq!(failed[0].fields["error"], "lease lost");
    assert_eq!(failed[0].fields["fatal"], "true");
    assert_eq!(failed[0].field("worker"), None);
    let generations = |message| -> Vec<String> {
        logged(name, message)
            .iter()
            .map(|l| l.fields["generation"].clone())
            .collect()
    };
    assert_eq!(generations("worker started"), ["1", "2", "3"]);
    assert_eq!(generations("worker stopped"), ["1", "3"]);
    assert_eq!(generations("worker stopping"), ["3"]);
    let down = logged(name, "supervisor shutting down");
    assert_eq!(down.len(), 1);
    assert!(down[0].fields["cause"].starts_with("Fatal"), "{down:?}");

    // Metrics: per catacomb, never per worker.
    assert_eq!(recorder.counter("worker_starts_total", &supervisor), 3);
    let fatal = [("kind", "fatal"), supervisor[0]];
    assert_eq!(recorder.counter("worker_failures_total", &fatal), 1);
    assert_eq!(recorder.gauge("worker_live", &supervisor), 0.0);
    assert_eq!(
        recorder.histogram("worker_stop_seconds", &supervisor).len(),
        1
    );
    assert!(recorder.keys().iter().all(|k| !k.contains("worker=")));
}

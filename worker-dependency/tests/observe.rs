//! What an operator sees of an engine: the `tracing` spans of each
//! manifold's incarnation, the events with their fields, and the metrics
//! of `MetricsFacade`, on the test clock (a failure and its restart, a
//! dependent bounced by it, a worker stuck past the stop timeout).
//!
//! A binary of its own: `traces::capture` installs the process's
//! subscriber.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select, unbounded};
use worker_core::events::{Event, EventKind, MetricsFacade};
use worker_core::{Error, SharedWorker, Worker, spawn};
use worker_dependency::{Engine, EngineConfig, Manifold, NoJitter};
use worker_testing::traces::{self, Logged};
use worker_testing::{TestClock, TestRecorder, assert_threads_gone};

const LONG: Duration = Duration::from_secs(10);

/// A manifold needing `inputs`, whose incarnations log a line from the
/// start function and one from their body and hand the test a sender to
/// control them: an error ends the body; after a kill the body waits for
/// a message or for the sender to go.
fn controlled(
    prefix: &str,
    inputs: &[&str],
    incarnations: Sender<(String, Sender<Option<Error>>)>,
) -> Manifold {
    let prefix = prefix.to_owned();
    let needs: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
    Manifold::new(move |ctx| {
        for input in &needs {
            ctx.require(input)?;
        }
        tracing::info!(probe = "start", "in the start function");
        let (control, commands) = unbounded::<Option<Error>>();
        let worker = spawn(format!("{prefix}-{}", ctx.name()), move |tomb| {
            tracing::info!(probe = "body", "in the body");
            select! {
                recv(commands) -> error => error.ok().flatten().map_or(Ok(()), Err),
                recv(tomb.dying()) -> _ => {
                    let _ = commands.recv();
                    Ok(())
                }
            }
        });
        incarnations.send((ctx.name().to_owned(), control)).unwrap();
        Ok(Arc::new(worker) as SharedWorker)
    })
    .inputs(inputs)
}

fn engine_lines(engine: &str, pick: impl Fn(&Logged) -> bool) -> Vec<Logged> {
    traces::capture()
        .all()
        .into_iter()
        .filter(|l| {
            l.field("supervisor") == Some(engine)
                || l.span("worker")
                    .is_some_and(|s| s.fields.get("supervisor").map(String::as_str) == Some(engine))
        })
        .filter(pick)
        .collect()
}

/// The next events (a manifold's name and the event's name), `n` of them.
fn next(events: &Receiver<Event>, n: usize) -> Vec<(String, &'static str)> {
    (0..n)
        .map(|_| {
            let e = events.recv_timeout(LONG).expect("an event");
            (e.worker().unwrap_or("").to_owned(), e.name())
        })
        .collect()
}

fn pairs(list: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    list.iter().map(|(w, n)| ((*w).to_owned(), *n)).collect()
}

#[test]
fn manifolds_lives_in_spans_events_and_metrics() {
    traces::capture();
    let name = "dep-observe-life";
    let clock = TestClock::new();
    let recorder = TestRecorder::new();
    let (tx, events) = unbounded();
    let all = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = all.clone();
    let engine = Engine::new(
        EngineConfig::new(name)
            .clock(clock.clone())
            .jitter(NoJitter)
            .error_delay(Duration::from_secs(1))
            .bounce_delay(Duration::from_millis(10))
            .backoff_factor(0.0)
            .is_fatal(|_| false)
            .stop_timeout(Duration::from_secs(5))
            .hook(recorder.hook(MetricsFacade::new()))
            .on_event(move |e: &Event| {
                kept.lock().unwrap().push(e.clone());
                tx.send(e.clone()).unwrap();
            }),
    )
    .unwrap();
    let (inc_tx, incarnations) = unbounded();
    engine
        .install("a", controlled(name, &[], inc_tx.clone()))
        .unwrap();
    let (_, a1) = incarnations.recv_timeout(LONG).unwrap();
    assert_eq!(
        next(&events, 2),
        pairs(&[("a", "worker starting"), ("a", "worker started")])
    );
    engine
        .install("b", controlled(name, &["a"], inc_tx.clone()))
        .unwrap();
    let (_, b1) = incarnations.recv_timeout(LONG).unwrap();
    assert_eq!(
        next(&events, 2),
        pairs(&[("b", "worker starting"), ("b", "worker started")])
    );

    // `a` fails: restarted after the error delay. `b`, which needs it,
    // is stopped and bounced; it starts without it, gives up for want of
    // it, and is bounced again once `a` runs.
    a1.send(Some(Error::msg("boom"))).unwrap();
    assert_eq!(
        next(&events, 3),
        pairs(&[
            ("a", "worker failed"),
            ("a", "worker restarting"),
            ("b", "worker stopping")
        ])
    );
    drop(b1);
    assert_eq!(
        next(&events, 2),
        pairs(&[("b", "worker stopped"), ("b", "worker bouncing")])
    );
    clock
        .wait_advance(Duration::from_millis(10), LONG, 1)
        .unwrap();
    assert_eq!(
        next(&events, 2),
        pairs(&[("b", "worker starting"), ("b", "worker stopped")])
    );
    clock
        .wait_advance(Duration::from_millis(990), LONG, 1)
        .unwrap();
    let (_, a2) = incarnations.recv_timeout(LONG).unwrap();
    assert_eq!(
        next(&events, 3),
        pairs(&[
            ("a", "worker starting"),
            ("a", "worker started"),
            ("b", "worker bouncing")
        ])
    );
    clock
        .wait_advance(Duration::from_millis(10), LONG, 1)
        .unwrap();
    let (_, b2) = incarnations.recv_timeout(LONG).unwrap();
    assert_eq!(
        next(&events, 2),
        pairs(&[("b", "worker starting"), ("b", "worker started")])
    );
    let labels = |w| [("supervisor", name), ("worker", w)];
    assert_eq!(recorder.gauge("worker_live", &labels("a")), 1.0);
    assert_eq!(recorder.gauge("worker_live", &labels("b")), 1.0);

    // Shut down in reverse dependency order, each holding on past the stop
    // timeout: `b` is stopped first, `a` once `b` is stuck.
    engine.kill();
    assert_eq!(
        next(&events, 2),
        pairs(&[("", "supervisor shutting down"), ("b", "worker stopping")])
    );
    clock.wait_advance(Duration::from_secs(5), LONG, 1).unwrap();
    assert_eq!(
        next(&events, 2),
        pairs(&[("b", "worker stuck"), ("a", "worker stopping")])
    );
    assert_eq!(recorder.gauge("worker_stuck", &labels("b")), 1.0);
    clock.wait_advance(Duration::from_secs(5), LONG, 1).unwrap();
    assert_eq!(next(&events, 1), pairs(&[("a", "worker stuck")]));
    assert_eq!(recorder.gauge("worker_stuck", &labels("a")), 1.0);
    drop((a2, b2));
    engine.wait().unwrap();
    assert_threads_gone(name);
    let all = all.lock().unwrap();

    // Spans: each start function and body logs in its incarnation's span.
    let started: Vec<&Event> = all
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Started))
        .collect();
    assert_eq!(started.len(), 4);
    for event in started {
        let generation = event.generation.to_string();
        for probe in ["start", "body"] {
            let found = engine_lines(name, |l| {
                l.field("probe") == Some(probe)
                    && l.span("worker").unwrap().fields["generation"] == generation
            });
            assert_eq!(found.len(), 1, "{probe} of {event}: {found:#?}");
            let span = &found[0].span("worker").unwrap().fields;
            assert_eq!(span["supervisor"], name);
            assert_eq!(Some(span["worker"].as_str()), event.worker());
        }
    }

    // Events: the shared names and fields.
    let logged = |message: &str, worker: &str| {
        engine_lines(name, |l| {
            l.target == "worker_core::events"
                && l.message == message
                && l.field("worker") == Some(worker)
        })
    };
    let failed = &logged("worker failed", "a")[0];
    assert_eq!(failed.fields["error"], "boom");
    assert_eq!(failed.fields["fatal"], "false");
    let restarting = &logged("worker restarting", "a")[0];
    assert_eq!(restarting.fields["delay"], "1s");
    assert_eq!(restarting.fields["attempt"], "1");
    let bouncing = logged("worker bouncing", "b");
    assert_eq!(bouncing.len(), 2);
    assert!(
        bouncing
            .iter()
            .all(|l| l.fields["input"] == "a" && l.fields["delay"] == "10ms")
    );
    let missing = &logged("worker stopped", "b")[1];
    assert_eq!(missing.fields["started"], "false");
    assert!(
        missing.fields["reason"].contains("not running"),
        "{missing:?}"
    );
    let stuck = &logged("worker stuck", "a")[0];
    assert_eq!(stuck.fields["after"], "5s");
    let last = logged("worker stopped", "a");
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].fields["stuck"], "true");
    assert_eq!(last[0].fields["stopped_after"], "Some(5s)");

    // Metrics.
    for w in ["a", "b"] {
        assert_eq!(
            recorder.counter("worker_starts_total", &labels(w)),
            2,
            "{w}"
        );
        assert_eq!(recorder.gauge("worker_live", &labels(w)), 0.0, "{w}");
        assert_eq!(recorder.gauge("worker_stuck", &labels(w)), 0.0, "{w}");
    }
    assert_eq!(recorder.counter("worker_restarts_total", &labels("a")), 1);
    assert_eq!(recorder.counter("worker_bounces_total", &labels("b")), 2);
    assert_eq!(recorder.counter("worker_bounces_total", &labels("a")), 0);
    let a_errors = [("kind", "error"), labels("a")[0], labels("a")[1]];
    assert_eq!(recorder.counter("worker_failures_total", &a_errors), 1);
    // `b` missing its input is not a failure.
    assert!(
        !recorder
            .keys()
            .iter()
            .any(|k| k.starts_with("worker_failures_total") && k.contains("worker=b")),
        "{recorder:?}"
    );
    assert_eq!(
        recorder.histogram("worker_stop_seconds", &labels("a")),
        [5.0]
    );
    assert_eq!(
        recorder.histogram("worker_stop_seconds", &labels("b")),
        [0.0, 10.0]
    );
}

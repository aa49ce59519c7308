//! What an operator sees of a runner: the `tracing` spans of each worker
//! incarnation, the events with their fields, and the metrics of
//! `MetricsFacade`, for one worker's whole life on the test clock (start,
//! failure, restart after its delay, a stop past the stop timeout).
//!
//! A binary of its own: `traces::capture` installs the process's
//! subscriber.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select, unbounded};
use worker_core::events::{Event, EventKind, MetricsFacade};
use worker_core::{Error, SharedWorker, Worker, spawn};
use worker_runner::{Runner, RunnerParams};
use worker_testing::traces::{self, Logged};
use worker_testing::{TestClock, TestRecorder, assert_threads_gone};

const LONG: Duration = Duration::from_secs(10);

/// A start function whose incarnations log a line from the start function
/// and one from their body, hand the test a sender to control them (an
/// error ends the body; after a kill the body waits for a message or for
/// the sender to go), and end cleanly when stopped.
fn controlled(
    prefix: &str,
) -> (
    impl FnMut() -> Result<SharedWorker, Error> + Send + 'static,
    Receiver<Sender<Option<Error>>>,
) {
    let (incarnations_tx, incarnations) = unbounded();
    let prefix = prefix.to_owned();
    let start = move || {
        tracing::info!(probe = "start", "in the start function");
        let (control, commands) = unbounded::<Option<Error>>();
        let worker = spawn(format!("{prefix}-body"), move |tomb| {
            tracing::info!(probe = "body", "in the body");
            select! {
                recv(commands) -> error => error.ok().flatten().map_or(Ok(()), Err),
                recv(tomb.dying()) -> _ => {
                    // Stubborn: ends only when the test lets it.
                    let _ = commands.recv();
                    Ok(())
                }
            }
        });
        incarnations_tx.send(control).unwrap();
        Ok(Arc::new(worker) as SharedWorker)
    };
    (start, incarnations)
}

/// The lines the runner (or its workers) logged with `probe` set, or with
/// the event message `name`, for `supervisor`.
fn lines(supervisor: &str, pick: impl Fn(&Logged) -> bool) -> Vec<Logged> {
    traces::capture()
        .all()
        .into_iter()
        .filter(|l| {
            l.field("supervisor") == Some(supervisor)
                || l.span("worker").is_some_and(|s| {
                    s.fields.get("supervisor").map(String::as_str) == Some(supervisor)
                })
        })
        .filter(pick)
        .collect()
}

fn the_one(supervisor: &str, what: &str, pick: impl Fn(&Logged) -> bool) -> Logged {
    let mut found = lines(supervisor, pick);
    assert_eq!(found.len(), 1, "one {what} line: {found:#?}");
    found.remove(0)
}

/// Waits for the next event, which must be `name`.
#[track_caller]
fn next(events: &Receiver<Event>, name: &str) -> Event {
    let event = events.recv_timeout(LONG).expect("an event");
    assert_eq!(event.name(), name, "{event:?}");
    event
}

#[test]
fn a_workers_life_in_spans_events_and_metrics() {
    let capture = traces::capture();
    let name = "rt-observe-life";
    let clock = TestClock::new();
    let recorder = TestRecorder::new();
    let (tx, events) = unbounded();
    let runner = Runner::new(
        RunnerParams::new(name)
            .clock(clock.clone())
            .is_fatal(|_| false)
            .restart_delay(Duration::from_secs(1))
            .stop_timeout(Duration::from_secs(5))
            // The recorder first: an event on the channel has been counted.
            .hook(recorder.hook(MetricsFacade::new()))
            .on_event(move |e| tx.send(e.clone()).unwrap()),
    )
    .unwrap();
    let labels = [("supervisor", name), ("worker", "w")];
    let (start, incarnations) = controlled(name);
    runner.start_worker("w", start).unwrap();
    let first = incarnations.recv_timeout(LONG).unwrap();
    let g1 = next(&events, "worker starting").generation;
    next(&events, "worker started");
    assert_eq!(recorder.gauge("worker_live", &labels), 1.0);

    // It fails: restarted after its delay, on the test clock.
    first.send(Some(Error::msg("oops"))).unwrap();
    next(&events, "worker failed");
    let restarting = next(&events, "worker restarting");
    assert_eq!(restarting.generation, g1);
    assert_eq!(recorder.gauge("worker_live", &labels), 0.0);
    clock.wait_advance(Duration::from_secs(1), LONG, 1).unwrap();
    let second = incarnations.recv_timeout(LONG).unwrap();
    let g2 = next(&events, "worker starting").generation;
    assert!(g2 > g1);
    next(&events, "worker started");

    // Stopped, it does not end: stuck past the stop timeout.
    runner.stop_worker("w").unwrap();
    next(&events, "worker stopping");
    clock.wait_advance(Duration::from_secs(5), LONG, 1).unwrap();
    next(&events, "worker stuck");
    assert_eq!(recorder.gauge("worker_stuck", &labels), 1.0);
    drop(second);
    next(&events, "worker stopped");
    runner.kill();
    runner.wait().unwrap();
    assert_threads_gone(name);

    // Spans: the start function and the body of each incarnation log in
    // its `worker` span, under the runner's `supervisor` span.
    for (g, probe) in [(g1, "start"), (g1, "body"), (g2, "start"), (g2, "body")] {
        let line = the_one(name, probe, |l| {
            l.field("probe") == Some(probe)
                && l.span("worker").unwrap().fields["generation"] == g.to_string()
        });
        let span = line.span("worker").unwrap();
        assert_eq!(span.fields["supervisor"], name);
        assert_eq!(span.fields["worker"], "w");
        if probe == "start" {
            assert_eq!(line.span("supervisor").unwrap().fields["name"], name);
        }
    }

    // Events: the shared names and fields, at their levels.
    let event = |message: &str| {
        let found = lines(name, |l| {
            l.message == message && l.target == "worker_core::events"
        });
        assert!(!found.is_empty(), "no {message:?} line");
        found
    };
    for message in ["worker starting", "worker started"] {
        let gens: Vec<String> = event(message)
            .iter()
            .map(|l| l.fields["generation"].clone())
            .collect();
        assert_eq!(gens, [g1.to_string(), g2.to_string()], "{message}");
    }
    let failed = &event("worker failed")[0];
    assert_eq!(failed.level, tracing::Level::WARN);
    assert_eq!(failed.fields["worker"], "w");
    assert_eq!(failed.fields["error"], "oops");
    assert_eq!(failed.fields["fatal"], "false");
    assert_eq!(failed.fields["started"], "true");
    let restarting = &event("worker restarting")[0];
    assert_eq!(restarting.level, tracing::Level::INFO);
    assert_eq!(restarting.fields["delay"], "1s");
    assert_eq!(restarting.fields["attempt"], "1");
    assert_eq!(restarting.fields["generation"], g1.to_string());
    let stuck = &event("worker stuck")[0];
    assert_eq!(stuck.level, tracing::Level::WARN);
    assert_eq!(stuck.fields["after"], "5s");
    assert_eq!(stuck.fields["starting"], "false");
    assert_eq!(stuck.fields["forced"], "false");
    let stopped = &event("worker stopped")[0];
    assert_eq!(stopped.fields["generation"], g2.to_string());
    assert_eq!(stopped.fields["stuck"], "true");
    assert_eq!(stopped.fields["stopped_after"], "Some(5s)");
    assert_eq!(
        event("worker stopping")[0].fields["generation"],
        g2.to_string()
    );
    assert!(!event("supervisor shutting down").is_empty());
    assert!(capture.all().len() >= 10);

    // Metrics: two starts, one restart, one failure of kind `error`, one
    // stop that took the 5 s of the test clock; nothing live or stuck.
    assert_eq!(recorder.counter("worker_starts_total", &labels), 2);
    assert_eq!(recorder.counter("worker_restarts_total", &labels), 1);
    let kind = |k| [("kind", k), labels[0], labels[1]];
    assert_eq!(recorder.counter("worker_failures_total", &kind("error")), 1);
    assert_eq!(recorder.counter("worker_failures_total", &kind("start")), 0);
    assert_eq!(recorder.histogram("worker_stop_seconds", &labels), [5.0]);
    assert_eq!(recorder.gauge("worker_live", &labels), 0.0);
    assert_eq!(recorder.gauge("worker_stuck", &labels), 0.0);
}

#[test]
fn failures_are_counted_by_kind_and_the_worker_label_can_go() {
    let name = "rt-observe-kinds";
    let clock = TestClock::new();
    let recorder = TestRecorder::new();
    let (tx, events) = unbounded();
    let runner = Runner::new(
        RunnerParams::new(name)
            .clock(clock.clone())
            .is_fatal(|e| e.to_string() == "fatal")
            .restart_delay(Duration::from_secs(1))
            .hook(recorder.hook(MetricsFacade::new().without_worker_label()))
            .on_event(move |e: &Event| {
                if matches!(e.kind, EventKind::Failed { .. }) {
                    tx.send(e.clone()).unwrap()
                }
            }),
    )
    .unwrap();
    // A start function that fails, then a worker that panics, then one
    // whose error is fatal.
    let mut calls = 0;
    runner
        .start_worker("w", move || {
            calls += 1;
            match calls {
                1 => Err(Error::msg("no start")),
                2 => Ok(
                    Arc::new(spawn(format!("{name}-panics"), |_| panic!("boom"))) as SharedWorker,
                ),
                _ => Ok(
                    Arc::new(spawn(format!("{name}-fatal"), |_| Err(Error::msg("fatal"))))
                        as SharedWorker,
                ),
            }
        })
        .unwrap();
    let supervisor = [("supervisor", name)];
    let kinds: Vec<_> = (0..3)
        .map(|i| {
            if i > 0 {
                clock.wait_advance(Duration::from_secs(1), LONG, 1).unwrap();
            }
            events.recv_timeout(LONG).unwrap().failure_kind().unwrap()
        })
        .collect();
    assert_eq!(
        kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        ["start", "panic", "fatal"]
    );
    assert!(runner.wait().is_err());
    assert_threads_gone(name);
    for kind in ["start", "panic", "fatal"] {
        let labels = [("kind", kind), supervisor[0]];
        assert_eq!(
            recorder.counter("worker_failures_total", &labels),
            1,
            "{kind}"
        );
    }
    // One series per supervisor: no `worker` label anywhere.
    assert!(
        recorder.keys().iter().all(|k| !k.contains("worker=")),
        "{recorder:?}"
    );
    assert_eq!(recorder.counter("worker_starts_total", &supervisor), 2);
    assert_eq!(recorder.counter("worker_restarts_total", &supervisor), 2);
    assert_eq!(recorder.gauge("worker_live", &supervisor), 0.0);
}

//! Benchmark scenarios of the runner (`BENCHMARKS.md`): B0 (raw threads, the
//! floor), S1 (start and stop N workers, every variant), S2 (restart
//! churn, every variant), S7 (a million task workers) and the runner half
//! of S6 (reports over N running workers of the variant).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use worker_core::{Error, SharedWorker, Worker};
use worker_runner::{Runner, RunnerParams};

use super::common::timed;
use super::workers::Workers;
use super::{Measurement, Variant};

/// Runs one of this module's scenarios once. B0, S1 and S2 return a
/// finished measurement; S6 returns only its runner phases,
/// `runner_report` and `runner_report_json` (the caller adds the engine's
/// and finishes it).
pub fn run(scenario: &str, n: usize, variant: Variant) -> Result<Measurement, String> {
    match scenario {
        "B0" => Ok(raw_threads(n)?.finish()),
        "S1" => Ok(start_stop(n, variant)?.finish()),
        "S2" => Ok(restart_churn(n, variant)?.finish()),
        "S7" if variant == Variant::Task => Ok(start_stop(n, variant)?.finish()),
        "S7" => Err("S7 is a scenario of task workers: run it with the task variant".into()),
        "S6" => reports(n, variant),
        other => Err(format!("scenario {other} is not a runner scenario")),
    }
}

fn fail<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// B0: N threads blocking on a channel until it is dropped.
fn raw_threads(n: usize) -> Result<Measurement, String> {
    let mut m = Measurement::default();
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(n);
    let (threads, start) = timed(|| {
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let stop = stop_rx.clone();
                let ready = ready_tx.clone();
                std::thread::Builder::new()
                    .name(format!("b0-{i}"))
                    .spawn(move || {
                        let _ = ready.send(());
                        let _ = stop.recv();
                    })
                    .map_err(|e| format!("spawning thread {i}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        for _ in 0..n {
            ready_rx.recv().map_err(|e| e.to_string())?;
        }
        Ok::<Vec<_>, String>(threads)
    });
    let threads = threads?;
    m.phase("start", start);
    let ((), stop) = timed(|| {
        drop(stop_tx);
        for t in threads {
            let _ = t.join();
        }
    });
    m.phase("stop", stop);
    Ok(m)
}

/// The S1 runner: nothing fatal, 10 ms restart delay.
fn s1_runner(name: &str) -> Result<Runner, String> {
    Runner::new(
        RunnerParams::new(name)
            .is_fatal(|_| false)
            .restart_delay(Duration::from_millis(10)),
    )
    .map_err(fail("making the runner"))
}

/// Starts N workers of `workers`' variant and waits until `worker(id)` has
/// returned for each.
fn start_all(runner: &Runner, n: usize, workers: &Arc<Workers>) -> Result<(), String> {
    for i in 0..n {
        let make = workers.clone();
        runner
            .start_worker(format!("w{i}"), move || Ok(make.blocking("s1-worker")))
            .map_err(fail("start_worker"))?;
    }
    for i in 0..n {
        runner
            .worker(&format!("w{i}"), None)
            .map_err(fail("worker"))?;
    }
    Ok(())
}

/// S1 (and S7, with task workers): start N workers, then stop the runner.
fn start_stop(n: usize, variant: Variant) -> Result<Measurement, String> {
    let mut m = Measurement::default();
    let workers = Workers::new(variant)?;
    let runner = s1_runner("s1")?;
    let (started, start) = timed(|| start_all(&runner, n, &workers));
    started?;
    m.phase("start", start);
    let (result, stop) = timed(|| {
        runner.kill();
        runner.wait()
    });
    result.map_err(fail("runner wait"))?;
    m.phase("stop", stop);
    workers.shutdown();
    Ok(m)
}

/// S2: one worker that fails at once, restarted after 1 us, until its
/// start function has been called N times. Each incarnation is a fresh
/// worker of the variant: a thread, a task, or a passive worker.
fn restart_churn(n: usize, variant: Variant) -> Result<Measurement, String> {
    let mut m = Measurement::default();
    let workers = Workers::new(variant)?;
    let runner = Runner::new(
        RunnerParams::new("s2")
            .is_fatal(|_| false)
            .restart_delay(Duration::from_micros(1)),
    )
    .map_err(fail("making the runner"))?;
    let calls = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let failure = Error::msg("ends at once");
    let counter = calls.clone();
    let make = workers.clone();
    let ((), churn) = timed(|| {
        let started = runner.start_worker("churn", move || {
            if counter.fetch_add(1, Ordering::Relaxed) + 1 == n {
                let _ = done_tx.try_send(());
            }
            Ok::<SharedWorker, Error>(make.failing("s2-worker", failure.clone()))
        });
        if started.is_ok() {
            let _ = done_rx.recv();
        }
    });
    m.phase("churn", churn);
    // As Go's harness: the first call is a start, the rest restarts.
    m.extra.push((
        "restarts_per_sec".into(),
        n.saturating_sub(1) as f64 / churn.as_secs_f64(),
    ));
    runner.kill();
    runner.wait().map_err(fail("runner wait"))?;
    workers.shutdown();
    if calls.load(Ordering::Relaxed) < n {
        return Err(format!(
            "the start function was called {} times, not {n}",
            calls.load(Ordering::Relaxed)
        ));
    }
    Ok(m)
}

/// S6, runner half: 100 reports of the S1 runner with N workers of the
/// variant; then 100 reports serialised to a JSON string each (phase
/// `runner_report_json`, report and serialisation together).
fn reports(n: usize, variant: Variant) -> Result<Measurement, String> {
    const CALLS: u32 = 100;
    let mut m = Measurement::default();
    let runner = s1_runner("s6")?;
    let workers = Workers::new(variant)?;
    start_all(&runner, n, &workers)?;
    let (sizes, took) = timed(|| {
        (0..CALLS)
            .map(|_| runner.report().workers.len())
            .collect::<Vec<_>>()
    });
    if sizes.iter().any(|&s| s != n) {
        return Err(format!("a report did not list all {n} workers"));
    }
    m.phase("runner_report", took);
    m.extra.push((
        "runner_report_ns_per_call".into(),
        took.as_nanos() as f64 / f64::from(CALLS),
    ));
    let (bytes, json) = timed(|| {
        (0..CALLS)
            .map(|_| serde_json::to_string(&runner.report()).map(|s| s.len()))
            .collect::<Result<Vec<_>, _>>()
    });
    bytes.map_err(|e| format!("serialising the report: {e}"))?;
    m.phase("runner_report_json", json);
    runner.kill();
    runner.wait().map_err(fail("runner wait"))?;
    Ok(m)
}

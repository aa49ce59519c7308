//! The demo agent: a small machine agent, like those the Go library was
//! built for, running on the dependency engine.
//!
//! Fourteen manifolds wired through typed outputs: a configuration, a
//! flaky connection to a controller and the workers that use it, a runner
//! of per-machine workers that come and go, a catacomb of log-shipping
//! helpers, the engine offered to its own manifolds, and a leadership lease
//! installed while the agent runs. Part of the work runs as tokio tasks
//! on a runtime the agent owns: the `metrics` manifold's worker and every
//! per-machine worker of the runner are task workers
//! ([`worker_core::task`]), supervised exactly like the thread workers
//! beside them. A plain run shows restarts, bounce
//! cascades and backoff; `--chaos` adds failures, panics and a worker that
//! hangs on kill. At the end the agent shuts down in dependency order and
//! prints the engine's report. With `--observe`, a live page on the
//! loopback shows it all as it happens ([`observer`]).

pub mod chaos;
pub mod manifolds;
pub mod model;
pub mod observer;
pub mod options;
pub mod present;

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{after, never, select, tick};
use worker_core::events::MetricsFacade;
use worker_core::{Error, Worker, dead, stop};
use worker_dependency::{Engine, EngineConfig};

use chaos::Chaos;
use manifolds::names::LEADERSHIP;
use model::AgentConfig;
use observer::Observer;
use observer::metrics::{Collect, HookMetrics};
use options::Options;
use present::{StateLog, tree};

/// When the leadership lease is installed, after the start.
const LEADERSHIP_AFTER: Duration = Duration::from_millis(2500);

/// How the agent's engine is configured: short delays, so that a ten-second
/// run shows restarts and backoff.
fn engine_config() -> EngineConfig {
    EngineConfig::new("agent")
        .error_delay(Duration::from_millis(300))
        .bounce_delay(Duration::from_millis(100))
        .backoff_factor(2.0)
        .backoff_reset_time(Duration::from_secs(2))
        .max_delay(Duration::from_secs(5))
        .stop_timeout(Duration::from_secs(1))
        // The metrics hook first: by the time the state log tells of an
        // event, it is counted.
        .hook(MetricsFacade::new())
        .metrics(StateLog)
}

/// Runs the agent until `options.duration` has passed or a stop signal
/// arrives, then shuts it down in order. Returns the engine's final result
/// (or the observer's error, if the engine's is clean).
///
/// With `options.observe`, the observer is bound first (a bad address fails
/// the run before anything starts) and its address printed on stdout as
/// `observer: http://ADDR/`; it serves until the engine has stopped. If it
/// fails, the agent stops as if asked to.
///
/// The stop signals are SIGINT (Ctrl-C), SIGTERM (what systemd, Docker and
/// Kubernetes send to stop a service) and SIGHUP (the terminal went away):
/// each starts the same orderly shutdown as the end of the run, and the
/// process exits 0 if that shutdown is clean.
pub fn run(options: &Options) -> Result<(), Error> {
    let chaos = Arc::new(Chaos::new(options.chaos, options.seed));
    let tasks = TaskRuntime::new()?;
    let config = AgentConfig {
        api_url: "https://controller.invalid:17070".into(),
        connection_lifetime: Duration::from_secs(3),
        heartbeat_every: Duration::from_secs(1),
        upload_every: Duration::from_secs(2),
        machines_every: Duration::from_millis(1200),
        chaos,
        runtime: tasks.handle(),
    };
    tracing::info!(
        duration = ?options.duration,
        chaos = options.chaos,
        seed = options.seed,
        "agent starting"
    );
    let bound = options.observe.map(Observer::bind).transpose()?;
    if let Some(bound) = &bound {
        println!("observer: http://{}/", bound.local_addr());
    }
    // Every supervisor of the agent has a `MetricsFacade` hook; observed,
    // they record into the Prometheus exporter that `/metrics` renders
    // (installed before they start: their gauges move by increments).
    let hooked = match &bound {
        Some(_) => vec![Arc::new(HookMetrics::install()?) as Arc<dyn Collect>],
        None => Vec::new(),
    };
    let engine = Engine::new(engine_config())?;
    let observer = bound.map(|bound| bound.serve(engine.clone(), hooked));
    engine.install_all(manifolds::all(config, &engine))?;

    // The handler only sends: everything else happens on this thread.
    let (stop_tx, stop_asked) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })
    .map_err(|e| Error::msg(format!("cannot handle stop signals: {e}")))?;
    tracing::info!("agent running; Ctrl-C or SIGTERM stops it in order");

    let deadline = after(options.duration);
    let mut leadership = after(LEADERSHIP_AFTER);
    let reports = options.report_every.map_or_else(never, tick);
    let engine_dead = dead(&engine);
    let observer_dead = observer.as_ref().map_or_else(never, dead);
    let why = loop {
        select! {
            recv(deadline) -> _ => break "the run's duration is over",
            recv(stop_asked) -> _ => break "a stop signal (SIGINT, SIGTERM or SIGHUP)",
            recv(engine_dead) -> _ => break "the engine stopped on its own",
            recv(observer_dead) -> _ => break "the observer stopped",
            recv(leadership) -> _ => {
                engine.install(LEADERSHIP, manifolds::leadership())?;
                tracing::info!("installed the leadership manifold");
                leadership = never();
            }
            recv(reports) -> _ => show(&engine, options)?,
        }
    };

    show(&engine, options)?;
    let result = shutdown(&engine, observer, why);
    tasks.stop();
    result
}

/// The tokio runtime of the agent's task workers: two worker threads named
/// `agent-tokio`. It outlives the engine: [`TaskRuntime::stop`] runs once
/// the engine has stopped every task worker, so that no task is cut off
/// mid-step by the runtime going away.
struct TaskRuntime(tokio::runtime::Runtime);

impl TaskRuntime {
    /// How long the runtime's end waits for tasks that are not workers (a
    /// timer a task left behind): none is expected.
    const STOP_TIMEOUT: Duration = Duration::from_secs(1);

    fn new() -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("agent-tokio")
            .enable_time()
            .build()
            .map_err(|e| Error::new(e).context("starting the agent's tokio runtime"))?;
        Ok(TaskRuntime(runtime))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.0.handle().clone()
    }

    /// Shuts the runtime down. Once the engine has stopped there is no
    /// task worker left on it: each task worker's future is dropped before
    /// its worker is seen dead.
    fn stop(self) {
        self.0.shutdown_timeout(Self::STOP_TIMEOUT);
        tracing::info!("task runtime stopped");
    }
}

/// Prints the live report as a tree and as one line of JSON, and writes the
/// files asked for.
fn show(engine: &Engine, options: &Options) -> Result<(), Error> {
    let report = engine.report();
    println!("--- engine report ---\n{}", tree(&report)?);
    println!(
        "report (JSON): {}",
        serde_json::to_string(&report).map_err(Error::new)?
    );
    if let Some(path) = &options.dot {
        std::fs::write(path, engine.dot())
            .map_err(|e| Error::new(e).context(format!("writing {}", path.display())))?;
    }
    if let Some(path) = &options.report_json {
        let json = serde_json::to_string_pretty(&report).map_err(Error::new)?;
        std::fs::write(path, json)
            .map_err(|e| Error::new(e).context(format!("writing {}", path.display())))?;
    }
    Ok(())
}

/// Stops the engine (dependents before the inputs they use), saying whom
/// it still waits for while that takes long; then the observer, which has
/// shown the shutdown until then.
fn shutdown(engine: &Engine, observer: Option<Observer>, why: &str) -> Result<(), Error> {
    tracing::info!("shutting down ({why}): dependents first, then their inputs");
    engine.kill();
    let finished = dead(engine);
    loop {
        select! {
            recv(finished) -> _ => break,
            recv(after(Duration::from_millis(500))) -> _ => {
                tracing::info!(waiting_for = ?engine.waiting_for(), "still shutting down");
            }
        }
    }
    let mut result = engine.wait();
    if let Some(observer) = observer {
        let stopped = stop(&observer);
        match &stopped {
            Ok(()) => tracing::info!("observer stopped"),
            Err(e) => tracing::error!(error = %e, "observer stopped with an error"),
        }
        result = result.and(stopped);
    }
    match &result {
        Ok(()) => tracing::info!("agent stopped cleanly"),
        Err(e) => tracing::error!(error = %e, "agent stopped with an error"),
    }
    result
}

//! Benchmark scenarios of the dependency engine (`BENCHMARKS.md`): S4 chain,
//! S5 fan, the engine half of S6 (reports) and I1 (idle cost).
//!
//! Every manifold's start function reads its input (if any) and returns a
//! blocking worker of the variant: a thread that blocks until killed
//! (`thread`), a passive worker (`passive`), or a tokio task (`task`). Each
//! successful start bumps a per-manifold counter, so the phases end exactly
//! when every manifold is running (start) or has been restarted once
//! (bounce), signalled over a channel: nothing polls.
//!
//! The graph is installed as Go installs it, one `install` call per
//! manifold: phase `start` runs from the first call until every manifold
//! runs, and `install_calls` is the time of the calls alone. S4 and S5 then
//! also time one `install_all` batch of the same graph on a fresh engine
//! (phase `start_batch`), the fast way to set up a large graph here.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use worker_core::{Error, SharedWorker};
use worker_dependency::{Bounce, Engine, EngineConfig, Manifold, Metrics};

use super::common::{cpu_time, timed, voluntary_switches};
use super::workers::{Ender, Workers};
use super::{Measurement, Variant};

/// Runs one of this module's scenarios once.
pub fn run(scenario: &str, n: usize, variant: Variant) -> Result<Measurement, String> {
    if n == 0 {
        return Err("n must be at least 1".into());
    }
    match scenario {
        "S4" => restart_phases(Shape::Chain, n, variant),
        "S5" => restart_phases(Shape::Fan, n, variant),
        "S6" => report_phase(n, variant),
        "I1" => idle_phases(n, variant),
        other => Err(format!("scenario {other} is not an engine scenario")),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `m_i` needs `m_{i-1}`.
    Chain,
    /// `m_1..m_{n-1}` need `m_0`.
    Fan,
}

/// Counts successful starts and tells the bench when a target is met.
struct Progress {
    starts: Vec<AtomicU32>,
    /// A manifold counts towards `reached` when its start count hits this.
    target: Vec<AtomicU32>,
    reached: AtomicUsize,
    goal: AtomicUsize,
    done: Mutex<Option<Sender<()>>>,
    /// How to make m0's current worker end with an error (`Bounce`).
    bounce_m0: Mutex<Option<Ender>>,
}

impl Progress {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Progress {
            starts: (0..n).map(|_| AtomicU32::new(0)).collect(),
            target: (0..n).map(|_| AtomicU32::new(1)).collect(),
            reached: AtomicUsize::new(0),
            goal: AtomicUsize::new(n),
            done: Mutex::new(None),
            bounce_m0: Mutex::new(None),
        })
    }

    /// Arms the next phase: every manifold must start once more.
    fn arm(&self) -> Receiver<()> {
        let (tx, rx) = bounded(1);
        *self.done.lock().unwrap() = Some(tx);
        self.reached.store(0, Ordering::SeqCst);
        for (s, t) in self.starts.iter().zip(&self.target) {
            t.store(s.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
        }
        rx
    }

    fn started(&self, i: usize) {
        let count = self.starts[i].fetch_add(1, Ordering::SeqCst) + 1;
        if count == self.target[i].load(Ordering::SeqCst)
            && self.reached.fetch_add(1, Ordering::SeqCst) + 1 == self.goal.load(Ordering::SeqCst)
        {
            if let Some(tx) = self.done.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
    }
}

/// A shared [`Metrics`] as the engine's hook.
struct Shared(Arc<dyn Metrics>);

impl Metrics for Shared {
    fn record_start(&self, name: &str) {
        self.0.record_start(name)
    }

    fn record_stop(&self, name: &str, error: Option<&worker_core::Error>) {
        self.0.record_stop(name, error)
    }
}

fn config(name: &str, metrics: Option<Arc<dyn Metrics>>) -> EngineConfig {
    let mut config = EngineConfig::new(name);
    if let Some(metrics) = metrics {
        config = config.metrics(Shared(metrics));
    }
    config.is_fatal = Arc::new(|_| false);
    config.error_delay = Duration::from_millis(1);
    config.bounce_delay = Duration::from_millis(1);
    config.backoff_factor = 0.0;
    config
}

fn manifolds(
    shape: Shape,
    n: usize,
    workers: &Arc<Workers>,
    progress: &Arc<Progress>,
) -> Vec<(String, Manifold)> {
    (0..n)
        .map(|i| {
            let input = match (shape, i) {
                (_, 0) => None,
                (Shape::Chain, i) => Some(format!("m{}", i - 1)),
                (Shape::Fan, _) => Some("m0".to_owned()),
            };
            let progress = progress.clone();
            let workers = workers.clone();
            let read = input.clone();
            let m = Manifold::new(move |ctx| {
                if let Some(input) = &read {
                    ctx.require(input)?;
                }
                let (worker, bounce): (SharedWorker, _) = workers.endable("bench-m");
                if i == 0 {
                    *progress.bounce_m0.lock().unwrap() = Some(bounce);
                }
                progress.started(i);
                Ok(worker)
            })
            .inputs(input.as_slice());
            (format!("m{i}"), m)
        })
        .collect()
}

const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// The benchmarks' engine name (it prefixes the engine's thread names).
const ENGINE: &str = "bench-engine";

/// The engine's metrics hook for I1: says once `n` workers have been
/// registered, i.e. once the engine has taken in every start.
struct Registered {
    count: AtomicUsize,
    n: usize,
    done: (Sender<()>, Receiver<()>),
}

impl Registered {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Registered {
            count: AtomicUsize::new(0),
            n,
            done: bounded(1),
        })
    }
}

impl Metrics for Registered {
    fn record_start(&self, _name: &str) {
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            let _ = self.done.0.try_send(());
        }
    }
}

/// Installs the graph, one `install` call per manifold, and waits until
/// every manifold runs: phases `start` and `install_calls`.
fn start(
    shape: Shape,
    n: usize,
    workers: &Arc<Workers>,
    m: &mut Measurement,
    metrics: Option<Arc<dyn Metrics>>,
) -> Result<(Engine, Arc<Progress>), String> {
    let progress = Progress::new(n);
    let engine = Engine::new(config(ENGINE, metrics)).map_err(|e| e.to_string())?;
    let all = manifolds(shape, n, workers, &progress);
    let done = progress.arm();
    let (result, d) = timed(|| {
        let (installed, calls) = timed(|| {
            for (name, manifold) in all {
                engine.install(name, manifold).map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        });
        installed?;
        done.recv_timeout(PHASE_TIMEOUT)
            .map_err(|_| "not every manifold started in time".to_owned())?;
        Ok::<_, String>(calls)
    });
    let calls = result?;
    m.phase("start", d);
    m.phase("install_calls", calls);
    Ok((engine, progress))
}

/// Installs the graph in one `install_all` batch on a fresh engine and
/// waits until every manifold runs (phase `start_batch`), then stops it
/// (not timed).
fn start_batch(
    shape: Shape,
    n: usize,
    workers: &Arc<Workers>,
    m: &mut Measurement,
) -> Result<(), String> {
    let progress = Progress::new(n);
    let engine =
        Engine::new(config(&format!("{ENGINE}-batch"), None)).map_err(|e| e.to_string())?;
    let all = manifolds(shape, n, workers, &progress);
    let done = progress.arm();
    let (result, d) = timed(|| {
        engine.install_all(all).map_err(|e| e.to_string())?;
        done.recv_timeout(PHASE_TIMEOUT)
            .map_err(|_| "not every manifold started in time".to_owned())
    });
    result?;
    m.phase("start_batch", d);
    worker_core::stop(&engine).map_err(|e| format!("engine stopped with {e}"))
}

fn stop(engine: Engine, m: &mut Measurement) -> Result<(), String> {
    let (result, d) = timed(|| worker_core::stop(&engine));
    result.map_err(|e| format!("engine stopped with {e}"))?;
    m.phase("stop", d);
    Ok(())
}

/// S4 / S5: start, bounce m0 (every manifold restarts once), stop; then
/// the same start as one batch, on a fresh engine.
fn restart_phases(shape: Shape, n: usize, variant: Variant) -> Result<Measurement, String> {
    let mut m = Measurement::default();
    let workers = Workers::new(variant)?;
    let (engine, progress) = start(shape, n, &workers, &mut m, None)?;
    let done = progress.arm();
    let (result, d) = timed(|| {
        let bounce = progress.bounce_m0.lock().unwrap().take();
        bounce.ok_or("m0 has no worker")?(Error::new(Bounce));
        done.recv_timeout(PHASE_TIMEOUT)
            .map_err(|_| "not every manifold restarted in time".to_owned())
    });
    result?;
    m.phase("bounce", d);
    stop(engine, &mut m)?;
    start_batch(shape, n, &workers, &mut m)?;
    workers.shutdown();
    Ok(m.finish())
}

/// The engine half of S6: 100 reports of the S5 engine; then 100 reports
/// serialised to a JSON string each (phase `engine_report_json`, report
/// and serialisation together).
fn report_phase(n: usize, variant: Variant) -> Result<Measurement, String> {
    const CALLS: u32 = 100;
    let mut m = Measurement::default();
    let mut setup = Measurement::default();
    let workers = Workers::new(variant)?;
    let (engine, _progress) = start(Shape::Fan, n, &workers, &mut setup, None)?;
    let (size, d) = timed(|| {
        (0..CALLS)
            .map(|_| engine.report().manifolds.len())
            .sum::<usize>()
    });
    if size != n * CALLS as usize {
        return Err(format!(
            "reports listed {size} manifolds, expected {}",
            n * CALLS as usize
        ));
    }
    m.phase("engine_report", d);
    m.extra.push((
        "engine_report_ns_per_call".into(),
        (d / CALLS).as_nanos() as f64,
    ));
    let (bytes, json) = timed(|| {
        (0..CALLS)
            .map(|_| serde_json::to_string(&engine.report()).map(|s| s.len()))
            .collect::<Result<Vec<_>, _>>()
    });
    bytes.map_err(|e| format!("serialising the report: {e}"))?;
    m.phase("engine_report_json", json);
    stop(engine, &mut setup)?;
    workers.shutdown();
    Ok(m.finish())
}

/// I1: an S5 engine fully started, then 2 s idle.
fn idle_phases(n: usize, variant: Variant) -> Result<Measurement, String> {
    let mut m = Measurement::default();
    let mut setup = Measurement::default();
    // "Fully started": every start function has returned, every worker
    // has been registered by the engine (its metrics hook says so), and
    // the start threads have ended (they linger a few ms when idle).
    let registered = Registered::new(n);
    let all_registered = registered.done.1.clone();
    let metrics: Arc<dyn Metrics> = registered;
    let workers = Workers::new(variant)?;
    let (engine, _progress) = start(Shape::Fan, n, &workers, &mut setup, Some(metrics))?;
    all_registered
        .recv_timeout(PHASE_TIMEOUT)
        .map_err(|_| "the engine did not register every worker in time".to_owned())?;
    worker_core::threads::wait_threads_gone(&format!("{ENGINE}-start"), PHASE_TIMEOUT)
        .map_err(|left| format!("start threads still running: {left:?}"))?;
    let cpu0 = cpu_time();
    let switches0 = voluntary_switches();
    std::thread::sleep(Duration::from_secs(2));
    let cpu = cpu_time().saturating_sub(cpu0);
    let switches = voluntary_switches().saturating_sub(switches0);
    m.phase_value("idle_cpu_ns", cpu.as_nanos());
    m.phase_value("idle_nvcsw", u128::from(switches));
    stop(engine, &mut setup)?;
    workers.shutdown();
    Ok(m.finish())
}

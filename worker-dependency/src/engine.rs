//! `Engine`, the worker that runs the graph, and `EngineHandle`, the
//! cheap clonable way to talk to it.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crossbeam_channel::{Sender, bounded, never, unbounded};
use worker_core::{
    DoneCallback, Error, Passive, Report, Reporter, Signal, ThreadWorker, Tomb, TombState, Worker,
    spawn,
};

use crate::machine::{Machine, Policy, Snapshot};
use crate::report::EngineReport;
use crate::shell::starter::Starter;
use crate::shell::{Msg, Shell};
use crate::{ConfigError, EngineConfig, InstallError, Manifold, ShuttingDown, UninstallError};

/// The dependency engine: a [`Worker`] that runs a graph of named
/// [`Manifold`]s, starting each when it likes and restarting it whenever
/// one of its inputs starts or stops. See the [crate docs](crate).
///
/// Stop it like any worker: [`kill`](Worker::kill), then
/// [`wait`](Worker::wait), which returns the worst fatal error (if any).
/// Dropping the `Engine` kills it too (without waiting), so an engine
/// that goes out of scope never leaves its threads running; keep it (or
/// an `Arc` of it) for as long as it should run.
pub struct Engine {
    handle: EngineHandle,
    worker: ThreadWorker,
}

/// A clonable handle to an [`Engine`]: install, uninstall, report. This is
/// what [`self_manifold`] offers to the engine's own manifolds. It does not
/// keep the engine running; once the engine stops, its methods return
/// [`ShuttingDown`] (or the final report).
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

struct Shared {
    name: Arc<str>,
    tx: Sender<Msg>,
    tomb: Tomb,
    final_snapshot: Arc<OnceLock<Snapshot>>,
}

impl Engine {
    /// Validates `config` and starts the engine's loop thread (named
    /// after the engine). The engine starts empty; install manifolds.
    pub fn new(config: EngineConfig) -> Result<Engine, ConfigError> {
        config.validate()?;
        let name: Arc<str> = Arc::from(config.name.as_str());
        let (tx, rx) = unbounded();
        let final_snapshot = Arc::new(OnceLock::new());
        let shell = Shell {
            name: name.clone(),
            machine: Machine::new(name.clone(), Policy::from_config(&config)),
            clock: config.clock.clone(),
            metrics: config.metrics.clone(),
            filter: config.filter.clone(),
            tx: tx.clone(),
            final_snapshot: final_snapshot.clone(),
            starter: Starter::new(&name, tx.clone()),
            aborts: Vec::new(),
            uninstalls: HashMap::new(),
            watchers: Vec::new(),
            ended: Vec::new(),
            timer: never(),
            timer_at: None,
            out: Vec::new(),
        };
        let worker = spawn(name.to_string(), move |tomb| shell.run(tomb, rx));
        let shared = Shared {
            name,
            tx,
            tomb: worker.tomb().clone(),
            final_snapshot,
        };
        Ok(Engine {
            handle: EngineHandle {
                shared: Arc::new(shared),
            },
            worker,
        })
    }

    /// A clonable handle for installing, uninstalling and reporting.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// The engine's name.
    pub fn name(&self) -> &str {
        self.handle.name()
    }

    /// See [`EngineHandle::install`].
    pub fn install(&self, name: impl Into<String>, manifold: Manifold) -> Result<(), InstallError> {
        self.handle.install(name, manifold)
    }

    /// See [`EngineHandle::install_all`].
    pub fn install_all<I, S>(&self, manifolds: I) -> Result<(), InstallError>
    where
        I: IntoIterator<Item = (S, Manifold)>,
        S: Into<String>,
    {
        self.handle.install_all(manifolds)
    }

    /// See [`EngineHandle::uninstall`].
    pub fn uninstall(&self, name: &str) -> Result<(), UninstallError> {
        self.handle.uninstall(name)
    }

    /// See [`EngineHandle::report`].
    pub fn report(&self) -> EngineReport {
        self.handle.report()
    }

    /// See [`EngineHandle::dot`].
    pub fn dot(&self) -> String {
        self.handle.dot()
    }

    /// See [`EngineHandle::graph_json`].
    pub fn graph_json(&self) -> serde_json::Value {
        self.handle.graph_json()
    }

    /// See [`EngineHandle::waiting_for`].
    pub fn waiting_for(&self) -> Vec<String> {
        self.handle.waiting_for()
    }
}

impl Worker for Engine {
    /// Starts stopping every manifold, dependents before their inputs.
    fn kill(&self) {
        self.worker.kill();
    }

    /// Waits until every manifold has stopped and every thread of the
    /// engine has ended; returns the worst fatal error (through the
    /// engine's filter), or an internal error.
    fn wait(&self) -> Result<(), Error> {
        self.worker.wait()
    }

    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        self.worker.on_done(callback)
    }

    fn dead_signal(&self) -> Option<Signal> {
        self.worker.dead_signal()
    }

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

/// [`Engine::report`], as a [`Report`] to nest in another's.
impl Reporter for Engine {
    fn report(&self) -> Report {
        Report::new(self.handle.report())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.worker.kill();
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.handle.name())
            .field("state", &self.handle.tomb_state())
            .finish()
    }
}

impl EngineHandle {
    /// The engine's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    fn tomb_state(&self) -> TombState {
        self.shared.tomb.state()
    }

    fn shutting_down(&self) -> ShuttingDown {
        ShuttingDown(self.shared.name.to_string())
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Msg) -> Option<T> {
        let (reply, answer) = bounded(1);
        self.shared.tx.send(make(reply)).ok()?;
        answer.recv().ok()
    }

    /// Installs `manifold` under `name` and starts it at once.
    ///
    /// Fails, changing nothing, for an empty or taken name, an empty or
    /// repeated input, a dependency cycle (the error names it), or an
    /// engine that is stopping. Inputs that are not installed are fine:
    /// the manifold sees them as not running until they are.
    pub fn install(&self, name: impl Into<String>, manifold: Manifold) -> Result<(), InstallError> {
        self.install_all([(name.into(), manifold)])
    }

    /// Installs several manifolds at once, all or none. One request to
    /// the engine whatever their number, so this is the fast way to set up
    /// a large graph.
    pub fn install_all<I, S>(&self, manifolds: I) -> Result<(), InstallError>
    where
        I: IntoIterator<Item = (S, Manifold)>,
        S: Into<String>,
    {
        if self.tomb_state() != TombState::Alive {
            return Err(self.shutting_down().into());
        }
        let batch: Vec<(String, Manifold)> =
            manifolds.into_iter().map(|(n, m)| (n.into(), m)).collect();
        self.ask(|reply| Msg::Install { batch, reply })
            .unwrap_or_else(|| Err(self.shutting_down().into()))
    }

    /// Uninstalls `name`: stops its worker (its dependents restart and
    /// find it missing) and forgets it. Returns once it is gone.
    pub fn uninstall(&self, name: &str) -> Result<(), UninstallError> {
        if self.tomb_state() != TombState::Alive {
            return Err(self.shutting_down().into());
        }
        let name = name.to_owned();
        self.ask(|reply| Msg::Uninstall { name, reply })
            .unwrap_or_else(|| Err(self.shutting_down().into()))
    }

    /// The manifolds that have not stopped yet: while the engine stops,
    /// exactly what [`wait`](Worker::wait) is waiting for (the report says
    /// which of them are stuck).
    pub fn waiting_for(&self) -> Vec<String> {
        self.ask(|reply| Msg::WaitingFor { reply })
            .unwrap_or_default()
    }

    /// The engine's state and every manifold's (JSON layout in the
    /// [crate docs](crate#reports)). The engine only takes a snapshot; the
    /// workers' own reports are taken on the calling thread, so a slow
    /// one never stalls the engine.
    pub fn report(&self) -> EngineReport {
        crate::report::report(self)
    }

    /// The live graph in Graphviz DOT, each manifold coloured by state.
    pub fn dot(&self) -> String {
        crate::report::dot(&self.snapshot())
    }

    /// The live graph as JSON: `{"nodes": [...], "edges": [...]}`.
    pub fn graph_json(&self) -> serde_json::Value {
        crate::report::graph_json(&self.snapshot())
    }

    /// A snapshot from the loop, or the final one once it has stopped.
    pub(crate) fn snapshot(&self) -> Snapshot {
        if let Some(snapshot) = self.ask(|reply| Msg::Report { reply }) {
            return snapshot;
        }
        let mut snapshot = self
            .shared
            .final_snapshot
            .get()
            .cloned()
            .unwrap_or_else(|| Snapshot {
                dying: true,
                error: None,
                manifolds: Vec::new(),
            });
        snapshot.error = self.final_result().and_then(Result::err).or(snapshot.error);
        snapshot
    }

    /// The engine's result, if it has stopped.
    pub(crate) fn final_result(&self) -> Option<Result<(), Error>> {
        self.shared.tomb.try_result()
    }

    /// The engine's identity for the report's recursion guard.
    pub(crate) fn id(&self) -> *const () {
        Arc::as_ptr(&self.shared).cast()
    }
}

/// [`EngineHandle::report`], as a [`Report`] to nest in another's.
impl Reporter for EngineHandle {
    fn report(&self) -> Report {
        Report::new(EngineHandle::report(self))
    }
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle")
            .field("name", &self.shared.name)
            .finish()
    }
}

/// The engine offered to its own manifolds (Go's `SelfManifold`): a
/// manifold whose output is an [`EngineHandle`], so a start function can
/// install more manifolds or read the report.
///
/// Its worker is an ordinary worker with no thread that ends cleanly when
/// the engine stops it (after its dependents), so it needs no special case
/// and leaks nothing at shutdown.
///
/// ```
/// use worker_core::{stop, Passive};
/// use worker_dependency::{self_manifold, Engine, EngineConfig, EngineHandle, Manifold};
///
/// let engine = Engine::new(EngineConfig::new("doc-self")).unwrap();
/// engine.install("self", self_manifold(&engine.handle())).unwrap();
/// engine.install("installer", Manifold::new(|ctx| {
///     let engine: EngineHandle = ctx.get("self")?;
///     let _ = engine.install("late", Manifold::new(|_| Ok(Passive::new())));
///     Ok(Passive::new())
/// }).inputs(["self"])).unwrap();
/// # let _ = stop(&engine);
/// ```
pub fn self_manifold(engine: &EngineHandle) -> Manifold {
    let handle = engine.clone();
    Manifold::new(|_| Ok(Passive::new())).output(move |_: &Passive, out| out.put(handle.clone()))
}

//! `Engine`: the cheap clonable handle on the worker that runs the graph.
//! Each method sends a request to the engine's loop thread (run by the
//! core's supervisor driver) and, where it needs an answer, waits for the
//! reply.

use std::sync::{Arc, OnceLock};

use worker_core::supervisor::offloop::OffLoop;
use worker_core::supervisor::{self, Call, DriverConfig, Handle, Lent, Reply};
use worker_core::{
    Clock, DoneCallback, Error, Passive, Report, ReportScope, Reporter, Signal, TombState, Worker,
    WouldDeadlock,
};

use crate::machine::{Machine, Policies, Policy, Snapshot};
use crate::report::EngineReport;
use crate::shell::starter::{self, StartJob};
use crate::shell::{Event, LentSeen, Seen, Shell};
use crate::{ConfigError, EngineConfig, InstallError, Manifold, ShuttingDown, UninstallError};

/// The dependency engine: a [`Worker`] that runs a graph of named
/// [`Manifold`]s, starting each when it likes and restarting it whenever
/// one of its inputs starts or stops. See the [crate docs](crate).
///
/// An `Engine` is a handle: cheap to clone (an `Arc`), `Send + Sync`, and
/// every clone is the same engine. The engine runs until it is killed (by
/// [`kill`](Worker::kill), by a fatal error, or by the supervisor it runs
/// in); dropping handles, even the last one, never stops it, so its own
/// manifolds may hold one (that is what [`self_manifold`] offers them)
/// without keeping anything alive by accident. To tie an engine to a
/// scope, hold it through [`kill_on_drop`](Worker::kill_on_drop). Once
/// it has stopped, its methods return [`ShuttingDown`] (or the final
/// report).
///
/// Stop it like any worker: [`kill`](Worker::kill), then
/// [`wait`](Worker::wait), which returns the worst fatal error (if any).
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

struct Shared {
    driver: Handle<Event>,
    /// The engine's clock: `stop_within` times out on it.
    clock: Arc<dyn Clock>,
    /// Ranks the fatal errors a report shows, on the caller's thread.
    policies: Arc<Policies>,
    final_snapshot: Arc<OnceLock<Seen>>,
}

impl Engine {
    /// Validates `config` and starts the engine's loop thread (named
    /// `<name>-loop`). The engine starts empty; install manifolds.
    ///
    /// If the system refuses the loop thread, the engine is returned
    /// already stopped, with that refusal as the error its
    /// [`wait`](Worker::wait) returns.
    pub fn new(config: EngineConfig) -> Result<Engine, ConfigError> {
        config.validate()?;
        let name: Arc<str> = Arc::from(config.name.as_str());
        let policies = Arc::new(Policies::from_config(&config));
        let final_snapshot = Arc::new(OnceLock::new());
        let shell = Shell::new(
            name.clone(),
            Machine::new(name.clone(), Policy::from_config(&config)),
            config.clock.clone(),
            worker_core::events::Delivery::new(name.clone(), config.hooks.clone()),
            policies.clone(),
            final_snapshot.clone(),
        );
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let driver_config = DriverConfig::new(name.clone(), config.clock.clone())
            .threads((2 * cpus).max(2))
            .stall(starter::STALL)
            .linger(starter::LINGER);
        // The job runner needs the engine's id, known once the driver has
        // started: it is handed over through this slot before any job can
        // run (no job runs before the first request).
        let id_slot = Arc::new(OnceLock::new());
        let job_id = id_slot.clone();
        let job_name = name.clone();
        let job_policies = policies.clone();
        let started = supervisor::start(
            driver_config,
            shell,
            move |job: StartJob, events| {
                let engine = job_id.get().copied().unwrap_or(0);
                starter::run_job(engine, &job_name, &job_policies, job, events)
            },
            starter::refused,
        );
        let driver = match started {
            Ok(driver) => {
                let _ = id_slot.set(driver.id());
                driver
            }
            Err(e) => supervisor::finished(
                name.clone(),
                Error::new(e).context(format!("cannot start engine {name:?}")),
            ),
        };
        Ok(Engine {
            shared: Arc::new(Shared {
                driver,
                clock: config.clock.clone(),
                policies,
                final_snapshot,
            }),
        })
    }

    pub(crate) fn driver(&self) -> &Handle<Event> {
        &self.shared.driver
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.shared.clock
    }
}

impl Worker for Engine {
    /// Starts stopping every manifold, dependents before their inputs.
    fn kill(&self) {
        self.driver().kill();
    }

    /// Waits until every manifold has stopped and every thread of the
    /// engine has ended; returns the worst fatal error (through the
    /// engine's filter), or an internal error. Fails at once with
    /// [`WouldDeadlock`] on one of the engine's own threads (a start
    /// function, or a worker body one started), where it would wait for
    /// itself forever, and within its own report (a worker's report: the
    /// engine waits for the workers lent to it).
    fn wait(&self) -> Result<(), Error> {
        if ReportScope::in_progress(self.id()) {
            return Err(Error::new(WouldDeadlock {
                supervisor: self.name().to_owned(),
                call: "wait (from the engine's own report)",
            }));
        }
        self.driver().wait()
    }

    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        self.driver().on_done(callback);
        Ok(())
    }

    fn dead_signal(&self) -> Option<Signal> {
        Some(self.driver().dead_signal())
    }

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

/// [`Engine::report`], as a [`Report`] to nest in another's.
impl Reporter for Engine {
    fn report(&self) -> Report {
        Report::new(Engine::report(self))
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.name())
            .field("state", &self.tomb_state())
            .finish()
    }
}

impl Engine {
    /// The engine's name.
    pub fn name(&self) -> &str {
        self.shared.driver.name()
    }

    fn tomb_state(&self) -> TombState {
        self.shared.driver.tomb().state()
    }

    fn shutting_down(&self) -> ShuttingDown {
        ShuttingDown(self.name().to_owned())
    }

    pub(crate) fn ask<T: Send + 'static>(&self, make: impl FnOnce(Reply<T>) -> Event) -> Option<T> {
        let (call, reply) = Call::new();
        self.shared.driver.send(make(reply)).ok()?;
        call.wait().ok()
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
        let batch: Vec<(String, OffLoop<Manifold>)> = manifolds
            .into_iter()
            .map(|(n, m)| (n.into(), OffLoop::new(m)))
            .collect();
        self.ask(|reply| Event::Install { batch, reply })
            .unwrap_or_else(|| Err(self.shutting_down().into()))
    }

    /// Uninstalls `name`: stops its worker (its dependents restart and
    /// find it missing) and forgets it. Returns once it is gone.
    ///
    /// Fails with [`UninstallError::WouldDeadlock`] when called from
    /// `name`'s own start or output function: the uninstall would wait
    /// for that very function to return. (Return
    /// [`Uninstall`](crate::Uninstall) from the worker instead.)
    pub fn uninstall(&self, name: &str) -> Result<(), UninstallError> {
        if starter::starting(self.shared.driver.id(), name) {
            return Err(WouldDeadlock {
                supervisor: self.name().to_owned(),
                call: "uninstall",
            }
            .into());
        }
        if self.tomb_state() != TombState::Alive {
            return Err(self.shutting_down().into());
        }
        let name = name.to_owned();
        self.ask(|reply| Event::Uninstall { name, reply })
            .unwrap_or_else(|| Err(self.shutting_down().into()))
    }

    /// The manifolds that have not stopped yet: while the engine stops,
    /// exactly what [`wait`](Worker::wait) is waiting for (the report says
    /// which of them are stuck).
    pub fn waiting_for(&self) -> Vec<String> {
        self.ask(|reply| Event::WaitingFor { reply })
            .unwrap_or_default()
    }

    /// The engine's state and every manifold's (JSON layout in the
    /// [crate docs](crate#reports)). The engine only takes a snapshot; the
    /// workers' own reports (and the ranking of the fatal errors so far,
    /// while the engine stops) are taken on the calling thread, so a slow
    /// one never stalls the engine.
    ///
    /// The workers are lent to this call and go back to the engine
    /// afterwards (even if it panics), which drops them off its loop: an
    /// engine that stops meanwhile waits for them before it ends, so a
    /// worker whose own report is slow delays that end, as a slow `Drop`
    /// would. A worker's report that waits for its own engine, which would
    /// then wait forever, gets [`WouldDeadlock`] at once.
    pub fn report(&self) -> EngineReport {
        crate::report::report(self)
    }

    /// The live graph in Graphviz DOT, each manifold coloured by state.
    pub fn dot(&self) -> String {
        self.rendered(crate::report::dot)
    }

    /// The live graph as JSON: `{"nodes": [...], "edges": [...]}`.
    pub fn graph_json(&self) -> serde_json::Value {
        self.rendered(crate::report::graph_json)
    }

    /// `render` of a snapshot, whose workers go back to the engine.
    fn rendered<T>(&self, render: impl FnOnce(&Snapshot) -> T) -> T {
        let ((snapshot, _), lent) = self.seen();
        let rendered = render(&snapshot);
        drop(snapshot);
        drop(lent);
        rendered
    }

    /// A snapshot from the loop, or the final one once it has stopped,
    /// with the engine's error: its result once it has stopped, else the
    /// fatal errors so far, ranked here; and the guard of the workers it
    /// lent, to drop after the snapshot.
    pub(crate) fn snapshot(&self) -> (Snapshot, Lent<Event>) {
        let ((mut snapshot, fatal), lent) = self.seen();
        let result = self.final_result().and_then(Result::err);
        if result.is_some() {
            snapshot.error = result;
        } else if !fatal.is_empty() {
            snapshot.error = self.shared.policies.worst(&fatal);
        }
        (snapshot, lent)
    }

    /// A snapshot from the loop, or the final one once it has stopped.
    pub(crate) fn seen(&self) -> LentSeen {
        let home = self.shared.driver.clone();
        if let Some(seen) = self.ask(|reply| Event::Snapshot { reply, home }) {
            return seen;
        }
        let seen = self
            .shared
            .final_snapshot
            .get()
            .cloned()
            .unwrap_or_else(|| {
                let empty = Snapshot {
                    dying: true,
                    error: None,
                    manifolds: Vec::new(),
                };
                (empty, Vec::new())
            });
        (seen, Lent::none())
    }

    /// The engine's result, if it has stopped.
    pub(crate) fn final_result(&self) -> Option<Result<(), Error>> {
        self.shared.driver.tomb().try_result()
    }

    /// The engine's identity for the report's recursion guard.
    pub(crate) fn id(&self) -> *const () {
        Arc::as_ptr(&self.shared).cast()
    }
}

/// The engine offered to its own manifolds (Go's `SelfManifold`): a
/// manifold whose output is the [`Engine`] (a handle), so a start function
/// can install more manifolds or read the report. Holding it does not keep
/// the engine running.
///
/// Its worker is an ordinary worker with no thread that ends cleanly when
/// the engine stops it (after its dependents), so it needs no special case
/// and leaks nothing at shutdown.
///
/// ```
/// use worker_core::{stop, Passive};
/// use worker_dependency::{self_manifold, Engine, EngineConfig, Manifold};
///
/// let engine = Engine::new(EngineConfig::new("doc-self")).unwrap();
/// engine.install("self", self_manifold(&engine)).unwrap();
/// engine.install("installer", Manifold::new(|ctx| {
///     let engine: Engine = ctx.get("self")?;
///     let _ = engine.install("late", Manifold::new(|_| Ok(Passive::new())));
///     Ok(Passive::new())
/// }).inputs(["self"])).unwrap();
/// # let _ = stop(&engine);
/// ```
pub fn self_manifold(engine: &Engine) -> Manifold {
    let handle = engine.clone();
    Manifold::new(|_| Ok(Passive::new())).output(move |_: &Passive, out| out.put(handle.clone()))
}

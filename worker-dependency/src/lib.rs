//! The dependency engine: a graph of named workers, each started as soon
//! as it can and restarted whenever one of its inputs starts or stops.
//!
//! # Why an engine
//!
//! A long-running agent is a few dozen workers that need each other: the
//! API client needs the configuration, the uploader needs the API client,
//! the status reporter needs both. Wiring them by hand means every worker
//! re-implements "wait until my dependencies are up, and start over when
//! one of them is replaced", and gets a different corner of it wrong. The
//! engine does it once: you declare each worker as a [`Manifold`] (its
//! inputs, how to start it, what it offers to others) and install it; the
//! engine runs the graph.
//!
//! The rule is deliberately blunt, as in Go's `juju/worker/dependency`:
//! **any start or stop of an input restarts every manifold that uses it.**
//! A start function therefore never has to handle an input changing under
//! its feet: it reads its inputs once, builds its worker, and is bounced
//! when any of them changes. A start function whose input is not running
//! returns [`Missing`] (the error [`Context::get`] gives it) and is simply
//! left stopped until an input starts. Failures restart after a delay with
//! exponential backoff; [`Bounce`] and [`Uninstall`] let a worker ask for a
//! fresh start or for its own removal; errors that `is_fatal` picks stop
//! the whole engine, and [`wait`](worker_core::Worker::wait) returns the
//! worst of them.
//!
//! # When to use an engine, and when not
//!
//! An engine is for the long-lived components of a service that use each
//! other, declared once at start-up (installing later works too). When
//! the workers are independent and named at run time (one per tenant,
//! per peer), a runner (crate `worker-runner`) restarts each on its own
//! and adds and removes them cheaply; when a few helpers simply live and
//! die with one owner, a catacomb (crate `worker-catacomb`). A manifold's
//! worker is often a runner of such workers (`worker_core`'s front page
//! compares the four ways to run workers).
//!
//! # Writing a manifold
//!
//! A manifold is a start function plus builder calls. The start function
//! gets a [`Context`], reads its inputs' outputs by name and type, and
//! returns any [`Worker`](worker_core::Worker), together with what it
//! offers to its dependents if it offers anything:
//!
//! ```
//! use std::sync::Arc;
//! use worker_core::{stop, Passive, WorkerState};
//! use worker_dependency::{Engine, EngineConfig, Manifold, Outputs};
//!
//! #[derive(Clone)]
//! struct Config { url: String }
//! struct Client { url: String } // say, an HTTP client
//!
//! let engine = Engine::new(EngineConfig::new("doc-agent")).unwrap();
//! let (uploads, seen) = std::sync::mpsc::channel();
//! engine.install_all([
//!     ("config", Manifold::constant(Config { url: "https://api.invalid".into() })),
//!     // A client, offered to dependents, alive as long as its worker.
//!     ("client", Manifold::offering(|ctx| {
//!         let config: Config = ctx.get("config")?; // Missing until "config" runs
//!         let client = Arc::new(Client { url: config.url });
//!         Ok((Passive::new(), Outputs::new().with(client)))
//!     })
//!     .inputs(["config"])),
//!     ("uploader", Manifold::new(move |ctx| {
//!         let client: Arc<Client> = ctx.get("client")?;
//!         uploads.send(client.url.clone()).unwrap();
//!         Ok(Passive::new()) // a real one would `spawn` a thread using `client`
//!     })
//!     .inputs(["client"])),
//! ]).unwrap();
//!
//! // The uploader starts once the client runs, whatever the order.
//! let url = seen.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
//! assert_eq!(url, "https://api.invalid");
//! let report = engine.report(); // typed; serialise it for JSON
//! assert_eq!(report.manifold("config").unwrap().state, WorkerState::Started);
//! stop(&engine).unwrap(); // dependents stop before their inputs
//! ```
//!
//! [`Manifold::offering`] returns the outputs with the worker;
//! [`Manifold::output`] derives them from a running worker instead, and
//! [`Manifold::constant`] offers a fixed value.
//!
//! Test a start function without an engine with [`Context::builder`] (or
//! the stubs in `worker-testing`).
//!
//! # How it runs
//!
//! The decisions (what to start, stop and restart, when, and why) live in
//! a pure state machine with no threads, clocks or channels, driven by
//! events; its tests and property tests run it directly. One loop thread
//! per engine (`<name>-loop`) owns that state: it is the core's
//! [supervisor driver](worker_core::supervisor), which the runner shares,
//! and which keeps the machine's deadlines (delayed starts, stop timeouts)
//! in a table that removes them when their reason ends, so memory follows
//! the live deadlines.
//!
//! The loop runs none of your code. Start and output functions run on the
//! engine's start threads (`<name>-start-N`, about two per CPU, which end
//! after 5 ms with nothing to do, so a burst of 10,000 starts does not
//! start hundreds of threads and an idle engine keeps none; when starts
//! stall for 2 ms because start functions block, one more thread joins).
//! The policies (a manifold's filter, `is_fatal`, the jitter source) are
//! asked where the news starts: on the start thread for a failed start, in
//! the worker's completion callback for its end; their answers reach the
//! loop with the news. `worst_error` and the engine's filter run off the
//! loop when the engine ends. `kill`, `wait` and `Drop` of workers, `Drop`
//! of manifolds and of output values, and the [`Metrics`] hooks run on the
//! start threads too, each under panic containment.
//!
//! The engine learns that a worker ended through the worker's completion
//! callback, so no thread waits on a worker (a foreign worker without one
//! gets a watcher thread, `<name>-watch`). Time comes from the configured
//! [`Clock`](worker_core::Clock); the loop asks it for one timer only when
//! the earliest deadline moves earlier, and an idle engine does no work at
//! all. Durations saturate: a delay too long for the clock (up to
//! `Duration::MAX`) means "practically never", never "now".
//!
//! An [`Engine`] is a handle: clones are cheap, each one (and the
//! [`self_manifold`] output) speaks to the same engine, and dropping them,
//! even the last, stops nothing. An engine runs until it is killed or
//! fails, as a Go engine does; to stop it when a scope ends, hold it
//! through [`Worker::kill_on_drop`](worker_core::Worker::kill_on_drop)
//! (`shutdown::dropping_handles_never_stops_the_engine_and_kill_on_drop_does`).
//!
//! Costs are in proportion to the edges an event touches: a start or stop
//! walks the manifold's dependents, a dispatch its inputs, an install the
//! new node's inputs plus its existing descendants (none when inputs are
//! installed first), an uninstall the out-edges of its inputs. Only the
//! start of a shutdown walks the whole graph, once.
//!
//! The price of keeping your code off the loop is a hand-over per kill:
//! every stop goes through a start thread and back. That is invisible
//! next to a worker with a thread of its own to wake, but shows where
//! workers cost nothing to stop: a chain of 1000 thread-free workers,
//! which stops one link at a time, takes about 4 ms instead of about
//! 1.2 ms (on two busy cores).
//!
//! # What a misbehaving manifold can and cannot do
//!
//! | the manifold's... | the engine... |
//! |---|---|
//! | start, output or filter function panics | makes the panic the manifold's error, and restarts it after the error delay |
//! | worker panics in its body, `kill`, `wait`, `report` or `Drop`, or an output value panics in `Drop` | treats a panic in the body as the worker's error; logs the others and goes on |
//! | worker blocks in `kill` | goes on answering, installing, starting and stopping the others; that manifold is reported stuck after `stop_timeout` and stops holding its inputs up at shutdown; `wait` waits for it |
//! | worker or output value is slow or blocks in `Drop` | goes on; only the engine's final `wait` waits for it |
//! | start function blocks | starts the others on more threads; [`Context::abort`] tells it when to give up |
//! | start function uninstalls its own manifold, or a start function or worker body waits for the engine | answers with [`WouldDeadlock`](worker_core::WouldDeadlock) ([`UninstallError::WouldDeadlock`]) instead of waiting for itself |
//! | policies (`is_fatal`, `worst_error`, filters, the jitter source, metrics hooks) panic | treats a panicking `is_fatal` as fatal, a panicking filter or `worst_error` as the error, a panicking jitter source as no jitter; logs a panicking hook |
//! | worker never ends after `kill` | cannot force it (threads cannot be); reports it stuck, and [`Engine::waiting_for`] says what `wait` waits for |
//!
//! What a manifold cannot be kept from: a `Drop` or `wait` that never
//! returns holds the engine's final `wait` (nothing can join a thread that
//! does not end), and a worker body that uninstalls its own manifold and
//! waits deadlocks (the uninstall waits for the worker, which waits for
//! the uninstall; the engine cannot tell which manifold a thread works
//! for): return [`Uninstall`] from the worker instead. Errors are data:
//! the engine keeps them (for reports, `worst_error` and the final
//! result) and lets go of them on its loop, so an error type's own `Drop`
//! must not block.
//!
//! # Reports
//!
//! [`Engine::report`] returns an [`EngineReport`]: the engine's state and
//! a [`ManifoldReport`] per manifold, in install order, with each worker's
//! own report nested as it is (a [`Report`](worker_core::Report)). Taking
//! one costs no JSON; serialised (with `serde`), it keeps Go's layout and
//! adds explanations:
//!
//! ```text
//! { "name": <engine>, "state": "started" | "stopping" | "stopped",
//!   "error": <the engine's error, if any>,
//!   "manifolds": { <name>: {
//!       "state": "starting" | "started" | "stopping" | "stopped",
//!       "inputs": [<declared inputs>],
//!       "start-count": <successful starts, if any>,
//!       "start-attempts": <start requests since the last success, if any>,
//!       "started": "2026-11-25T09:30:00Z",  // RFC 3339, UTC
//!       "error": <last error, kept while it waits to restart>,
//!       "why": "input \"db\" started; restarted after 10ms",
//!       "starts-in": "1s",                  // a delayed start is pending
//!       "stopping-for": "5s", "stuck": true, // slow to stop
//!       "report": <the worker's own report> } } }
//! ```
//!
//! The loop only takes a snapshot; the workers' own reports are taken on
//! the calling thread, so a slow one never stalls the engine. The
//! snapshot lends the report its workers and they come back to the
//! engine after it, so a worker the engine lets go of meanwhile is still
//! dropped by the engine, never by the caller, and an engine that stops
//! meanwhile waits for them before it ends (so a worker that blocks in
//! its own report holds that end up)
//! (`adversarial::an_engine_waits_for_the_workers_lent_to_a_report_and_drops_them_itself`).
//! A worker whose report includes its own engine's report (through the
//! [`self_manifold`], say) gets that report once, with
//! [`NoReport::Recursive`](worker_core::NoReport) in its own place, instead
//! of recursing ([`ReportScope`](worker_core::ReportScope)).
//! [`Engine::dot`] and [`Engine::graph_json`] export the live graph (DOT
//! colours: green started, khaki starting, orange stopping, grey stopped,
//! salmon failed, red stuck; inputs that are not installed are dashed).
//!
//! # Waiting for starts, and stopping with a deadline
//!
//! [`Engine::wait_ready`] returns once the named manifolds (or
//! [`Names::All`](worker_core::Names), those installed at the call) have
//! started: their workers run and their outputs are offered. The engine's
//! loop answers it as it registers the last start, the timeout runs on the
//! engine's clock, and an abort signal ends it; [`Engine::wait_ready_async`]
//! is the same for async code. A test installs, then waits, where Go's
//! tests take `Install` as a sync point and poll.
//!
//! [`Engine::stop_within`] kills the engine and waits at most a timeout
//! (on its clock). Past it, the [`StopError::TimedOut`](worker_core::StopError)
//! names every manifold that has not stopped: killed and still running, or
//! still waiting for a dependent to stop first. The shutdown goes on, and a
//! later `wait` returns once they have ended.
//!
//! ```
//! use std::time::Duration;
//! use worker_core::{Names, Passive};
//! use worker_dependency::{Engine, EngineConfig, Manifold};
//!
//! let engine = Engine::new(EngineConfig::new("doc-engine-front-ready"))?;
//! engine.install_all([
//!     ("db", Manifold::new(|_| Ok(Passive::new()))),
//!     ("api", Manifold::new(|ctx| {
//!         ctx.require("db")?; // Missing until "db" runs: retried when it does
//!         Ok(Passive::new())
//!     }).inputs(["db"])),
//! ])?;
//! engine.wait_ready(Names::All, Duration::from_secs(10), None)?;
//! engine.stop_within(Duration::from_secs(10))?;
//! # Ok::<(), worker_core::Error>(())
//! ```
//!
//! # Events, spans and metrics
//!
//! The engine speaks the vocabulary every supervisor of the family shares
//! ([`worker_core::events`]), a manifold's name as the `worker`: each
//! incarnation is `starting`, `started`, maybe `stopping` and `stuck`
//! (past [`EngineConfig::stop_timeout`]), then `failed` or `stopped`
//! (missing an input, or ending with `Bounce` or `Uninstall`, is a stop,
//! with that error as its `reason`); then `restarting` after a failure
//! (with its delay and backoff step), `bouncing` when an input started or
//! stopped (naming it), or `removed`. [`EngineConfig::on_event`] and
//! [`EngineConfig::hook`] hand them to a program in order, off the loop;
//! they are logged through `tracing` with the same fields, the start and
//! output functions run in the incarnation's `worker` span (and workers
//! spawned there carry it into their bodies), and
//! `EngineConfig::new("agent").hook(MetricsFacade::new())` (worker-core's
//! feature `metrics`) counts them for any `metrics` exporter. Go's
//! [`Metrics`] hook is one such hook ([`EngineConfig::metrics`]).
//!
//! ```
//! use worker_core::events::{Event, EventKind};
//! use worker_core::{Error, Passive};
//! use worker_dependency::{Engine, EngineConfig, Manifold};
//!
//! let (tx, events) = worker_core::crossbeam_channel::unbounded();
//! let engine = Engine::new(EngineConfig::new("docs-events").on_event(move |e: &Event| {
//!     let _ = tx.send(e.clone());
//! }))?;
//! engine.install("disk", Manifold::new(|_| Err::<Passive, _>(Error::msg("no disk"))))?;
//! let names: Vec<_> = events.iter().take(3).map(|e| (e.name(), e.kind)).collect();
//! assert_eq!(names[0].0, "worker starting");
//! assert!(matches!(&names[1].1, EventKind::Failed { error, .. } if error.to_string() == "no disk"));
//! assert!(matches!(names[2].1, EventKind::Restarting { attempt: 1, .. }));
//! worker_core::stop(&engine)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! (`tests/observe.rs` checks the spans, the logged fields and the metrics
//! of manifolds' lives on the test clock.)
//!
//! # Coming from Go
//!
//! The semantics are Go's, and so are the names (in snake case). Where
//! this crate deliberately differs (a fixed bug, a safer default, a
//! typed error), [`from_go`] lists it, with the test that proves it.

#![forbid(unsafe_code)]

pub mod from_go;

mod compile_checks;
mod config;
mod context;
mod engine;
mod error;
mod graph;
mod machine;
mod manifold;
mod ready;
mod report;
mod shell;
mod stop_within;

pub use config::{EngineConfig, IsFatalFn, Metrics, NoMetrics, UNCAPPED_LIMIT, WorstErrorFn};
pub use context::{Context, ContextBuilder};
pub use engine::{Engine, self_manifold};
pub use error::{
    Bounce, ConfigError, GetError, InstallError, Internal, Missing, ShuttingDown, Uninstall,
    UninstallError,
};
pub use graph::validate;
pub use manifold::{FilterFn, Manifold, Outputs};
pub use report::{
    EngineReport, KEY_ERROR, KEY_INPUTS, KEY_MANIFOLDS, KEY_NAME, KEY_START_ATTEMPTS,
    KEY_START_COUNT, KEY_STARTS_IN, KEY_STOPPING_FOR, KEY_STUCK, KEY_WHY, ManifoldReport,
    StartReason,
};
/// Jitter sources, from the core (shared with the runner).
pub use worker_core::jitter::{Jitter, NoJitter, SeededJitter};

//! A runner of named workers that restarts them when they fail: the Rust
//! successor of Go's `worker.Runner` (juju/worker v3).
//!
//! # Why a runner
//!
//! A long-running service is mostly background work: a connection to keep
//! open, a queue to drain, a lease to renew, one watcher per tenant. Each
//! piece can fail for reasons that pass (a network blip, a restarted
//! peer), and the right answer is then to try again a little later, not to
//! bring the service down. Some failures do not pass (bad configuration, a
//! corrupt store), and the right answer is then to stop everything, in
//! order, and say why. A [`Runner`] is that policy, applied to workers
//! identified by name:
//!
//! - [`start_worker(id, start)`](Runner::start_worker) registers a start
//!   function under an id and calls it to make the worker;
//! - when the worker ends with an error that `is_fatal` says is not fatal,
//!   the runner calls the start function again after a delay; when it ends
//!   cleanly, the runner forgets it;
//! - when a worker ends with a fatal error, the runner stops every worker
//!   and finishes with the most important fatal error it saw;
//! - [`worker(id)`](Runner::worker) hands out the running instance,
//!   waiting while it is starting or between two incarnations;
//! - [`stop_worker`](Runner::stop_worker) and
//!   [`stop_and_remove_worker`](Runner::stop_and_remove_worker) take one
//!   out.
//!
//! **Every error is fatal unless told otherwise.** A runner made with no
//! [`is_fatal`](RunnerParams::is_fatal) stops all its workers at the first
//! error any of them returns, as Go's does: a runner that silently
//! restarts forever hides a broken service. So say which errors pass: a
//! runner of per-connection workers that forgets `is_fatal` loses every
//! connection when one client resets its own.
//!
//! The runner is itself a [`Worker`](worker_core::Worker) and a
//! [`Reporter`](worker_core::Reporter): it can run inside another runner,
//! a catacomb or a dependency engine, and its report nests its workers'.
//!
//! # When to use a runner, and when not
//!
//! A runner is for independent workers known by name, added and removed
//! while it runs, each restarted on its own (or, with a
//! [`Strategy`], with its siblings). When workers need each other's
//! outputs and must restart when what they use restarts, use a dependency
//! engine (crate `worker-dependency`); when a few helpers simply live and
//! die with one owner and nothing restarts, a catacomb (crate
//! `worker-catacomb`); for one worker, no supervisor at all
//! (`worker_core`'s front page compares the four).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use worker_core::{spawn, Worker, WorkerState};
//! use worker_runner::{Runner, RunnerParams};
//!
//! // Every error is fatal unless `is_fatal` says otherwise: here none is,
//! // so a failed worker comes back, after 10 ms.
//! let runner = Runner::new(
//!     RunnerParams::new("example")
//!         .is_fatal(|_| false)
//!         .restart_delay(Duration::from_millis(10)),
//! )?;
//!
//! // A worker that runs until it is killed.
//! runner.start_worker("poller", || {
//!     Ok(spawn("poller", |tomb| {
//!         let _ = tomb.dying().recv(); // wait to be told to stop
//!         Ok(())
//!     }))
//! })?;
//!
//! // Wait until it runs, look at it, and take it out again.
//! let poller = runner.worker("poller", None)?;
//! let report = runner.report(); // typed; serialise it for JSON
//! assert_eq!(report.worker("poller").unwrap().state, WorkerState::Started);
//! runner.stop_and_remove_worker("poller", None)?;
//! assert!(poller.wait().is_ok());
//!
//! runner.kill();
//! runner.wait()?; // every worker has stopped, every thread is joined
//! # Ok::<(), worker_core::Error>(())
//! ```
//!
//! # How it works
//!
//! Every decision (what to start, kill, restart, when, what to report)
//! is made by a pure state machine that holds each id as an explicit state
//! (starting, started, stopping, waiting to restart, held for a cascade),
//! its deadlines as data and its final error. One loop thread per runner owns it (the
//! core's [supervisor driver](worker_core::supervisor), which the
//! dependency engine shares); the public methods send it messages, and the
//! answers come back on reply channels. There is no lock around the
//! runner's state, so there is no lock order to get wrong, and the rules
//! are tested without threads or clocks (including a property test over
//! random sequences of events).
//!
//! The loop runs none of your code. Start functions, `kill`, `abort`,
//! `wait` and `Drop` of your workers and start functions, your policies
//! (`is_fatal`, `should_restart`, `more_important`, the jitter source) and
//! your event hook all run on the runner's start threads or on the thread
//! that finished a worker, each under panic containment.
//!
//! # What a misbehaving worker can and cannot do
//!
//! | the worker... | the runner... |
//! |---|---|
//! | panics in its body, `kill`, `wait`, `report` or `Drop` | treats a panic in the body as the worker's error; logs the others and goes on |
//! | blocks in `kill` | goes on answering, starting and stopping others; that worker is reported stuck after the stop timeout, and `wait` waits for it |
//! | is slow or blocks in `Drop` | goes on; only its own disposal (and so the runner's final `wait`) waits for it |
//! | is slow or blocks in its own `report` | only that report's caller waits; a runner that stops meanwhile ends once the report is done with its workers (a report that waits for the runner gets [`WouldDeadlock`](worker_core::WouldDeadlock)) |
//! | calls back into the runner from its start function, body or completion callback | answers at once what it can; a call that would wait for the runner itself (`wait`, `stop`, or waiting for its own id) fails with [`WouldDeadlock`](worker_core::WouldDeadlock) instead of hanging |
//! | never ends after `kill` | is reported stuck after its shutdown timeout; is forced if it can be ([`Worker::abortable`](worker_core::Worker::abortable): an async task, never a thread) and its [`Shutdown`] says so; otherwise `wait` waits for it and [`Runner::waiting_for`] says so |
//! | blocks in its start function after being stopped | is reported stuck the same way (a start function cannot be forced); killed as soon as it returns |
//!
//! The event hook ([`RunnerParams::on_event`]) is your code too: a panic
//! in it is logged and the next event is delivered as usual; a hook that
//! blocks delays only the events after it (which queue up) and the
//! runner's final `wait`.
//!
//! What a worker cannot be kept from: a `Drop` or `wait` that never
//! returns holds the runner's final `wait` (nothing can join a thread that
//! does not end), and a worker body spawned *outside* the runner's start
//! functions that stops the runner deadlocks (the runner cannot know the
//! thread is one of its workers). Errors are data: the runner keeps them
//! (the last error of each worker, for reports and restarts) and lets go
//! of them on its loop, so an error type's own `Drop` must not block.
//!
//! Nothing costs a thread per worker beyond the worker's own. Start
//! functions run on a few start threads (two by default; see
//! [`RunnerParams::start_threads`]), never on the loop or on the caller's
//! thread; the runner learns that a worker ended through its completion
//! callback ([`Worker::on_done`](worker_core::Worker::on_done)), which
//! costs no thread for workers built on [`Tomb`](worker_core::Tomb); a
//! caller waiting in `worker()` is an entry in a list, answered once. The
//! loop asks the [`Clock`](worker_core::Clock) for one timer at a time,
//! for the earliest deadline, so an idle runner uses no CPU and a fake
//! clock in a test sees exactly the timers that matter. Every incarnation
//! gets a generation number, so news about an incarnation that is gone is
//! never taken for news about the current one.
//!
//! Every thread the runner starts is named after it (`<name>-loop`,
//! `<name>-start-<n>`, `<name>-watch` for workers that cannot report their
//! own end) and has been joined when [`wait`](worker_core::Worker::wait)
//! returns.
//!
//! # The life of an id
//!
//! The report's `state` is where the id is:
//!
//! | state | meaning | `worker(id)` |
//! |---|---|---|
//! | `starting` | its start function is running | waits |
//! | `started` | an instance is running | returns it |
//! | `stopping` | its instance was killed and has not finished | waits, then `NotFound` |
//! | `stopped` | it failed and waits out its restart delay, or, in a cascade of the runner's [`Strategy`], waits for its siblings | waits |
//!
//! An id that ends for good (a clean exit, a stop, an error that is not
//! restarted) is forgotten: `worker(id)` says
//! [`NotFound`](worker_core::NotFound) and the id can be started again.
//!
//! # Errors
//!
//! | error | when |
//! |---|---|
//! | [`AlreadyExists`](worker_core::AlreadyExists) | `start_worker` with an id the runner knows, in any state |
//! | [`NotFound`](worker_core::NotFound) | `worker` / `stop_and_remove_worker` of an unknown id, or one that went away while waiting |
//! | [`Aborted`](worker_core::Aborted) | the caller's abort signal fired while it waited |
//! | [`Dying`] | `start_worker` while the runner shuts down |
//! | [`Dead`](worker_core::Dead) | any call once the runner has finished; `worker` and `stop_and_remove_worker` while it shuts down |
//! | [`EmptyId`], [`InvalidParams`] | bad input (including a significant worker the runner cannot honour); nothing else is affected |
//! | [`RestartIntensityExceeded`] | the runner's own fatal error when a worker restarts too often |
//! | [`RunnerIntensityExceeded`] | the runner's own fatal error when its workers together restart too often |
//! | [`RemoveTimedOut`] | [`stop_and_remove_worker_within`](Runner::stop_and_remove_worker_within) waited its timeout; says what became of the worker |
//! | [`ReadyError`](worker_core::ReadyError) | [`wait_ready`](Runner::wait_ready): an unknown id, a timeout (naming the ids not started), an abort, a runner that stopped (with its error) |
//! | [`StopError`](worker_core::StopError) | [`stop_within`](Runner::stop_within): the runner's own error, or the deadline passed (naming the workers still running) |
//! | [`WouldDeadlock`](worker_core::WouldDeadlock) | a call that would wait for the runner itself, made on one of its own threads |
//!
//! Each call returns an enum of exactly the ways it can fail:
//! [`StartError`] (`start_worker`), [`LookupError`] (`worker`),
//! [`RemoveError`] (`stop_and_remove_worker`, which also carries the
//! stopped worker's own error), [`NewError`] (`Runner::new`), and
//! [`Dead`](worker_core::Dead) alone for `stop_worker`. Match on them, or
//! let `?` turn them into [`worker_core::Error`], which keeps the specific
//! error in its chain: `err.is::<NotFound>()` still finds it. The
//! runner's own end (what `wait` returns) is a `worker_core::Error`, as
//! every worker's is.
//!
//! # Restart policies
//!
//! By default the runner behaves as Go's: every error is fatal unless
//! `is_fatal` says otherwise, a non-fatal error restarts the worker after
//! a fixed 3 s, forever, and a clean exit removes it. Each of these can be
//! changed, for the whole runner ([`RunnerParams`]) or for one worker
//! ([`WorkerOptions`] with [`Runner::start_worker_with`]):
//!
//! - [`RestartPolicy::exponential`]: a delay that doubles (or grows by any
//!   factor) with consecutive failures, up to a cap, starts over after a
//!   healthy run, and is spread by jitter from an injectable
//!   [`Jitter`] source;
//! - [`RestartPolicy::intensity`]: at most N restarts in a sliding window,
//!   after which the failure becomes fatal
//!   ([`RestartIntensityExceeded`]), as an Erlang/OTP supervisor does;
//! - [`RestartType`]: permanent workers are restarted even after a clean
//!   exit, temporary ones never.
//!
//! And for the runner as a whole ([`RunnerParams`]), as OTP and suture
//! supervisors do (see [OTP and suture](#otp-and-suture)):
//!
//! - [`Strategy`]: a restart can take the other workers with it (all of
//!   them, or those started after the failed one), restarted together;
//! - [`RunnerParams::intensity`]: at most N restarts of all the workers
//!   together in a sliding window ([`RunnerIntensityExceeded`]);
//! - [`FailureBackoff`]: past a decaying count of failures, every restart
//!   pauses for a while instead of ending the runner;
//! - [`AutoShutdown`]: the runner ends on its own when workers marked
//!   [significant](WorkerOptions::significant) have ended.
//!
//! # Waiting until workers have started
//!
//! [`wait_ready(names, timeout, abort)`](Runner::wait_ready) returns once
//! the named workers (or [`Names::All`](worker_core::Names), those the
//! runner knows at the call) have started: their start functions returned
//! and the runner registered them. The loop answers it when it registers
//! the last start, so nothing polls; the timeout runs on the runner's
//! clock, so a test drives it with a fake clock; an unknown id fails at
//! once, as it does for `worker(id)` (start it, then wait);
//! [`wait_ready_async`](Runner::wait_ready_async) is the same for async
//! code. This is what Go's runner offers its own tests only
//! (`NewRunnerWithNotify`):
//!
//! ```
//! use std::time::Duration;
//! use worker_core::{Names, Passive, ReadyError, Worker};
//! use worker_runner::{Runner, RunnerParams};
//! use worker_testing::TestClock;
//!
//! let clock = TestClock::new();
//! let runner = Runner::new(RunnerParams::new("doc-ready-front").clock(clock.clone()))?;
//! runner.start_worker("db", || Ok(Passive::new()))?;
//! let (release, slow) = crossbeam_channel::bounded::<()>(1);
//! runner.start_worker("cache", move || {
//!     let _ = slow.recv(); // a start function that takes its time
//!     Ok(Passive::new())
//! })?;
//! runner.worker("db", None)?; // waits for the start, with no deadline
//!
//! // Time moves only when the test says so: the waiter's deadline is the
//! // clock's only timer.
//! let waiter = {
//!     let runner = runner.clone();
//!     std::thread::spawn(move || runner.wait_ready(Names::All, Duration::from_secs(5), None))
//! };
//! clock.wait_timers(1, Duration::from_secs(10))?; // the waiter's deadline
//! clock.advance(Duration::from_secs(5));
//! match waiter.join().unwrap() {
//!     Err(ReadyError::TimedOut(e)) => assert_eq!(e.not_started, ["cache"]),
//!     other => panic!("{other:?}"),
//! }
//! release.send(()).unwrap();
//! runner.kill();
//! runner.wait()?;
//! # Ok::<(), worker_core::Error>(())
//! ```
//!
//! # Reports
//!
//! [`Runner::report`] returns a [`RunnerReport`]: a [`WorkerReport`] per
//! id with its state, when the current or last incarnation started, the
//! worker's own report if it is a [`Reporter`](worker_core::Reporter)
//! (nested as it is, typed), why it was last restarted ([`Restart`]: the
//! attempt, the error and the delay, or the sibling whose restart took it
//! along) and, if it will not stop, for how
//! long. Taking one costs no JSON. Serialised (with `serde`), it keeps
//! Go's layout, ids in order:
//!
//! ```text
//! {"workers": {"poller": {"state": "started", "started": "2026-11-25T09:30:00Z",
//!     "report": {...}, "reason": "restart 2 after error: reset (delay 1.5s)",
//!     "stuck": "not stopped 30s after kill"}}}
//! ```
//!
//! with [`reason`](KEY_REASON) absent after a first start and
//! [`stuck`](KEY_STUCK) absent unless the worker is stuck. The loop only
//! copies the list out; the entries and the workers' own reports are made
//! on the caller's thread, so a slow worker report delays that caller and
//! nothing else. The workers are lent to the report and come back to the
//! runner after it, so one the runner lets go of meanwhile is still
//! dropped by the runner, never by the caller, and a runner that stops
//! meanwhile waits for them before it ends
//! (`adversarial::a_runner_waits_for_the_workers_lent_to_a_report_and_drops_them_itself`).
//! A worker whose report includes its own runner's report gets that
//! report once, with
//! [`NoReport::Recursive`](worker_core::NoReport) in its own place, instead
//! of recursing until the stack overflows
//! ([`ReportScope`](worker_core::ReportScope);
//! `report::a_report_that_includes_its_own_runner_does_not_recurse_forever`).
//!
//! # Stopping
//!
//! `kill` (and a fatal error, or an automatic shutdown) stops every worker
//! at once, as Go's runner does, or, with
//! [`ShutdownOrder::Reverse`], one at a time, the last started first, as
//! an OTP supervisor does. How each worker is stopped is its [`Shutdown`]
//! (for the whole runner with [`RunnerParams::shutdown`], or per worker):
//! asked and waited for (the default), asked and forced after a timeout,
//! or forced at once (OTP's `brutal_kill`).
//!
//! Forcing exists only where the worker offers it
//! ([`Worker::abortable`](worker_core::Worker::abortable)): an async task
//! can be aborted, a thread cannot (Rust cannot stop a thread from
//! outside). A worker past its shutdown timeout, or past
//! [`RunnerParams::stop_timeout`], is reported stuck (in the report, in
//! [`Runner::waiting_for`], as a
//! [`EventKind::Stuck`](worker_core::events::EventKind::Stuck) event and
//! with a tracing warning), forced if it can be and its shutdown says so, and an ordered
//! shutdown moves on to the next worker; a thread that never ends is still
//! waited for by `wait`, and `waiting_for` says on whom. The same goes for
//! a start function that has not returned after its worker was asked to
//! stop. A forced worker's ending is the runner's doing: its error does
//! not go to `is_fatal`.
//!
//! [`stop_and_remove_worker_within`](Runner::stop_and_remove_worker_within)
//! bounds a removal by a timeout on the runner's clock, and
//! [`stop_within`](Runner::stop_within) bounds the whole shutdown: past
//! its deadline it returns [`StopError::TimedOut`](worker_core::StopError),
//! naming every worker still stopping (or still starting, or waiting for
//! its turn in an ordered shutdown), and the shutdown goes on; a later
//! `wait` returns once they have ended.
//!
//! A [`Runner`] is a handle: clones are cheap and all speak to the same
//! runner, and dropping them, even the last one, stops nothing. A runner
//! runs until it is killed or fails, as a Go runner does; to stop it when
//! a scope ends, hold it through
//! [`Worker::kill_on_drop`](worker_core::Worker::kill_on_drop)
//! (`shutdown::dropping_handles_never_stops_the_runner_and_kill_on_drop_does`).
//!
//! # Events, spans and metrics
//!
//! The runner speaks the vocabulary every supervisor of the family shares
//! ([`worker_core::events`]): each incarnation of a worker is `starting`,
//! `started`, maybe `stopping` and `stuck`, then `failed` or `stopped`;
//! then `restarting` (with its delay and attempt), `removed` or
//! `gave up`; the runner itself is `paused`, `resumed` and `shutting
//! down`. [`RunnerParams::on_event`] (a closure) and [`RunnerParams::hook`]
//! (any [`Hook`](worker_core::events::Hook)) hand these events to a
//! program in order, one at a time, off the runner's loop. The same events
//! are logged through `tracing` with the same fields (`supervisor`,
//! `worker`, `generation`, then the event's own), and every incarnation
//! has a `worker` span, entered around its start function and carried
//! into the body of a worker made with `worker_core::spawn` or
//! `task::spawn` there. With worker-core's feature `metrics`,
//! [`MetricsFacade`](worker_core::events::MetricsFacade) turns them into
//! counters, gauges and a histogram for any exporter, in one line:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use worker_core::events::{Event, EventKind};
//! use worker_core::{Passive, Worker};
//! use worker_runner::{Runner, RunnerParams};
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = seen.clone();
//! let runner = Runner::new(RunnerParams::new("docs-events").on_event(move |e: &Event| {
//!     if matches!(e.kind, EventKind::Started | EventKind::Stopped { .. }) {
//!         sink.lock().unwrap().push(format!("{} {}", e.name(), e.worker().unwrap()));
//!     }
//! }))?;
//! // With feature `metrics`: RunnerParams::new("api").hook(MetricsFacade::new())
//! runner.start_worker("db", || Ok(Passive::new()))?;
//! runner.worker("db", None)?;
//! worker_core::stop(&runner)?; // `wait` returns once every event is delivered
//! assert_eq!(*seen.lock().unwrap(), ["worker started db", "worker stopped db"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! (`tests/observe.rs` checks the spans, the logged fields and the metrics
//! of a worker's whole life.)
//!
//! # OTP and suture
//!
//! The runner has the rules of an Erlang/OTP `supervisor` and of Go's
//! suture (restart strategies, intensity, shutdown orders and timeouts,
//! significant workers), every one off by default; [`otp`] maps each to
//! its option here and says where they differ.
//!
//! # Coming from Go
//!
//! The semantics are Go's, and so are the names (in snake case). Where
//! this crate deliberately differs (a fixed bug, a safer default, a
//! typed error), [`from_go`] lists it, with the test that proves it.

#![forbid(unsafe_code)]

pub mod from_go;
pub mod otp;

mod compile_checks;
mod error;
mod machine;
mod params;
mod policy;
mod ready;
mod report;
mod runner;
mod shell;
mod status;
mod stop_within;
mod supervision;

pub use error::{
    Dying, EmptyId, InvalidParams, LookupError, NewError, RemoveError, RemoveTimedOut,
    RestartIntensityExceeded, RunnerIntensityExceeded, StartError,
};
pub use params::{DEFAULT_START_THREADS, RunnerParams};
pub use policy::{
    Backoff, ErrorPredicate, ErrorRanking, Intensity, RestartPolicy, RestartType, WorkerOptions,
};
pub use report::{KEY_REASON, KEY_STUCK, KEY_WORKERS, Restart, RunnerReport, WorkerReport};
pub use runner::Runner;
pub use status::{Stage, WaitingFor};
pub use supervision::{AutoShutdown, FailureBackoff, Shutdown, ShutdownOrder, Strategy};
/// Jitter sources, from the core (shared with the dependency engine).
pub use worker_core::jitter::{Jitter, NoJitter, SeededJitter};

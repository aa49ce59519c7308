//! Tools for testing code built on the worker family: a fake clock, test
//! workers, checks, a fake watcher, a mock, and doubles for the dependency
//! engine.
//!
//! # Why a test kit
//!
//! Code that supervises workers is about time and concurrency, the two
//! things that make tests flaky. Sleeping "long enough" is either slow or
//! wrong on a loaded machine, and a check that a worker "stopped" means
//! little if it cannot tell a clean stop from a hang. This crate replaces
//! both guesses with facts:
//!
//! - [`TestClock`] stands still until the test moves it. Supervisors take
//!   their time from a [`Clock`](worker_core::Clock), so a test hands them a
//!   `TestClock` and decides when a restart delay is over.
//!   [`TestClock::wait_advance`] first waits until the code under test has
//!   asked for its timers, which closes the race between "advance" and
//!   "register a timer"; a timer that was dropped does not count.
//! - The checks ([`check_alive`], [`check_killed`], [`clean_kill`], ...)
//!   watch a worker through its completion signal, without a thread, and
//!   fail the test with a message saying what was expected and what
//!   happened. Real time appears only as their generous failure timeout,
//!   [`KILL_TIMEOUT`]. Each has a `try_` twin ([`try_check_alive`],
//!   [`try_clean_kill`], ...) that takes its own timeout and returns the
//!   failure as a [`CheckError`] instead of panicking.
//! - [`assert_threads_gone`] proves that stopping a supervisor left none of
//!   its threads behind.
//! - Workers with fixed behaviour ([`error_worker`], [`dead_worker`],
//!   [`ForeverWorker`], [`AbortableWorker`], and [`spawn_error_worker`]
//!   for one with a real thread), a [`FakeWatcher`] and, with the `mock`
//!   feature, a `mockall` `MockWorker` (with `mockall` re-exported) stand
//!   in for real workers.
//! - [`dependency`] holds doubles for testing the start functions of
//!   dependency-engine manifolds without an engine.
//! - What supervisors tell operators is tested too: with the `tracing`
//!   feature, [`traces::capture`] keeps every event and span logged
//!   through `tracing`, on any thread; with the `metrics` feature,
//!   `TestRecorder` reads back what the `metrics` facade recorded
//!   (`worker_core::events::MetricsFacade`'s counters and gauges, say).
//!
//! # Example
//!
//! A worker that restarts a job after a delay, tested without waiting:
//!
//! ```
//! use std::time::Duration;
//! use worker_core::crossbeam_channel::select;
//! use worker_core::{spawn, Clock};
//! use worker_testing::{check_alive, clean_kill, TestClock};
//!
//! let clock = TestClock::new();
//! let (ticks_tx, ticks) = worker_core::crossbeam_channel::unbounded();
//! let worker_clock = clock.clone();
//! let worker = spawn("poller", move |tomb| loop {
//!     let timer = worker_clock.timer(Duration::from_secs(60));
//!     select! {
//!         recv(tomb.dying()) -> _ => return Ok(()),
//!         recv(timer) -> _ => ticks_tx.send(()).unwrap(),
//!     }
//! });
//! // Move time on once the worker waits on its timer: no sleeping.
//! clock.wait_advance(Duration::from_secs(60), Duration::from_secs(10), 1).unwrap();
//! ticks.recv_timeout(Duration::from_secs(10)).unwrap();
//! check_alive(&worker);
//! clean_kill(&worker);
//! ```
//!
//! # Testing a whole engine on the test clock
//!
//! A dependency engine takes its time from its configuration's clock, so
//! its own restart delays (after an error, after a bounce, with backoff)
//! run on a `TestClock` too, and a test decides when each is over. Four
//! settings make its timing exact, and a metrics hook tells the test when
//! a start has been registered, so it never polls a report:
//!
//! - `clock`: the test clock (a clone: they share time);
//! - `jitter`: `NoJitter`, so a delay is exactly what the policy says;
//! - `backoff_factor`: `0.0` (no backoff) or a factor whose delays the test
//!   expects, reading them with [`TestClock::waiting`];
//! - `stop_timeout`: zero, unless the test is about it: it is a deadline
//!   on the same clock, and would be one more timer to count.
//!
//! The engine asks its clock for one timer at a time, for its earliest
//! deadline, so after a failure the test waits for one timer and moves
//! time on by the delay:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use worker_core::crossbeam_channel::{unbounded, Sender};
//! use worker_core::{Error, Passive};
//! use worker_dependency::{Engine, EngineConfig, Manifold, Metrics, NoJitter};
//! use worker_testing::{clean_kill, TestClock};
//!
//! const LONG: Duration = Duration::from_secs(10);
//!
//! /// Tells the test about every start the engine registers.
//! struct Starts(Mutex<Sender<String>>);
//!
//! impl Metrics for Starts {
//!     fn record_start(&self, name: &str) {
//!         let _ = self.0.lock().unwrap().send(name.to_owned());
//!     }
//! }
//!
//! let clock = TestClock::new();
//! let (started_tx, started) = unbounded();
//! let engine = Engine::new(
//!     EngineConfig::new("doc-engine")
//!         .clock(clock.clone())
//!         .jitter(NoJitter)
//!         .error_delay(Duration::from_secs(1))
//!         .backoff_factor(0.0)
//!         .stop_timeout(Duration::ZERO)
//!         .metrics(Starts(Mutex::new(started_tx))),
//! )?;
//!
//! let (workers_tx, workers) = unbounded();
//! engine.install("db", Manifold::new(move |_| {
//!     let worker = Arc::new(Passive::new());
//!     let _ = workers_tx.send(worker.clone());
//!     Ok(worker)
//! }))?;
//! assert_eq!(started.recv_timeout(LONG)?, "db");
//! workers.recv_timeout(LONG)?.finish(Err(Error::msg("connection lost")));
//!
//! // The restart waits for the error delay, on the test clock.
//! clock.wait_timers(1, LONG)?;
//! assert_eq!(clock.waiting(), [Duration::from_secs(1)]);
//! clock.advance(Duration::from_secs(1));
//! assert_eq!(started.recv_timeout(LONG)?, "db");
//! clean_kill(&engine);
//! # Ok::<(), Error>(())
//! ```
//!
//! The engine's own behaviour tests do the same, with a harness around it
//! that also records stops (`Metrics::record_stop`). One caveat while the
//! engine arms its timers with [`Clock::after`](worker_core::Clock::after):
//! a timer it replaced (because its earliest deadline moved) cannot be
//! seen dropped, so it still counts until it is due; read
//! [`TestClock::waiting`] when a test changes what the engine waits for.
//!
//! # Task workers and the two clocks
//!
//! The checks work for task workers (`worker_core::task`, feature `tokio`
//! of this crate and of `worker-core`) as for any other: they watch the
//! worker's completion signal. They block the calling thread, so call
//! them from a plain `#[test]` that builds its own runtime (or from a
//! multi-threaded runtime with a thread to spare), never from the only
//! thread that drives the task under test.
//!
//! Time comes from two places, and each clock controls only its own:
//!
//! - The library's [`Clock`](worker_core::Clock) times what supervisors
//!   do: restart delays, backoff, stop timeouts, and the timers of thread
//!   worker bodies that take a clock. Give them a [`TestClock`] and move
//!   it with [`TestClock::wait_advance`], as above.
//! - A task body that sleeps or times out with `tokio::time` runs on
//!   tokio's clock, which a [`TestClock`] does not move. Test it on a
//!   runtime whose clock is paused (tokio's `test-util` feature:
//!   `Builder::new_current_thread().enable_time().start_paused(true)`, or
//!   `#[tokio::test(start_paused = true)]`): tokio then jumps its clock to
//!   the next timer whenever every task is idle, and `tokio::time::advance`
//!   moves it by hand. A paused runtime has one thread, which only runs
//!   tasks inside `block_on`, so await the worker there
//!   (`runtime.block_on(worker.tomb().until_dead())`) rather than calling
//!   a blocking check.
//!
//! A supervisor of task workers under test therefore takes a
//! [`TestClock`] for its restart delays, while the bodies of its tasks
//! run on tokio's (paused) clock; neither clock moves the other.
//!
//! # Differences from Go
//!
//! - The checks fail by panicking (a Rust test's failure) and point at the
//!   caller's line. They watch workers through their completion signal, so
//!   [`check_alive`] leaves no goroutine-like thread blocked behind it.
//! - The kill timeout is a constant, not a mutable global; [`KILL_TIMEOUT`]
//!   is 10 s, as in Go v3. A test that needs another passes it to a `try_`
//!   check.
//! - [`FakeWatcher::stop`] really stops the watcher and
//!   [`FakeWatcher::err`] reports its real error (Go's returns nil without
//!   stopping, and always an error, respectively); a preload larger than
//!   the channel is a typed error, [`PreloadTooLarge`], not a panic.
//! - [`TestClock::wait_advance`] waits on a condition variable for the
//!   timers; it never polls. A dropped [`Timer`](worker_core::Timer) stops
//!   counting at once, where Go's test clock counts every timer until it
//!   fires.

#![forbid(unsafe_code)]

mod checks;
mod clock;
pub mod dependency;
pub mod misbehaving;
#[cfg(feature = "mock")]
mod mock;
#[cfg(doctest)]
mod must_use;
#[cfg(feature = "metrics")]
mod recorder;
#[cfg(feature = "tracing")]
pub mod traces;
mod watcher;
mod workers;

pub use checks::{
    ALIVE_GRACE, CheckError, KILL_TIMEOUT, assert_threads_gone, assert_threads_gone_within,
    check_alive, check_kill, check_killed, check_nil_or_kill, clean_kill, dirty_kill,
    try_check_alive, try_check_kill, try_check_killed, try_check_nil_or_kill, try_clean_kill,
    try_dirty_kill,
};
pub use clock::TestClock;
#[cfg(feature = "mock")]
pub use mock::MockWorker;
/// The `mockall` this crate's [`MockWorker`] is made with (feature
/// `mock`), for its `Sequence` and predicates without a dependency of your
/// own. (`mockall`'s `mock!` and `automock` macros name `::mockall`, so
/// mocks of your own traits still need it as a direct dependency.)
#[cfg(feature = "mock")]
pub use mockall;
#[cfg(feature = "metrics")]
pub use recorder::TestRecorder;
pub use watcher::{FakeWatcher, PreloadTooLarge};
pub use workers::{
    AbortableWorker, DeadWorker, ErrorWorker, ForeverWorker, ThreadErrorWorker, dead_worker,
    error_worker, spawn_error_worker,
};

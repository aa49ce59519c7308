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
//!   "register a timer".
//! - The checks ([`check_alive`], [`check_killed`], [`clean_kill`], ...)
//!   watch a worker through its completion signal, without a thread, and
//!   fail the test with a message saying what was expected and what
//!   happened. Real time appears only as their generous failure timeout,
//!   [`KILL_TIMEOUT`].
//! - [`assert_threads_gone`] proves that stopping a supervisor left none of
//!   its threads behind.
//! - Workers with fixed behaviour ([`error_worker`], [`dead_worker`],
//!   [`ForeverWorker`], [`AbortableWorker`]), a [`FakeWatcher`] and a
//!   `mockall` [`MockWorker`] stand in for real workers.
//! - [`dependency`] holds doubles for testing the start functions of
//!   dependency-engine manifolds without an engine.
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
//!     let timer = worker_clock.after(Duration::from_secs(60));
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
//! # Differences from Go
//!
//! - The checks fail by panicking (a Rust test's failure) and point at the
//!   caller's line. They watch workers through their completion signal, so
//!   [`check_alive`] leaves no goroutine-like thread blocked behind it.
//! - The kill timeout is a constant, not a mutable global; [`KILL_TIMEOUT`]
//!   is 10 s, as in Go v3.
//! - [`FakeWatcher::stop`] really stops the watcher and
//!   [`FakeWatcher::err`] reports its real error (Go's returns nil without
//!   stopping, and always an error, respectively); a preload larger than
//!   the channel is a typed error, [`PreloadTooLarge`], not a panic.
//! - [`TestClock::wait_advance`] waits on a condition variable for the
//!   timers; it never polls.

#![forbid(unsafe_code)]

mod checks;
mod clock;
pub mod dependency;
pub mod misbehaving;
mod mock;
mod watcher;
mod workers;

pub use checks::{
    ALIVE_GRACE, KILL_TIMEOUT, assert_threads_gone, assert_threads_gone_within, check_alive,
    check_kill, check_killed, check_nil_or_kill, clean_kill, dirty_kill,
};
pub use clock::TestClock;
pub use mock::MockWorker;
pub use watcher::{FakeWatcher, PreloadTooLarge};
pub use workers::{
    AbortableWorker, DeadWorker, ErrorWorker, ForeverWorker, dead_worker, error_worker,
};

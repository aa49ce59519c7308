//! The worker contract that every crate of this family builds on.
//!
//! # The model
//!
//! A long-running service is a set of background tasks that must be started,
//! told to stop, and waited for, and whose failures must go somewhere. This
//! crate gives that one shape: a [`Worker`] is anything with a bounded
//! lifetime. [`Worker::kill`] asks it to stop and returns at once;
//! [`Worker::wait`] blocks until it has stopped and says how it ended, the
//! same answer to every caller. Nothing else is assumed: a worker may be a
//! thread, a group of threads, or a resource with no thread at all.
//!
//! Because the contract is that small, supervisors are workers too: a
//! runner that restarts workers, a catacomb that binds a group of them to
//! one owner, and a dependency engine that runs a graph of them are all
//! killed and waited for in the same way, so they nest.
//!
//! # Which supervisor do I need
//!
//! Four ways to run workers, from the least structure to the most; pick
//! the first that does the job:
//!
//! | you have | use | because |
//! |---|---|---|
//! | one piece of work to run, stop and wait for | [`spawn`](fn@spawn), `task::spawn_on` (feature `tokio`), or [`Passive`] | no supervisor: kill and wait it yourself, or hold it with [`Worker::kill_on_drop`] |
//! | a few workers that belong to one owner and live and die with it (a connection's reader and writer, an object's helper threads) | a catacomb (crate `worker-catacomb`) | the first error kills them all and the owner, and the owner's `wait` returns only when every one has ended; nothing restarts |
//! | independent workers named at run time that should come back after a failure (one per tenant, per peer, per machine) | a runner (crate `worker-runner`) | restarts with delays and backoff, adds and removes by id while running, Erlang/OTP strategies and limits; a fatal error stops them all |
//! | long-lived components that use each other (a database pool that an API server and a cache need) | a dependency engine (crate `worker-dependency`) | starts each component once its inputs run, restarts the users of one that restarted, stops them in order |
//!
//! They nest, because each is a worker: a typical service is an engine
//! whose components include a runner of per-peer workers, one of which
//! keeps its helpers in a catacomb. A supervisor handle is a cheap `Clone`
//! that never stops it when dropped; a supervisor runs until killed or
//! until it fails.
//!
//! # Writing a worker
//!
//! Getting kill/wait right by hand is subtle: kill must not block, wait
//! must return the same error to every caller, the first real error must
//! win over later ones and over a plain kill. [`Tomb`] does all of that; a
//! worker is usually a [`Tomb`] plus a body, and [`spawn`](fn@spawn) makes one from a
//! closure in one call:
//!
//! ```
//! use crossbeam_channel::{select, unbounded};
//! use worker_core::{spawn, stop, Error, Worker};
//!
//! let (jobs_tx, jobs) = unbounded::<u32>();
//! let worker = spawn("summer", move |tomb| {
//!     let mut sum = 0;
//!     loop {
//!         select! {
//!             recv(tomb.dying()) -> _ => return Ok(()),
//!             recv(jobs) -> job => match job {
//!                 Ok(n) => sum += n,
//!                 Err(_) => return Err(Error::msg(format!("job source closed at sum {sum}"))),
//!             },
//!         }
//!     }
//! });
//! jobs_tx.send(2).unwrap();
//! drop(jobs_tx);
//! // The body failed on its own; its error is what `wait` returns.
//! assert_eq!(worker.wait().unwrap_err().to_string(), "job source closed at sum 2");
//! assert!(stop(&worker).is_err()); // killing a dead worker changes nothing
//! ```
//!
//! A panic in the body becomes the worker's error ([`Panicked`]); it never
//! escapes to the caller or poisons anything.
//!
//! # Thread, passive or task: which worker to write
//!
//! | the work | write | costs |
//! |---|---|---|
//! | loops, blocks, calls blocking APIs | a thread worker: [`spawn`](spawn()) | one OS thread |
//! | none: a resource valid until stopped (a lease, a handle) | [`Passive`] | one small allocation |
//! | async: awaits I/O, timers, channels | a task worker: `task::spawn_on` (feature `tokio`) | one tokio task |
//!
//! All three are built on a [`Tomb`], so all three are killed, waited for
//! and watched the same way, and supervisors mix them freely. A thread is
//! the simple choice for a few hundred workers, and the only one for code
//! that blocks; a process holds some thousands of them. A task costs a few
//! hundred bytes, so a service can run a million; its body must not block,
//! and it learns of a kill at its next await. A thread body watches
//! [`Tomb::dying`] in a `select!`; a task body awaits
//! [`Tomb::until_dying`] (or selects on it).
//!
//! # Workers that block in I/O
//!
//! A thread blocked in `read()` or `accept()` watches no signal, so a kill
//! would go unseen. [`Tomb::on_dying`] registers a hook that the killing
//! thread runs: it shuts the socket down, which wakes the blocked call.
//! See its docs for a worker blocked in `read`, and the `examples` crate
//! (`echo`) for a whole server: an acceptor and its connections, all
//! stopped by one kill.
//!
//! # Async code
//!
//! Every wait has an async counterpart that needs no thread and no
//! particular runtime: [`finished`](finished()) for any worker's end (what
//! [`Worker::wait`] returns), [`Tomb::until_dying`] and
//! [`Tomb::until_dead`] for a tomb's moments, and
//! [`AbortSignal::until_fired`]. They are woken by the code that finishes
//! or kills, and are cancel-safe. With the `tokio` feature, `task` runs
//! tokio tasks as workers.
//!
//! ```
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     struct Unpark(std::thread::Thread);
//! #     impl std::task::Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
//! #     let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
//! #     let mut cx = std::task::Context::from_waker(&waker);
//! #     let mut f = std::pin::pin!(f);
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } std::thread::park() }
//! # }
//! use std::sync::Arc;
//! use worker_core::{finished, spawn, Worker};
//!
//! let worker = Arc::new(spawn("blocking-part", |tomb| {
//!     let _ = tomb.dying().recv(); // a thread body, in a thread
//!     Ok(())
//! }));
//! let end = finished(&worker); // registered now; awaited on any executor
//! worker.kill();
//! assert!(block_on(end).is_ok());
//! ```
//!
//! # Abort signals
//!
//! A call that waits can be given up on with an [`AbortSignal`]: made in a
//! pair with its [`AbortTrigger`], already fired, never firing, or taken
//! from a tomb's dying moment ([`Tomb::abort_signal`]), so that what a
//! worker waits for is abandoned when the worker is killed. It is checked
//! without blocking, selected on as a crossbeam receiver, or awaited.
//!
//! # Knowing when workers finish, without a thread each
//!
//! A supervisor of 100,000 workers cannot park a thread in `wait` for each
//! one (an OS thread costs ~10 KiB and 40-110 us to start, and a process
//! holds at most ~15,000). So the contract has an optional capability,
//! [`Worker::on_done`]: register a callback that the finishing thread calls.
//! [`Tomb`]-based workers ([`ThreadWorker`], [`Passive`], task workers)
//! support it at the cost of one boxed closure; for foreign workers, [`watch`] and [`dead`]
//! fall back to one watcher thread each. [`Passive`] workers have no thread
//! at all, which makes them the unit of the benchmarks at 100,000 workers.
//!
//! # Time, errors, reports
//!
//! - [`Clock`] is the only source of time in the library; [`WallClock`] is
//!   the real one, and `worker-testing` has a fake one to drive by hand.
//! - [`Error`] is a cheap clonable handle around any error, keeping the
//!   source chain for [`Error::is`] and [`Error::downcast_ref`]. It
//!   converts into `Box<dyn std::error::Error + Send + Sync>` with `?` and
//!   back with [`Error::from_boxed`], and, with the `anyhow` feature, to
//!   and from `anyhow::Error` with `?`.
//! - [`Reporter`] describes a worker with a typed, serialisable value
//!   ([`Report`]); supervisors nest their workers' reports in their own
//!   typed reports, which serialise to Go's JSON layout ([`report`]).
//!
//! # Building blocks for supervisors
//!
//! The runner, the catacomb and the engine share what they have in common
//! here, and so can a supervisor of your own:
//!
//! - [`StartQueue`]: runs start functions (user code that may block) off
//!   the supervisor's loop, on a few threads that end when idle, with a
//!   real-time rule that adds a thread when starts stall;
//! - [`threads`]: every library thread is started through
//!   [`threads::spawn_named`], so tests can prove none is left
//!   ([`threads::wait_threads_gone`]), and [`threads::JoinSlot`] joins an
//!   owner's thread in `wait` without any order of calls deadlocking;
//! - [`watch_named`]: completion through a callback, or one named,
//!   joinable watcher thread for workers that cannot notify;
//! - [`jitter`]: the injectable randomness that spreads restart delays,
//!   and [`backoff`]: the rule that grows them with consecutive failures
//!   (saturating, capped after the spread);
//! - [`delegate_worker!`] and [`into_shared`]: making and storing workers.
//!
//! # Differences from Go
//!
//! - Go's `tomb` lets a kill after the tomb is dead change the reason that
//!   `Wait` already returned. A dead [`Tomb`]'s result is frozen: every
//!   `wait` returns the same value.
//! - Go's `worker.Dead` starts a goroutine on every call. [`dead`] uses the
//!   worker's own signal or completion callback, and needs a thread only for
//!   workers that offer neither. That thread must own the worker, so such a
//!   foreign worker must be shared (an `Arc`); one that is not cannot be
//!   watched at all, and [`dead`] and [`watch`] kill it and report
//!   [`Unwatchable`] rather than wait forever.
//! - A panic in a worker body crashes a Go program; here it becomes the
//!   worker's error.
//! - Go leaves a worker blocked in I/O to a custom `Kill` (and an acceptor
//!   to a connection to itself); [`Tomb::on_dying`] runs a hook on the
//!   killing thread instead (`tests/dying_hook.rs`).
//! - Go aborts with any `<-chan struct{}`; here one [`AbortSignal`] type
//!   serves blocking, `select!` and async code alike (`tests/abort.rs`).
//!
//! The thread-safety of [`Tomb`] is model-checked with `loom` (see
//! `tests/loom_tomb.rs`).

#![forbid(unsafe_code)]

mod abort;
pub mod backoff;
mod clock;
mod error;
mod finished;
pub mod jitter;
#[cfg(doctest)]
mod must_use;
pub mod report;
mod spawn;
pub mod start_queue;
pub mod supervisor;
mod sync;
#[cfg(feature = "tokio")]
pub mod task;
pub mod threads;
mod tomb;
mod worker;

use std::time::Duration;

pub use abort::{AbortSignal, AbortTrigger, UntilFired};
pub use clock::{Clock, PRACTICALLY_NEVER, Timer, WallClock, deadline};
pub use error::{
    Aborted, AlreadyExists, Chain, Dead, Error, NotFound, Panicked, Unwatchable, catch_panic,
};
pub use finished::{Finished, finished};
pub use report::{
    KEY_LAST_START, KEY_REPORT, KEY_STATE, NoReport, Report, ReportScope, Reporter, WorkerState,
    format_duration, format_time,
};
pub use spawn::{Passive, ThreadWorker, spawn};
pub use start_queue::StartQueue;
pub use supervisor::{SupervisorFailed, WouldDeadlock};
pub use tomb::{Tomb, TombState, UntilDead, UntilDying};
pub use worker::{
    Abort, DoneCallback, KillOnDrop, Outcome, SharedWorker, Signal, Worker, dead, downcast_worker,
    into_shared, stop, watch, watch_named,
};

/// Re-exported so users can `select!` on [`Signal`]s without naming the
/// dependency themselves.
pub use crossbeam_channel;
/// Re-exported for deriving [`Serialize`](serde::Serialize) on a report of
/// your own.
pub use serde;
/// Re-exported for building [`Report`]s as JSON trees on the spot.
pub use serde_json;

/// How long a runner waits, by default, before restarting a worker that
/// failed: 3 seconds, as in Go.
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(3);

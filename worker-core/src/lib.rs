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
//! # Writing a worker
//!
//! Getting kill/wait right by hand is subtle: kill must not block, wait
//! must return the same error to every caller, the first real error must
//! win over later ones and over a plain kill. [`Tomb`] does all of that; a
//! worker is usually a [`Tomb`] plus a body, and [`spawn`] makes one from a
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
//! # Knowing when workers finish, without a thread each
//!
//! A supervisor of 100,000 workers cannot park a thread in `wait` for each
//! one (an OS thread costs ~10 KiB and 40-110 us to start, and a process
//! holds at most ~15,000). So the contract has an optional capability,
//! [`Worker::on_done`]: register a callback that the finishing thread calls.
//! [`Tomb`]-based workers ([`ThreadWorker`], [`Passive`]) support it at the
//! cost of one boxed closure; for foreign workers, [`watch`] and [`dead`]
//! fall back to one watcher thread each. [`Passive`] workers have no thread
//! at all, which makes them the unit of the benchmarks at 100,000 workers.
//!
//! # Time, errors, reports
//!
//! - [`Clock`] is the only source of time in the library; [`WallClock`] is
//!   the real one, and `worker-testing` has a fake one to drive by hand.
//! - [`Error`] is a cheap clonable handle around any error, keeping the
//!   source chain for [`Error::is`] and [`Error::downcast_ref`].
//! - [`Reporter`] describes a worker as a JSON object ([`Report`]);
//!   supervisors nest their workers' reports in their own.
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
//! - [`jitter`]: the injectable randomness that spreads restart delays;
//! - [`delegate_worker!`] and [`into_shared`]: making and storing workers.
//!
//! # Differences from Go
//!
//! - Go's `tomb` lets a kill after the tomb is dead change the reason that
//!   `Wait` already returned. A dead [`Tomb`]'s result is frozen: every
//!   `wait` returns the same value.
//! - Go's `worker.Dead` starts a goroutine on every call. [`dead`] uses the
//!   worker's own signal or completion callback, and needs a thread only for
//!   workers that offer neither.
//! - A panic in a worker body crashes a Go program; here it becomes the
//!   worker's error.
//!
//! The thread-safety of [`Tomb`] is model-checked with `loom` (see
//! `tests/loom_tomb.rs`).

#![forbid(unsafe_code)]

mod clock;
mod error;
pub mod jitter;
mod report;
mod spawn;
pub mod start_queue;
pub mod supervisor;
mod sync;
pub mod threads;
mod tomb;
mod worker;

use std::time::Duration;

pub use clock::{Clock, PRACTICALLY_NEVER, WallClock, deadline};
pub use error::{Aborted, AlreadyExists, Chain, Dead, Error, NotFound, Panicked, catch_panic};
pub use report::{
    KEY_LAST_START, KEY_REPORT, KEY_STATE, Report, Reporter, TimeLabels, format_time,
};
pub use spawn::{Passive, ThreadWorker, spawn};
pub use start_queue::StartQueue;
pub use supervisor::{SupervisorFailed, WouldDeadlock};
pub use tomb::{Tomb, TombState};
pub use worker::{
    Abort, DoneCallback, Outcome, SharedWorker, Signal, Worker, dead, downcast_worker, into_shared,
    stop, watch, watch_named,
};

/// Re-exported so users can `select!` on [`Signal`]s without naming the
/// dependency themselves.
pub use crossbeam_channel;
/// Re-exported for building [`Report`]s.
pub use serde_json;

/// How long a runner waits, by default, before restarting a worker that
/// failed: 3 seconds, as in Go.
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(3);

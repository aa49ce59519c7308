//! Bind the lifetimes and the errors of a group of workers to one owner.
//!
//! # Why
//!
//! A worker often needs helpers: a watcher, a connection pump, a child
//! runner. Each helper is a worker of its own, and the owner must get three
//! things right for every one of them: when the owner stops, the helper
//! must stop too; when a helper fails, the owner must fail with that error
//! rather than carry on half-broken; and the owner must not report itself
//! stopped while a helper is still running. Written by hand this is a
//! thicket of channels and threads in which a forgotten case leaks a thread
//! or loses an error.
//!
//! A [`Catacomb`] does it once. It runs the owner's *work* on a thread of
//! its own, and every worker [`add`](Catacomb::add)ed to it is *bound* to
//! it:
//!
//! - the catacomb's life is the work's: it dies when the work returns (with
//!   `Ok` or `Err`), when it is [`kill`](Catacomb::kill_with)ed, or when a bound
//!   worker fails;
//! - when it dies, every bound worker still running is killed;
//! - it is dead only once the work has returned **and** every bound worker
//!   has finished and been waited for, so `wait` never returns while a
//!   helper runs;
//! - its error is the first real error of any of them; a bound worker that
//!   ends with `Ok` is simply let go of.
//!
//! A catacomb is itself a [`Worker`](worker_core::Worker) (and notifies its
//! completion without a thread), so catacombs nest, and a runner or an
//! engine supervises one like any other worker. A [`Catacomb`] is a cheap
//! `Clone` handle: the work gets one, a bound worker may keep one to
//! [`add`](Catacomb::add) siblings or to kill its owner, and dropping
//! handles never stops the catacomb, which lives until its work returns,
//! it is killed, or a bound worker fails. A handle kept by a bound worker
//! does not keep anything alive after that: once the catacomb is dead it
//! has let go of its workers (`worker::clones_are_one_catacomb_and_dropping_them_stops_nothing`).
//!
//! # When to use a catacomb, and when not
//!
//! A catacomb is for a few helpers that belong to one owner: nothing is
//! restarted, the first error ends them all, and the owner is not dead
//! before its helpers are. Workers that should come back after a failure
//! belong in a runner (crate `worker-runner`); components that use each
//! other's outputs, in a dependency engine (crate `worker-dependency`);
//! `worker_core`'s front page compares the four ways to run workers.
//!
//! ```
//! use std::sync::Arc;
//! use crossbeam_channel::{select, unbounded};
//! use worker_catacomb::{Catacomb, Plan};
//! use worker_core::{Error, Passive, Worker};
//!
//! let lease = Arc::new(Passive::new()); // a helper with no thread of its own
//! let (jobs_tx, jobs) = unbounded::<u32>();
//! let catacomb = Catacomb::invoke(
//!     Plan::new("crate-docs-owner", move |c: &Catacomb| loop {
//!         select! {
//!             // Told to stop: report "dying", which keeps the kill reason.
//!             recv(c.dying()) -> _ => return Err(c.err_dying()),
//!             recv(jobs) -> job => if job == Ok(0) {
//!                 return Err(Error::msg("job 0 is invalid"));
//!             },
//!         }
//!     })
//!     .init([lease.clone() as _]),
//! )
//! .unwrap();
//!
//! jobs_tx.send(7).unwrap();
//! jobs_tx.send(0).unwrap(); // the work fails...
//! let err = catacomb.wait().unwrap_err();
//! assert_eq!(err.to_string(), "job 0 is invalid"); // ...with its own error,
//! assert!(lease.tomb().try_result().is_some()); // and the helper was stopped.
//! ```
//!
//! # The dying-error algebra
//!
//! The work learns that it must stop from [`Catacomb::dying`], and should
//! then return [`Catacomb::err_dying`]: the catacomb's own [`Dying`] error,
//! which the catacomb recognises and never records, so the reason it was
//! killed with (perhaps none) is kept. The other rules:
//!
//! - the first real error wins: a kill with an error replaces a kill
//!   without one; nothing replaces an error; nothing changes once dead;
//! - another catacomb's [`Dying`] error is a bug (that catacomb's shutdown
//!   leaking into this one, juju/juju#16187), and is recorded as a
//!   [`ForeignDying`] error so that it shows;
//! - `err_dying` while still alive returns a [`StillAlive`] error, which is
//!   recorded like any error if used.
//!
//! # How it is built, and why
//!
//! The project's supervisors (runner, engine) keep their state in one loop
//! thread that serialises every decision. A catacomb makes few decisions:
//! its state is a [`Tomb`](worker_core::Tomb) (alive, dying, dead; the
//! first real error) plus the set of bound workers that have not finished,
//! behind one mutex. We chose that over a loop thread because the add path
//! is then a single short critical section (take a slot, clone an `Arc`)
//! and one boxed completion callback registered on the worker: no channel
//! round trip, no thread. That is what lets a
//! catacomb bind 100,000 workers in milliseconds, where Go spends three
//! goroutines per worker.
//!
//! The rule that makes the lock safe: **no user code runs under it**. The
//! lock is held only to take or release a slot, to flip the catacomb
//! closed and to hand work to the catacomb's own threads; bound workers'
//! `on_done` is called after it is released, and their `kill` and `wait`
//! are not called on the caller's thread at all (nor is their `Drop`,
//! but in `add`, for a worker that ends while it is being added). A worker
//! that finishes may thus call back into the catacomb from any thread.
//!
//! **Calls into a bound worker's code go to the catacomb's own threads.**
//! Whoever kills a catacomb may be a runner's or an engine's thread, or a
//! sibling's completion callback, and must not be held up by a worker
//! whose `kill` blocks; and a worker whose end was reported by a callback
//! on its own thread cannot be waited for (joined) there. So the catacomb
//! keeps a small executor (worker-core's `StartQueue`): kills, and the
//! `wait` and last `drop` of each worker that has reported its end, run on
//! threads named `<catacomb name>-stop-<n>`, usually one. When the catacomb
//! is killed, one errand kills the bound workers one after the other, with
//! a second one queued behind it: if a kill blocks, the queue's stall rule
//! (driven by the work thread once the work has returned) starts a thread
//! for the queued errand after a short stall, which carries on with the
//! rest. A worker that ends inside its own kill is waited for by the same
//! errand, so the common case costs one thread and two hand-overs for any
//! number of workers.
//!
//! Each binding has a serial number, so a worker whose completion is
//! reported twice cannot release some other worker's binding. A worker that
//! cannot notify its completion gets one watcher thread, named
//! `<catacomb name>-watcher`. The work thread carries the catacomb's name;
//! after the work returns it waits until every bound worker has ended and
//! been waited for, joins the stop and watcher threads, marks the catacomb
//! dead and exits, and [`Catacomb::wait`] joins it. So once `wait`
//! returns, no thread of the catacomb is left, and every bound worker's
//! `wait` has returned (which, for a well-behaved worker, means its threads
//! are gone too).
//!
//! # What a misbehaving worker can and cannot do
//!
//! A bound worker runs user code the catacomb calls: `on_done`, `kill`,
//! `wait`, its `Drop`, and the completion callbacks it runs. Whatever that
//! code does, the catacomb's own state stays consistent, and:
//!
//! - **A panic** in any of them (or in the work, or in a completion
//!   callback registered on the catacomb) is contained. Where it is a bound
//!   worker's failure it becomes the catacomb's error
//!   ([`Panicked`](worker_core::Panicked), naming the call and the
//!   catacomb), subject to "first real error wins"; the catacomb still
//!   finishes, and `wait` returns
//!   (`misbehaving::a_drop_that_panics_while_the_catacomb_finishes_becomes_its_error`,
//!   `misbehaving::a_drop_that_panics_after_the_worker_ended_on_its_own_becomes_the_error`,
//!   `misbehaving::a_wait_that_panics_becomes_the_error`,
//!   `add::a_panicking_kill_becomes_the_catacomb_error`,
//!   `add::a_panicking_on_done_kills_the_catacomb_and_the_worker_is_still_waited_for`,
//!   `misbehaving::a_completion_callback_that_panics_does_not_keep_the_catacomb_alive`).
//! - **A `kill` that blocks** holds up one of the catacomb's stop threads,
//!   never the caller of [`Catacomb::kill_with`] or
//!   [`Worker::kill`](worker_core::Worker::kill), which return at once; the
//!   other workers are killed after a stall of about 20 ms (once the work
//!   has returned) (`misbehaving::kill_returns_while_a_bound_workers_kill_blocks`,
//!   `misbehaving::kills_that_block_do_not_hold_up_the_other_kills`). The
//!   catacomb is not dead until that `kill` has returned: its thread must
//!   be joined. (The library's own workers, whose kill runs no user code,
//!   are killed by the caller itself, with no thread hop:
//!   `kill::kill_kills_the_librarys_own_workers_itself`; but not one the
//!   user gave a dying hook or a completion callback:
//!   `misbehaving::user_hooks_and_callbacks_of_passive_workers_do_not_run_on_the_killers_thread`.)
//! - **Calling back into the catacomb** from a bound worker's code is
//!   allowed: `add`, `kill_with`, `err`, `state` and the signals never wait
//!   for a worker (`misbehaving::completion_callbacks_of_bound_workers_may_call_add_kill_and_err`).
//!   `wait` does wait: from a thread the catacomb must see return before it
//!   can be dead (its work thread, a stop thread, a watcher thread) it
//!   answers [`WaitError::OwnThread`] at once instead of deadlocking
//!   (`misbehaving::work_that_waits_for_its_own_catacomb_gets_a_typed_error_at_once`,
//!   `misbehaving::a_bound_workers_kill_that_waits_for_the_catacomb_gets_a_typed_error`).
//!   A bound worker's *own* thread cannot be told from any other thread:
//!   a worker body (or a completion callback it runs) that waits for its
//!   catacomb deadlocks, since the catacomb waits for that worker.
//! - **A worker that never ends**, ignoring its kill, keeps the catacomb
//!   dying: it is never dead, and `wait` never returns (the catacomb cannot
//!   promise its helpers stopped otherwise). Its
//!   [`worker_count`](Catacomb::worker_count) and report show what it waits
//!   for. Likewise a worker whose `wait` never returns after it has
//!   reported its end.
//! - **Adding a refused worker** (to a dying catacomb) kills it on the
//!   caller's thread: it is the caller's own worker, not yet the
//!   catacomb's (`misbehaving::a_refused_worker_whose_drop_panics_does_not_panic_the_caller`).
//!
//! # Stopping with a deadline
//!
//! [`Catacomb::stop_within`] kills the catacomb and waits at most a
//! timeout (on the [clock of its plan](Plan#structfield.clock)). Past it,
//! the [`StopError::TimedOut`](worker_core::StopError) says what the
//! catacomb can: whether its work has returned, and how many bound workers
//! have not finished (a catacomb does not name its workers). It goes on
//! dying; a later `wait` returns once they have ended.
//! # Events and metrics
//!
//! A catacomb speaks the vocabulary every supervisor of the family shares
//! ([`worker_core::events`]) about its bound workers: each binding is
//! `started` when bound, `stopping` when the dying catacomb kills it, and
//! `failed` (always fatal) or `stopped` when it ends; the catacomb says
//! `shutting down` with its cause. Its workers have no names: their
//! events have no `worker`, and their `generation` numbers the binding.
//! [`Plan::on_event`] and [`Plan::hook`] hand the events to a program in
//! order, on the catacomb's errand threads (never a caller's or a
//! worker's); they are logged through `tracing` with the same fields; and
//! `Plan::new(name, work).hook(MetricsFacade::new())` (worker-core's
//! feature `metrics`) counts them per catacomb for any `metrics` exporter
//! (`tests/observe.rs`).
//!
//! # Coming from Go
//!
//! The semantics are Go's, and so are the names (in snake case). Where
//! this crate deliberately differs (a fixed bug, a safer default, a
//! typed error), [`from_go`] lists it, with the test that proves it.

#![forbid(unsafe_code)]

pub mod from_go;

mod add;
mod bindings;
mod catacomb;
mod compile_checks;
mod errands;
mod error;
mod events;
mod finish;
mod kill_batch;
mod plan;
mod report;
mod stop_within;

pub use catacomb::Catacomb;
pub use error::{AddError, Dying, ForeignDying, InvokeError, IoError, StillAlive, WaitError};
pub use plan::{Plan, Work};
pub use report::CatacombReport;

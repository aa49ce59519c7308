//! One supervisor loop for every supervisor: the driver.
//!
//! The runner and the dependency engine differ in their rules, not in how
//! they run them. Both keep their rules in a pure state machine (a
//! [`Machine`]: no thread, channel or clock inside), and both need the same
//! machinery around it. That machinery is here, once:
//!
//! - **one loop thread** (`<name>-loop`) that owns the machine, takes
//!   requests and news from one channel, and hands the machine each one
//!   with the time ([`Machine::handle`]);
//! - **one clock timer** for the machine's earliest deadline
//!   ([`Machine::poll_timeout`]), asked of the [`Clock`](crate::Clock)
//!   only when that deadline moves earlier; the machine keeps its
//!   deadlines in a [`Timers`] table, which removes cancelled ones, so
//!   memory follows the live deadlines;
//! - **replies** ([`Reply`], [`Call`]): a request's answer channel, reused
//!   by each calling thread;
//! - **effects** ([`Effects`]): everything the machine wants done that
//!   runs user code (start functions, `kill`, `wait`, `Drop` of workers and
//!   of the values they carry, hooks) is done on a few executor threads
//!   (`<name>-start-<n>`, a [`StartQueue`](crate::StartQueue)), never on
//!   the loop;
//! - **its own news**: the end of a worker the loop killed itself (one of
//!   the library's thread-free workers: no user code runs) is reported on
//!   the loop's own thread, and goes to the loop through a thread-local
//!   queue rather than its channel (the notes in `own_news.rs` say why);
//! - **defence in depth**: a panic in a machine call (a bug) ends the
//!   supervisor with [`SupervisorFailed`] after killing and waiting for
//!   every worker it held; a panic of the loop itself still ends the
//!   supervisor with that error, so no `wait` hangs because a library
//!   thread died.
//!
//! # The loop runs no user code
//!
//! A misbehaving worker may block in `kill`, panic or dawdle in `Drop`,
//! or call back into its own supervisor. None of that may freeze or kill
//! the supervisor, so the loop only decides, and these rules hold:
//!
//! 1. User code reaches the loop only as values. A start function runs in
//!    a job (off the loop); the machine-specific job runner also asks the
//!    questions whose answers are user code (is this error fatal? is the
//!    worker a reporter?) before the news reaches the loop.
//! 2. What the machine lets go of is dropped off the loop. Values whose
//!    `Drop` is user code are held as [`OffLoop`](offloop::OffLoop): one
//!    dropped on the loop goes to the loop's graveyard, which the driver
//!    hands to the executor after each transition.
//! 3. `kill`, `wait` (reaping: it joins the worker's threads) and hooks
//!    are [`Work`](effects::Work) items, packed into batches. A batch
//!    whose next item blocks gets a second ticket after one stall period,
//!    so one blocking `kill` holds up the others by about that much (see
//!    [`effects`]).
//! 4. A waiting call made on one of the supervisor's own threads (its
//!    loop, a start thread, or a worker body a start function spawned:
//!    see [`threads::serve`](crate::threads::serve)) fails at once with
//!    [`WouldDeadlock`] instead of waiting for itself forever.
//!
//! # When a supervisor ends
//!
//! The machine says it is done with [`Effects::finish`], with its result
//! or with a function that computes it from user policies (ranking fatal
//! errors) off the loop; a machine that lent workers to a report holds
//! that back until they have all come back ([`lend`]). The driver then closes its channel (callers
//! waiting for answers learn that the supervisor is gone), has the
//! executor drop the machine and everything still queued, joins the
//! executor and watcher threads, and only then marks the supervisor dead:
//! when `wait` returns, every thread the supervisor started is gone.

pub mod driver;
pub mod effects;
mod error;
pub mod lend;
pub mod offloop;
mod own_news;
mod quiet;
pub mod ready;
pub mod reply;
pub mod timers;

pub use driver::{DriverConfig, Events, Handle, Machine, finished, start};
pub use effects::{Effects, Finish};
pub use error::{SupervisorFailed, WouldDeadlock};
pub use lend::{Lending, Lent};
pub use quiet::{QuietKill, can_kill_quietly, kill_quietly, on_done_quietly, watch};
pub use reply::{AsyncCall, Call, CallError, Reply};
pub use timers::Timers;

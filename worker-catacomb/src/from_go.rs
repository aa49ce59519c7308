//! Coming from Go: where this crate deliberately differs from Go's `catacomb` package.
//!
//! Each difference names the test that proves it (the test names are
//! relative to this crate's `tests/` and `src/` trees). Everything not
//! listed behaves as the Go package does.
//!
//! - **No "not invoked" or "reused" catacomb.** Go's zero-value
//!   `Catacomb` must be passed to `Invoke` exactly once; methods called
//!   before block forever, `Kill` before `Invoke` still runs the work, and a
//!   reuse is a runtime error. Here [`Catacomb::invoke`](crate::Catacomb::invoke) is the only
//!   constructor and the work receives the catacomb, so none of that can be
//!   written. `Plan` has no `Site`, and its work cannot be nil.
//! - **No threads per worker.** Go spends two goroutines per added worker
//!   (plus the worker's own), one of which waits for it and one kills it;
//!   here a worker that supports completion notification costs one
//!   callback and no thread, and kills and waits run on a few threads
//!   shared by all (`add::added_workers_cost_no_thread`). As in
//!   Go, every bound worker's `wait` has returned before the catacomb is
//!   dead (`joined::the_catacomb_is_not_dead_before_its_workers_have_been_waited_for`,
//!   `joined::no_bound_workers_thread_outlives_wait`).
//! - **Adding to a dying catacomb does not block.** Go stops the worker and
//!   waits for it inside `Add`; here the worker is killed and `add` returns
//!   [`AddError::Dying`](crate::AddError::Dying) at once
//!   (`add::add_to_a_dying_catacomb_kills_the_worker_and_returns_at_once`).
//! - **Adding a catacomb to itself is refused** with [`AddError::ItSelf`](crate::AddError::ItSelf)
//!   instead of deadlocking its shutdown
//!   (`add::adding_a_catacomb_to_itself_is_refused`). A *cycle* through
//!   two catacombs (each added to the other) is not detected and still
//!   never dies, as in Go.
//! - **Waiting on the catacomb's own threads is refused** with
//!   [`WaitError::OwnThread`](crate::WaitError::OwnThread); Go deadlocks (see above).
//! - **Panics in bound workers' code are the catacomb's error.** Go
//!   recovers panics in the work only; one in a worker's `Kill`, `Wait` or
//!   elsewhere crashes the process (see above).
//! - **Typed errors.** Validation ([`InvokeError`](crate::InvokeError)), `add`
//!   ([`AddError`](crate::AddError)), `wait` ([`WaitError`](crate::WaitError)) and the dying algebra
//!   ([`Dying`](crate::Dying), [`ForeignDying`](crate::ForeignDying), [`StillAlive`](crate::StillAlive)) are types to match on,
//!   not strings; each converts into `worker_core::Error` with `?`
//!   (`error::tests::each_operations_error_converts_into_the_core_error`). A
//!   foreign dying error is recognised through any wrapping, and the
//!   [`ForeignDying`](crate::ForeignDying) it becomes hides it, so it cannot be swallowed
//!   further up. There is no `tomb.ErrDying` sentinel to pass to `kill`.
//! - **The catacomb is a `Worker`** (Go's is not; owners wrap it), and a
//!   [`Reporter`](worker_core::Reporter) ([`Catacomb::report`](crate::Catacomb::report) is typed:
//!   [`CatacombReport`](crate::CatacombReport)). So `kill()` is the worker's kill, and Go's
//!   `Kill(err)` is [`Catacomb::kill_with`](crate::Catacomb::kill_with)
//!   (`worker::kill_is_a_kill_without_reason`).
//! - **`err()` returns `Option<Error>`** rather than a "still alive"
//!   sentinel; [`Catacomb::state`](crate::Catacomb::state) says whether it is alive.
//! - **No `Context(parent)`**: Rust has no context type; [`Catacomb::dying`](crate::Catacomb::dying)
//!   is the cancellation signal.
//! - **A shutdown can have a deadline**:
//!   [`Catacomb::stop_within`](crate::Catacomb::stop_within) returns at
//!   the deadline (on the plan's clock) saying whether the work has
//!   returned and how many bound workers still run; Go's owner can only
//!   wait (`stop_within::past_the_deadline_it_names_the_work_and_counts_the_workers`).
//! - **A refused plan's workers are all killed first, then waited for**,
//!   rather than stopped one after the other.
//! - Unchanged: the first real error wins by arrival order, with no ranking
//!   of errors (Go has a TODO about ranking; no ranking rule is specified,
//!   so we keep Go's behaviour).

//! Compile checks for `#[must_use]`: a thread-backed test worker that is
//! dropped keeps its thread until someone kills it, which nobody can then.
//!
//! The first block uses the worker and compiles; the second drops it and
//! must not.

/// Used, it compiles:
///
/// ```
/// #![deny(unused_must_use)]
/// let w = worker_testing::spawn_error_worker("must-use-kept", None);
/// worker_testing::clean_kill(&w);
/// ```
///
/// Dropped, it does not:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_testing::spawn_error_worker("must-use-dropped", None);
/// ```
struct MustUse;

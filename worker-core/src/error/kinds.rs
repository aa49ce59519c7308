//! The errors every crate of the family shares: what a caught panic
//! becomes, and the answers a supervisor gives about ids and about itself.

use std::any::Any;

use crate::Error;

/// User code panicked; the panic was caught and turned into this error.
///
/// Supervisors treat it like any other error from the same place: a panic in
/// a worker body is that worker's error, a panic in a start function is a
/// failed start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} panicked: {message}")]
pub struct Panicked {
    /// What panicked, e.g. `"worker body"` or `"start function of \"db\""`.
    pub what: String,
    /// The panic message, when the payload was a string; otherwise a
    /// placeholder saying it was not.
    pub message: String,
}

impl Panicked {
    /// Builds the error from what panicked and the payload `catch_unwind`
    /// returned.
    pub fn from_payload(what: impl Into<String>, payload: &(dyn Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "(a panic payload that is not a string)".to_owned()
        };
        Panicked {
            what: what.into(),
            message,
        }
    }
}

/// Runs `f`, turning a panic into a [`Panicked`] error naming what
/// panicked (`what` is only called when there was a panic, so it costs
/// nothing on the normal path).
///
/// This is how every supervisor calls user code: a panic never unwinds into
/// the library.
///
/// ```
/// use worker_core::{catch_panic, Panicked};
///
/// let result: Result<(), _> = catch_panic(|| "the example".into(), || panic!("boom"));
/// let err = result.unwrap_err();
/// assert_eq!(err.to_string(), "the example panicked: boom");
/// assert!(err.is::<Panicked>());
/// ```
pub fn catch_panic<T>(
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(Error::new(Panicked::from_payload(what(), &*payload))),
    }
}

/// The runner is no longer running: it has stopped, or is stopping and can
/// take no more requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("worker runner is not running")]
pub struct Dead;

/// The caller's abort signal fired while it was waiting for a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("aborted waiting for worker")]
pub struct Aborted;

/// A worker nobody can learn the end of: it offers neither
/// [`Worker::on_done`](crate::Worker::on_done) nor
/// [`Worker::dead_signal`](crate::Worker::dead_signal), and no shared
/// handle ([`Worker::to_shared`](crate::Worker::to_shared)) for a thread to
/// wait on it with. [`watch`](crate::watch) and [`dead`](crate::dead) kill
/// such a worker and report this as its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot watch a worker that offers neither on_done nor dead_signal and is not shared (put it in an Arc)"
)]
pub struct Unwatchable;

/// No worker is known by this id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker {id:?} not found")]
pub struct NotFound {
    /// The id that was asked for.
    pub id: String,
}

impl NotFound {
    /// Makes the error for `id`.
    pub fn new(id: impl Into<String>) -> Self {
        NotFound { id: id.into() }
    }
}

/// A worker with this id is already known (running, starting, waiting to
/// restart or still stopping).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker {id:?} already exists")]
pub struct AlreadyExists {
    /// The id that was asked for.
    pub id: String,
}

impl AlreadyExists {
    /// Makes the error for `id`.
    pub fn new(id: impl Into<String>) -> Self {
        AlreadyExists { id: id.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_error_texts_match_go() {
        assert_eq!(Dead.to_string(), "worker runner is not running");
        assert_eq!(Aborted.to_string(), "aborted waiting for worker");
        assert_eq!(NotFound::new("a").to_string(), "worker \"a\" not found");
        assert_eq!(
            AlreadyExists::new("a").to_string(),
            "worker \"a\" already exists"
        );
    }

    #[test]
    fn panics_become_errors() {
        let err = catch_panic(
            || "thing".to_owned(),
            || -> Result<(), Error> { panic!("at {}", 3) },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "thing panicked: at 3");
        let p = err.downcast_ref::<Panicked>().unwrap();
        assert_eq!(p.what, "thing");
        let err = catch_panic(
            || "x".to_owned(),
            || -> Result<(), Error> { std::panic::panic_any(42_u8) },
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a string"));
    }
}

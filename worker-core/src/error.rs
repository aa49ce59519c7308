//! The one error type every worker, supervisor and callback hands around.
//!
//! Workers end with errors that are created in one thread and read in many:
//! every caller of `wait()` gets the same value, a supervisor keeps the last
//! error of each worker in its report, and a catacomb passes one worker's
//! failure to its owner. [`Error`] is therefore a cheap, clonable handle (an
//! `Arc`) around any `std::error::Error`, that keeps the source chain so the
//! original cause can still be matched with [`Error::is`] and
//! [`Error::downcast_ref`] after any number of [`Error::context`] layers.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// A clonable, shareable error with a source chain.
///
/// Any `std::error::Error + Send + Sync + 'static` converts into it with `?`
/// or [`Error::new`]; plain messages are made with [`Error::msg`]. Cloning
/// shares the same underlying error, which [`Error::same`] can tell.
///
/// `Display` prints the whole chain joined by `": "`, the way log lines read
/// best (`starting "db": connection refused`). `Debug` prints the same text,
/// so `unwrap()` failures stay readable.
///
/// ```
/// use worker_core::{Error, NotFound};
///
/// let err = Error::new(NotFound::new("db")).context("looking up the database worker");
/// assert_eq!(err.to_string(), "looking up the database worker: worker \"db\" not found");
/// assert!(err.is::<NotFound>());
/// assert_eq!(err.downcast_ref::<NotFound>().unwrap().id, "db");
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Arc<dyn StdError + Send + Sync + 'static>,
}

impl Error {
    /// Wraps any standard error.
    pub fn new<E>(error: E) -> Self
    where
        E: StdError + Send + Sync + 'static,
    {
        Error {
            inner: Arc::new(error),
        }
    }

    /// Makes an error that is only a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::new(Message(message.to_string()))
    }

    /// Adds a layer of context in front of this error; the original stays
    /// reachable through [`Error::is`], [`Error::downcast_ref`] and
    /// [`Error::chain`].
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error::new(Context {
            context: context.to_string(),
            source: self,
        })
    }

    /// Whether this error, or any error in its source chain, is an `E`.
    pub fn is<E>(&self) -> bool
    where
        E: StdError + 'static,
    {
        self.downcast_ref::<E>().is_some()
    }

    /// The first error of type `E` in the chain, starting with this one.
    pub fn downcast_ref<E>(&self) -> Option<&E>
    where
        E: StdError + 'static,
    {
        self.chain().find_map(|e| e.downcast_ref::<E>())
    }

    /// Iterates over this error and then its sources, outermost first.
    /// Context layers added by [`Error::context`] appear as their own links.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            next: Some(self.as_std()),
        }
    }

    /// Whether both handles share the very same error value (one is a clone
    /// of the other).
    pub fn same(&self, other: &Error) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.inner), Arc::as_ptr(&other.inner))
    }

    /// The wrapped value as a standard error, for APIs that want one.
    pub fn as_std(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }
}

impl<E> From<E> for Error
where
    E: StdError + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Error::new(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for link in self.chain() {
            // A context layer prints its own text only; its source is the
            // next link, so nothing is printed twice.
            if !first {
                f.write_str(": ")?;
            }
            first = false;
            match link.downcast_ref::<Context>() {
                Some(c) => f.write_str(&c.context)?,
                None => write!(f, "{link}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?})", self.to_string())
    }
}

impl AsRef<dyn StdError + Send + Sync + 'static> for Error {
    fn as_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.as_std()
    }
}

/// The iterator returned by [`Error::chain`].
#[derive(Debug, Clone)]
pub struct Chain<'a> {
    next: Option<&'a (dyn StdError + 'static)>,
}

impl<'a> Iterator for Chain<'a> {
    type Item = &'a (dyn StdError + 'static);

    fn next(&mut self) -> Option<Self::Item> {
        let current = self.next?;
        self.next = current.source();
        Some(current)
    }
}

/// A plain message error, made by [`Error::msg`].
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

/// A context layer, made by [`Error::context`]. Its `Display` shows the
/// whole chain so that it reads well even when printed through `as_std()`.
#[derive(Debug)]
struct Context {
    context: String,
    source: Error,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.context)
    }
}

impl StdError for Context {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.source.as_std())
    }
}

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
    fn display_joins_the_chain_once() {
        let err = Error::msg("refused")
            .context("dialing")
            .context("starting \"db\"");
        assert_eq!(err.to_string(), "starting \"db\": dialing: refused");
        assert_eq!(
            format!("{err:?}"),
            "Error(\"starting \\\"db\\\": dialing: refused\")"
        );
        assert_eq!(err.chain().count(), 3);
    }

    #[test]
    fn typed_errors_survive_context() {
        let err = Error::from(AlreadyExists::new("x")).context("outer");
        assert!(err.is::<AlreadyExists>());
        assert!(!err.is::<NotFound>());
        assert_eq!(err.downcast_ref::<AlreadyExists>().unwrap().id, "x");
    }

    #[test]
    fn clones_are_the_same_error() {
        let a = Error::msg("a");
        let b = a.clone();
        let c = Error::msg("a");
        assert!(a.same(&b));
        assert!(!a.same(&c));
    }

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

//! The one error type every worker, supervisor and callback hands around.
//!
//! Workers end with errors that are created in one thread and read in many:
//! every caller of `wait()` gets the same value, a supervisor keeps the last
//! error of each worker in its report, and a catacomb passes one worker's
//! failure to its owner. [`Error`] is therefore a cheap, clonable handle (an
//! `Arc`) around any `std::error::Error`, that keeps the source chain so the
//! original cause can still be matched with [`Error::is`] and
//! [`Error::downcast_ref`] after any number of [`Error::context`] layers.
//!
//! # Living with other error types
//!
//! A service mixes this library with others, so [`Error`] converts both
//! ways, the way `anyhow` does (see [`Error`] for the table):
//!
//! - into `Box<dyn std::error::Error + Send + Sync>` (and the `Send` and
//!   plain variants) with `?` or `into()`; back with [`Error::from_boxed`];
//! - with the `anyhow` feature, into and from `anyhow::Error`, both with
//!   `?`.
//!
//! `Error` deliberately does not implement `std::error::Error` itself: if it
//! did, the blanket `impl<E: std::error::Error> From<E> for Error` that makes
//! `?` work on every other error would overlap with `From<T> for T`. This is
//! the same trade-off `anyhow::Error` makes, for the same reason; use
//! [`Error::as_std`] (or the conversions) where a `std::error::Error` is
//! wanted.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

mod convert;
mod kinds;

pub use kinds::{Aborted, AlreadyExists, Dead, NotFound, Panicked, Unwatchable, catch_panic};

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
///
/// # Converting to and from other error types
///
/// | from | to | how |
/// |---|---|---|
/// | any `E: std::error::Error + Send + Sync + 'static` | `Error` | `?`, `Error::from`, [`Error::new`] |
/// | `Error` | `Box<dyn std::error::Error + Send + Sync>` (also `+ Send`, or neither) | `?`, `into()` |
/// | `Box<dyn std::error::Error + Send + Sync>` | `Error` | [`Error::from_boxed`] |
/// | `Error` | `anyhow::Error` (feature `anyhow`) | `?`, `into()` |
/// | `anyhow::Error` (feature `anyhow`) | `Error` | `?`, `Error::from`, `Error::from_anyhow` |
///
/// Every conversion keeps the source chain, and the original error stays
/// reachable: always through the chain ([`Error::downcast_ref`] here, a
/// walk of `source()` on a boxed error), and directly (`downcast_ref` on
/// the box or on the `anyhow::Error`) whenever this handle was the only
/// one, so that the original could be moved out. An error some other clone
/// still shares (one that `wait` returned, say: the worker keeps it) cannot
/// be moved; the box then holds a wrapper that displays like the original
/// and has it as its `source()` (a reporter that prints every link shows
/// that text twice), and converting it back returns the very same error
/// ([`Error::same`]). Layers of [`Error::context`] and [`Error::msg`] texts
/// are copied instead, so they never need the wrapper.
///
/// A `Box<dyn std::error::Error>` cannot convert back with `?`: the
/// compiler rejects `impl From<Box<dyn Error + Send + Sync>> for Error`
/// next to the blanket one, because the standard library may one day make
/// that box an error itself. `anyhow` has the same gap and the same
/// answer, a named constructor:
///
/// ```
/// use std::error::Error as StdError;
/// use worker_core::{Error, NotFound};
///
/// fn legacy() -> Result<(), Box<dyn StdError + Send + Sync>> {
///     Err(Box::new(NotFound::new("db")))
/// }
///
/// fn ours() -> Result<(), Error> {
///     legacy().map_err(Error::from_boxed)?;
///     Ok(())
/// }
///
/// fn theirs() -> Result<(), Box<dyn StdError + Send + Sync>> {
///     ours()?; // into a box: plain `?`
///     Ok(())
/// }
///
/// let boxed = theirs().unwrap_err();
/// assert_eq!(boxed.downcast_ref::<NotFound>().unwrap().id, "db");
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Arc<dyn Link>,
}

/// What an [`Error`] holds: one error value, which it can lend as a
/// standard error and, when no other handle shares it, give up whole.
///
/// Every `std::error::Error` is one (the blanket impl); a boxed error and
/// an `anyhow::Error`, which are not standard errors themselves, get a
/// wrapper each (in `convert`), whose `as_std` lends the error inside, so
/// the chain starts at the original error whatever it came in.
trait Link: Send + Sync + 'static {
    /// The outermost error of the chain.
    fn as_std(&self) -> &(dyn StdError + Send + Sync + 'static);

    /// The error itself, boxed, if `self` is its only handle; otherwise
    /// the handle back.
    fn into_boxed(self: Arc<Self>) -> Result<Box<dyn StdError + Send + Sync>, Arc<dyn Link>>;

    /// The error itself as an `anyhow::Error`, if `self` is its only handle
    /// and that keeps it reachable with anyhow's `downcast_ref`; otherwise
    /// the handle back.
    #[cfg(feature = "anyhow")]
    fn into_anyhow(self: Arc<Self>) -> Result<anyhow::Error, Arc<dyn Link>>;
}

impl<E> Link for E
where
    E: StdError + Send + Sync + 'static,
{
    fn as_std(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self
    }

    fn into_boxed(self: Arc<Self>) -> Result<Box<dyn StdError + Send + Sync>, Arc<dyn Link>> {
        match Arc::try_unwrap(self) {
            Ok(error) => Ok(Box::new(error)),
            Err(shared) => Err(shared),
        }
    }

    #[cfg(feature = "anyhow")]
    fn into_anyhow(self: Arc<Self>) -> Result<anyhow::Error, Arc<dyn Link>> {
        match Arc::try_unwrap(self) {
            Ok(error) => Ok(anyhow::Error::new(error)),
            Err(shared) => Err(shared),
        }
    }
}

impl Error {
    /// Wraps any standard error.
    #[must_use = "an error that is made and dropped reports nothing"]
    pub fn new<E>(error: E) -> Self
    where
        E: StdError + Send + Sync + 'static,
    {
        Error {
            inner: Arc::new(error),
        }
    }

    /// Makes an error that is only a message.
    #[must_use = "an error that is made and dropped reports nothing"]
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::new(Message(message.to_string()))
    }

    /// Adds a layer of context in front of this error; the original stays
    /// reachable through [`Error::is`], [`Error::downcast_ref`] and
    /// [`Error::chain`].
    #[must_use = "context returns a new error and leaves this one as it was"]
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

    /// The outermost error of the chain as a standard error, for APIs that
    /// want one to borrow. (To hand one over, convert: see [`Error`].)
    pub fn as_std(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.inner.as_std()
    }

    /// The text of the outermost link only: a context layer's own words,
    /// or the error's `Display`.
    fn fmt_outermost(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_link(self.as_std(), f)
    }
}

/// Prints one link of a chain: a context layer prints only its own text,
/// since its source is the next link.
fn fmt_link(link: &(dyn StdError + 'static), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match link.downcast_ref::<Context>() {
        Some(c) => f.write_str(&c.context),
        None => write!(f, "{link}"),
    }
}

/// `?` on any standard error. (With the `anyhow` feature this impl is
/// replaced by one that also takes `anyhow::Error`; see `convert`.)
#[cfg(not(feature = "anyhow"))]
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
        let mut links = self.chain().peekable();
        let mut first = true;
        while let Some(link) = links.next() {
            // A link that says exactly what its source says is a typed
            // wrapper around it (an operation's error enum whose variant
            // holds a shared error, kept as the source so that `is` finds
            // it): print the words once.
            if let Some(next) = links.peek() {
                if link.downcast_ref::<Context>().is_none() && link.to_string() == next.to_string()
                {
                    continue;
                }
            }
            if !first {
                f.write_str(": ")?;
            }
            first = false;
            fmt_link(link, f)?;
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
#[derive(Debug, Clone)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

/// A context layer, made by [`Error::context`]. Its `Display` is its own
/// text only, and its `source()` the error it was put in front of, as the
/// standard library's convention asks: a reporter that walks the chain
/// prints each text once.
#[derive(Debug, Clone)]
struct Context {
    context: String,
    source: Error,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

impl StdError for Context {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.source.as_std())
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
    fn a_wrapper_that_says_what_its_source_says_is_printed_once() {
        /// An operation's error whose variant wraps a shared error.
        #[derive(Debug, thiserror::Error)]
        enum LookupError {
            #[error("{0}")]
            NotFound(#[source] NotFound),
        }
        let err = Error::new(LookupError::NotFound(NotFound::new("db")));
        assert_eq!(err.to_string(), "worker \"db\" not found");
        assert!(err.is::<NotFound>(), "the shared error stays reachable");
        assert!(err.is::<LookupError>());
        let err = err.context("looking up");
        assert_eq!(err.to_string(), "looking up: worker \"db\" not found");
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
}

//! `anyhow::Error` both ways, with `?` (feature `anyhow`).
//!
//! `impl From<anyhow::Error> for Error` cannot sit next to the blanket
//! `impl<E: std::error::Error> From<E> for Error`: the compiler must allow
//! for anyhow one day making its error a standard error. So, as anyhow's
//! own documentation of `Error::from_boxed` recommends for a library error
//! type, the blanket impl changes under this feature to one bound by
//! "converts into `anyhow::Error`" and "anyhow's `Context` applies", which
//! holds for every standard error and for `anyhow::Error` alike, and
//! excludes [`Error`] itself. The feature only widens what converts, so it
//! stays additive.

use std::error::Error as StdError;
use std::sync::Arc;

use super::{BoxError, Shared};
use crate::error::{Context, Error, Link, Message};

/// An `anyhow::Error` kept in an [`Error`]: it lends the error inside
/// (anyhow's `Deref` gives the original error, or anyhow's context layer
/// in front of it), so the chain is anyhow's chain.
struct Anyhow(anyhow::Error);

impl Link for Anyhow {
    fn as_std(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.0
    }

    fn into_boxed(self: Arc<Self>) -> Result<BoxError, Arc<dyn Link>> {
        match Arc::try_unwrap(self) {
            // The reallocating conversion boxes the original error itself,
            // so `downcast_ref` on the box finds it.
            Ok(Anyhow(error)) => Ok(error.reallocate_into_boxed_dyn_error_without_backtrace()),
            Err(shared) => Err(shared),
        }
    }

    fn into_anyhow(self: Arc<Self>) -> Result<anyhow::Error, Arc<dyn Link>> {
        match Arc::try_unwrap(self) {
            Ok(Anyhow(error)) => Ok(error),
            Err(shared) => Err(shared),
        }
    }
}

/// `?` on any standard error, and on `anyhow::Error`.
///
/// A standard error goes through `anyhow::Error` on its way in (so, as
/// with anyhow, a backtrace is captured when `RUST_BACKTRACE` or
/// `RUST_LIB_BACKTRACE` asks for one); [`Error::new`] wraps one directly.
impl<E> From<E> for Error
where
    E: Into<anyhow::Error>,
    Result<(), E>: anyhow::Context<(), E>,
{
    fn from(error: E) -> Self {
        Error::from_anyhow(error.into())
    }
}

impl From<Error> for anyhow::Error {
    /// The original error itself when this was its only handle, so that
    /// anyhow's `downcast_ref` finds it; context layers become anyhow's
    /// own, through which anyhow's `downcast_ref` also sees. An error that
    /// other handles still share is wrapped: it is then found by walking
    /// `chain()`, one step down.
    fn from(error: Error) -> Self {
        let error = match error.into_context() {
            Ok(Context { context, source }) => {
                return anyhow::Error::from(source).context(context);
            }
            Err(error) => error,
        };
        if let Some(message) = error.as_std().downcast_ref::<Message>() {
            return anyhow::Error::msg(message.0.clone());
        }
        match error.inner.into_anyhow() {
            Ok(error) => error,
            Err(inner) => anyhow::Error::new(Shared(Error { inner })),
        }
    }
}

impl Error {
    /// Makes an error from an `anyhow::Error`, keeping its chain: the
    /// original error (or anyhow's context layer in front of it) is the
    /// first link. An `anyhow::Error` made from an `Error` gives that very
    /// error back. `?` and `Error::from` do the same.
    ///
    /// ```
    /// use worker_core::{Error, NotFound};
    ///
    /// fn lookup() -> anyhow::Result<()> {
    ///     Err(anyhow::Error::new(NotFound::new("db")).context("looking up"))
    /// }
    ///
    /// fn start() -> Result<(), Error> {
    ///     lookup()?;
    ///     Ok(())
    /// }
    ///
    /// let err = start().unwrap_err();
    /// assert_eq!(err.to_string(), "looking up: worker \"db\" not found");
    /// assert!(err.is::<NotFound>());
    /// ```
    #[must_use = "an error that is made and dropped reports nothing"]
    pub fn from_anyhow(error: anyhow::Error) -> Self {
        match error.downcast::<Shared>() {
            Ok(shared) => shared.0,
            Err(error) => Error {
                inner: Arc::new(Anyhow(error)),
            },
        }
    }
}

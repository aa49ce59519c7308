//! Conversions between [`Error`] and boxed standard errors (and, with the
//! `anyhow` feature, `anyhow::Error`, in `with_anyhow`).
//!
//! The rule throughout: the original error is moved out whenever this
//! handle is its only one, so that the other side can `downcast_ref` to it
//! directly; when other handles still share it, it stays in place and the
//! other side gets a wrapper ([`Shared`]) that has it as its `source()`.
//! Our own layers ([`Context`], [`Message`]) are cheap to copy, so they are
//! copied rather than wrapped. Converting a wrapper back gives the very
//! same [`Error`].

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use super::{Context, Error, Link, Message};

#[cfg(feature = "anyhow")]
mod with_anyhow;

/// The boxed standard error other libraries pass around.
type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A boxed error kept in an [`Error`]: it lends the error inside, so the
/// chain starts at the original error, not at the box.
struct Boxed(BoxError);

impl Link for Boxed {
    fn as_std(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.0
    }

    fn into_boxed(self: Arc<Self>) -> Result<BoxError, Arc<dyn Link>> {
        match Arc::try_unwrap(self) {
            Ok(Boxed(boxed)) => Ok(boxed),
            Err(shared) => Err(shared),
        }
    }

    #[cfg(feature = "anyhow")]
    fn into_anyhow(self: Arc<Self>) -> Result<anyhow::Error, Arc<dyn Link>> {
        // `anyhow::Error::from_boxed` would hide the error inside from
        // anyhow's `downcast_ref` and from the chain alike; the caller
        // wraps the handle instead, which keeps it in the chain.
        Err(self)
    }
}

/// An [`Error`] handed over as a standard error while other handles still
/// share it: it displays like the error's outermost link and has that link
/// as its `source()`, so the original is one step down the chain.
struct Shared(Error);

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_outermost(f)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl StdError for Shared {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.0.as_std())
    }
}

impl Error {
    /// Makes an error from a boxed standard error, which is what other
    /// libraries hand out; the error inside stays the first link of the
    /// chain, so [`Error::downcast_ref`] finds it. A box that wraps a
    /// shared `Error` (see [`Error`]) gives that very error back.
    ///
    /// This is the way back from a box: `?` cannot do it (see [`Error`]),
    /// so write `.map_err(Error::from_boxed)?`.
    ///
    /// ```
    /// use std::error::Error as StdError;
    /// use worker_core::{Error, NotFound};
    ///
    /// let boxed: Box<dyn StdError + Send + Sync> = Box::new(NotFound::new("db"));
    /// let err = Error::from_boxed(boxed).context("looking up");
    /// assert_eq!(err.to_string(), "looking up: worker \"db\" not found");
    /// assert!(err.is::<NotFound>());
    ///
    /// let kept = Error::new(NotFound::new("db")); // still shared below
    /// let boxed: Box<dyn StdError + Send + Sync> = kept.clone().into();
    /// assert!(Error::from_boxed(boxed).same(&kept));
    /// ```
    #[must_use = "an error that is made and dropped reports nothing"]
    pub fn from_boxed(error: BoxError) -> Self {
        match error.downcast::<Shared>() {
            Ok(shared) => shared.0,
            Err(error) => Error {
                inner: Arc::new(Boxed(error)),
            },
        }
    }

    /// The error as a box: the original error itself when this was its
    /// only handle, else a copy of our own outermost layer, else a
    /// [`Shared`] wrapper.
    fn into_boxed(self) -> BoxError {
        let error = match self.inner.into_boxed() {
            Ok(boxed) => return boxed,
            Err(inner) => Error { inner },
        };
        let outermost = error.as_std();
        if let Some(context) = outermost.downcast_ref::<Context>() {
            return Box::new(context.clone());
        }
        if let Some(message) = outermost.downcast_ref::<Message>() {
            return Box::new(message.clone());
        }
        Box::new(Shared(error))
    }

    /// This error's outermost link as our own context layer: moved out
    /// when this is its only handle (so what it wraps stays unshared),
    /// copied otherwise. `Err(self)` when the outermost link is something
    /// else.
    #[cfg_attr(not(feature = "anyhow"), allow(dead_code))]
    fn into_context(self) -> Result<Context, Error> {
        if !self.as_std().is::<Context>() {
            return Err(self);
        }
        match self.inner.into_boxed() {
            Ok(boxed) => boxed
                .downcast::<Context>()
                .map(|context| *context)
                .map_err(Error::from_boxed),
            Err(inner) => match inner.as_std().downcast_ref::<Context>() {
                Some(context) => Ok(context.clone()),
                None => Err(Error { inner }),
            },
        }
    }
}

impl From<Error> for Box<dyn StdError + Send + Sync + 'static> {
    /// See [`Error`] for what the box holds.
    fn from(error: Error) -> Self {
        error.into_boxed()
    }
}

impl From<Error> for Box<dyn StdError + Send + 'static> {
    /// See [`Error`] for what the box holds.
    fn from(error: Error) -> Self {
        error.into_boxed()
    }
}

impl From<Error> for Box<dyn StdError + 'static> {
    /// See [`Error`] for what the box holds.
    fn from(error: Error) -> Self {
        error.into_boxed()
    }
}

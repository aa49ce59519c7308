//! `Context`: what a start function sees of its inputs.

use std::any::{Any, type_name};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use worker_core::{AbortSignal, Error};

use crate::{GetError, Outputs};

/// What one declared input looked like when the start was dispatched.
#[derive(Clone)]
pub(crate) enum InputState {
    /// Running, offering these outputs.
    Running(Arc<Outputs>),
    /// Installed or not, but with no running worker.
    NotRunning,
    /// Only in test contexts: the input fails with this error.
    Failed(Error),
}

/// The view a start function has of its inputs, taken when the engine
/// dispatched the start (Go's "snapshot").
///
/// [`get`](Context::get) reads an input's output by name and type. It only
/// works while the start function runs: the engine expires the context as
/// soon as the function returns, and a clone kept past that (say, moved
/// into the worker's thread) gets [`GetError::Expired`]. Outputs a worker
/// needs for its whole life must be read in the start function and moved
/// into the worker.
///
/// [`abort`](Context::abort) disconnects when the engine no longer wants
/// this start (an input changed, or the engine is stopping); a start
/// function that may block should watch it.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    inputs: Vec<(Arc<str>, InputState)>,
    abort: AbortSignal,
    expired: AtomicBool,
}

impl Context {
    pub(crate) fn new(
        name: Arc<str>,
        inputs: Vec<(Arc<str>, InputState)>,
        abort: AbortSignal,
    ) -> Self {
        Context {
            inner: Arc::new(Inner {
                name,
                inputs,
                abort,
                expired: AtomicBool::new(false),
            }),
        }
    }

    /// A context for tests of start functions, built by hand; see
    /// [`ContextBuilder`] (and the stubs in `worker-testing`).
    pub fn builder(name: impl AsRef<str>) -> ContextBuilder {
        ContextBuilder {
            name: Arc::from(name.as_ref()),
            inputs: Vec::new(),
            abort: None,
        }
    }

    /// The name of the manifold being started.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// A clone of the output of type `T` offered by the declared input
    /// `input`.
    ///
    /// Errors, in the order they are checked: [`GetError::Expired`] after
    /// the start function returned; [`GetError::NotDeclared`] for a name
    /// that is not a declared input; [`GetError::NotRunning`] when the
    /// input has no running worker; [`GetError::NotExposed`] when it
    /// offers nothing; [`GetError::WrongType`] when it offers other types.
    /// The first three of the last four are [`Missing`](crate::Missing).
    pub fn get<T: Any + Clone>(&self, input: &str) -> Result<T, GetError> {
        let outputs = self.running(input)?;
        if outputs.is_empty() {
            return Err(GetError::not_exposed(input));
        }
        outputs.get::<T>().ok_or_else(|| GetError::WrongType {
            name: input.to_owned(),
            wanted: type_name::<T>(),
            offered: outputs.type_names(),
        })
    }

    /// Checks that the declared input `input` is running, without reading
    /// any output (Go's `Get(name, nil)`). Same errors as [`get`](Self::get)
    /// up to [`GetError::NotRunning`].
    pub fn require(&self, input: &str) -> Result<(), GetError> {
        self.running(input).map(|_| ())
    }

    fn running(&self, input: &str) -> Result<&Outputs, GetError> {
        if self.inner.expired.load(Ordering::Acquire) {
            return Err(GetError::Expired);
        }
        let state = self
            .inner
            .inputs
            .iter()
            .find(|(name, _)| &**name == input)
            .map(|(_, state)| state)
            .ok_or_else(|| GetError::not_declared(input))?;
        match state {
            InputState::Running(outputs) => Ok(outputs),
            InputState::NotRunning => Err(GetError::not_running(input)),
            InputState::Failed(error) => Err(GetError::Failed {
                name: input.to_owned(),
                source: error.clone(),
            }),
        }
    }

    /// An [`AbortSignal`] that fires when the engine no longer wants this
    /// start: an input changed, or the engine is stopping. A start
    /// function that blocks selects on its
    /// [`receiver`](AbortSignal::receiver), awaits
    /// [`until_fired`](AbortSignal::until_fired), or hands it on to the
    /// calls it makes that take one.
    pub fn abort(&self) -> &AbortSignal {
        &self.inner.abort
    }

    /// Whether [`abort`](Self::abort) has fired.
    pub fn is_aborted(&self) -> bool {
        self.inner.abort.is_fired()
    }

    /// Ends the context's validity: every later `get` fails with
    /// [`GetError::Expired`]. The engine calls it when the start function
    /// returns; tests may call it to check what a worker does with a
    /// context kept too long.
    pub fn expire(&self) {
        self.inner.expired.store(true, Ordering::Release);
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inputs: Vec<&str> = self.inner.inputs.iter().map(|(n, _)| &**n).collect();
        f.debug_struct("Context")
            .field("name", &self.inner.name)
            .field("inputs", &inputs)
            .field("expired", &self.inner.expired.load(Ordering::Relaxed))
            .finish()
    }
}

/// Builds a [`Context`] by hand, to unit-test a start function without an
/// engine. Every input added is a declared input.
///
/// ```
/// use worker_dependency::{Context, GetError, Outputs};
///
/// let ctx = Context::builder("server")
///     .running("config", Outputs::new().with(8080_u16))
///     .not_running("db")
///     .build();
/// assert_eq!(ctx.get::<u16>("config").unwrap(), 8080);
/// assert!(matches!(ctx.get::<u16>("db"), Err(GetError::NotRunning { .. })));
/// ```
#[derive(Debug)]
pub struct ContextBuilder {
    name: Arc<str>,
    inputs: Vec<(Arc<str>, InputState)>,
    abort: Option<AbortSignal>,
}

impl ContextBuilder {
    /// Declares `input` as running, offering `outputs`.
    pub fn running(mut self, input: impl AsRef<str>, outputs: Outputs) -> Self {
        self.push(input.as_ref(), InputState::Running(Arc::new(outputs)));
        self
    }

    /// Declares `input` as not running.
    pub fn not_running(mut self, input: impl AsRef<str>) -> Self {
        self.push(input.as_ref(), InputState::NotRunning);
        self
    }

    /// Declares `input` as failing with `error` ([`GetError::Failed`]).
    pub fn failing(mut self, input: impl AsRef<str>, error: Error) -> Self {
        self.push(input.as_ref(), InputState::Failed(error));
        self
    }

    /// Uses `abort` as the context's abort signal (by default it never
    /// fires).
    pub fn abort(mut self, abort: AbortSignal) -> Self {
        self.abort = Some(abort);
        self
    }

    /// The context.
    pub fn build(self) -> Context {
        let abort = self.abort.unwrap_or_else(AbortSignal::never);
        Context::new(self.name, self.inputs, abort)
    }

    fn push(&mut self, input: &str, state: InputState) {
        match self.inputs.iter_mut().find(|(n, _)| &**n == input) {
            Some(slot) => slot.1 = state,
            None => self.inputs.push((Arc::from(input), state)),
        }
    }
}

impl fmt::Debug for InputState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputState::Running(o) => write!(f, "Running({o:?})"),
            InputState::NotRunning => f.write_str("NotRunning"),
            InputState::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Missing;

    fn ctx() -> Context {
        Context::builder("m")
            .running("a", Outputs::new().with(1_u8))
            .running("empty", Outputs::new())
            .not_running("b")
            .failing("c", Error::msg("boom"))
            .build()
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let ctx = ctx();
        assert_eq!(ctx.get::<u8>("a").unwrap(), 1);
        assert!(matches!(
            ctx.get::<u8>("zz"),
            Err(GetError::NotDeclared { .. })
        ));
        assert!(matches!(
            ctx.get::<u8>("b"),
            Err(GetError::NotRunning { .. })
        ));
        assert!(matches!(
            ctx.get::<u8>("empty"),
            Err(GetError::NotExposed { .. })
        ));
        assert!(matches!(
            ctx.get::<u16>("a"),
            Err(GetError::WrongType { .. })
        ));
        let failed = Error::from(ctx.get::<u8>("c").unwrap_err());
        assert_eq!(failed.to_string(), "\"c\" failed: boom");
        assert!(ctx.require("a").is_ok());
        assert!(ctx.require("empty").is_ok());
        assert!(Error::from(ctx.require("b").unwrap_err()).is::<Missing>());
    }

    #[test]
    fn an_expired_context_refuses_everything() {
        let ctx = ctx();
        let kept = ctx.clone();
        ctx.expire();
        assert!(matches!(kept.get::<u8>("a"), Err(GetError::Expired)));
        assert!(matches!(kept.require("zz"), Err(GetError::Expired)));
    }

    #[test]
    fn abort_fires_when_its_trigger_fires_or_is_dropped() {
        let (trigger, abort) = AbortSignal::pair();
        let ctx = Context::builder("m").abort(abort).build();
        assert!(!ctx.is_aborted());
        drop(trigger);
        assert!(ctx.is_aborted());
        assert!(!self::ctx().is_aborted());
    }
}

//! Doubles for testing the start functions of dependency-engine manifolds
//! without an engine (Go's `dependency/testing`).
//!
//! A start function reads its inputs from a
//! [`Context`]. [`StubResources`] describes
//! what each input should look like (running with some outputs, failing,
//! not running) and builds that context, so a test can call the start
//! function directly and check what it does with each situation:
//!
//! ```
//! use worker_core::{stop, Error, Passive};
//! use worker_dependency::{Manifold, Missing};
//! use worker_testing::dependency::StubResources;
//!
//! let manifold = Manifold::new(|ctx| {
//!     let port: u16 = ctx.get("config")?;
//!     assert_eq!(port, 8080);
//!     Ok(Passive::new())
//! })
//! .inputs(["config"]);
//!
//! // With the input running, the start function makes a worker.
//! let ctx = StubResources::new().output("config", 8080_u16).context("server");
//! let worker = manifold.start_worker(&ctx).unwrap();
//! stop(&worker).unwrap();
//!
//! // Without it, it reports the input missing, as the engine expects.
//! let ctx = StubResources::new().not_running("config").context("server");
//! assert!(manifold.start_worker(&ctx).err().unwrap().is::<Missing>());
//! ```
//!
//! Differences from Go: resources are described with a builder instead of
//! a `map[string]interface{}` sorted by reflection; an output is matched
//! by its exact type (the engine's rule) rather than by Go's "convertible
//! to"; and a name the test did not describe gets the engine's own
//! [`GetError::NotDeclared`](worker_dependency::GetError::NotDeclared)
//! (a [`Missing`](worker_dependency::Missing) error) rather than Go's
//! "unexpected resource name", so the start function sees exactly what it
//! would see in an engine.

use std::any::Any;
use std::collections::BTreeMap;

use worker_core::{AbortSignal, Error};
use worker_dependency::{Context, Outputs};

/// What one input looks like to the start function under test.
#[derive(Debug, Clone)]
pub enum StubResource {
    /// Running, offering these outputs.
    Running(Outputs),
    /// Declared but not running: `get` fails with
    /// [`GetError::NotRunning`](worker_dependency::GetError::NotRunning).
    NotRunning,
    /// Failing with this error: `get` returns
    /// [`GetError::Failed`](worker_dependency::GetError::Failed) with it
    /// as the source (Go's `StubResource.Error`).
    Failed(Error),
}

/// A set of named stub inputs, built up one input at a time, that makes
/// [`Context`]s. Every input described is a declared input of the
/// contexts it makes.
#[derive(Debug, Clone, Default)]
pub struct StubResources {
    resources: BTreeMap<String, StubResource>,
}

impl StubResources {
    /// No inputs at all.
    pub fn new() -> Self {
        StubResources::default()
    }

    /// `name` runs and offers `value` (added to what it offers already).
    pub fn output<T>(mut self, name: impl Into<String>, value: T) -> Self
    where
        T: Any + Clone + Send + Sync,
    {
        let name = name.into();
        let mut outputs = match self.resources.remove(&name) {
            Some(StubResource::Running(outputs)) => outputs,
            _ => Outputs::new(),
        };
        outputs.put(value);
        self.resources.insert(name, StubResource::Running(outputs));
        self
    }

    /// `name` runs and offers exactly `outputs` (possibly none).
    pub fn outputs(mut self, name: impl Into<String>, outputs: Outputs) -> Self {
        self.resources
            .insert(name.into(), StubResource::Running(outputs));
        self
    }

    /// `name` is declared but not running.
    pub fn not_running(mut self, name: impl Into<String>) -> Self {
        self.resources.insert(name.into(), StubResource::NotRunning);
        self
    }

    /// `name` fails with `error`.
    pub fn error(mut self, name: impl Into<String>, error: Error) -> Self {
        self.resources
            .insert(name.into(), StubResource::Failed(error));
        self
    }

    /// The stub of `name`, if described.
    pub fn get(&self, name: &str) -> Option<&StubResource> {
        self.resources.get(name)
    }

    /// A context for starting the manifold `manifold`, whose abort signal
    /// never fires (Go's `StubResources.Context()`).
    pub fn context(&self, manifold: &str) -> Context {
        self.builder(manifold).build()
    }

    /// A context whose abort signal is `abort` (Go's `StubContext`).
    pub fn context_with_abort(&self, manifold: &str, abort: AbortSignal) -> Context {
        self.builder(manifold).abort(abort).build()
    }

    fn builder(&self, manifold: &str) -> worker_dependency::ContextBuilder {
        self.resources
            .iter()
            .fold(Context::builder(manifold), |b, (name, stub)| match stub {
                StubResource::Running(outputs) => b.running(name, outputs.clone()),
                StubResource::NotRunning => b.not_running(name),
                StubResource::Failed(error) => b.failing(name, error.clone()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use worker_dependency::{GetError, Missing};

    #[derive(Debug, Clone, PartialEq)]
    struct Db(u32);

    #[test]
    fn each_stub_answers_like_the_engine() {
        let boom = Error::msg("boom");
        let stubs = StubResources::new()
            .output("db", Db(1))
            .output("db", 5_u8)
            .outputs("quiet", Outputs::new())
            .not_running("cache")
            .error("broken", boom.clone());
        let ctx = stubs.context("m");
        assert_eq!(ctx.name(), "m");
        assert_eq!(ctx.get::<Db>("db").unwrap(), Db(1));
        assert_eq!(ctx.get::<u8>("db").unwrap(), 5);
        assert!(matches!(
            ctx.get::<u16>("db"),
            Err(GetError::WrongType { .. })
        ));
        assert!(matches!(
            ctx.get::<u8>("quiet"),
            Err(GetError::NotExposed { .. })
        ));
        assert!(matches!(
            ctx.get::<u8>("cache"),
            Err(GetError::NotRunning { .. })
        ));
        assert!(matches!(
            ctx.get::<u8>("other"),
            Err(GetError::NotDeclared { .. })
        ));
        let failed = Error::from(ctx.get::<u8>("broken").unwrap_err());
        assert!(!failed.is::<Missing>());
        // The stub's error is reachable, as the same error.
        let source = failed.chain().nth(1).unwrap();
        assert_eq!(source.to_string(), "boom");
        assert!(matches!(stubs.get("cache"), Some(StubResource::NotRunning)));
    }

    #[test]
    fn contexts_never_abort_unless_given_a_signal() {
        let stubs = StubResources::new();
        assert!(!stubs.context("m").is_aborted());
        let (trigger, abort) = AbortSignal::pair();
        let ctx = stubs.context_with_abort("m", abort);
        assert!(!ctx.is_aborted());
        trigger.fire();
        assert!(ctx.is_aborted());
    }

    #[test]
    fn a_manifold_can_be_started_and_its_outputs_read() {
        use worker_core::{Passive, stop};
        use worker_dependency::Manifold;
        let m = Manifold::new(|ctx| {
            let n: u8 = ctx.get("n")?;
            assert_eq!(n, 1);
            Ok(Passive::new())
        })
        .inputs(["n"])
        .output(|_: &Passive, out| out.put("offered"));
        let worker = m
            .start_worker(&StubResources::new().output("n", 1_u8).context("m"))
            .unwrap();
        assert_eq!(m.outputs(&worker).unwrap().get::<&str>(), Some("offered"));
        stop(&worker).unwrap();
    }
}

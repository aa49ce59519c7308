//! Compile checks of the engine's surface: what must compile does, what
//! must not does not.

/// An engine is a cheap handle that can go anywhere: `Clone`, `Send`,
/// `Sync`, `'static`; so is a manifold's context's abort signal. This
/// compiles, and so do the checks below once their one fault is taken out
/// (which proves they fail for that fault):
///
/// ```
/// #![deny(unused_must_use)]
/// use std::sync::Arc;
/// use worker_core::Passive;
/// use worker_dependency::{Engine, EngineConfig, Manifold};
///
/// fn handle<T: Clone + Send + Sync + 'static>() {}
/// handle::<Engine>();
/// handle::<worker_core::AbortSignal>();
///
/// let shared = Arc::new(());
/// let _ = Manifold::new(move |_ctx| {
///     let _keep = &shared;
///     Ok(Passive::new())
/// });
/// let engine = Engine::new(EngineConfig::new("sendable")).unwrap();
/// let _ = engine.install("config", Manifold::constant(1u32));
/// ```
///
/// A start function runs on the engine's threads, so it must be `Send`;
/// one that holds an `Rc` is refused:
///
/// ```compile_fail
/// use std::rc::Rc;
/// use worker_core::Passive;
/// use worker_dependency::Manifold;
///
/// let local = Rc::new(());
/// let _ = Manifold::new(move |_ctx| {
///     let _keep = &local;
///     Ok(Passive::new())
/// });
/// ```
///
/// An install that is refused is an error to handle, not to drop:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use worker_dependency::{Engine, EngineConfig, Manifold};
///
/// let engine = Engine::new(EngineConfig::new("must-use")).unwrap();
/// engine.install("config", Manifold::constant(1u32));
/// ```
#[allow(dead_code)]
struct Checks;

//! Compile checks of the runner's surface: what must compile does, what
//! must not does not.

/// A runner is a cheap handle that can go anywhere: `Clone`, `Send`,
/// `Sync`, `'static`. This compiles, and so do the checks below once
/// their one fault is taken out (which proves they fail for that fault):
///
/// ```
/// #![deny(unused_must_use)]
/// use std::sync::Arc;
/// use worker_core::Passive;
/// use worker_runner::{Runner, RunnerParams};
///
/// fn handle<T: Clone + Send + Sync + 'static>() {}
/// handle::<Runner>();
///
/// let runner = Runner::new(RunnerParams::new("sendable")).unwrap();
/// let shared = Arc::new(());
/// let _ = runner.start_worker("w", move || {
///     let _keep = &shared;
///     Ok(Passive::new())
/// });
/// let _ = runner.start_worker("v", || Ok(Passive::new()));
/// ```
///
/// A start function runs on the runner's threads, so it must be `Send`;
/// one that holds an `Rc` is refused:
///
/// ```compile_fail
/// use std::rc::Rc;
/// use worker_core::Passive;
/// use worker_runner::{Runner, RunnerParams};
///
/// let runner = Runner::new(RunnerParams::new("not-send")).unwrap();
/// let local = Rc::new(());
/// let _ = runner.start_worker("w", move || {
///     let _keep = &local;
///     Ok(Passive::new())
/// });
/// ```
///
/// A start that is refused is an error to handle, not to drop:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use worker_core::Passive;
/// use worker_runner::{Runner, RunnerParams};
///
/// let runner = Runner::new(RunnerParams::new("must-use")).unwrap();
/// runner.start_worker("w", || Ok(Passive::new()));
/// ```
#[allow(dead_code)]
struct Checks;

//! Compile checks of the catacomb's surface: what must compile does, what
//! must not does not.

/// A catacomb is a cheap handle that can go anywhere: `Clone`, `Send`,
/// `Sync`, `'static`. This compiles, and so do the checks below once
/// their one fault is taken out (which proves they fail for that fault):
///
/// ```
/// #![deny(unused_must_use)]
/// use std::sync::Arc;
/// use worker_catacomb::{Catacomb, Plan};
/// use worker_core::{Passive, Worker};
///
/// fn handle<T: Clone + Send + Sync + 'static>() {}
/// handle::<Catacomb>();
///
/// let shared = Arc::new(());
/// let c = Catacomb::invoke(Plan::new("sendable", move |c: &Catacomb| {
///     let _keep = &shared;
///     let _ = c.dying().recv();
///     Ok(())
/// }))
/// .unwrap();
/// let _ = c.add(Passive::new());
/// c.kill();
/// let _ = c.wait();
/// ```
///
/// The work runs on the catacomb's own thread, so it must be `Send`; work
/// that holds an `Rc` is refused:
///
/// ```compile_fail
/// use std::rc::Rc;
/// use worker_catacomb::{Catacomb, Plan};
///
/// let local = Rc::new(());
/// let _ = Catacomb::invoke(Plan::new("not-send", move |_c: &Catacomb| {
///     let _keep = &local;
///     Ok(())
/// }));
/// ```
///
/// An add that is refused is an error to handle, not to drop:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use worker_catacomb::{Catacomb, Plan};
/// use worker_core::Passive;
///
/// let c = Catacomb::invoke(Plan::new("must-use", |c: &Catacomb| {
///     let _ = c.dying().recv();
///     Ok(())
/// }))
/// .unwrap();
/// c.add(Passive::new());
/// ```
#[allow(dead_code)]
struct Checks;

//! Compile checks for `#[must_use]`: dropping one of these values is a
//! bug (an error made and lost, a signal asked for and ignored, a watcher
//! thread nobody joins, a timer abandoned at once), so it must warn.
//!
//! Each `compile_fail` block denies `unused_must_use` and drops one value;
//! the first block uses every one of them and must compile, which proves
//! that the others fail because of the drop and nothing else.

/// Every value, used (bound to `_name`): this compiles.
///
/// ```
/// #![deny(unused_must_use)]
/// use std::sync::Arc;
/// use std::time::Duration;
/// use worker_core::*;
///
/// let _e = Error::new(NotFound::new("a"));
/// let _e = Error::msg("x");
/// let _e = Error::msg("x").context("y");
/// let _e = Error::from_boxed(Box::new(NotFound::new("a")));
/// let w = Passive::new();
/// let _s = dead(&w);
/// let _s = w.dead_signal();
/// let _s = w.to_shared();
/// let shared = into_shared(Passive::new());
/// let _p = downcast_worker::<Passive>(&shared);
/// let _t = watch_named(&shared, "must-use", |_| {});
/// let _r = WallClock.after(Duration::ZERO);
/// let _t = WallClock.timer(Duration::ZERO);
/// let _t = Timer::tracked(crossbeam_channel::never());
/// let _w = spawn("must-use", |_| Ok(()));
/// let _w = Passive::new();
/// let tomb = Tomb::new();
/// let _s = tomb.dying();
/// let _s = tomb.dead();
/// let _s = tomb.state();
/// let _e = tomb.err();
/// let _r = tomb.try_result();
/// let _k = Passive::new().kill_on_drop();
/// ```
///
/// `Error::new`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_core::Error::new(worker_core::NotFound::new("a"));
/// ```
///
/// `Error::msg`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_core::Error::msg("x");
/// ```
///
/// `Error::context` (it returns the new error; the old one is unchanged):
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let e = worker_core::Error::msg("x");
/// e.context("y");
/// ```
///
/// `Error::from_boxed`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_core::Error::from_boxed(Box::new(worker_core::NotFound::new("a")));
/// ```
///
/// `dead`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_core::dead(&worker_core::Passive::new());
/// ```
///
/// `Worker::dead_signal`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use worker_core::Worker;
/// worker_core::Passive::new().dead_signal();
/// ```
///
/// `Worker::to_shared`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use worker_core::Worker;
/// worker_core::Passive::new().to_shared();
/// ```
///
/// `into_shared`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_core::into_shared(worker_core::Passive::new());
/// ```
///
/// `downcast_worker`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let shared = worker_core::into_shared(worker_core::Passive::new());
/// worker_core::downcast_worker::<worker_core::Passive>(&shared);
/// ```
///
/// `watch_named` (the watcher thread, if any, must be joined):
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let shared = worker_core::into_shared(worker_core::Passive::new());
/// worker_core::watch_named(&shared, "must-use", |_| {});
/// ```
///
/// `Clock::after`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use worker_core::Clock;
/// worker_core::WallClock.after(std::time::Duration::ZERO);
/// ```
///
/// `Clock::timer`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use worker_core::Clock;
/// worker_core::WallClock.timer(std::time::Duration::ZERO);
/// ```
///
/// A `Timer`, however it is made:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_core::Timer::tracked(crossbeam_channel::never());
/// ```
///
/// A spawned worker (dropped, its thread would run on unjoined):
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_core::spawn("dropped", |_| Ok(()));
/// ```
///
/// `Passive::new`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_core::Passive::new();
/// ```
///
/// A tomb's signals:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_core::Tomb::new().dying();
/// ```
///
/// `Worker::kill_on_drop` (a guard dropped at once kills at once):
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use worker_core::Worker;
/// worker_core::Passive::new().kill_on_drop();
/// ```
struct MustUse;

/// `Error::from_anyhow` (feature `anyhow`); used, it compiles:
///
/// ```
/// #![deny(unused_must_use)]
/// let _e = worker_core::Error::from_anyhow(anyhow::anyhow!("x"));
/// ```
///
/// dropped, it does not:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// worker_core::Error::from_anyhow(anyhow::anyhow!("x"));
/// ```
#[cfg(feature = "anyhow")]
struct MustUseWithAnyhow;

//! What a catacomb is made from: a name, the work, the initial workers.

use std::fmt;
use std::sync::Arc;

use worker_core::events::{Event, Hook};
use worker_core::{Clock, Error, SharedWorker, WallClock};

use crate::{Catacomb, InvokeError};

/// The body of a catacomb. It runs on the catacomb's own thread, gets the
/// catacomb (to watch [`Catacomb::dying`] and to [`Catacomb::add`]
/// helpers), and its return ends the catacomb.
pub type Work = Box<dyn FnOnce(&Catacomb) -> Result<(), Error> + Send + 'static>;

/// Everything [`Catacomb::invoke`] needs: a name, the work, the initial
/// workers and the hooks that hear of its events.
///
/// Build it with [`Plan::new`] (which infers the closure's signature for
/// you) or as a struct literal with a boxed closure:
///
/// ```
/// use std::sync::Arc;
/// use worker_catacomb::{Catacomb, Plan};
/// use worker_core::{Passive, SharedWorker};
///
/// let helper: SharedWorker = Arc::new(Passive::new());
/// let plan = Plan::new("plan-docs", |c: &Catacomb| {
///     let _ = c.dying().recv();
///     Ok(())
/// })
/// .init([helper]);
/// assert_eq!(plan.init.len(), 1);
///
/// let literal = Plan {
///     name: "plan-docs-literal".into(),
///     work: Box::new(|_: &Catacomb| Ok(())),
///     init: Vec::new(),
///     clock: Arc::new(worker_core::WallClock),
///     hooks: Vec::new(),
/// };
/// assert!(literal.validate().is_ok());
/// ```
pub struct Plan {
    /// The catacomb's name: its work thread's name, the prefix of any
    /// thread it starts, and how its errors and logs name it. Must not be
    /// empty. It need not be unique, but a unique name is what lets a test
    /// check that every thread of the catacomb is gone.
    pub name: String,
    /// The work; see [`Work`].
    pub work: Work,
    /// Workers bound to the catacomb before the work starts. The catacomb
    /// owns them from the moment `invoke` is called: if `invoke` fails they
    /// are stopped.
    pub init: Vec<SharedWorker>,
    /// Where the catacomb's time comes from: only
    /// [`Catacomb::stop_within`]'s deadline uses it (the catacomb has no
    /// timers of its own). [`WallClock`] unless set; a test sets a fake
    /// one.
    pub clock: Arc<dyn Clock>,
    /// Told about the catacomb's events (see [`Plan::on_event`]).
    pub hooks: Vec<Arc<dyn Hook>>,
}

impl Plan {
    /// A plan with no initial workers.
    pub fn new<F>(name: impl Into<String>, work: F) -> Self
    where
        F: FnOnce(&Catacomb) -> Result<(), Error> + Send + 'static,
    {
        Plan {
            name: name.into(),
            work: Box::new(work),
            init: Vec::new(),
            clock: Arc::new(WallClock),
            hooks: Vec::new(),
        }
    }

    /// Adds initial workers (see [`Plan::init`]).
    pub fn init(mut self, workers: impl IntoIterator<Item = SharedWorker>) -> Self {
        self.init.extend(workers);
        self
    }

    /// Sets the clock (see [`Plan::clock`](Plan#structfield.clock)).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Calls `hook` with each of the catacomb's events ([`Event`], the
    /// vocabulary every supervisor of the family shares), in the order
    /// they happen: a bound worker started (bound), stopping (killed
    /// because the catacomb dies), failed (every error is fatal to a
    /// catacomb) or stopped; the catacomb shutting down. A catacomb does
    /// not name its workers: their events have no `worker`, and their
    /// `generation` numbers the binding. Each call adds a hook.
    ///
    /// Hooks run on the catacomb's own threads (`<name>-stop-<n>`), never
    /// on the caller of `add` or `kill`, nor on a worker's thread, and
    /// never under the catacomb's lock. A panicking hook is logged; a
    /// blocking one delays the events after it, the catacomb's own errands
    /// for a stall period each, and the catacomb's death, which waits for
    /// the last delivery.
    ///
    /// ```
    /// use worker_catacomb::{Catacomb, Plan};
    /// use worker_core::{Error, Passive, Worker};
    ///
    /// let (tx, events) = crossbeam_channel::unbounded();
    /// let c = Catacomb::invoke(
    ///     Plan::new("hooked-catacomb", |c: &Catacomb| {
    ///         let _ = c.dying().recv();
    ///         Err(c.err_dying())
    ///     })
    ///     .on_event(move |e| tx.send((e.name(), e.generation)).unwrap()),
    /// )?;
    /// let helper = Passive::new();
    /// c.add(helper.clone())?;
    /// helper.finish(Err(Error::msg("lost the lease"))); // kills the catacomb
    /// assert!(c.wait().is_err()); // every event has been delivered
    /// let seen: Vec<_> = events.try_iter().collect();
    /// assert_eq!(seen, [
    ///     ("worker started", 1),
    ///     ("worker failed", 1),
    ///     ("supervisor shutting down", 0),
    /// ]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_event(self, hook: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.hook(hook)
    }

    /// Adds `hook` to [`hooks`](Plan::hooks), as
    /// [`on_event`](Plan::on_event) does for a closure: a [`Hook`] of your
    /// own, or the metrics adapter (`worker_core::events::MetricsFacade`,
    /// feature `metrics` of `worker-core`).
    pub fn hook(mut self, hook: impl Hook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Checks the plan the way [`Catacomb::invoke`] does, without starting
    /// anything.
    pub fn validate(&self) -> Result<(), InvokeError> {
        if self.name.trim().is_empty() {
            return Err(InvokeError::EmptyName);
        }
        Ok(())
    }
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("name", &self.name)
            .field("init", &self.init.len())
            .field("hooks", &self.hooks.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_names_are_refused() {
        for name in ["", "  ", "\t"] {
            let plan = Plan::new(name, |_: &Catacomb| Ok(()));
            assert!(matches!(plan.validate(), Err(InvokeError::EmptyName)));
        }
        assert!(Plan::new("x", |_: &Catacomb| Ok(())).validate().is_ok());
    }

    #[test]
    fn debug_shows_name_and_init_count() {
        let plan = Plan::new("dbg", |_: &Catacomb| Ok(()))
            .init([std::sync::Arc::new(worker_core::Passive::new()) as SharedWorker]);
        assert_eq!(
            format!("{plan:?}"),
            "Plan { name: \"dbg\", init: 1, hooks: 0, .. }"
        );
    }
}

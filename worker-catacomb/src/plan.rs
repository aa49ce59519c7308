//! What a catacomb is made from: a name, the work, the initial workers.

use std::fmt;
use std::sync::Arc;

use worker_core::{Clock, Error, SharedWorker, WallClock};

use crate::{Catacomb, InvokeError};

/// The body of a catacomb. It runs on the catacomb's own thread, gets the
/// catacomb (to watch [`Catacomb::dying`] and to [`Catacomb::add`]
/// helpers), and its return ends the catacomb.
pub type Work = Box<dyn FnOnce(&Catacomb) -> Result<(), Error> + Send + 'static>;

/// Everything [`Catacomb::invoke`] needs.
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
        assert_eq!(format!("{plan:?}"), "Plan { name: \"dbg\", init: 1, .. }");
    }
}

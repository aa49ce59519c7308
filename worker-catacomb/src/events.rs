//! The catacomb's events, in the vocabulary every supervisor of the family
//! shares (`worker_core::events`).
//!
//! A catacomb does not name its workers: each binding is an incarnation,
//! numbered by its `generation`. A bound worker is `Started` when it is
//! bound, `Stopping` when the catacomb kills it, and `Failed` (every error
//! is fatal to a catacomb) or `Stopped` when it ends; the catacomb itself
//! says `ShuttingDown` when it starts dying.
//!
//! The events of a catacomb come from any thread (an `add`, a worker's
//! completion, a kill), so their order is the order in which they are
//! queued, under the state lock that orders the transitions they report.
//! Their delivery to the hooks is an errand, off the callers' threads;
//! they are logged once the lock is released.

use std::sync::Arc;
use std::time::Instant;

use worker_core::events::{Delivery, End, Event, EventKind, Hook};

use crate::catacomb::{Catacomb, State};
use crate::errands::Errand;

/// The events of one transition, told under the state lock and finished
/// with after it.
#[derive(Default)]
pub(crate) struct Told {
    /// To log once the lock is released.
    log: Vec<Event>,
    /// A delivery errand was queued.
    deliver: bool,
}

impl Told {
    /// Logs what was told (call after the state lock is released).
    pub(crate) fn log(self) {
        for event in &self.log {
            event.log();
        }
    }
}

/// The hooks of a catacomb and how its events are made.
pub(crate) struct Events {
    pub(crate) name: Arc<str>,
    pub(crate) hooks: Option<Arc<Delivery>>,
}

impl Events {
    pub(crate) fn new(name: &str, hooks: Vec<Arc<dyn Hook>>) -> Self {
        let name: Arc<str> = Arc::from(name);
        Events {
            hooks: Delivery::new(name.clone(), hooks),
            name,
        }
    }

    /// Whether anybody listens: a hook, or a `tracing` subscriber. Nothing
    /// is made otherwise.
    pub(crate) fn observed(&self) -> bool {
        self.hooks.is_some() || worker_core::events::logging()
    }
}

impl Catacomb {
    /// Tells `kind` about binding `number` (0: about the catacomb), under
    /// the state lock: queued for the hooks (a delivery errand is queued
    /// if none is outstanding) and kept in `told` for the log.
    pub(crate) fn tell(&self, state: &mut State, told: &mut Told, number: u64, kind: EventKind) {
        let events = &self.shared.events;
        let event = Event::new(events.name.clone(), None, number, kind);
        if tracing::level_enabled!(event.level()) {
            told.log.push(event.clone());
        }
        if let Some(hooks) = &events.hooks {
            if hooks.push(event) {
                state.errands.push(self, Errand::Deliver);
                told.deliver = true;
            }
        }
    }

    /// After telling, still under the lock: hands a queued delivery to the
    /// errand threads; returns the errands no thread could be had for.
    #[must_use]
    pub(crate) fn hand_over(&self, state: &mut State, told: &Told) -> Vec<Errand> {
        if told.deliver {
            state.errands.flush(&self.shared)
        } else {
            Vec::new()
        }
    }

    /// How a bound worker that ends now got there: it had started, and was
    /// asked to stop when the catacomb started dying, if it has.
    pub(crate) fn end_now(&self, state: &State) -> End {
        let stopped_after = state
            .dying_since
            .map(|since| Instant::now().saturating_duration_since(since));
        End::new(true, stopped_after, false)
    }

    /// Delivers the queued events to the hooks (an errand).
    pub(crate) fn deliver_events(&self) {
        if let Some(hooks) = &self.shared.events.hooks {
            hooks.deliver();
        }
    }
}

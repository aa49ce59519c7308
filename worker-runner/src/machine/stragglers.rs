//! What a stopping runner still waits for, for `stop_within`'s timeout
//! error: every id it still holds (shutdown removed the ones waiting to
//! restart), with where each is and whether it was reported stuck or
//! forced.

use std::time::Instant;

use worker_core::{Straggler, WorkerState};

use super::entry::State;
use super::{Io, Machine};

impl<T: Io> Machine<T> {
    /// Every id the runner holds, by id, as a [`Straggler`].
    pub(crate) fn stragglers(&self, now: Instant) -> Vec<Straggler> {
        let mut list: Vec<Straggler> = self
            .entries()
            .map(|e| {
                let (state, mark) = match &e.state {
                    State::Stopping { mark, .. } => (WorkerState::Stopping, Some(*mark)),
                    State::Starting { stop } => (WorkerState::Starting, *stop),
                    // Its turn in an ordered shutdown has not come.
                    State::Running(_) => (WorkerState::Started, None),
                    State::Delayed { .. } | State::Held => (WorkerState::Stopped, None),
                };
                Straggler {
                    name: e.id.to_string(),
                    state,
                    stopping_for: mark
                        .map(|m| now.saturating_duration_since(m.since.instant(self.epoch))),
                    stuck: mark.is_some_and(|m| m.stuck),
                    forced: mark.is_some_and(|m| m.forced),
                }
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}

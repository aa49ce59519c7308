//! The catacomb's report.

use serde::{Serialize, Serializer};
use worker_core::{Error, TombState};

use crate::Catacomb;

/// What [`Catacomb::report`] returns. Serialised as
/// `{"state": "alive" | "dying" | "dead", "error": "..."?, "workers": N}`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct CatacombReport {
    /// Where the catacomb is in its life
    /// ([`KEY_STATE`](worker_core::KEY_STATE)).
    #[serde(serialize_with = "tomb_state")]
    pub state: TombState,
    /// Its error, once it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
    /// How many bound workers have not finished yet.
    pub workers: usize,
}

fn tomb_state<S: Serializer>(state: &TombState, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match state {
        TombState::Alive => "alive",
        TombState::Dying => "dying",
        TombState::Dead => "dead",
    })
}

impl Catacomb {
    /// The catacomb's state, its error once it has one, and how many bound
    /// workers are still running. It does not include the workers' own
    /// reports (a catacomb does not name its workers).
    pub fn report(&self) -> CatacombReport {
        CatacombReport {
            state: self.state(),
            error: self.err(),
            workers: self.worker_count(),
        }
    }
}

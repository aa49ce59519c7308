//! The errors every supervisor shares.

/// A call that waits for a supervisor was made from one of that
/// supervisor's own threads (its loop, one of its start threads, or the
/// body of a worker one of its start functions spawned). The supervisor
/// cannot finish, or answer, while that thread waits for it, so the call
/// would wait forever; it fails at once instead.
///
/// Typical causes: a start function or a worker body that calls
/// `stop(&runner)` on its own runner, or uninstalls its own manifold and
/// waits for that. Kill instead (`kill` never waits), and let the
/// supervisor's owner wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{supervisor:?}: {call} from one of its own threads would wait for itself forever")]
pub struct WouldDeadlock {
    /// The supervisor's name.
    pub supervisor: String,
    /// The call, e.g. `"wait"`.
    pub call: &'static str,
}

/// A supervisor's own machinery failed (a bug in the library, caught): the
/// supervisor stopped every worker it knew of and ended with this error,
/// so that nobody waits for it forever.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("supervisor {supervisor:?} failed internally and stopped: {reason}")]
pub struct SupervisorFailed {
    /// The supervisor's name.
    pub supervisor: String,
    /// What failed.
    pub reason: String,
}

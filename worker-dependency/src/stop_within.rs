//! Bounded shutdown: [`Engine::stop_within`].

use std::time::Duration;

use worker_core::{StopError, Straggler, Worker, wait_naming_stragglers};

use crate::Engine;

impl Engine {
    /// Kills the engine and waits for it to finish, for at most `timeout`
    /// by the engine's clock: [`stop`](worker_core::stop) with a bound.
    /// `Duration::MAX` is no bound (it is `stop`).
    ///
    /// Returns `Ok` or [`StopError::Failed`] (what [`wait`](Worker::wait)
    /// returns: the worst fatal error) if the engine finished in time.
    /// Past the deadline it fails with [`StopError::TimedOut`], listing
    /// every manifold that has not stopped, by name: killed and not
    /// finished ([`Stopping`](worker_core::WorkerState::Stopping), with for how long and
    /// whether it was reported stuck after the engine's `stop_timeout`),
    /// or still running because a dependent it waits for has not stopped
    /// ([`Started`](worker_core::WorkerState::Started): the engine stops dependents
    /// before their inputs).
    ///
    /// What becomes of them: the shutdown goes on. They stay killed (the
    /// others are killed as their dependents stop, or as those are reported
    /// stuck), and a later [`wait`](Worker::wait) returns once every one
    /// has ended; [`waiting_for`](Engine::waiting_for) and the report go
    /// on naming them. The engine forces nothing: a thread cannot be.
    ///
    /// Fails with [`StopError::WouldDeadlock`] at once (having killed the
    /// engine) on one of the engine's own threads.
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_core::Passive;
    /// use worker_dependency::{Engine, EngineConfig, Manifold};
    ///
    /// let engine = Engine::new(EngineConfig::new("doc-engine-stop-within"))?;
    /// engine.install("lease", Manifold::new(|_| Ok(Passive::new())))?;
    /// engine.stop_within(Duration::from_secs(10))?; // stops at once
    /// # Ok::<(), worker_core::Error>(())
    /// ```
    pub fn stop_within(&self, timeout: Duration) -> Result<(), StopError> {
        self.kill();
        self.driver()
            .check_not_own_thread("stop_within")
            .map_err(StopError::WouldDeadlock)?;
        wait_naming_stragglers(self, self.name(), self.clock(), timeout, || {
            (self.stragglers(), 0)
        })
    }

    /// Every manifold that has not stopped, from a snapshot.
    fn stragglers(&self) -> Vec<Straggler> {
        let ((snapshot, _), lent) = self.seen();
        let mut list: Vec<Straggler> = snapshot
            .manifolds
            .iter()
            .filter(|m| m.state != "stopped")
            .map(|m| Straggler {
                name: m.name.to_string(),
                state: crate::report::state_of(m.state),
                stopping_for: m.stopping_for,
                stuck: m.stuck,
                forced: false,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        // The snapshot's workers go back to the engine with the guard.
        drop(snapshot);
        drop(lent);
        list
    }
}

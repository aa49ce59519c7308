//! Bounded shutdown: [`Catacomb::stop_within`].

use std::time::Duration;

use worker_core::{
    StopError, Straggler, Worker, WorkerState, WouldDeadlock, wait_naming_stragglers,
};

use crate::Catacomb;

impl Catacomb {
    /// Kills the catacomb and waits for it to be dead, for at most
    /// `timeout` by its [clock](crate::Plan#structfield.clock):
    /// [`stop`](worker_core::stop) with a bound. `Duration::MAX` is no
    /// bound (it is `stop`).
    ///
    /// Returns `Ok` or [`StopError::Failed`] (what
    /// [`wait`](Catacomb::wait) returns) if the catacomb was dead in time.
    /// Past the deadline it fails with [`StopError::TimedOut`], saying what
    /// it can: its work, by the name `"work"`
    /// ([`Stopping`](WorkerState::Stopping): told to stop by
    /// [`dying`](Catacomb::dying), and not returned), and how many bound
    /// workers have not finished
    /// ([`StopTimedOut::unnamed`](worker_core::StopTimedOut::unnamed): a
    /// catacomb does not name its workers). If both are done, it is still
    /// waiting for a worker's `wait` or `Drop` to return.
    ///
    /// What becomes of them: the catacomb goes on dying. The workers stay
    /// killed; a later [`wait`](Catacomb::wait) returns once the work has
    /// returned and every one of them has finished. A thread cannot be
    /// forced.
    ///
    /// Fails with [`StopError::WouldDeadlock`] at once (having killed the
    /// catacomb) on a thread the catacomb must see return before it can be
    /// dead: its work thread, or one of its stop or watcher threads.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use worker_catacomb::{Catacomb, Plan};
    /// use worker_core::{Passive, SharedWorker, StopError};
    ///
    /// let helper: SharedWorker = Arc::new(Passive::new());
    /// let (release, stuck) = crossbeam_channel::bounded::<()>(1);
    /// let catacomb = Catacomb::invoke(
    ///     Plan::new("doc-catacomb-stop-within", move |_: &Catacomb| {
    ///         let _ = stuck.recv(); // ignores `dying` until released
    ///         Ok(())
    ///     })
    ///     .init([helper]),
    /// )?;
    /// match catacomb.stop_within(Duration::from_millis(20)) {
    ///     Err(StopError::TimedOut(e)) => assert_eq!(e.waiting_for[0].name, "work"),
    ///     other => panic!("{other:?}"),
    /// }
    /// release.send(()).unwrap();
    /// catacomb.stop_within(Duration::MAX)?;
    /// # Ok::<(), worker_core::Error>(())
    /// ```
    pub fn stop_within(&self, timeout: Duration) -> Result<(), StopError> {
        self.kill();
        if self.shared.tomb.try_result().is_none() && self.on_own_thread() {
            return Err(StopError::WouldDeadlock(WouldDeadlock {
                supervisor: self.shared.name.clone(),
                call: "stop_within",
            }));
        }
        let clock = self.shared.clock.clone();
        wait_naming_stragglers(self, &self.shared.name, &*clock, timeout, || {
            self.stragglers()
        })
    }

    /// The work, if it has not returned, and how many bound workers have
    /// not finished.
    fn stragglers(&self) -> (Vec<Straggler>, usize) {
        let state = self.lock_state();
        let work = (!state.work_done).then(|| Straggler {
            name: "work".to_owned(),
            state: WorkerState::Stopping,
            stopping_for: None,
            stuck: false,
            forced: false,
        });
        (work.into_iter().collect(), state.bindings.len())
    }
}

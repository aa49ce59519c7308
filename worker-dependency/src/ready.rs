//! Readiness: [`Engine::wait_ready`] and its async twin, waiting until
//! named manifolds (or all of them) have started. The engine's shell keeps
//! the callers and answers them as the machine registers starts (see
//! `shell/ready.rs`); the caller's side is the core's, shared with the
//! runner.

use std::time::Duration;

use worker_core::supervisor::ready::ReadyCaller;
use worker_core::{AbortSignal, Names, ReadyError};

use crate::Engine;
use crate::shell::{Event, starter};

impl Engine {
    /// Waits until the manifolds `which` names (or [`Names::All`]) have
    /// started: each one's start function has returned a worker and the
    /// engine has registered it (and offers its outputs). Waits at most
    /// `timeout` by the engine's clock (`Duration::MAX`: no limit), and
    /// gives up when `abort` fires. Go's engine tests use `Install` as a
    /// sync point and then poll reports; this is the wait they mean.
    ///
    /// The rules (in full in [`worker_core::ready`]): a manifold counts as
    /// started if its worker runs when the call is made, or a start of it
    /// registers after; one the engine is bouncing (stopped to restart)
    /// is still to start; one whose start says [`Missing`](crate::Missing)
    /// waits for its inputs, and the wait with it. [`Names::All`] is every
    /// manifold installed at the call (manifolds installed later are not
    /// waited for).
    ///
    /// Fails ([`ReadyError`]) with:
    /// - [`NotFound`](ReadyError::NotFound), at once, for a name that is
    ///   not installed (or is being uninstalled: install first, then
    ///   wait), and later for one uninstalled before it started;
    /// - [`TimedOut`](ReadyError::TimedOut), naming the manifolds not
    ///   started;
    /// - [`Aborted`](ReadyError::Aborted) when `abort` fires while waiting;
    /// - [`Stopped`](ReadyError::Stopped) when the engine stops (or has),
    ///   with its error so far, if any;
    /// - [`WouldDeadlock`](ReadyError::WouldDeadlock) from the start (or
    ///   output) function of a manifold it would wait for.
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_core::{stop, Names, Passive};
    /// use worker_dependency::{Engine, EngineConfig, Manifold};
    ///
    /// let engine = Engine::new(EngineConfig::new("doc-engine-ready"))?;
    /// engine.install_all([
    ///     ("config", Manifold::new(|_| Ok(Passive::new()))),
    ///     ("api", Manifold::new(|_| Ok(Passive::new())).inputs(["config"])),
    /// ])?;
    /// engine.wait_ready(Names::All, Duration::from_secs(10), None)?;
    /// assert!(engine.wait_ready("nope", Duration::MAX, None).is_err()); // not installed
    /// stop(&engine)?;
    /// # Ok::<(), worker_core::Error>(())
    /// ```
    pub fn wait_ready(
        &self,
        which: impl Into<Names>,
        timeout: Duration,
        abort: Option<&AbortSignal>,
    ) -> Result<(), ReadyError> {
        self.ready_caller().wait(which.into(), timeout, abort)
    }

    /// [`wait_ready`](Self::wait_ready) for async code: a future of the
    /// same answer, on any executor, with no thread behind it (the
    /// engine's loop wakes the task).
    pub async fn wait_ready_async(
        &self,
        which: impl Into<Names>,
        timeout: Duration,
        abort: Option<&AbortSignal>,
    ) -> Result<(), ReadyError> {
        self.ready_caller()
            .wait_async(which.into(), timeout, abort)
            .await
    }

    fn ready_caller(&self) -> ReadyCaller<'_, Event> {
        let driver = self.driver();
        ReadyCaller {
            handle: driver,
            own_start: starter::starting_in(driver.id()),
            request: Event::Ready,
            cancel: |waiter| Event::CancelReady { waiter },
        }
    }
}

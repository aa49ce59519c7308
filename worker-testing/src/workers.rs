//! Workers with fixed, simple behaviour, to stand in for real ones in tests.
//!
//! All but one have no thread: each is a [`Tomb`] with a rule for `kill`,
//! so supervisors learn of their completion through a callback, and a test
//! can make thousands of them. [`spawn_error_worker`] is the exception, for
//! tests about threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use worker_core::{Abort, Error, ThreadWorker, Tomb, Worker};

/// A worker that runs until killed, and then ends with the error it was
/// made with (Go's `NewErrorWorker`). Made by [`error_worker`].
///
/// Use it to check what a supervisor does with a worker that fails when
/// stopped, or (with `None`) as the simplest well-behaved worker.
#[derive(Debug, Clone)]
pub struct ErrorWorker {
    tomb: Tomb,
    err: Option<Error>,
}

/// A worker that runs until killed and then ends with `err` (`None`: ends
/// cleanly).
///
/// ```
/// use worker_core::{Error, Worker};
/// use worker_testing::error_worker;
///
/// let w = error_worker(Some(Error::msg("lost the lease")));
/// w.kill();
/// assert_eq!(w.wait().unwrap_err().to_string(), "lost the lease");
/// ```
pub fn error_worker(err: Option<Error>) -> ErrorWorker {
    ErrorWorker {
        tomb: Tomb::new(),
        err,
    }
}

impl ErrorWorker {
    /// The worker's tomb, to see its state or finish it some other way.
    pub fn tomb(&self) -> &Tomb {
        &self.tomb
    }
}

impl Worker for ErrorWorker {
    fn kill(&self) {
        self.tomb.kill(self.err.clone());
        self.tomb.done(Ok(()));
    }

    worker_core::delegate_worker!(tomb, except kill);
}

/// A worker like [`error_worker`]'s that runs on a thread of its own, as
/// Go's `NewErrorWorker` does: the thread, named `name`, waits until the
/// worker is killed, and `wait` joins it. Made by [`spawn_error_worker`].
///
/// Use it where the thread is the point: to check that a supervisor joins
/// its workers' threads before it says it has stopped, or that a worker
/// the supervisor could not stop still has its thread.
#[derive(Debug)]
#[must_use = "its thread runs until the worker is killed: stop it and wait for it"]
pub struct ThreadErrorWorker(ThreadWorker, Option<Error>);

/// Starts a worker whose thread, named `name`, runs until the worker is
/// killed; it then ends with `err` (`None`: ends cleanly). If the system
/// refuses the thread, the worker is already dead with that refusal.
///
/// ```
/// use worker_core::{Error, Worker};
/// use worker_testing::{assert_threads_gone, spawn_error_worker};
///
/// let w = spawn_error_worker("doc-error-worker", Some(Error::msg("lost the lease")));
/// w.kill();
/// assert_eq!(w.wait().unwrap_err().to_string(), "lost the lease");
/// assert_threads_gone("doc-error-worker"); // wait joined the thread
/// ```
pub fn spawn_error_worker(name: impl Into<String>, err: Option<Error>) -> ThreadErrorWorker {
    let thread = worker_core::spawn(name, |tomb| {
        let _ = tomb.dying().recv();
        // The kill's reason, if any, is the worker's error.
        Ok(())
    });
    ThreadErrorWorker(thread, err)
}

impl ThreadErrorWorker {
    /// The worker's tomb, to see its state or finish it some other way.
    pub fn tomb(&self) -> &Tomb {
        self.0.tomb()
    }
}

impl Worker for ThreadErrorWorker {
    fn kill(&self) {
        self.0.tomb().kill(self.1.clone());
    }

    worker_core::delegate_worker!(0, except kill);
}

/// A worker that is already finished, with `err` (Go's `NewDeadWorker`):
/// `wait` returns at once, `kill` changes nothing.
///
/// ```
/// use worker_core::{Error, Worker};
/// use worker_testing::dead_worker;
///
/// let w = dead_worker(Some(Error::msg("never came up")));
/// assert!(w.wait().is_err());
/// w.kill();
/// assert_eq!(w.wait().unwrap_err().to_string(), "never came up");
/// ```
pub fn dead_worker(err: Option<Error>) -> DeadWorker {
    let tomb = Tomb::new();
    tomb.done(err.map_or(Ok(()), Err));
    DeadWorker { tomb }
}

/// A worker that has already finished; made by [`dead_worker`].
#[derive(Debug, Clone)]
pub struct DeadWorker {
    tomb: Tomb,
}

impl Worker for DeadWorker {
    fn kill(&self) {}

    worker_core::delegate_worker!(tomb, except kill);
}

/// A worker that ignores `kill` (Go's `ForeverWorker`): it breaks the
/// contract on purpose, to test how supervisors cope with a worker that
/// will not stop. Only [`ForeverWorker::really_kill`] ends it.
///
/// ```
/// use worker_core::{Error, Worker};
/// use worker_testing::ForeverWorker;
///
/// let w = ForeverWorker::new(Some(Error::msg("finally")));
/// w.kill();
/// assert!(w.tomb().is_alive());
/// w.really_kill();
/// assert_eq!(w.wait().unwrap_err().to_string(), "finally");
/// ```
#[derive(Debug, Clone)]
pub struct ForeverWorker {
    tomb: Tomb,
    err: Option<Error>,
}

impl ForeverWorker {
    /// A new worker that, once really killed, ends with `err`.
    pub fn new(err: Option<Error>) -> Self {
        ForeverWorker {
            tomb: Tomb::new(),
            err,
        }
    }

    /// Ends the worker, with the error it was made with.
    pub fn really_kill(&self) {
        self.tomb.kill(self.err.clone());
        self.tomb.done(Ok(()));
    }

    /// The worker's tomb: alive until [`really_kill`](Self::really_kill).
    pub fn tomb(&self) -> &Tomb {
        &self.tomb
    }
}

impl Worker for ForeverWorker {
    /// Ignored, deliberately.
    fn kill(&self) {}

    worker_core::delegate_worker!(tomb, except kill);
}

/// A worker that ignores [`kill`](Worker::kill), like [`ForeverWorker`],
/// but can be forced: it is [`abortable`](Worker::abortable), and an
/// abort ends it with the error `"aborted"`. It stands for an async task
/// stuck in a loop that never looks at its cancellation. It counts the
/// kills and aborts it gets.
///
/// ```
/// use worker_core::{Abort, Worker};
/// use worker_testing::AbortableWorker;
///
/// let w = AbortableWorker::new();
/// w.kill();
/// assert!(w.tomb().is_alive());
/// w.abortable().unwrap().abort();
/// assert_eq!(w.wait().unwrap_err().to_string(), "aborted");
/// assert_eq!((w.kills(), w.aborts()), (1, 1));
/// ```
#[derive(Debug, Clone, Default)]
pub struct AbortableWorker {
    tomb: Tomb,
    kills: Arc<AtomicUsize>,
    aborts: Arc<AtomicUsize>,
}

impl AbortableWorker {
    /// A new, alive worker.
    pub fn new() -> Self {
        Self::default()
    }

    /// The worker's tomb: alive until aborted.
    pub fn tomb(&self) -> &Tomb {
        &self.tomb
    }

    /// How many times it was killed (asked to stop).
    pub fn kills(&self) -> usize {
        self.kills.load(Ordering::SeqCst)
    }

    /// How many times it was aborted (forced).
    pub fn aborts(&self) -> usize {
        self.aborts.load(Ordering::SeqCst)
    }
}

impl Abort for AbortableWorker {
    fn abort(&self) {
        self.aborts.fetch_add(1, Ordering::SeqCst);
        self.tomb.kill(Some(Error::msg("aborted")));
        self.tomb.done(Ok(()));
    }
}

impl Worker for AbortableWorker {
    /// Counted, and otherwise ignored.
    fn kill(&self) {
        self.kills.fetch_add(1, Ordering::SeqCst);
    }

    fn abortable(&self) -> Option<&dyn Abort> {
        Some(self)
    }

    worker_core::delegate_worker!(tomb, except kill);
}

#[cfg(test)]
mod tests {
    use super::*;
    use worker_core::TombState;

    #[test]
    fn error_worker_runs_until_killed() {
        let w = error_worker(None);
        assert_eq!(w.tomb().state(), TombState::Alive);
        w.kill();
        assert!(w.wait().is_ok());
        assert!(w.wait().is_ok());
    }

    #[test]
    fn error_worker_keeps_its_error_over_later_kills() {
        let w = error_worker(Some(Error::msg("a")));
        w.kill();
        w.kill();
        assert_eq!(w.wait().unwrap_err().to_string(), "a");
    }

    #[test]
    fn the_thread_error_worker_runs_on_its_thread_until_killed() {
        let name = "workers-test-thread-error";
        let w = spawn_error_worker(name, Some(Error::msg("a")));
        assert_eq!(w.tomb().state(), TombState::Alive);
        assert_eq!(worker_core::threads::live_threads_with_prefix(name), 1);
        crate::check_alive(&w);
        w.kill();
        w.kill();
        assert_eq!(w.wait().unwrap_err().to_string(), "a");
        crate::assert_threads_gone(name);
        let clean = spawn_error_worker("workers-test-thread-clean", None);
        crate::clean_kill(&clean);
        crate::assert_threads_gone("workers-test-thread-clean");
    }

    #[test]
    fn dead_worker_is_dead_from_the_start() {
        let w = dead_worker(None);
        assert_eq!(w.tomb.state(), TombState::Dead);
        assert!(w.wait().is_ok());
        assert!(w.dead_signal().unwrap().recv().is_err());
    }

    #[test]
    fn forever_worker_ignores_kill() {
        let w = ForeverWorker::new(None);
        w.kill();
        assert_eq!(w.tomb().state(), TombState::Alive);
        assert!(w.tomb().try_result().is_none());
        w.really_kill();
        assert!(w.wait().is_ok());
    }
}

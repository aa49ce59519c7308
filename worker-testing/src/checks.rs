//! Checks that a worker is alive, or stops when killed, failing the test
//! with a message that says what was expected and what happened.
//!
//! Each check comes twice. The plain one panics on failure (the way a Rust
//! test fails), points the panic at the caller's line, and waits the fixed
//! [`KILL_TIMEOUT`] (or [`ALIVE_GRACE`]). The `try_` one takes its own
//! timeout and returns the failure as a [`CheckError`], for tests that
//! expect a failure, check from another thread, or report it their own
//! way; the plain ones are built on them, with the same messages. They
//! watch a worker through its completion capabilities
//! ([`Worker::dead_signal`], then [`Worker::on_done`]), so they need no
//! thread; every worker of this library family has them.

use std::fmt;
use std::time::Duration;

use worker_core::threads::wait_threads_gone;
use worker_core::{Error, Outcome, Worker};

/// How long [`check_killed`] and friends wait for a worker to stop before
/// failing the test. Generous on purpose: it only matters when something is
/// already wrong, and a loaded CI machine must not cause false failures.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`check_alive`] watches a worker for an unexpected end.
pub const ALIVE_GRACE: Duration = Duration::from_millis(50);

/// What watching a worker for a while showed.
enum Seen {
    Finished(Outcome),
    Running,
    /// The worker offers neither a dead signal nor completion callbacks.
    Unobservable,
}

fn watch_for<W: Worker + ?Sized>(worker: &W, timeout: Duration) -> Seen {
    if let Some(signal) = worker.dead_signal() {
        return match signal.recv_timeout(timeout) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Seen::Running,
            // Disconnected: the worker has finished; `wait` returns at once.
            _ => Seen::Finished(worker.wait()),
        };
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let registered = worker.on_done(Box::new(move |outcome: &Outcome| {
        let _ = tx.send(outcome.clone());
    }));
    if registered.is_err() {
        return Seen::Unobservable;
    }
    match rx.recv_timeout(timeout) {
        Ok(outcome) => Seen::Finished(outcome),
        Err(_) => Seen::Running,
    }
}

/// Shows an outcome the way failure messages say it.
struct Shown<'a>(&'a Outcome);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(()) => f.write_str("no error"),
            Err(e) => write!(f, "error: {e}"),
        }
    }
}

/// Why a check failed: what was expected, and what happened. Returned by
/// the `try_` checks; its text is the message the panicking checks fail
/// the test with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The worker was expected to be alive, but it ended, as shown.
    #[error("expected an alive worker; it ended with {}", Shown(.0))]
    Ended(Outcome),
    /// The worker offers neither a dead signal nor completion callbacks,
    /// so it cannot be watched for a while without leaving a thread
    /// blocked in its `wait` (only [`try_check_alive`] needs to).
    #[error(
        "check_alive needs a worker that offers Worker::dead_signal or \
         Worker::on_done (build it on worker_core::Tomb)"
    )]
    Unobservable,
    /// The worker was still running when the timeout (given) ran out.
    #[error("timed out waiting for worker to stop: still running after {0:?}")]
    StillRunning(Duration),
    /// The worker stopped, but with this error where none was expected.
    #[error("expected the worker to stop cleanly; it ended with error: {0}")]
    NotClean(Error),
    /// There was a worker where none was expected; it has been stopped.
    #[error("expected no worker, got one (it has been stopped)")]
    Unexpected,
}

/// Checks that `worker` does not end within `grace`: `Ok` if it was still
/// running then.
///
/// This cannot prove that a worker stays alive, only that it did not end
/// soon after the check started; that is what catches a worker that fails
/// at once. The worker must offer a dead signal or completion callbacks
/// (all of this library's workers do): watching another worker would need
/// a thread blocked in `wait` forever, so the check refuses it
/// ([`CheckError::Unobservable`]).
///
/// ```
/// use std::time::Duration;
/// use worker_core::Error;
/// use worker_testing::{dead_worker, error_worker, try_check_alive, CheckError};
///
/// let running = error_worker(None);
/// assert!(try_check_alive(&running, Duration::from_millis(5)).is_ok());
/// let failed = dead_worker(Some(Error::msg("boom")));
/// let err = try_check_alive(&failed, Duration::from_millis(5)).unwrap_err();
/// assert!(matches!(err, CheckError::Ended(Err(_))));
/// assert_eq!(err.to_string(), "expected an alive worker; it ended with error: boom");
/// ```
pub fn try_check_alive<W: Worker + ?Sized>(worker: &W, grace: Duration) -> Result<(), CheckError> {
    match watch_for(worker, grace) {
        Seen::Running => Ok(()),
        Seen::Finished(outcome) => Err(CheckError::Ended(outcome)),
        Seen::Unobservable => Err(CheckError::Unobservable),
    }
}

/// Fails the test if `worker` ends within [`ALIVE_GRACE`]; see
/// [`try_check_alive`] for what that shows and what it needs.
#[track_caller]
pub fn check_alive<W: Worker + ?Sized>(worker: &W) {
    if let Err(e) = try_check_alive(worker, ALIVE_GRACE) {
        panic!("{e}");
    }
}

/// Waits (up to `timeout`) for `worker` to stop, without killing it, and
/// returns how it ended; [`CheckError::StillRunning`] if it did not stop
/// in time.
///
/// A worker that offers neither a dead signal nor completion callbacks is
/// waited for on this thread with no limit; the test harness's own timeout
/// then applies.
pub fn try_check_killed<W: Worker + ?Sized>(
    worker: &W,
    timeout: Duration,
) -> Result<Outcome, CheckError> {
    match watch_for(worker, timeout) {
        Seen::Finished(outcome) => Ok(outcome),
        Seen::Running => Err(CheckError::StillRunning(timeout)),
        Seen::Unobservable => Ok(worker.wait()),
    }
}

/// Waits for `worker` to stop, without killing it, and returns how it
/// ended. Fails the test if it has not stopped within [`KILL_TIMEOUT`]
/// (see [`try_check_killed`]).
#[track_caller]
pub fn check_killed<W: Worker + ?Sized>(worker: &W) -> Result<(), Error> {
    match try_check_killed(worker, KILL_TIMEOUT) {
        Ok(outcome) => outcome,
        Err(e) => panic!("{e}"),
    }
}

/// Kills `worker`, then [`try_check_killed`].
pub fn try_check_kill<W: Worker + ?Sized>(
    worker: &W,
    timeout: Duration,
) -> Result<Outcome, CheckError> {
    worker.kill();
    try_check_killed(worker, timeout)
}

/// Kills `worker`, then [`check_killed`].
#[track_caller]
pub fn check_kill<W: Worker + ?Sized>(worker: &W) -> Result<(), Error> {
    worker.kill();
    check_killed(worker)
}

/// Kills `worker`; `Ok` if it stops within `timeout` with no error,
/// [`CheckError::NotClean`] if it stops with one.
///
/// ```
/// use std::time::Duration;
/// use worker_core::Error;
/// use worker_testing::{error_worker, try_clean_kill, CheckError};
///
/// let limit = Duration::from_secs(10);
/// assert!(try_clean_kill(&error_worker(None), limit).is_ok());
/// let err = try_clean_kill(&error_worker(Some(Error::msg("dirty"))), limit).unwrap_err();
/// assert!(matches!(err, CheckError::NotClean(_)));
/// ```
pub fn try_clean_kill<W: Worker + ?Sized>(worker: &W, timeout: Duration) -> Result<(), CheckError> {
    try_check_kill(worker, timeout)?.map_err(CheckError::NotClean)
}

/// Kills `worker` and fails the test unless it stops, in time, with no
/// error.
///
/// ```
/// use worker_testing::{clean_kill, error_worker};
///
/// clean_kill(&error_worker(None));
/// ```
#[track_caller]
pub fn clean_kill<W: Worker + ?Sized>(worker: &W) {
    if let Err(e) = try_clean_kill(worker, KILL_TIMEOUT) {
        panic!("{e}");
    }
}

/// Kills `worker`; `Ok` if it stops within `timeout`, whatever its result.
/// An error it ends with is only printed (to the test's captured output).
pub fn try_dirty_kill<W: Worker + ?Sized>(worker: &W, timeout: Duration) -> Result<(), CheckError> {
    if let Err(e) = try_check_kill(worker, timeout)? {
        eprintln!("dirty_kill: ignoring error: {e}");
    }
    Ok(())
}

/// Kills `worker` and fails the test unless it stops in time; an error it
/// ends with is only printed (to the test's captured output).
#[track_caller]
pub fn dirty_kill<W: Worker + ?Sized>(worker: &W) {
    if let Err(e) = try_dirty_kill(worker, KILL_TIMEOUT) {
        panic!("{e}");
    }
}

/// `Ok` if there is no worker; a worker that is there is stopped with
/// [`try_clean_kill`] (within `timeout`), so it does not outlive the
/// test, and the check fails with [`CheckError::Unexpected`] (or with the
/// failure of that stop).
pub fn try_check_nil_or_kill<W: Worker>(
    worker: Option<W>,
    timeout: Duration,
) -> Result<(), CheckError> {
    let Some(worker) = worker else {
        return Ok(());
    };
    eprintln!("check_nil_or_kill: stopping rogue worker...");
    try_clean_kill(&worker, timeout)?;
    Err(CheckError::Unexpected)
}

/// Fails the test if there is a worker; a worker that is there is first
/// stopped with [`clean_kill`], so it does not outlive the test.
///
/// For code that should have refused to make a worker:
///
/// ```
/// use worker_core::Error;
/// use worker_testing::{check_nil_or_kill, ErrorWorker};
///
/// fn start(ok: bool) -> Result<ErrorWorker, Error> {
///     if ok { Ok(worker_testing::error_worker(None)) } else { Err(Error::msg("refused")) }
/// }
/// check_nil_or_kill(start(false).ok());
/// ```
#[track_caller]
pub fn check_nil_or_kill<W: Worker>(worker: Option<W>) {
    if let Err(e) = try_check_nil_or_kill(worker, KILL_TIMEOUT) {
        panic!("{e}");
    }
}

/// Fails the test if any library thread whose name starts with `prefix` is
/// running now, listing them.
///
/// The check is exact: it looks once, with no grace period. Every
/// supervisor of this family promises that its threads have been joined
/// when its `wait` returns, so this is the check to make right after
/// `wait`; a grace period would hide a thread that outlives it. Name each
/// supervisor in a test uniquely and end the test with this check on that
/// name: it proves that stopping the supervisor left nothing behind.
///
/// For threads that nothing joins (a supervisor that was only killed, or
/// dropped, and not waited for), use [`assert_threads_gone_within`].
#[track_caller]
pub fn assert_threads_gone(prefix: &str) {
    let left: Vec<String> = worker_core::threads::live_threads()
        .into_iter()
        .filter(|name| name.starts_with(prefix))
        .collect();
    if !left.is_empty() {
        panic!("expected no library thread named {prefix:?}*; still running: {left:?}");
    }
}

/// Fails the test if any library thread whose name starts with `prefix` is
/// still running `timeout` from now, listing them. It waits on a condition
/// variable, never polls.
///
/// Use it only where nothing promises a join: after a supervisor has been
/// killed or dropped without anyone waiting for it. After `wait`, use the
/// exact [`assert_threads_gone`].
#[track_caller]
pub fn assert_threads_gone_within(prefix: &str, timeout: Duration) {
    if let Err(left) = wait_threads_gone(prefix, timeout) {
        panic!(
            "expected no library thread named {prefix:?}* after {timeout:?}; still running: {left:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ForeverWorker, dead_worker, error_worker};
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A worker with neither a dead signal nor callbacks: it has ended
    /// already, and counts how often it was waited for.
    #[derive(Default)]
    struct Foreign {
        waits: AtomicUsize,
    }

    impl Worker for Foreign {
        fn kill(&self) {}
        fn wait(&self) -> Result<(), Error> {
            self.waits.fetch_add(1, Ordering::SeqCst);
            Err(Error::msg("foreign"))
        }
    }

    const SHORT: Duration = Duration::from_millis(20);

    /// The message of the panic `f` raises; fails if it does not panic.
    fn panic_message(f: impl FnOnce()) -> String {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
        match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(p) => p.downcast::<&str>().map(|s| s.to_string()).unwrap(),
        }
    }

    #[test]
    fn check_alive_passes_on_a_running_worker() {
        let w = error_worker(None);
        check_alive(&w);
        assert!(w.tomb().is_alive());
        clean_kill(&w);
    }

    #[test]
    fn check_alive_fails_on_a_finished_worker_saying_how_it_ended() {
        let msg = panic_message(|| check_alive(&dead_worker(Some(Error::msg("boom")))));
        assert_eq!(msg, "expected an alive worker; it ended with error: boom");
        let msg = panic_message(|| check_alive(&dead_worker(None)));
        assert_eq!(msg, "expected an alive worker; it ended with no error");
    }

    #[test]
    fn check_alive_refuses_a_worker_it_cannot_watch() {
        let w = Foreign::default();
        let msg = panic_message(|| check_alive(&w));
        assert_eq!(
            msg,
            "check_alive needs a worker that offers Worker::dead_signal or \
             Worker::on_done (build it on worker_core::Tomb)"
        );
        assert_eq!(w.waits.load(Ordering::SeqCst), 0, "it never waited");
    }

    #[test]
    fn check_alive_notices_a_worker_without_dead_signal() {
        // Only on_done: a worker that wraps a Tomb but hides its signal.
        struct CallbackOnly(worker_core::Tomb);
        impl Worker for CallbackOnly {
            fn kill(&self) {
                self.0.kill(None);
                self.0.done(Ok(()));
            }
            fn wait(&self) -> Result<(), Error> {
                self.0.wait()
            }
            fn on_done(
                &self,
                callback: worker_core::DoneCallback,
            ) -> Result<(), worker_core::DoneCallback> {
                Worker::on_done(&self.0, callback)
            }
        }
        let w = CallbackOnly(worker_core::Tomb::new());
        check_alive(&w);
        w.0.done(Err(Error::msg("late")));
        let msg = panic_message(|| check_alive(&w));
        assert_eq!(msg, "expected an alive worker; it ended with error: late");
    }

    #[test]
    fn check_killed_returns_the_workers_result() {
        let w = error_worker(Some(Error::msg("on kill")));
        w.kill();
        assert_eq!(check_killed(&w).unwrap_err().to_string(), "on kill");
        assert!(check_kill(&error_worker(None)).is_ok());
    }

    #[test]
    fn try_check_killed_fails_on_a_worker_that_does_not_stop_in_time() {
        let w = ForeverWorker::new(None);
        let err = try_check_kill(&w, SHORT).unwrap_err();
        assert!(matches!(err, CheckError::StillRunning(d) if d == SHORT));
        assert_eq!(
            err.to_string(),
            "timed out waiting for worker to stop: still running after 20ms"
        );
        let err = try_dirty_kill(&w, SHORT).unwrap_err();
        assert!(matches!(err, CheckError::StillRunning(_)));
        w.really_kill();
        assert!(try_check_killed(&w, SHORT).unwrap().is_ok());
        assert!(check_killed(&w).is_ok());
    }

    #[test]
    fn check_killed_waits_for_an_unwatchable_worker_with_wait() {
        let w = Foreign::default();
        assert_eq!(check_killed(&w).unwrap_err().to_string(), "foreign");
        let outcome = try_check_killed(&w, SHORT).unwrap();
        assert_eq!(outcome.unwrap_err().to_string(), "foreign");
        assert_eq!(w.waits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn try_check_alive_says_how_a_worker_ended_or_why_it_cannot_tell() {
        let running = error_worker(None);
        assert!(try_check_alive(&running, SHORT).is_ok());
        clean_kill(&running);
        let ended = try_check_alive(&running, SHORT).unwrap_err();
        assert!(matches!(ended, CheckError::Ended(Ok(()))), "{ended:?}");
        let failed = try_check_alive(&dead_worker(Some(Error::msg("boom"))), SHORT);
        assert!(matches!(failed, Err(CheckError::Ended(Err(e))) if e.to_string() == "boom"));
        let foreign = try_check_alive(&Foreign::default(), SHORT);
        assert!(matches!(foreign, Err(CheckError::Unobservable)));
    }

    #[test]
    fn try_clean_and_dirty_kill_tell_a_clean_stop_from_an_error() {
        assert!(try_clean_kill(&error_worker(None), SHORT).is_ok());
        let dirty = error_worker(Some(Error::msg("dirty")));
        let err = try_clean_kill(&dirty, SHORT).unwrap_err();
        assert!(matches!(&err, CheckError::NotClean(e) if e.to_string() == "dirty"));
        assert_eq!(
            err.to_string(),
            "expected the worker to stop cleanly; it ended with error: dirty"
        );
        let dirty = error_worker(Some(Error::msg("dirty")));
        assert!(try_dirty_kill(&dirty, SHORT).is_ok());
        assert!(!dirty.tomb().is_alive());
    }

    #[test]
    fn try_check_nil_or_kill_stops_a_rogue_worker_and_fails() {
        assert!(try_check_nil_or_kill(None::<crate::ErrorWorker>, SHORT).is_ok());
        let w = error_worker(None);
        let tomb = w.tomb().clone();
        let err = try_check_nil_or_kill(Some(w), SHORT).unwrap_err();
        assert!(matches!(err, CheckError::Unexpected));
        assert!(tomb.try_result().unwrap().is_ok(), "stopped");
        // A rogue worker that fails to stop cleanly reports that first.
        let w = error_worker(Some(Error::msg("dirty")));
        let err = try_check_nil_or_kill(Some(w), SHORT).unwrap_err();
        assert!(matches!(err, CheckError::NotClean(_)));
    }

    #[test]
    fn clean_kill_fails_on_an_error_and_dirty_kill_does_not() {
        let msg = panic_message(|| clean_kill(&error_worker(Some(Error::msg("dirty")))));
        assert_eq!(
            msg,
            "expected the worker to stop cleanly; it ended with error: dirty"
        );
        let w = error_worker(Some(Error::msg("dirty")));
        dirty_kill(&w);
        assert!(!w.tomb().is_alive());
    }

    #[test]
    fn check_nil_or_kill_stops_and_fails_on_a_worker() {
        check_nil_or_kill(None::<crate::ErrorWorker>);
        let w = error_worker(None);
        let tomb = w.tomb().clone();
        let msg = panic_message(|| check_nil_or_kill(Some(w)));
        assert_eq!(msg, "expected no worker, got one (it has been stopped)");
        assert!(tomb.try_result().unwrap().is_ok());
    }

    #[test]
    fn threads_gone_names_the_survivors() {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let handle = worker_core::threads::spawn_named("checks-test-survivor".into(), move || {
            let _ = rx.recv();
        })
        .unwrap();
        let msg = panic_message(|| {
            assert_threads_gone_within("checks-test-surv", Duration::from_millis(5))
        });
        assert_eq!(
            msg,
            "expected no library thread named \"checks-test-surv\"* after 5ms; still running: [\"checks-test-survivor\"]"
        );
        let msg = panic_message(|| assert_threads_gone("checks-test-surv"));
        assert_eq!(
            msg,
            "expected no library thread named \"checks-test-surv\"*; still running: [\"checks-test-survivor\"]"
        );
        drop(tx);
        assert_threads_gone_within("checks-test-surv", KILL_TIMEOUT);
        handle.join().unwrap();
        assert_threads_gone("checks-test-surv");
    }
}

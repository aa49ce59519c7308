//! Checks that a worker is alive, or stops when killed, failing the test
//! with a message that says what was expected and what happened.
//!
//! Each check panics on failure (the way a Rust test fails) and points the
//! panic at the caller's line. They watch a worker through its completion
//! capabilities ([`Worker::dead_signal`], then [`Worker::on_done`]), so
//! they need no thread; every worker of this library family has them.

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

/// Fails the test if `worker` ends within [`ALIVE_GRACE`].
///
/// This cannot prove that a worker stays alive, only that it did not end
/// soon after the check started; that is what catches a worker that fails
/// at once. The worker must offer a dead signal or completion callbacks
/// (all of this library's workers do): watching another worker would need
/// a thread blocked in `wait` forever, so the check refuses it.
#[track_caller]
pub fn check_alive<W: Worker + ?Sized>(worker: &W) {
    match watch_for(worker, ALIVE_GRACE) {
        Seen::Running => {}
        Seen::Finished(outcome) => {
            panic!(
                "expected an alive worker; it ended with {}",
                Shown(&outcome)
            )
        }
        Seen::Unobservable => panic!(
            "check_alive needs a worker that offers Worker::dead_signal or \
             Worker::on_done (build it on worker_core::Tomb)"
        ),
    }
}

/// Waits for `worker` to stop, without killing it, and returns how it
/// ended. Fails the test if it has not stopped within [`KILL_TIMEOUT`].
///
/// A worker that offers neither a dead signal nor completion callbacks is
/// waited for on this thread with no limit; the test harness's own timeout
/// then applies.
#[track_caller]
pub fn check_killed<W: Worker + ?Sized>(worker: &W) -> Result<(), Error> {
    killed_within(worker, KILL_TIMEOUT)
}

#[track_caller]
fn killed_within<W: Worker + ?Sized>(worker: &W, timeout: Duration) -> Result<(), Error> {
    match watch_for(worker, timeout) {
        Seen::Finished(outcome) => outcome,
        Seen::Running => {
            panic!("timed out waiting for worker to stop: still running after {timeout:?}")
        }
        Seen::Unobservable => worker.wait(),
    }
}

/// Kills `worker`, then [`check_killed`].
#[track_caller]
pub fn check_kill<W: Worker + ?Sized>(worker: &W) -> Result<(), Error> {
    worker.kill();
    check_killed(worker)
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
    if let Err(e) = check_kill(worker) {
        panic!("expected the worker to stop cleanly; it ended with error: {e}");
    }
}

/// Kills `worker` and fails the test unless it stops in time; an error it
/// ends with is only printed (to the test's captured output).
#[track_caller]
pub fn dirty_kill<W: Worker + ?Sized>(worker: &W) {
    if let Err(e) = check_kill(worker) {
        eprintln!("dirty_kill: ignoring error: {e}");
    }
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
    if let Some(worker) = worker {
        eprintln!("check_nil_or_kill: stopping rogue worker...");
        clean_kill(&worker);
        panic!("expected no worker, got one (it has been stopped)");
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
    use crate::{ForeverWorker, MockWorker, dead_worker, error_worker};
    use std::panic::{AssertUnwindSafe, catch_unwind};

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
        let w = MockWorker::new();
        let msg = panic_message(|| check_alive(&w));
        assert!(
            msg.starts_with("check_alive needs a worker that offers"),
            "{msg}"
        );
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
    fn check_killed_fails_on_a_worker_that_does_not_stop() {
        let w = ForeverWorker::new(None);
        w.kill();
        let msg = panic_message(|| {
            let _ = killed_within(&w, Duration::from_millis(20));
        });
        assert_eq!(
            msg,
            "timed out waiting for worker to stop: still running after 20ms"
        );
        w.really_kill();
        assert!(check_killed(&w).is_ok());
    }

    #[test]
    fn check_killed_waits_for_an_unwatchable_worker_with_wait() {
        let mut w = MockWorker::new();
        w.expect_wait()
            .times(1)
            .returning(|| Err(Error::msg("mocked")));
        assert_eq!(check_killed(&w).unwrap_err().to_string(), "mocked");
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

//! Stopping with a deadline: what a supervisor's `stop_within` returns
//! ([`StopError`], [`StopTimedOut`], [`Straggler`]) and the wait it is
//! built on ([`wait_within`]).
//!
//! `stop(&w)` (kill, then wait) waits as long as the worker takes, and a
//! worker that ignores its kill (a thread stuck in a call that never
//! returns) makes that forever. A service that must exit within its
//! orchestrator's grace period, or a test that must fail instead of
//! hanging, wants a bound. Rust cannot force a thread, so a bound cannot
//! mean "and then it is gone"; it means "and then you are told what is
//! still running". That is what the supervisors' `stop_within(timeout)`
//! does: kill, wait up to `timeout` on the supervisor's
//! [`Clock`], and past it fail with [`StopTimedOut`],
//! which names the workers still running.
//!
//! # What happens to the workers still running
//!
//! Nothing new: the deadline ends the caller's wait, not the shutdown.
//! They stay killed, the supervisor goes on waiting for them, and a later
//! [`wait`](crate::Worker::wait) (or another `stop_within`) returns once
//! they have ended. Workers that can be forced (an async task:
//! [`Worker::abortable`]) are forced as their
//! supervisor's shutdown policy says (a runner's `Shutdown`), whether or
//! not anyone called `stop_within`; a thread cannot be. A process that
//! gives up on them can exit: the threads go with it.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crossbeam_channel::select;

use crate::{Clock, Error, PRACTICALLY_NEVER, Worker, WorkerState, WouldDeadlock};

/// Why a supervisor's `stop_within` returned something other than `Ok`.
///
/// Converts into [`Error`] with `?`; match on it to tell a timeout (the
/// supervisor is still stopping) from a supervisor that stopped with an
/// error.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StopError {
    /// The supervisor stopped within the deadline, and this is its error:
    /// what [`wait`](crate::Worker::wait) returns.
    Failed(Error),
    /// The deadline passed first; the supervisor is still stopping (see
    /// the error for what it waits for, and the [module docs](self) for
    /// what becomes of it).
    TimedOut(StopTimedOut),
    /// The call was made on one of the supervisor's own threads, which
    /// it must see return before it can stop: it would wait for itself.
    /// The supervisor was killed all the same.
    WouldDeadlock(WouldDeadlock),
}

impl StopError {
    /// The supervisor's own error, if it stopped with one in time.
    pub fn failed(&self) -> Option<&Error> {
        match self {
            StopError::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The timeout's details, if the deadline passed.
    pub fn timed_out(&self) -> Option<&StopTimedOut> {
        match self {
            StopError::TimedOut(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for StopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopError::Failed(e) => fmt::Display::fmt(e.as_std(), f),
            StopError::TimedOut(e) => fmt::Display::fmt(e, f),
            StopError::WouldDeadlock(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// The specific error is the source, so `is` finds it through `?` (for
/// [`StopError::Failed`], the supervisor's error and its chain).
impl StdError for StopError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(match self {
            StopError::Failed(e) => e.as_std(),
            StopError::TimedOut(e) => e,
            StopError::WouldDeadlock(e) => e,
        })
    }
}

/// A supervisor did not stop within the deadline. It was killed and goes
/// on stopping; a later `wait` returns once it has (see the
/// [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopTimedOut {
    /// The supervisor's name.
    pub supervisor: String,
    /// How long the caller waited.
    pub timeout: Duration,
    /// The workers (ids, manifold names) it was still waiting for when
    /// the deadline passed, by name.
    pub waiting_for: Vec<Straggler>,
    /// Workers it was still waiting for and cannot name (a catacomb's
    /// bound workers).
    pub unnamed: usize,
}

impl fmt::Display for StopTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} did not stop within {:?}: ",
            self.supervisor, self.timeout
        )?;
        let mut parts: Vec<String> = self.waiting_for.iter().map(|s| s.to_string()).collect();
        if self.unnamed > 0 {
            parts.push(format!("{} unnamed worker(s)", self.unnamed));
        }
        if parts.is_empty() {
            // Every worker has ended; what is left is letting go of them.
            f.write_str("every worker has ended; still letting go of them (a wait or Drop, a hook)")
        } else {
            write!(f, "waiting for {}", parts.join(", "))
        }
    }
}

impl StdError for StopTimedOut {}

/// A worker a stopping supervisor still waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Straggler {
    /// Its id, or manifold name (for a catacomb's work: `"work"`).
    pub name: String,
    /// Where it is: [`Stopping`](WorkerState::Stopping) (killed, not
    /// finished), [`Starting`](WorkerState::Starting) (its start function
    /// has not returned; it is killed when it does), or
    /// [`Started`](WorkerState::Started) (not asked to stop yet: an
    /// ordered shutdown stops the workers that depend on it, or that
    /// started after it, first).
    pub state: WorkerState,
    /// How long ago it was asked to stop, when the supervisor knows.
    pub stopping_for: Option<Duration>,
    /// Whether it outlived its stop timeout and was reported stuck.
    pub stuck: bool,
    /// Whether the supervisor forced it
    /// ([`Worker::abortable`]); it still has to
    /// end.
    pub forced: bool,
}

impl fmt::Display for Straggler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({}", self.name, self.state)?;
        if let Some(d) = self.stopping_for {
            write!(f, " for {d:?}")?;
        }
        if self.forced {
            f.write_str(", forced")?;
        } else if self.stuck {
            f.write_str(", stuck")?;
        }
        f.write_str(")")
    }
}

/// Waits for `worker` to finish, for at most `timeout` by `clock`:
/// `Some` of what [`wait`](Worker::wait) returns if it finished in time,
/// `None` if the timeout passed first. A timeout of
/// [`PRACTICALLY_NEVER`] or more (`Duration::MAX`) is no timeout: it is
/// [`wait`](Worker::wait); a zero timeout only looks (and arms no timer).
/// Kills nothing.
///
/// It watches the worker's [`dead_signal`](Worker::dead_signal), or, for a
/// worker that has none, its completion callback
/// ([`dead`](crate::dead)), and the clock's timer, so a test on a fake
/// clock moves time instead of sleeping.
///
/// ```
/// use std::time::Duration;
/// use worker_core::{wait_within, Passive, WallClock, Worker};
///
/// let lease = Passive::new();
/// assert!(wait_within(&lease, &WallClock, Duration::ZERO).is_none()); // still running
/// lease.kill();
/// assert!(wait_within(&lease, &WallClock, Duration::MAX).unwrap().is_ok());
/// ```
pub fn wait_within<W: Worker + ?Sized>(
    worker: &W,
    clock: &dyn Clock,
    timeout: Duration,
) -> Option<Result<(), Error>> {
    if timeout >= PRACTICALLY_NEVER {
        return Some(worker.wait());
    }
    let dead = crate::dead(worker);
    if dead.try_recv().is_err_and(|e| e.is_disconnected()) {
        return Some(worker.wait());
    }
    if timeout.is_zero() {
        return None;
    }
    let timer = clock.timer(timeout);
    select! {
        recv(dead) -> _ => Some(worker.wait()),
        recv(timer) -> _ => {
            // Finished at the same moment: the end wins.
            match dead.try_recv() {
                Err(e) if e.is_disconnected() => Some(worker.wait()),
                _ => None,
            }
        }
    }
}

/// The wait of a supervisor's `stop_within`, once it has killed it:
/// [`wait_within`], and past the timeout a [`StopTimedOut`] naming what
/// `stragglers` says the supervisor still waits for (named, and how many
/// it cannot name). A supervisor that finishes while the list is made
/// returns its result instead.
pub fn wait_naming_stragglers<W: Worker + ?Sized>(
    supervisor: &W,
    name: &str,
    clock: &dyn Clock,
    timeout: Duration,
    stragglers: impl FnOnce() -> (Vec<Straggler>, usize),
) -> Result<(), StopError> {
    if let Some(result) = wait_within(supervisor, clock, timeout) {
        return result.map_err(StopError::Failed);
    }
    let (waiting_for, unnamed) = stragglers();
    if let Some(result) = wait_within(supervisor, clock, Duration::ZERO) {
        return result.map_err(StopError::Failed);
    }
    Err(StopError::TimedOut(StopTimedOut {
        supervisor: name.to_owned(),
        timeout,
        waiting_for,
        unnamed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Passive, WallClock};

    #[test]
    fn a_timeout_names_every_straggler() {
        let e = StopTimedOut {
            supervisor: "svc".into(),
            timeout: Duration::from_secs(2),
            waiting_for: vec![
                Straggler {
                    name: "db".into(),
                    state: WorkerState::Stopping,
                    stopping_for: Some(Duration::from_secs(2)),
                    stuck: true,
                    forced: false,
                },
                Straggler {
                    name: "cache".into(),
                    state: WorkerState::Started,
                    stopping_for: None,
                    stuck: false,
                    forced: false,
                },
            ],
            unnamed: 3,
        };
        assert_eq!(
            e.to_string(),
            "\"svc\" did not stop within 2s: waiting for \"db\" (stopping for 2s, stuck), \
             \"cache\" (started), 3 unnamed worker(s)"
        );
        let err = Error::new(StopError::TimedOut(e));
        assert!(err.is::<StopTimedOut>());
        let failed = Error::new(StopError::Failed(Error::new(crate::NotFound::new("x"))));
        assert!(failed.is::<crate::NotFound>());
        assert_eq!(failed.to_string(), "worker \"x\" not found");
    }

    #[test]
    fn wait_within_gives_the_result_or_none() {
        let lease = Passive::new();
        assert!(wait_within(&lease, &WallClock, Duration::ZERO).is_none());
        lease.finish(Err(Error::msg("gone")));
        let result = wait_within(&lease, &WallClock, Duration::from_secs(10));
        assert_eq!(result.unwrap().unwrap_err().to_string(), "gone");
    }
}

//! Readiness waiters, as a supervisor's loop keeps them: the callers of
//! `wait_ready` (see [`crate::ready`] for the rules they see), each
//! waiting for a set of names, answered when the loop registers the last
//! start they wait for.
//!
//! [`ReadyWaiters`] is a pure table, like [`Timers`]: no thread, channel
//! or clock. The supervisor resolves what a caller asks for against its
//! own state ([`resolve`]), registers the names that have not started
//! ([`ReadyWaiters::wait`]), and tells the table what happens to names:
//! a start registered ([`started`](ReadyWaiters::started)), a name gone
//! ([`gone`](ReadyWaiters::gone)), the supervisor shutting down
//! ([`stopped`](ReadyWaiters::stopped)), time passing
//! ([`tick`](ReadyWaiters::tick), with its deadlines among the
//! supervisor's: [`next_deadline`](ReadyWaiters::next_deadline)). Each
//! answer goes out through a callback, with the caller's reply, for the
//! supervisor to send.
//!
//! Costs: a start or a removal costs one hash lookup while anyone waits,
//! and nothing at all (an emptiness check) while nobody does; answering
//! costs time in proportion to the waiters of that name.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{AsyncCall, Call, CallError, Handle, Reply, Timers};
use crate::ready::{ReadyError, ReadyTimedOut, SupervisorStopped};
use crate::{
    AbortSignal, Aborted, Error, Names, NotFound, PRACTICALLY_NEVER, WouldDeadlock, deadline,
};

/// What a readiness wait ends with.
pub type ReadyAnswer = Result<(), ReadyError>;

/// Identifies one waiting caller (unique among the supervisor's waiters),
/// so an aborted caller can withdraw.
pub type WaiterId = u64;

/// Where a name stands, as the supervisor tells [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameState {
    /// A worker of it runs (a start has registered).
    Started,
    /// Known and not started: starting, waiting to (re)start, or waiting
    /// for its inputs.
    NotStarted,
    /// Not known, or on its way out (asked to stop, being removed).
    Unknown,
}

/// The names of `names` that have not started, looked up with `state`
/// (for [`Names::Only`]) or given by `all` (for [`Names::All`]: every
/// known name that is not started and not on its way out). Fails with
/// [`NotFound`] for the first unknown name, in the caller's order.
pub fn resolve(
    names: &Names,
    state: impl Fn(&str) -> NameState,
    all: impl FnOnce() -> Vec<Arc<str>>,
) -> Result<Vec<Arc<str>>, NotFound> {
    let names = match names {
        Names::All => return Ok(all()),
        Names::Only(names) => names,
    };
    let mut pending: Vec<Arc<str>> = Vec::new();
    for name in names {
        match state(name) {
            NameState::Started => {}
            NameState::NotStarted => {
                if !pending.iter().any(|p| **p == **name) {
                    pending.push(Arc::from(name.as_str()));
                }
            }
            NameState::Unknown => return Err(NotFound::new(name.as_str())),
        }
    }
    Ok(pending)
}

struct Waiter<R> {
    reply: R,
    /// The names it waits for that have not started yet.
    not_started: Vec<Arc<str>>,
    timeout: Duration,
}

/// The readiness waiters of one supervisor; see the [module docs](self).
/// `R` is where an answer goes (a reply channel, or a plain number in a
/// machine's tests).
pub struct ReadyWaiters<R> {
    waiters: HashMap<WaiterId, Waiter<R>>,
    /// For each name, the waiters that wait for it.
    by_name: HashMap<Arc<str>, Vec<WaiterId>>,
    deadlines: Timers<WaiterId>,
}

impl<R> Default for ReadyWaiters<R> {
    fn default() -> Self {
        ReadyWaiters {
            waiters: HashMap::new(),
            by_name: HashMap::new(),
            deadlines: Timers::new(),
        }
    }
}

impl<R> ReadyWaiters<R> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// How many callers wait.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Registers caller `waiter`, waiting for `not_started` (as
    /// [`resolve`] gave them) for at most `timeout` from `now`. Returns
    /// the answer at once, with the reply, when there is nothing to wait
    /// for (or a zero timeout to wait it); `None` when the caller waits.
    /// A timeout of [`PRACTICALLY_NEVER`] or more sets no deadline.
    pub fn wait(
        &mut self,
        waiter: WaiterId,
        not_started: Vec<Arc<str>>,
        timeout: Duration,
        now: Instant,
        reply: R,
    ) -> Option<(R, ReadyAnswer)> {
        if not_started.is_empty() {
            return Some((reply, Ok(())));
        }
        if timeout.is_zero() {
            return Some((reply, Err(timed_out(timeout, &not_started))));
        }
        for name in &not_started {
            self.by_name.entry(name.clone()).or_default().push(waiter);
        }
        if timeout < PRACTICALLY_NEVER {
            self.deadlines.set(waiter, deadline(now, timeout));
        }
        self.waiters.insert(
            waiter,
            Waiter {
                reply,
                not_started,
                timeout,
            },
        );
        None
    }

    /// A start of `name` registered: the callers for whom it was the last
    /// name get `Ok`.
    pub fn started(&mut self, name: &str, mut answer: impl FnMut(R, ReadyAnswer)) {
        if self.by_name.is_empty() {
            return;
        }
        let Some(ids) = self.by_name.remove(name) else {
            return;
        };
        for id in ids {
            let Some(waiter) = self.waiters.get_mut(&id) else {
                continue;
            };
            waiter.not_started.retain(|n| **n != *name);
            if waiter.not_started.is_empty() {
                let waiter = self.waiters.remove(&id).expect("looked up above");
                self.deadlines.cancel(&id);
                answer(waiter.reply, Ok(()));
            }
        }
    }

    /// `name` went away before it started (stopped, removed,
    /// uninstalled, ended for good): its callers fail with [`NotFound`].
    pub fn gone(&mut self, name: &str, mut answer: impl FnMut(R, ReadyAnswer)) {
        if self.by_name.is_empty() {
            return;
        }
        let Some(ids) = self.by_name.remove(name) else {
            return;
        };
        for id in ids {
            if let Some(waiter) = self.withdraw(id) {
                answer(waiter.reply, Err(ReadyError::NotFound(NotFound::new(name))));
            }
        }
    }

    /// The supervisor is shutting down: every caller fails with
    /// [`ReadyError::Stopped`], with the supervisor's error so far.
    pub fn stopped(&mut self, error: Option<Error>, mut answer: impl FnMut(R, ReadyAnswer)) {
        self.by_name.clear();
        self.deadlines = Timers::new();
        for (_, waiter) in self.waiters.drain() {
            let error = ReadyError::Stopped(SupervisorStopped {
                not_started: sorted(&waiter.not_started),
                error: error.clone(),
            });
            answer(waiter.reply, Err(error));
        }
    }

    /// An aborted caller withdraws; its reply comes back (to be dropped).
    pub fn cancel(&mut self, waiter: WaiterId) -> Option<R> {
        self.withdraw(waiter).map(|w| w.reply)
    }

    /// The earliest deadline of a waiting caller.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    /// Time has passed: the callers whose timeout is over fail with
    /// [`ReadyError::TimedOut`], naming what had not started.
    pub fn tick(&mut self, now: Instant, mut answer: impl FnMut(R, ReadyAnswer)) {
        while let Some((id, _)) = self.deadlines.pop_due(now) {
            if let Some(waiter) = self.withdraw(id) {
                let error = timed_out(waiter.timeout, &waiter.not_started);
                answer(waiter.reply, Err(error));
            }
        }
    }

    /// Takes `id` out of every index.
    fn withdraw(&mut self, id: WaiterId) -> Option<Waiter<R>> {
        let waiter = self.waiters.remove(&id)?;
        self.deadlines.cancel(&id);
        for name in &waiter.not_started {
            if let Some(ids) = self.by_name.get_mut(name) {
                ids.retain(|&w| w != id);
                if ids.is_empty() {
                    self.by_name.remove(name);
                }
            }
        }
        Some(waiter)
    }
}

impl<R> std::fmt::Debug for ReadyWaiters<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyWaiters")
            .field("waiters", &self.waiters.len())
            .field("names", &self.by_name.len())
            .finish()
    }
}

fn sorted(names: &[Arc<str>]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    names
}

fn timed_out(timeout: Duration, not_started: &[Arc<str>]) -> ReadyError {
    ReadyError::TimedOut(ReadyTimedOut {
        timeout,
        not_started: sorted(not_started),
    })
}

/// A readiness request as a supervisor's loop receives it: what to wait
/// for, the caller's id, its timeout, and where the answer goes. The
/// supervisor wraps it in its own event type.
#[derive(Debug)]
pub struct ReadyRequest {
    /// The names (or all).
    pub which: Box<Names>,
    /// The caller, to withdraw it if it gives up.
    pub waiter: WaiterId,
    /// How long it waits at most.
    pub timeout: Duration,
    /// Where the answer goes (acknowledge it if the caller waits).
    pub reply: Reply<ReadyAnswer>,
}

/// The caller's side of `wait_ready`, the same for every supervisor that
/// runs on the [driver](super::start): how to reach the loop, and which
/// worker's start function the calling thread runs, if any.
#[derive(Debug)]
pub struct ReadyCaller<'a, E: Send + 'static> {
    /// The supervisor.
    pub handle: &'a Handle<E>,
    /// The worker (or manifold) whose start function this thread runs for
    /// this supervisor: waiting for it would wait for itself.
    pub own_start: Option<Arc<str>>,
    /// Wraps a request in the supervisor's event type.
    pub request: fn(ReadyRequest) -> E,
    /// Wraps a withdrawal (an aborted caller) in the supervisor's event
    /// type.
    pub cancel: fn(WaiterId) -> E,
}

/// Numbers readiness callers, unique in the process.
static NEXT_WAITER: AtomicU64 = AtomicU64::new(0);

impl<E: Send + 'static> ReadyCaller<'_, E> {
    /// Sends the request and blocks for the answer (see `wait_ready` on
    /// the runner or the engine).
    pub fn wait(self, which: Names, timeout: Duration, abort: Option<&AbortSignal>) -> ReadyAnswer {
        self.not_waiting_for_own_start(&which)?;
        let (call, reply) = Call::new();
        let waiter = self.send(&which, timeout, reply)?;
        let abort = abort.map(AbortSignal::receiver);
        let answer = call.wait_or_abort(abort.as_ref());
        self.answered(&which, waiter, answer)
    }

    /// [`wait`](Self::wait) as a future: no thread waits; the loop's
    /// answer (or the abort signal) wakes the task.
    pub async fn wait_async(
        self,
        which: Names,
        timeout: Duration,
        abort: Option<&AbortSignal>,
    ) -> ReadyAnswer {
        self.not_waiting_for_own_start(&which)?;
        let (call, reply) = AsyncCall::new(abort);
        let waiter = self.send(&which, timeout, reply)?;
        let answer = call.await;
        self.answered(&which, waiter, answer)
    }

    fn not_waiting_for_own_start(&self, which: &Names) -> ReadyAnswer {
        let Some(own) = &self.own_start else {
            return Ok(());
        };
        let includes = match which {
            Names::All => true,
            Names::Only(names) => names.iter().any(|n| **n == **own),
        };
        if includes {
            return Err(ReadyError::WouldDeadlock(WouldDeadlock {
                supervisor: self.handle.name().to_string(),
                call: "wait_ready",
            }));
        }
        Ok(())
    }

    fn send(
        &self,
        which: &Names,
        timeout: Duration,
        reply: Reply<ReadyAnswer>,
    ) -> Result<WaiterId, ReadyError> {
        let waiter = NEXT_WAITER.fetch_add(1, Ordering::Relaxed);
        let request = ReadyRequest {
            which: Box::new(which.clone()),
            waiter,
            timeout,
            reply,
        };
        match self.handle.send((self.request)(request)) {
            Ok(()) => Ok(waiter),
            // Refused events are dropped here, off the loop.
            Err(_) => Err(self.finished_before(which)),
        }
    }

    fn answered(
        &self,
        which: &Names,
        waiter: WaiterId,
        answer: Result<ReadyAnswer, CallError>,
    ) -> ReadyAnswer {
        match answer {
            Ok(answer) => answer,
            // The loop dropped the request: it ended before it could say.
            Err(CallError::Closed) => Err(self.finished_before(which)),
            Err(CallError::Aborted) => {
                let _ = self.handle.send((self.cancel)(waiter));
                Err(ReadyError::Aborted(Aborted))
            }
        }
    }

    /// The supervisor has finished (or is finishing): nothing starts any
    /// more; its error, if it is known yet.
    fn finished_before(&self, which: &Names) -> ReadyError {
        let error = self.handle.tomb().try_result().and_then(Result::err);
        stopped_before(which, error)
    }
}

/// The answer to a request that arrives while the supervisor stops:
/// [`ReadyError::Stopped`], naming what was asked for (nothing, for
/// [`Names::All`]), with the supervisor's `error` so far.
pub fn stopped_before(which: &Names, error: Option<Error>) -> ReadyError {
    let mut not_started = match which {
        Names::All => Vec::new(),
        Names::Only(names) => names.clone(),
    };
    not_started.sort();
    not_started.dedup();
    ReadyError::Stopped(SupervisorStopped { not_started, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<Arc<str>> {
        list.iter().map(|n| Arc::from(*n)).collect()
    }

    type Answers = Vec<(u32, ReadyAnswer)>;

    fn collect(answers: &mut Answers) -> impl FnMut(u32, ReadyAnswer) + '_ {
        |to, answer| answers.push((to, answer))
    }

    #[test]
    fn a_waiter_is_answered_when_its_last_name_starts() {
        let now = Instant::now();
        let mut table = ReadyWaiters::new();
        assert!(
            table
                .wait(1, names(&["a", "b"]), Duration::MAX, now, 10)
                .is_none()
        );
        assert!(
            table
                .wait(2, names(&["b"]), Duration::from_secs(1), now, 20)
                .is_none()
        );
        let mut answers = Vec::new();
        table.started("a", collect(&mut answers));
        assert!(answers.is_empty(), "1 still waits for b");
        table.started("b", collect(&mut answers));
        let mut who: Vec<u32> = answers
            .iter()
            .map(|(to, a)| {
                assert!(a.is_ok());
                *to
            })
            .collect();
        who.sort();
        assert_eq!(who, [10, 20]);
        assert!(table.is_empty());
        assert_eq!(
            table.next_deadline(),
            None,
            "deadlines go with their waiters"
        );
    }

    #[test]
    fn nothing_to_wait_for_or_no_time_answers_at_once() {
        let now = Instant::now();
        let mut table = ReadyWaiters::new();
        let (to, answer) = table.wait(1, Vec::new(), Duration::ZERO, now, 7).unwrap();
        assert_eq!(to, 7);
        assert!(answer.is_ok());
        let (_, answer) = table
            .wait(2, names(&["b", "a"]), Duration::ZERO, now, 8)
            .unwrap();
        assert_eq!(answer.unwrap_err().not_started(), ["a", "b"]);
        assert!(table.is_empty());
    }

    #[test]
    fn timeouts_name_what_had_not_started() {
        let now = Instant::now();
        let mut table = ReadyWaiters::new();
        table.wait(1, names(&["x", "y"]), Duration::from_secs(5), now, 1);
        table.wait(2, names(&["y"]), Duration::MAX, now, 2);
        let mut answers = Vec::new();
        table.started("x", collect(&mut answers));
        assert_eq!(table.next_deadline(), Some(now + Duration::from_secs(5)));
        table.tick(now + Duration::from_secs(4), collect(&mut answers));
        assert!(answers.is_empty());
        table.tick(now + Duration::from_secs(5), collect(&mut answers));
        assert_eq!(answers.len(), 1);
        let (to, answer) = answers.pop().unwrap();
        assert_eq!(to, 1);
        match answer.unwrap_err() {
            ReadyError::TimedOut(e) => {
                assert_eq!(e.not_started, ["y"]);
                assert_eq!(e.timeout, Duration::from_secs(5));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(table.len(), 1, "the one without a deadline waits on");
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn a_name_that_goes_fails_its_waiters_and_only_them() {
        let now = Instant::now();
        let mut table = ReadyWaiters::new();
        table.wait(1, names(&["a", "b"]), Duration::MAX, now, 1);
        table.wait(2, names(&["b"]), Duration::MAX, now, 2);
        let mut answers = Vec::new();
        table.gone("a", collect(&mut answers));
        assert_eq!(answers.len(), 1);
        assert!(matches!(&answers[0], (1, Err(ReadyError::NotFound(e))) if e.id == "a"));
        answers.clear();
        table.started("b", collect(&mut answers));
        assert!(matches!(answers[..], [(2, Ok(()))]), "1 left b's index too");
    }

    #[test]
    fn shutdown_and_cancel_empty_the_table() {
        let now = Instant::now();
        let mut table = ReadyWaiters::new();
        table.wait(1, names(&["a"]), Duration::from_secs(1), now, 1);
        table.wait(2, names(&["b", "a"]), Duration::from_secs(1), now, 2);
        assert_eq!(table.cancel(1), Some(1));
        assert_eq!(table.cancel(1), None);
        let mut answers = Vec::new();
        let cause = Error::msg("fatal");
        table.stopped(Some(cause.clone()), collect(&mut answers));
        match &answers[..] {
            [(2, Err(ReadyError::Stopped(e)))] => {
                assert_eq!(e.not_started, ["a", "b"]);
                assert!(e.error.as_ref().unwrap().same(&cause));
            }
            other => panic!("{other:?}"),
        }
        assert!(table.is_empty());
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn resolve_checks_names_and_skips_the_started() {
        let state = |name: &str| match name {
            "up" => NameState::Started,
            "down" => NameState::NotStarted,
            _ => NameState::Unknown,
        };
        let all = || names(&["everything"]);
        let pending = resolve(&Names::from(["up", "down", "down"]), state, all).unwrap();
        assert_eq!(pending, names(&["down"]));
        let err = resolve(&Names::from(["down", "nope", "nada"]), state, all).unwrap_err();
        assert_eq!(err.id, "nope");
        assert_eq!(
            resolve(&Names::All, state, all).unwrap(),
            names(&["everything"])
        );
    }
}

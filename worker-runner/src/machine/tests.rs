//! The machine, driven by hand: one test per rule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use worker_core::{AlreadyExists, Dead, Error, NotFound};

use super::*;
use crate::error::{Dying, EmptyId, RestartIntensityExceeded};
use crate::policy::{RestartPolicy, RestartType, WorkerOptions};

/// Plain stand-ins: a start function is a label, an instance a number, a
/// reply channel the caller's number.
pub(super) struct TestIo;

impl Io for TestIo {
    type StartReply = u32;
    type Start = &'static str;
    type Worker = u64;
    type WorkerReply = u32;
    type RemoveReply = u32;
    type ReadyReply = u32;
}

/// A start function's return, as the shell reports it, with the
/// policies' verdict on a failure (asked off the loop, as the shell does).
pub(super) fn started(policies: &Policies, result: Result<u64, Error>) -> Started<TestIo> {
    // As the shell: the policies are asked about failures only.
    let verdict = match &result {
        Ok(_) => Verdict {
            fatal: false,
            restart: true,
            jitter: 0.5,
        },
        Err(e) => policies.verdict(&Err(e.clone())),
    };
    Started {
        reports: result.is_ok(),
        abortable: false,
        verdict,
        result,
        start: "start-fn",
    }
}

/// The runner's parameters as the tests set them: the machine's config
/// and the policies the shell asks off the loop.
pub(super) struct TestConfig {
    pub(super) is_fatal: Option<crate::policy::ErrorPredicate>,
    pub(super) should_restart: Option<crate::policy::ErrorPredicate>,
    pub(super) more_important: Option<crate::policy::ErrorRanking>,
    pub(super) restart_type: RestartType,
    pub(super) policy: RestartPolicy,
    pub(super) stop_timeout: Option<Duration>,
    pub(super) jitter: Arc<dyn worker_core::jitter::Jitter>,
    /// The rest of the machine's config (strategy, limits, shutdown,
    /// events); the fields above override it.
    pub(super) machine: Config,
}

impl TestConfig {
    pub(super) fn split(self) -> (Config, Policies) {
        (
            Config {
                restart_type: self.restart_type,
                policy: self.policy,
                stop_timeout: self.stop_timeout,
                keep_all_fatal: self.more_important.is_some(),
                ..self.machine
            },
            Policies {
                is_fatal: self.is_fatal,
                should_restart: self.should_restart,
                more_important: self.more_important,
                jitter: self.jitter,
            },
        )
    }
}

pub(super) fn config() -> TestConfig {
    let policy = RestartPolicy::fixed(Duration::from_secs(1));
    TestConfig {
        is_fatal: None,
        should_restart: None,
        more_important: None,
        restart_type: RestartType::Transient,
        policy,
        stop_timeout: None,
        jitter: Arc::new(|| 0.5),
        machine: Config::new(policy),
    }
}

pub(super) fn none_fatal(mut c: TestConfig) -> TestConfig {
    c.is_fatal = Some(Arc::new(|_| false));
    c
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The machine plus a virtual clock and the instances it has made.
pub(super) struct H {
    pub(super) m: Machine<TestIo>,
    pub(super) policies: Policies,
    pub(super) t0: Instant,
    pub(super) now: Instant,
    next_instance: u64,
    /// Whether the instances it makes can be aborted.
    pub(super) abortable: bool,
}

impl H {
    pub(super) fn new(config: TestConfig) -> Self {
        let t0 = Instant::now();
        let (config, policies) = config.split();
        H {
            m: Machine::new(config, t0),
            policies,
            t0,
            now: t0,
            next_instance: 100,
            abortable: false,
        }
    }

    pub(super) fn start(&mut self, id: &str) -> Vec<Action<TestIo>> {
        self.start_with(id, None).expect("start accepted")
    }

    pub(super) fn start_with(
        &mut self,
        id: &str,
        options: Option<WorkerOptions>,
    ) -> Result<Vec<Action<TestIo>>, Error> {
        let mut out = Vec::new();
        self.m.start(
            id.to_owned(),
            options.map(Box::new),
            "start-fn",
            self.now,
            &mut out,
        )?;
        Ok(out)
    }

    /// Completes the start of `start` (an `Action::Start`) with a new
    /// instance, returning (instance, actions).
    pub(super) fn complete(&mut self, start: &Action<TestIo>) -> (u64, Vec<Action<TestIo>>) {
        let Action::Start {
            slot, generation, ..
        } = start
        else {
            panic!("not a start action");
        };
        self.next_instance += 1;
        let w = self.next_instance;
        let mut out = Vec::new();
        let mut started = started(&self.policies, Ok(w));
        started.abortable = self.abortable;
        self.m
            .started(*slot, *generation, started, self.now, &mut out);
        self.m.settle(self.now, &mut out);
        (w, out)
    }

    pub(super) fn fail_start(&mut self, start: &Action<TestIo>, e: Error) -> Vec<Action<TestIo>> {
        let Action::Start {
            slot, generation, ..
        } = start
        else {
            panic!("not a start action");
        };
        let mut out = Vec::new();
        self.m.started(
            *slot,
            *generation,
            started(&self.policies, Err(e)),
            self.now,
            &mut out,
        );
        self.m.settle(self.now, &mut out);
        out
    }

    /// Starts `id` and completes its start: returns (slot, gen, instance).
    pub(super) fn run(&mut self, id: &str) -> (Slot, Generation, u64) {
        let out = self.start(id);
        let (slot, generation) = start_of(&out[0]);
        let (w, _) = self.complete(&out[0]);
        (slot, generation, w)
    }

    pub(super) fn exit(
        &mut self,
        slot: Slot,
        generation: Generation,
        e: Option<&str>,
    ) -> Vec<Action<TestIo>> {
        let mut out = Vec::new();
        let outcome = match e {
            None => Ok(()),
            Some(msg) => Err(Error::msg(msg)),
        };
        let verdict = self.policies.verdict(&outcome);
        self.m
            .exited(slot, generation, outcome, verdict, self.now, &mut out);
        self.m.settle(self.now, &mut out);
        out
    }

    pub(super) fn advance(&mut self, d: Duration) -> Vec<Action<TestIo>> {
        self.now += d;
        let mut out = Vec::new();
        self.m.tick(self.now, &mut out);
        out
    }

    pub(super) fn stop(&mut self, id: &str) -> Vec<Action<TestIo>> {
        let mut out = Vec::new();
        self.m.stop(id, self.now, &mut out);
        self.m.settle(self.now, &mut out);
        out
    }

    pub(super) fn remove(&mut self, id: &str, caller: u32) -> Vec<Action<TestIo>> {
        self.remove_within(id, caller, None)
    }

    pub(super) fn remove_within(
        &mut self,
        id: &str,
        caller: u32,
        timeout: Option<Duration>,
    ) -> Vec<Action<TestIo>> {
        let mut out = Vec::new();
        self.m
            .stop_and_remove(id, u64::from(caller), caller, timeout, self.now, &mut out);
        self.m.settle(self.now, &mut out);
        out
    }

    pub(super) fn lookup(&mut self, id: &str, caller: u32) -> Vec<Action<TestIo>> {
        let mut out = Vec::new();
        self.m.lookup(id, u64::from(caller), caller, &mut out);
        out
    }

    pub(super) fn kill(&mut self) -> Vec<Action<TestIo>> {
        let mut out = Vec::new();
        self.m.kill(self.now, &mut out);
        self.m.settle(self.now, &mut out);
        out
    }
}

pub(super) fn start_of(a: &Action<TestIo>) -> (Slot, Generation) {
    match a {
        Action::Start {
            slot, generation, ..
        } => (*slot, *generation),
        _ => panic!("expected a start action"),
    }
}

pub(super) fn starts(out: &[Action<TestIo>]) -> Vec<&Action<TestIo>> {
    out.iter()
        .filter(|a| matches!(a, Action::Start { .. }))
        .collect()
}

pub(super) fn kills(out: &[Action<TestIo>]) -> Vec<u64> {
    out.iter()
        .filter_map(|a| match a {
            Action::Kill { worker, .. } => Some(*worker),
            _ => None,
        })
        .collect()
}

pub(super) fn replies(out: &[Action<TestIo>]) -> Vec<(u32, Result<u64, String>)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Reply { to, result } => Some((*to, result.clone().map_err(|e| e.to_string()))),
            _ => None,
        })
        .collect()
}

pub(super) fn removed(out: &[Action<TestIo>]) -> Vec<(u32, Result<(), String>)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Removed { to, result } => {
                Some((*to, result.clone().map_err(|e| e.to_string())))
            }
            _ => None,
        })
        .collect()
}

/// The runner's result, if `out` finishes it: the first fatal error (see
/// [`finished_errors`] for a ranking policy).
pub(super) fn finished(out: &[Action<TestIo>]) -> Option<Result<(), String>> {
    finished_errors(out).map(|errors| match errors.first() {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    })
}

/// The fatal errors `out` finishes the runner with, if it does.
pub(super) fn finished_errors(out: &[Action<TestIo>]) -> Option<Vec<Error>> {
    out.iter().find_map(|a| match a {
        Action::Finished { errors } => Some(errors.clone()),
        _ => None,
    })
}

#[test]
fn first_start_is_immediate_and_lookup_answers_at_once_when_running() {
    let mut h = H::new(config());
    let out = h.start("a");
    assert_eq!(starts(&out).len(), 1);
    let (w, out) = h.complete(&out[0]);
    assert!(out.is_empty());
    assert_eq!(replies(&h.lookup("a", 1)), vec![(1, Ok(w))]);
    assert_eq!(h.m.names(), vec!["a".to_owned()]);
}

#[test]
fn bad_ids_and_duplicates_are_refused_in_every_state() {
    let mut h = H::new(none_fatal(config()));
    assert!(h.start_with("", None).unwrap_err().is::<EmptyId>());
    let out = h.start("a");
    // Starting.
    assert!(h.start_with("a", None).unwrap_err().is::<AlreadyExists>());
    let (slot, generation) = start_of(&out[0]);
    h.complete(&out[0]);
    // Running.
    assert!(h.start_with("a", None).unwrap_err().is::<AlreadyExists>());
    h.exit(slot, generation, Some("oops"));
    // Delayed.
    let err = h.start_with("a", None).unwrap_err();
    assert_eq!(err.downcast_ref::<AlreadyExists>().unwrap().id, "a");
    let out = h.advance(secs(1));
    let (slot, generation) = start_of(&out[0]);
    h.complete(&out[0]);
    h.stop("a");
    // Stopping.
    assert!(h.start_with("a", None).unwrap_err().is::<AlreadyExists>());
    let out = h.exit(slot, generation, None);
    assert!(matches!(out[0], Action::Reap { .. }));
    // Gone: the id can be used again.
    assert!(h.start_with("a", None).is_ok());
}

#[test]
fn a_clean_exit_removes_the_worker_for_good() {
    let mut h = H::new(config());
    let (slot, generation, _) = h.run("a");
    let out = h.exit(slot, generation, None);
    assert!(starts(&out).is_empty());
    assert!(h.m.names().is_empty());
    assert!(h.advance(secs(100)).is_empty());
    assert_eq!(h.m.next_deadline(), None);
}

#[test]
fn a_non_fatal_error_restarts_after_the_delay_with_a_new_generation() {
    let mut h = H::new(none_fatal(config()));
    let (slot, generation, _) = h.run("a");
    let out = h.exit(slot, generation, Some("oops"));
    assert!(starts(&out).is_empty());
    assert_eq!(h.m.next_deadline(), Some(h.now + secs(1)));
    assert!(h.advance(Duration::from_millis(999)).is_empty());
    let out = h.advance(Duration::from_millis(1));
    let (slot2, generation2) = start_of(&out[0]);
    assert_eq!(slot2, slot);
    assert!(generation2 > generation);
    // A late report about the old incarnation changes nothing.
    h.complete(&out[0]);
    assert!(h.exit(slot, generation, Some("late")).is_empty());
    assert_eq!(replies(&h.lookup("a", 1)).len(), 1);
}

#[test]
fn lookup_never_returns_a_dead_instance_during_the_restart_delay() {
    let mut h = H::new(none_fatal(config()));
    let (slot, generation, old) = h.run("a");
    h.exit(slot, generation, Some("oops"));
    assert!(h.lookup("a", 7).is_empty(), "caller must wait");
    let out = h.advance(secs(1));
    let (new, out) = h.complete(&out[0]);
    assert_ne!(new, old);
    assert_eq!(replies(&out), vec![(7, Ok(new))]);
}

#[test]
fn lookup_of_an_id_that_goes_away_says_not_found_or_dead() {
    let mut h = H::new(none_fatal(config()));
    let out = h.start("a");
    let start = start_of(&out[0]);
    assert!(h.lookup("a", 1).is_empty());
    h.stop("a");
    let (w, out) = h.complete(&out[0]);
    assert_eq!(
        kills(&out),
        vec![w],
        "stopped while starting: killed on arrival"
    );
    let out = h.exit(start.0, start.1, None);
    assert_eq!(
        replies(&out),
        vec![(1, Err("worker \"a\" not found".into()))]
    );

    let out = h.start("b");
    assert!(h.lookup("b", 2).is_empty());
    let out2 = h.kill();
    assert_eq!(replies(&out2), vec![(2, Err(Dead.to_string()))]);
    assert_eq!(replies(&h.lookup("b", 3)), vec![(3, Err(Dead.to_string()))]);
    assert!(finished(&out2).is_none(), "b is still starting");
    let (_, out) = h.complete(&out[0]);
    assert_eq!(kills(&out).len(), 1);
    assert!(replies(&h.lookup("nope", 4))[0].1.is_err());
}

#[test]
fn lookup_of_unknown_id_is_not_found() {
    let mut h = H::new(config());
    let r = replies(&h.lookup("x", 1));
    assert_eq!(r, vec![(1, Err(NotFound::new("x").to_string()))]);
}

#[test]
fn stop_during_the_restart_delay_removes_at_once_and_never_starts() {
    let mut h = H::new(none_fatal(config()));
    let (slot, generation, _) = h.run("a");
    h.exit(slot, generation, Some("oops"));
    assert!(h.lookup("a", 1).is_empty());
    let out = h.stop("a");
    assert_eq!(
        replies(&out),
        vec![(1, Err("worker \"a\" not found".into()))]
    );
    assert!(h.m.names().is_empty());
    assert_eq!(h.m.next_deadline(), None);
    assert!(h.advance(secs(10)).is_empty());
}

#[test]
fn stop_of_unknown_id_is_ignored() {
    let mut h = H::new(config());
    assert!(h.stop("ghost").is_empty());
}

#[test]
fn stop_errors_feed_is_fatal_as_in_go() {
    let mut h = H::new(config()); // every error fatal
    let (slot, generation, _) = h.run("a");
    let out = h.stop("a");
    assert_eq!(kills(&out).len(), 1);
    let out = h.exit(slot, generation, Some("stop error"));
    assert_eq!(finished(&out), Some(Err("stop error".into())));
}

#[test]
fn stop_and_remove_hands_the_error_to_the_callers_and_not_to_is_fatal() {
    let mut h = H::new(config()); // every error fatal
    let (slot, generation, w) = h.run("a");
    let out = h.remove("a", 1);
    assert_eq!(kills(&out), vec![w]);
    assert!(h.remove("a", 2).is_empty(), "a second remover waits too");
    let out = h.exit(slot, generation, Some("boom"));
    assert_eq!(
        removed(&out),
        vec![(1, Err("boom".into())), (2, Err("boom".into()))]
    );
    assert!(!h.m.is_dying(), "the error went to the callers");
    assert_eq!(
        removed(&h.remove("a", 3)),
        vec![(3, Err("worker \"a\" not found".into()))]
    );
}

#[test]
fn stop_and_remove_during_the_restart_delay_returns_at_once() {
    let mut h = H::new(none_fatal(config()));
    let (slot, generation, _) = h.run("a");
    h.exit(slot, generation, Some("oops"));
    assert_eq!(removed(&h.remove("a", 1)), vec![(1, Ok(()))]);
    assert!(h.advance(secs(5)).is_empty());
}

#[test]
fn stop_and_remove_while_dying_is_dead() {
    let mut h = H::new(config());
    h.run("a");
    h.kill();
    assert_eq!(removed(&h.remove("a", 1)), vec![(1, Err(Dead.to_string()))]);
}

#[test]
fn cancelled_waiters_get_no_answer() {
    let mut h = H::new(none_fatal(config()));
    let (slot, generation, _) = h.run("a");
    h.exit(slot, generation, Some("oops"));
    assert!(h.lookup("a", 1).is_empty());
    assert!(h.lookup("a", 2).is_empty());
    h.m.cancel_wait("a", 1);
    let out = h.advance(secs(1));
    let (w, out) = h.complete(&out[0]);
    assert_eq!(replies(&out), vec![(2, Ok(w))]);
}

#[test]
fn a_fatal_error_stops_everything_and_is_returned_once() {
    let mut h = H::new(config());
    let (sa, ga, _) = h.run("a");
    let (sb, gb, wb) = h.run("b");
    let out_c = h.start("c");
    let out = h.exit(sa, ga, Some("fatal one"));
    assert!(out.iter().any(|a| matches!(a, Action::Dying)));
    assert_eq!(kills(&out), vec![wb]);
    assert!(h.start_with("d", None).unwrap_err().is::<Dying>());
    // b fails as it stops: also fatal, but the first error is kept.
    let out = h.exit(sb, gb, Some("fatal two"));
    assert!(finished(&out).is_none(), "c is still starting");
    let (wc, out) = h.complete(&out_c[0]);
    assert_eq!(kills(&out), vec![wc]);
    let (sc, gc) = start_of(&out_c[0]);
    let out = h.exit(sc, gc, None);
    assert_eq!(finished(&out), Some(Err("fatal one".into())));
    assert!(h.m.is_finished());
    // Nothing more, ever.
    assert!(finished(&h.kill()).is_none());
}

#[test]
fn more_important_picks_the_final_error() {
    let mut c = config();
    c.more_important = Some(Arc::new(|a: &Error, b: &Error| {
        a.to_string() > b.to_string()
    }));
    let mut h = H::new(c);
    let runs: Vec<_> = ["0", "1", "2"].iter().map(|id| h.run(id)).collect();
    h.stop("1");
    h.exit(runs[1].0, runs[1].1, Some("level 1"));
    h.exit(runs[0].0, runs[0].1, Some("level 0"));
    let out = h.exit(runs[2].0, runs[2].1, Some("level 2"));
    let errors = finished_errors(&out).expect("finished");
    assert_eq!(errors.len(), 3, "every fatal error is kept for the ranking");
    let ranked = h.policies.most_important(errors).unwrap();
    assert_eq!(ranked.to_string(), "level 2");
}

#[test]
fn kill_with_nothing_running_finishes_at_once() {
    let mut h = H::new(config());
    let out = h.kill();
    assert_eq!(finished(&out), Some(Ok(())));
}

#[test]
fn kill_removes_delayed_workers_without_waiting_for_the_delay() {
    let mut h = H::new(none_fatal(config()));
    let (slot, generation, _) = h.run("a");
    h.exit(slot, generation, Some("oops"));
    let out = h.kill();
    assert_eq!(finished(&out), Some(Ok(())));
}

#[test]
fn restart_types() {
    let mut h = H::new(none_fatal(config()));
    let permanent = WorkerOptions::new().restart_type(RestartType::Permanent);
    let temporary = WorkerOptions::new().restart_type(RestartType::Temporary);
    let out = h.start_with("p", Some(permanent)).unwrap();
    let (sp, gp) = start_of(&out[0]);
    h.complete(&out[0]);
    let out = h.start_with("t", Some(temporary)).unwrap();
    let (st, gt) = start_of(&out[0]);
    h.complete(&out[0]);
    h.exit(sp, gp, None);
    h.exit(st, gt, Some("oops"));
    assert_eq!(h.m.names(), vec!["p".to_owned()], "temporary is gone");
    let out = h.advance(secs(1));
    assert_eq!(
        starts(&out).len(),
        1,
        "permanent restarts after a clean exit"
    );
}

#[test]
fn should_restart_false_removes() {
    let mut c = none_fatal(config());
    c.should_restart = Some(Arc::new(|e: &Error| !e.to_string().contains("final")));
    let mut h = H::new(c);
    let (slot, generation, _) = h.run("a");
    h.exit(slot, generation, Some("final answer"));
    assert!(h.m.names().is_empty());
}

#[test]
fn a_failing_start_function_follows_the_same_policy() {
    let mut h = H::new(none_fatal(config()));
    let out = h.start("a");
    h.fail_start(&out[0], Error::msg("cannot start"));
    assert_eq!(h.m.next_deadline(), Some(h.now + secs(1)));
    let out = h.advance(secs(1));
    assert_eq!(starts(&out).len(), 1);

    let mut h = H::new(config());
    let out = h.start("a");
    let out = h.fail_start(&out[0], Error::msg("cannot start"));
    assert_eq!(finished(&out), Some(Err("cannot start".into())));
}

#[test]
fn backoff_grows_resets_after_a_healthy_run_and_uses_the_jitter_source() {
    let mut c = none_fatal(config());
    c.policy = RestartPolicy::exponential(secs(1), 2.0, secs(8))
        .reset_after(secs(60))
        .jitter(0.5);
    let samples = std::sync::Mutex::new(vec![0.5, 0.5, 0.5, 1.0, 0.0].into_iter());
    c.jitter = Arc::new(move || samples.lock().unwrap().next().unwrap_or(0.5));
    let mut h = H::new(c);
    let (mut slot, mut generation, _) = h.run("a");
    let mut delays = Vec::new();
    for _ in 0..5 {
        h.exit(slot, generation, Some("oops"));
        let until = h.m.next_deadline().unwrap();
        delays.push(until - h.now);
        let out = h.advance(until - h.now);
        (slot, generation) = start_of(&out[0]);
        h.complete(&out[0]);
    }
    // 1, 2, 4, 8 (capped), then jitter: 8 * 1.5 capped to 8, 8 * 0.5 = 4.
    assert_eq!(delays, vec![secs(1), secs(2), secs(4), secs(8), secs(4)]);
    // A long, healthy run resets the series.
    h.now += secs(60);
    h.exit(slot, generation, Some("oops"));
    assert_eq!(h.m.next_deadline().unwrap() - h.now, secs(1));
    let snap = h.m.snapshot();
    let cause = snap[0].cause.as_ref().unwrap();
    assert_eq!((cause.attempt, cause.delay), (1, secs(1)));
    assert_eq!(cause.error.as_ref().unwrap().to_string(), "oops");
}

#[test]
fn intensity_limit_escalates_to_a_fatal_error() {
    let mut c = none_fatal(config());
    c.policy = RestartPolicy::fixed(secs(1)).intensity(2, secs(10));
    let mut h = H::new(c);
    let (mut slot, mut generation, _) = h.run("a");
    for _ in 0..2 {
        h.exit(slot, generation, Some("oops"));
        let out = h.advance(secs(1));
        (slot, generation) = start_of(&out[0]);
        h.complete(&out[0]);
    }
    let out = h.exit(slot, generation, Some("third"));
    let Some(Err(msg)) = finished(&out) else {
        panic!("runner must finish with the escalated error");
    };
    assert_eq!(
        msg,
        "worker \"a\" restarted more than 2 times in 10s: third"
    );
    let _ = RestartIntensityExceeded::clone;
}

#[test]
fn intensity_window_slides() {
    let mut c = none_fatal(config());
    c.policy = RestartPolicy::fixed(secs(1)).intensity(1, secs(10));
    let mut h = H::new(c);
    let (mut slot, mut generation, _) = h.run("a");
    for _ in 0..3 {
        h.now += secs(10);
        h.exit(slot, generation, Some("oops"));
        let out = h.advance(secs(1));
        (slot, generation) = start_of(&out[0]);
        h.complete(&out[0]);
    }
    assert!(!h.m.is_dying());
}

#[test]
fn a_restart_exactly_the_period_old_is_still_in_the_window() {
    // OTP keeps a restart made at `now - period` in the window: with one
    // restart allowed in 10 s, failures at t = 0 and t = 10 s escalate.
    let nanos = Duration::from_nanos;
    for (second_failure, escalates) in [
        (secs(10) - nanos(1), true),
        (secs(10), true),
        (secs(10) + nanos(1), false),
    ] {
        let mut c = none_fatal(config());
        c.policy = RestartPolicy::fixed(secs(1)).intensity(1, secs(10));
        let mut h = H::new(c);
        let (slot, generation, _) = h.run("a");
        h.exit(slot, generation, Some("first"));
        let out = h.advance(secs(1));
        let (slot, generation) = start_of(&out[0]);
        h.complete(&out[0]);
        h.now = h.t0 + second_failure;
        let out = h.exit(slot, generation, Some("second"));
        assert_eq!(
            finished(&out).is_some(),
            escalates,
            "second failure at {second_failure:?}"
        );
    }
}

#[test]
fn a_worker_that_ignores_kill_is_reported_stuck_once() {
    let mut c = config();
    c.stop_timeout = Some(secs(5));
    c.machine.events = true;
    let mut h = H::new(c);
    let (slot, generation, _) = h.run("a");
    h.kill();
    assert!(h.advance(secs(4)).is_empty());
    let out = h.advance(secs(1));
    assert!(matches!(
        &out[..],
        [Action::Event(e)] if matches!(e.kind, EventKind::Stuck { after, starting: false, forced: false } if after == secs(5))
    ));
    let waiting = h.m.waiting_for(h.now);
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0].stuck && waiting[0].stage == crate::status::Stage::Stopping);
    assert!(h.m.snapshot()[0].stuck_since.is_some());
    assert!(h.advance(secs(100)).is_empty(), "reported once");
    let out = h.exit(slot, generation, None);
    assert_eq!(finished(&out), Some(Ok(())));
    assert!(h.m.waiting_for(h.now).is_empty());
}

#[test]
fn a_worker_that_stops_in_time_is_not_stuck() {
    let mut c = config();
    c.stop_timeout = Some(secs(5));
    let mut h = H::new(c);
    let (slot, generation, _) = h.run("a");
    h.run("b");
    h.stop("a");
    h.exit(slot, generation, None);
    assert_eq!(h.m.next_deadline(), None, "the stuck check was cancelled");
    assert!(h.advance(secs(10)).is_empty());
}

#[test]
fn waiting_for_lists_starting_and_stopping_workers() {
    let mut h = H::new(config());
    h.run("a");
    let _ = h.start("b");
    h.now += secs(2);
    h.kill();
    h.now += secs(3);
    let w = h.m.waiting_for(h.now);
    assert_eq!(
        w.iter()
            .map(|w| (w.id.as_str(), w.stage, w.elapsed))
            .collect::<Vec<_>>(),
        vec![
            ("a", crate::status::Stage::Stopping, secs(3)),
            ("b", crate::status::Stage::Starting, secs(5)),
        ]
    );
}

#[test]
fn a_panicking_policy_is_contained() {
    let mut c = config();
    c.is_fatal = Some(Arc::new(|_| panic!("policy bug")));
    let mut h = H::new(c);
    let (slot, generation, _) = h.run("a");
    let out = h.exit(slot, generation, Some("oops"));
    assert_eq!(finished(&out), Some(Err("oops".into())), "counted as fatal");

    let mut c = none_fatal(config());
    c.jitter = Arc::new(|| -> f64 { panic!("jitter bug") });
    c.policy = RestartPolicy::exponential(secs(1), 2.0, secs(4)).jitter(1.0);
    let mut h = H::new(c);
    let (slot, generation, _) = h.run("a");
    h.exit(slot, generation, Some("oops"));
    assert_eq!(h.m.next_deadline(), Some(h.now + secs(1)), "no jitter");
}

#[test]
fn snapshot_shows_states_and_times() {
    let mut h = H::new(none_fatal(config()));
    let t0 = h.t0;
    h.run("a");
    let _ = h.start("b");
    let (slot, generation, _) = h.run("c");
    h.now += secs(3);
    h.exit(slot, generation, Some("oops"));
    let mut snap = h.m.snapshot();
    snap.sort_by(|x, y| x.id.cmp(&y.id));
    let states: Vec<_> = snap.iter().map(|s| (&*s.id, s.state.as_str())).collect();
    assert_eq!(
        states,
        vec![("a", "started"), ("b", "starting"), ("c", "stopped")]
    );
    assert!(snap[0].worker.is_some() && snap[1].worker.is_none());
    assert!(snap.iter().all(|s| s.started_at == t0));
    let out = h.advance(secs(1));
    h.complete(&out[0]);
    let c = h.m.snapshot().into_iter().find(|s| &*s.id == "c").unwrap();
    assert_eq!(
        c.started_at,
        t0 + secs(4),
        "the start time follows restarts"
    );
}

#[test]
fn cancelled_deadlines_do_not_pile_up_behind_a_pending_one() {
    // One worker waits out a long restart delay (an early deadline stays
    // pending); meanwhile thousands of workers are started, stopped while
    // a stop timeout runs, and stopped during their restart delay. Every
    // deadline they leave behind is removed, not kept until it reaches the
    // front of the queue.
    let mut c = none_fatal(config());
    c.stop_timeout = Some(secs(30));
    c.policy = RestartPolicy::fixed(secs(60));
    let mut h = H::new(c);
    let (slot, generation, _) = h.run("pending");
    h.exit(slot, generation, Some("oops"));
    assert_eq!(h.m.deadline_count(), 1);
    for i in 0..5_000 {
        let id: &'static str = Box::leak(format!("w{i}").into_boxed_str());
        let (slot, generation, _) = h.run(id);
        h.stop(id);
        assert_eq!(h.m.deadline_count(), 2, "a stop timeout runs");
        h.exit(slot, generation, None);
        let (slot, generation, _) = h.run(id);
        h.exit(slot, generation, Some("oops"));
        h.stop(id);
        assert_eq!(h.m.deadline_count(), 1, "only the pending restart is left");
    }
    assert_eq!(h.m.names(), vec!["pending".to_owned()]);
}

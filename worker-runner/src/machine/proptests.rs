//! Random sequences of requests, start results, exits and clock advances,
//! under a random restart strategy, runner-wide intensity limit and
//! shutdown order, checked against the runner's rules after every step:
//! - at most one live incarnation per id (an instance, or a start in flight);
//! - a restart happens only once the delay since the failure has passed;
//! - an id that was stopped never starts again unless started anew (a
//!   temporary worker killed by a sibling's cascade counts as stopped);
//! - a restart takes exactly the workers its strategy names with it (all
//!   others for one-for-all, those started after it for rest-for-one, none
//!   for one-for-one), and they start again only once all of them have
//!   ended, all together, in start order;
//! - the runner-wide limit gives up exactly when one more restart would
//!   put more than MaxR restarts in the last MaxT (inclusive);
//! - once dying, nothing starts; all at once, every instance has been
//!   killed; in reverse order, a worker is killed only once every worker
//!   started after it has ended;
//! - the final result is emitted once, is the first fatal error (an
//!   escalation counts), and only when nothing is left running;
//! - every waiting caller gets exactly one answer, and a `worker()` answer
//!   is a live instance of that id;
//! - after kill, once the instances have ended, the machine is finished
//!   and empty.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::{
    Just, ProptestConfig, Strategy as Generate, TestCaseError, prop_assert, prop_assert_eq,
    prop_oneof, proptest,
};
use worker_core::{Error, Panicked};

use super::tests::{TestIo, config, started};
use super::*;
use crate::policy::{RestartPolicy, RestartType, WorkerOptions};

const IDS: [&str; 4] = ["w0", "w1", "w2", "w3"];
const DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
enum Ending {
    Clean,
    NonFatal,
    Fatal,
    Panic,
}

#[derive(Debug, Clone)]
enum Op {
    Start(usize, Option<RestartType>),
    Stop(usize),
    Remove(usize),
    Lookup(usize),
    Cancel(usize),
    Complete(usize, Ending),
    Exit(usize, Ending),
    Advance(u64),
    Kill,
}

/// The runner's group options for one case.
#[derive(Debug, Clone)]
struct Setup {
    strategy: Strategy,
    intensity: Option<Intensity>,
    order: ShutdownOrder,
}

fn setup() -> impl Generate<Value = Setup> {
    let strategy = prop_oneof![
        Just(Strategy::OneForOne),
        Just(Strategy::OneForAll),
        Just(Strategy::RestForOne),
    ];
    let intensity = prop_oneof![
        1 => Just(None),
        3 => (0u32..4, 1u64..4).prop_map(|(max_restarts, secs)| Some(Intensity {
            max_restarts,
            period: Duration::from_secs(secs),
        })),
    ];
    let order = prop_oneof![Just(ShutdownOrder::AllAtOnce), Just(ShutdownOrder::Reverse)];
    (strategy, intensity, order).prop_map(|(strategy, intensity, order)| Setup {
        strategy,
        intensity,
        order,
    })
}

fn ending() -> impl Generate<Value = Ending> {
    prop_oneof![
        Just(Ending::Clean),
        Just(Ending::NonFatal),
        Just(Ending::Fatal),
        Just(Ending::Panic)
    ]
}

fn op() -> impl Generate<Value = Op> {
    let id = 0..IDS.len();
    let restart_type = prop_oneof![
        Just(None),
        Just(Some(RestartType::Permanent)),
        Just(Some(RestartType::Transient)),
        Just(Some(RestartType::Temporary)),
    ];
    prop_oneof![
        4 => (id.clone(), restart_type).prop_map(|(i, t)| Op::Start(i, t)),
        1 => id.clone().prop_map(Op::Stop),
        1 => id.clone().prop_map(Op::Remove),
        1 => id.clone().prop_map(Op::Lookup),
        1 => (0..8usize).prop_map(Op::Cancel),
        4 => (0..8usize, ending()).prop_map(|(i, e)| Op::Complete(i, e)),
        5 => (0..8usize, ending()).prop_map(|(i, e)| Op::Exit(i, e)),
        // Quarter seconds: the windows (whole seconds) and the delay are
        // often hit exactly, where a boundary off by one shows.
        3 => (0..10u64).prop_map(|q| Op::Advance(q * 250)),
        1 => Just(Op::Kill),
    ]
}

struct Instance {
    w: u64,
    id: &'static str,
    slot: Slot,
    generation: Generation,
    killed: bool,
}

/// What the world knows of an id the machine accepted.
#[derive(Debug, Clone, Copy)]
struct Known {
    seq: u64,
    restart_type: RestartType,
}

/// A cascade the world expects: who is in it, and from when it may start.
#[derive(Debug)]
struct Cascade {
    members: BTreeSet<&'static str>,
    not_before: Instant,
}

/// The environment the machine runs in, and what it has seen so far.
struct World {
    m: Machine<TestIo>,
    policies: Policies,
    setup: Setup,
    now: Instant,
    /// Starts in flight: (slot, generation, id).
    inflight: Vec<(Slot, Generation, &'static str)>,
    alive: Vec<Instance>,
    next_instance: u64,
    /// Ids the machine knows (by the world's account), with their start
    /// order and restart type.
    known: HashMap<&'static str, Known>,
    next_seq: u64,
    /// When each id's last incarnation ended (for the delay check).
    ended_at: HashMap<&'static str, Instant>,
    /// Ids stopped since they were last started by a request.
    stopped: HashSet<&'static str>,
    /// The cascade waiting to start again, if any.
    cascade: Option<Cascade>,
    /// Times of the runner's restarts (for its intensity limit).
    restarts: Vec<Instant>,
    /// Ids with `stop_and_remove` callers registered, and how many.
    removing: HashMap<&'static str, usize>,
    /// The `stop_and_remove` callers that were registered (not answered
    /// at once).
    registered_removers: HashSet<u32>,
    /// Waiting callers: id of caller -> worker id.
    waiting: HashMap<u32, &'static str>,
    next_caller: u32,
    /// The fatal errors that reached `is_fatal` or were escalated, in
    /// order.
    fatal: Vec<String>,
    finished: Option<Result<(), String>>,
    dying_seen: bool,
    /// Ids asked to stop before the runner began dying (by a request or a
    /// cascade): their stop is not the shutdown's, so not in its order.
    stopping_before_dying: HashSet<&'static str>,
}

impl World {
    fn new(setup: Setup) -> Self {
        let mut c = config();
        c.is_fatal = Some(Arc::new(|e: &Error| e.to_string().starts_with("fatal")));
        c.policy = RestartPolicy::fixed(DELAY);
        c.machine.strategy = setup.strategy;
        c.machine.intensity = setup.intensity;
        c.machine.shutdown_order = setup.order;
        c.machine.events = true;
        let (c, policies) = c.split();
        let now = Instant::now();
        World {
            m: Machine::new(c, now),
            policies,
            setup,
            now,
            inflight: Vec::new(),
            alive: Vec::new(),
            next_instance: 0,
            known: HashMap::new(),
            next_seq: 0,
            ended_at: HashMap::new(),
            stopped: HashSet::new(),
            cascade: None,
            restarts: Vec::new(),
            removing: HashMap::new(),
            registered_removers: HashSet::new(),
            waiting: HashMap::new(),
            next_caller: 0,
            fatal: Vec::new(),
            finished: None,
            dying_seen: false,
            stopping_before_dying: HashSet::new(),
        }
    }

    fn error(&mut self, ending: Ending) -> Option<Error> {
        self.next_instance += 1;
        let n = self.next_instance;
        match ending {
            Ending::Clean => None,
            Ending::NonFatal => Some(Error::msg(format!("nonfatal {n}"))),
            Ending::Fatal => Some(Error::msg(format!("fatal {n}"))),
            Ending::Panic => Some(Error::new(Panicked {
                what: "worker body".into(),
                message: format!("boom {n}"),
            })),
        }
    }

    /// Notes an ending of `id`'s incarnation with `err` (for the expected
    /// final error), as the machine will see it.
    fn note_ending(&mut self, id: &'static str, err: &Option<Error>) {
        self.ended_at.insert(id, self.now);
        if let Some(e) = err {
            let text = e.to_string();
            if text.starts_with("fatal") && !self.removing.contains_key(id) {
                self.fatal.push(text);
            }
        }
    }

    fn caller(&mut self, id: &'static str) -> u32 {
        self.next_caller += 1;
        self.waiting.insert(self.next_caller, id);
        self.next_caller
    }

    fn is_live(&self, id: &str) -> bool {
        self.alive.iter().any(|i| i.id == id) || self.inflight.iter().any(|f| f.2 == id)
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let mut out = Vec::new();
        let ticked = matches!(op, Op::Advance(_));
        match *op {
            Op::Start(i, restart_type) => {
                let id = IDS[i];
                let options = restart_type.map(|t| Box::new(WorkerOptions::new().restart_type(t)));
                let ok = self
                    .m
                    .start(id.to_owned(), options, "f", self.now, &mut out)
                    .is_ok();
                if ok {
                    self.stopped.remove(id);
                    // A new id under an old name is no cascade's member.
                    if let Some(cascade) = &mut self.cascade {
                        cascade.members.remove(id);
                    }
                    self.known.insert(
                        id,
                        Known {
                            seq: self.next_seq,
                            restart_type: restart_type.unwrap_or(RestartType::Transient),
                        },
                    );
                    self.next_seq += 1;
                }
            }
            Op::Stop(i) => {
                let id = IDS[i];
                if self.m.names().iter().any(|n| n == id) {
                    self.stopped.insert(id);
                }
                self.m.stop(id, self.now, &mut out);
            }
            Op::Remove(i) => {
                let id = IDS[i];
                let caller = self.caller(id);
                if !self.m.is_dying() && self.m.names().iter().any(|n| n == id) {
                    self.stopped.insert(id);
                    *self.removing.entry(id).or_default() += 1;
                    self.registered_removers.insert(caller);
                }
                self.m
                    .stop_and_remove(id, caller.into(), caller, None, self.now, &mut out);
            }
            Op::Lookup(i) => {
                let id = IDS[i];
                let caller = self.caller(id);
                self.m.lookup(id, caller.into(), caller, &mut out);
            }
            Op::Cancel(k) => {
                // Withdraw a waiting `worker()` caller (removers are kept,
                // so that `removing` stays exact).
                let mut lookups: Vec<u32> = self.waiting.keys().copied().collect();
                lookups.sort();
                if let Some(&caller) = lookups.get(k % lookups.len().max(1)) {
                    let id = self.waiting[&caller];
                    if !self.removing.contains_key(id) {
                        self.m.cancel_wait(id, caller.into());
                        self.waiting.remove(&caller);
                    }
                }
            }
            Op::Complete(k, ending) => {
                if self.inflight.is_empty() {
                    return Ok(());
                }
                let (slot, generation, id) = self.inflight.remove(k % self.inflight.len());
                let err = self.error(ending);
                let result = match &err {
                    None => {
                        let w = self.next_instance;
                        self.alive.push(Instance {
                            w,
                            id,
                            slot,
                            generation,
                            killed: false,
                        });
                        Ok(w)
                    }
                    Some(e) => {
                        // A failed start: the same policy as a failed run.
                        self.note_ending(id, &Some(e.clone()));
                        Err(e.clone())
                    }
                };
                self.m.started(
                    slot,
                    generation,
                    started(&self.policies, result),
                    self.now,
                    &mut out,
                );
            }
            Op::Exit(k, ending) => {
                if self.alive.is_empty() {
                    return Ok(());
                }
                let inst = self.alive.remove(k % self.alive.len());
                let err = self.error(ending);
                self.note_ending(inst.id, &err);
                let outcome = err.map_or(Ok(()), Err);
                let verdict = self.policies.verdict(&outcome);
                self.m.exited(
                    inst.slot,
                    inst.generation,
                    outcome,
                    verdict,
                    self.now,
                    &mut out,
                );
                prop_assert!(
                    matches!(out.first(), Some(Action::Reap { worker }) if *worker == inst.w),
                    "an ending instance is reaped first"
                );
            }
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                self.m.tick(self.now, &mut out);
            }
            Op::Kill => self.m.kill(self.now, &mut out),
        }
        if !ticked {
            self.m.settle(self.now, &mut out);
        }
        self.check(out, ticked)
    }

    /// The restart of `trigger` decided at this step: the cascade it
    /// starts (or joins), and the instances it must kill.
    fn expect_cascade(&mut self, trigger: &'static str) -> HashSet<u64> {
        let mut kills = HashSet::new();
        let trigger_seq = self.known[trigger].seq;
        let in_cascade: BTreeSet<&'static str> = self
            .cascade
            .as_ref()
            .map(|c| c.members.clone())
            .unwrap_or_default();
        let names = self.m.names();
        let mut members = BTreeSet::from([trigger]);
        for id in IDS {
            if id == trigger || in_cascade.contains(id) || !names.iter().any(|n| n == id) {
                continue;
            }
            let known = self.known[id];
            let picked = match self.setup.strategy {
                Strategy::OneForOne => false,
                Strategy::OneForAll => true,
                Strategy::RestForOne => known.seq > trigger_seq,
            };
            // Ids being stopped are not taken (their stop goes on).
            if !picked || self.stopped.contains(id) {
                continue;
            }
            kills.extend(
                self.alive
                    .iter()
                    .filter(|i| i.id == id && !i.killed)
                    .map(|i| i.w),
            );
            if known.restart_type == RestartType::Temporary {
                // Stopped by its sibling's restart, and removed.
                self.stopped.insert(id);
            } else {
                members.insert(id);
            }
        }
        if self.setup.strategy != Strategy::OneForOne {
            let not_before = self.now + DELAY;
            let cascade = self.cascade.get_or_insert(Cascade {
                members: BTreeSet::new(),
                not_before,
            });
            cascade.members.extend(members);
            cascade.not_before = cascade.not_before.max(not_before);
        }
        kills
    }

    fn check(&mut self, out: Vec<Action<TestIo>>, ticked: bool) -> Result<(), TestCaseError> {
        // A restart decided in this step, and the kills it must come with.
        let trigger = out.iter().find_map(|a| match a {
            Action::Event(e) => match &e.kind {
                EventKind::Restarting {
                    because_of: None, ..
                } => Some(
                    IDS.iter()
                        .copied()
                        .find(|i| Some(*i) == e.worker())
                        .unwrap(),
                ),
                _ => None,
            },
            _ => None,
        });
        let expected_kills = trigger.map(|t| self.expect_cascade(t));
        let mut killed_now = HashSet::new();
        // Starts of this step: (seq, id).
        let mut starts: Vec<(u64, &'static str)> = Vec::new();
        for action in out {
            match action {
                Action::Start {
                    slot,
                    generation,
                    id,
                    ..
                } => {
                    let id = IDS.iter().copied().find(|i| **i == *id).unwrap();
                    prop_assert!(!self.dying_seen, "nothing starts once dying");
                    prop_assert!(!self.is_live(id), "at most one live incarnation of {}", id);
                    prop_assert!(!self.stopped.contains(id), "stopped id {} came back", id);
                    let in_cascade = self
                        .cascade
                        .as_ref()
                        .is_some_and(|c| c.members.contains(id));
                    if ticked && !in_cascade {
                        prop_assert_eq!(
                            self.setup.strategy,
                            Strategy::OneForOne,
                            "{} restarted by the clock outside a cascade",
                            id
                        );
                        let ended = self.ended_at.get(id).copied();
                        prop_assert!(
                            ended.is_some_and(|t| self.now >= t + DELAY),
                            "restart of {} before its delay",
                            id
                        );
                    }
                    starts.push((self.known[id].seq, id));
                    self.inflight.push((slot, generation, id));
                }
                Action::Kill { worker, .. } => {
                    let inst = self.alive.iter_mut().find(|i| i.w == worker);
                    prop_assert!(inst.is_some(), "kill of an instance that is not alive");
                    let inst = inst.unwrap();
                    prop_assert!(!inst.killed, "instance killed twice");
                    inst.killed = true;
                    let (id, w) = (inst.id, inst.w);
                    killed_now.insert(w);
                    if self.dying_seen
                        && self.setup.order == ShutdownOrder::Reverse
                        && !self.stopping_before_dying.contains(id)
                    {
                        let seq = self.known[id].seq;
                        let later = IDS.iter().copied().find(|other| {
                            self.is_live(other)
                                && self.known.get(other).is_some_and(|k| k.seq > seq)
                        });
                        prop_assert!(
                            later.is_none(),
                            "{} killed while {:?}, started after it, runs",
                            id,
                            later
                        );
                    }
                }
                Action::Abort { .. } => prop_assert!(false, "nothing here can be aborted"),
                Action::Ready { .. } => prop_assert!(false, "nobody waits for readiness here"),
                Action::Reap { .. } => {}
                Action::Reply { to, result } => {
                    let id = self.waiting.remove(&to);
                    prop_assert!(id.is_some(), "reply to unknown or answered caller {}", to);
                    if let Ok(w) = result {
                        let id = id.unwrap();
                        prop_assert!(
                            self.alive
                                .iter()
                                .any(|i| i.w == w && i.id == id && !i.killed),
                            "worker() answered with an instance that is not running"
                        );
                    }
                }
                Action::Removed { to, .. } => {
                    let id = self.waiting.remove(&to);
                    prop_assert!(id.is_some(), "removal reply to unknown caller {}", to);
                    if self.registered_removers.remove(&to) {
                        let id = id.unwrap();
                        let left = self.removing.get_mut(id).expect("counted");
                        *left -= 1;
                        if *left == 0 {
                            self.removing.remove(id);
                        }
                    }
                }
                Action::Event(event) => self.check_event(&event)?,
                Action::Accepted { .. } => {}
                Action::Dying => {
                    prop_assert!(!self.dying_seen, "Dying emitted twice");
                    self.dying_seen = true;
                    self.stopping_before_dying = self.stopped.clone();
                    if let Some(cascade) = self.cascade.take() {
                        self.stopping_before_dying.extend(cascade.members);
                    }
                }
                Action::Finished { errors } => {
                    let result = match errors.into_iter().next() {
                        Some(e) => Err(e),
                        None => Ok(()),
                    };
                    prop_assert!(self.finished.is_none(), "Finished emitted twice");
                    prop_assert!(self.alive.is_empty(), "finished with instances alive");
                    prop_assert!(self.inflight.is_empty(), "finished with starts in flight");
                    let expected = match self.fatal.first() {
                        Some(e) => Err(e.clone()),
                        None => Ok(()),
                    };
                    prop_assert_eq!(result.clone().map_err(|e| e.to_string()), expected);
                    self.finished = Some(result.map_err(|e| e.to_string()));
                }
            }
        }
        if let Some(expected) = expected_kills {
            prop_assert_eq!(
                &killed_now,
                &expected,
                "the cascade of {:?} killed the wrong workers",
                trigger
            );
        }
        self.check_release(&starts)?;
        if self.m.is_dying() {
            prop_assert!(self.dying_seen);
            if self.setup.order == ShutdownOrder::AllAtOnce {
                prop_assert!(
                    self.alive.iter().all(|i| i.killed),
                    "dying, yet an instance was not killed"
                );
            }
        }
        if !self.fatal.is_empty() {
            prop_assert!(self.m.is_dying(), "a fatal error must stop the runner");
        }
        Ok(())
    }

    /// The runner-wide limit, checked against each restart decision; and
    /// escalations are fatal errors.
    fn check_event(&mut self, event: &worker_core::events::Event) -> Result<(), TestCaseError> {
        let in_window = |restarts: &[Instant], limit: &Intensity, now: Instant| {
            restarts
                .iter()
                .filter(|&&t| now.saturating_duration_since(t) <= limit.period)
                .count()
        };
        match &event.kind {
            EventKind::Restarting {
                because_of: None, ..
            } => {
                if let Some(limit) = &self.setup.intensity {
                    prop_assert!(
                        in_window(&self.restarts, limit, self.now) < limit.max_restarts as usize,
                        "a restart over the runner's limit"
                    );
                }
                self.restarts.push(self.now);
            }
            EventKind::GaveUp { error } => {
                let limit = self.setup.intensity.as_ref();
                prop_assert!(limit.is_some(), "gave up without a limit");
                let limit = limit.unwrap();
                prop_assert!(error.is::<crate::RunnerIntensityExceeded>());
                prop_assert_eq!(
                    in_window(&self.restarts, limit, self.now),
                    limit.max_restarts as usize,
                    "gave up while the limit allowed a restart"
                );
                self.fatal.push(error.to_string());
            }
            _ => {}
        }
        Ok(())
    }

    /// Starts of cascade members: all of them at once, only once every
    /// member has ended and the delay has passed, in start order.
    fn check_release(&mut self, starts: &[(u64, &'static str)]) -> Result<(), TestCaseError> {
        let Some(cascade) = &self.cascade else {
            return Ok(());
        };
        let released: Vec<(u64, &'static str)> = starts
            .iter()
            .copied()
            .filter(|(_, id)| cascade.members.contains(id))
            .collect();
        if released.is_empty() {
            return Ok(());
        }
        prop_assert!(
            self.now >= cascade.not_before,
            "a cascade restarted before its delay"
        );
        let mut sorted = released.clone();
        sorted.sort();
        prop_assert_eq!(&released, &sorted, "a cascade restarts in start order");
        // Every member still known and not stopped starts now.
        let names = self.m.names();
        let expected: BTreeSet<&'static str> = cascade
            .members
            .iter()
            .copied()
            .filter(|id| names.iter().any(|n| n == id) && !self.stopped.contains(id))
            .collect();
        let got: BTreeSet<&'static str> = released.iter().map(|(_, id)| *id).collect();
        prop_assert_eq!(got, expected, "a cascade restarts all together");
        self.cascade = None;
        Ok(())
    }

    /// Kill, then let every start return and every instance end.
    fn shut_down(&mut self) -> Result<(), TestCaseError> {
        self.apply(&Op::Kill)?;
        let mut guard = 0;
        while !self.inflight.is_empty() || !self.alive.is_empty() {
            guard += 1;
            prop_assert!(guard < 100, "shutdown does not converge");
            if !self.inflight.is_empty() {
                self.apply(&Op::Complete(0, Ending::Clean))?;
            } else {
                // The one being stopped (in reverse order, the last
                // started).
                let k = self.alive.iter().position(|i| i.killed).unwrap_or(0);
                self.apply(&Op::Exit(k, Ending::NonFatal))?;
            }
        }
        prop_assert!(self.finished.is_some(), "not finished after kill and wait");
        prop_assert_eq!(self.m.len(), 0);
        prop_assert!(
            self.waiting.is_empty(),
            "callers left unanswered: {:?}",
            self.waiting
        );
        prop_assert_eq!(self.m.next_deadline(), None);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_sequence(
        setup in setup(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut world = World::new(setup);
        for op in &ops {
            world.apply(op)?;
        }
        world.shut_down()?;
    }
}

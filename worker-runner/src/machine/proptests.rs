//! Random sequences of requests, start results, exits and clock advances,
//! checked against the runner's invariants after every step:
//! - at most one live incarnation per id (an instance, or a start in flight);
//! - a restart happens only once the delay since the ending has passed;
//! - an id that was stopped never starts again unless started anew;
//! - once dying, every instance has been killed and nothing starts;
//! - the final result is emitted once, is the first fatal error, and
//!   only when nothing is left running;
//! - every waiting caller gets exactly one answer, and a `worker()` answer
//!   is a live instance of that id;
//! - after kill, once the instances have ended, the machine is finished
//!   and empty.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
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

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        Just(Ending::Clean),
        Just(Ending::NonFatal),
        Just(Ending::Fatal),
        Just(Ending::Panic)
    ]
}

fn op() -> impl Strategy<Value = Op> {
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
        4 => (0..8usize, ending()).prop_map(|(i, e)| Op::Exit(i, e)),
        3 => (0..2500u64).prop_map(Op::Advance),
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

/// The environment the machine runs in, and what it has seen so far.
struct World {
    m: Machine<TestIo>,
    policies: Policies,
    now: Instant,
    /// Starts in flight: (slot, generation, id).
    inflight: Vec<(Slot, Generation, &'static str)>,
    alive: Vec<Instance>,
    next_instance: u64,
    /// When each id's last incarnation ended (for the delay check).
    ended_at: HashMap<&'static str, Instant>,
    /// Ids stopped since they were last started by a request.
    stopped: HashSet<&'static str>,
    /// Ids with `stop_and_remove` callers registered, and how many.
    removing: HashMap<&'static str, usize>,
    /// The `stop_and_remove` callers that were registered (not answered
    /// at once).
    registered_removers: HashSet<u32>,
    /// Waiting callers: id of caller -> worker id.
    waiting: HashMap<u32, &'static str>,
    next_caller: u32,
    /// The fatal errors that reached `is_fatal`, in order.
    fatal: Vec<String>,
    finished: Option<Result<(), String>>,
    dying_seen: bool,
}

impl World {
    fn new() -> Self {
        let mut c = config();
        c.is_fatal = Some(Arc::new(|e: &Error| e.to_string().starts_with("fatal")));
        c.policy = RestartPolicy::fixed(DELAY);
        let (c, policies) = c.split();
        let now = Instant::now();
        World {
            m: Machine::new(c, now),
            policies,
            now,
            inflight: Vec::new(),
            alive: Vec::new(),
            next_instance: 0,
            ended_at: HashMap::new(),
            stopped: HashSet::new(),
            removing: HashMap::new(),
            registered_removers: HashSet::new(),
            waiting: HashMap::new(),
            next_caller: 0,
            fatal: Vec::new(),
            finished: None,
            dying_seen: false,
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
                    .stop_and_remove(id, caller.into(), caller, self.now, &mut out);
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
        self.check(out, ticked)
    }

    fn check(&mut self, out: Vec<Action<TestIo>>, ticked: bool) -> Result<(), TestCaseError> {
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
                    prop_assert!(
                        !self.alive.iter().any(|i| i.id == id)
                            && !self.inflight.iter().any(|f| f.2 == id),
                        "at most one live incarnation of {}",
                        id
                    );
                    prop_assert!(!self.stopped.contains(id), "stopped id {} came back", id);
                    if ticked {
                        let ended = self.ended_at.get(id).copied();
                        prop_assert!(
                            ended.is_some_and(|t| self.now >= t + DELAY),
                            "restart of {} before its delay",
                            id
                        );
                    }
                    self.inflight.push((slot, generation, id));
                }
                Action::Kill { worker, .. } => {
                    let inst = self.alive.iter_mut().find(|i| i.w == worker);
                    prop_assert!(inst.is_some(), "kill of an instance that is not alive");
                    let inst = inst.unwrap();
                    prop_assert!(!inst.killed, "instance killed twice");
                    inst.killed = true;
                }
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
                Action::Stuck { .. } | Action::Accepted { .. } => {}
                Action::Dying => {
                    prop_assert!(!self.dying_seen, "Dying emitted twice");
                    self.dying_seen = true;
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
        if self.m.is_dying() {
            prop_assert!(self.dying_seen);
            prop_assert!(
                self.alive.iter().all(|i| i.killed),
                "dying, yet an instance was not killed"
            );
        }
        if !self.fatal.is_empty() {
            prop_assert!(self.m.is_dying(), "a fatal error must stop the runner");
        }
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
                self.apply(&Op::Exit(0, Ending::NonFatal))?;
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
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 1..60)) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op)?;
        }
        world.shut_down()?;
    }
}

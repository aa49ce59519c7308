//! The state machine driven directly: no threads, no clock. `World`
//! plays the shell's part (including the start jobs and completion
//! callbacks that ask the policies off the loop, and the ranking of the
//! fatal errors at the end); `rules` pins each rule with a scenario, and
//! `props` checks random graphs with random failures.

mod props;
mod rules;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use worker_core::events::EventKind;
use worker_core::supervisor::offloop::OffLoop;
use worker_core::{Error, Passive, SharedWorker, Worker};

use super::*;
use crate::{
    Bounce, GetError, InstallError, Internal, Missing, Outputs, Uninstall, UninstallError,
};
use worker_core::jitter::NoJitter;

const MS: Duration = Duration::from_millis(1);

#[derive(Debug, thiserror::Error)]
#[error("fatal!")]
struct Fatal;

type Snapshot = Vec<(Arc<str>, InputState)>;
type Seen = Vec<(Arc<str>, Option<usize>)>;

/// A simulated world around the machine: it records the actions, keeps
/// the pending starts and live workers, and plays the shell's part.
pub(super) struct World {
    m: Machine,
    /// The policies the shell asks off the loop.
    policies: Policies,
    /// Verdicts delivered that said "fatal".
    fatal_verdicts: usize,
    /// The engine's result, ranked as the shell does once the machine
    /// has finished.
    result: Option<Result<(), Error>>,
    now: Instant,
    /// Pending starts: node -> (generation, input snapshot).
    starts: HashMap<NodeId, (u64, Snapshot)>,
    /// Watched workers: node -> (generation, worker).
    watched: HashMap<NodeId, (u64, SharedWorker)>,
    /// Workers killed whose end has not been delivered yet.
    dying: Vec<(NodeId, u64)>,
    kills: Vec<Arc<str>>,
    aborts: Vec<NodeId>,
    removed: Vec<NodeId>,
    stuck: Vec<Arc<str>>,
    starts_recorded: Vec<Arc<str>>,
    worst_calls: Arc<AtomicUsize>,
    /// What each running worker saw of its inputs: node -> snapshot.
    seen: HashMap<NodeId, Seen>,
    all_workers: Vec<SharedWorker>,
    check_order: bool,
    reaped: usize,
}

fn config(worst_calls: Arc<AtomicUsize>) -> EngineConfig {
    let mut config = EngineConfig::new("test");
    config.error_delay = 100 * MS;
    config.bounce_delay = 10 * MS;
    config.backoff_factor = 2.0;
    config.backoff_reset_time = Duration::from_secs(1);
    config.max_delay = Duration::from_secs(10);
    config.stop_timeout = Duration::from_secs(5);
    config.jitter = Arc::new(NoJitter);
    config.is_fatal =
        Arc::new(|e: &Error| e.is::<Fatal>() || e.to_string().contains("is_fatal panics"));
    config.worst_error = Arc::new(move |new: &Error, worst: Option<&Error>| {
        worst_calls.fetch_add(1, Ordering::SeqCst);
        worst.unwrap_or(new).clone()
    });
    config
}

fn manifold(inputs: &[&str]) -> Manifold {
    Manifold::new(|_| Ok(Passive::new())).inputs(inputs)
}

impl World {
    fn new() -> Self {
        World::with(|_| {})
    }

    /// A world whose engine config is the tests' one, changed by `tweak`.
    fn with(tweak: impl FnOnce(&mut EngineConfig)) -> Self {
        let worst_calls = Arc::new(AtomicUsize::new(0));
        let mut config = config(worst_calls.clone());
        tweak(&mut config);
        World {
            m: Machine::new(Arc::from("test"), {
                // The events are what these tests read starts and stuck
                // manifolds from.
                let mut policy = Policy::from_config(&config);
                policy.events = true;
                policy
            }),
            policies: Policies::from_config(&config),
            fatal_verdicts: 0,
            result: None,
            now: Instant::now(),
            starts: HashMap::new(),
            watched: HashMap::new(),
            dying: Vec::new(),
            kills: Vec::new(),
            aborts: Vec::new(),
            removed: Vec::new(),
            stuck: Vec::new(),
            starts_recorded: Vec::new(),
            worst_calls,
            seen: HashMap::new(),
            all_workers: Vec::new(),
            check_order: true,
            reaped: 0,
        }
    }

    fn id(&self, name: &str) -> NodeId {
        self.m.graph.id(name).unwrap()
    }

    fn state(&self, name: &str) -> &'static str {
        self.m.nodes[self.id(name)].phase.name()
    }

    fn node(&self, name: &str) -> &Node {
        &self.m.nodes[self.id(name)]
    }

    fn apply(&mut self, out: Vec<Action>) {
        for action in out {
            match action {
                Action::Start {
                    node,
                    generation,
                    inputs,
                    ..
                } => {
                    let inputs = inputs.into_inner();
                    assert!(self.starts.insert(node, (generation, inputs)).is_none());
                }
                Action::Abort { node } => self.aborts.push(node),
                Action::Kill { name, worker } => {
                    let id = self.id(&name);
                    let offered = matches!(self.m.nodes[id].phase, Phase::Running { .. });
                    if self.check_order && self.m.dying && offered {
                        // Dependents stop before their inputs, unless stuck.
                        for &dep in self.m.graph.dependents(id) {
                            let d = &self.m.nodes[dep];
                            assert!(
                                d.phase.is_stopped() || d.stuck,
                                "{name} killed while its dependent {} is {}",
                                self.m.graph.name(dep),
                                d.phase.name()
                            );
                        }
                    }
                    worker.kill();
                    self.kills.push(name);
                    let (node, generation) = self
                        .watched
                        .iter()
                        .find(|(_, (_, w))| Arc::ptr_eq(w, &*worker))
                        .map(|(n, (g, _))| (*n, *g))
                        .expect("killed worker is watched");
                    self.dying.push((node, generation));
                }
                Action::Event(event) => match &event.kind {
                    EventKind::Started => self.starts_recorded.push(event.worker.clone().unwrap()),
                    EventKind::Stuck { .. } => self.stuck.push(event.worker.clone().unwrap()),
                    _ => {}
                },
                Action::Reap { live } => {
                    // It has ended: reaping never waits.
                    let worker = &live.worker;
                    assert!(worker.wait().is_ok() || worker.dead_signal().is_some());
                    self.reaped += 1;
                }
                Action::Removed { node, .. } => self.removed.push(node),
                Action::Started { .. } => {}
            }
        }
        self.check_invariants();
        if self.m.is_finished() && self.result.is_none() {
            // The shell's end: rank the fatal errors (once), filter.
            let internal = self.m.internal_error().cloned();
            self.result = Some(self.policies.result(internal, self.m.fatal_errors()));
        }
    }

    /// The engine's result; the machine must have finished.
    fn result(&self) -> Result<(), Error> {
        self.result.clone().expect("the machine has finished")
    }

    /// What the policies say about `name` ending with `raw`, as a start
    /// job or a completion callback asks them.
    fn verdict(&mut self, name: &str, raw: Option<Error>) -> Verdict {
        let filter = self
            .node(name)
            .manifold
            .as_ref()
            .and_then(|m| m.filter.clone());
        let verdict = self.policies.verdict(name, filter.as_ref(), raw);
        if verdict.fatal.is_some() {
            self.fatal_verdicts += 1;
        }
        verdict
    }

    fn check_invariants(&self) {
        let live = self
            .m
            .nodes
            .iter()
            .filter(|n| !n.phase.is_stopped())
            .count();
        assert_eq!(live, self.m.live, "live counter");
        for id in self.m.graph.installed() {
            let n = &self.m.nodes[id];
            assert!(n.manifold.is_some());
            let starting = matches!(n.phase, Phase::Starting { .. });
            assert_eq!(
                starting,
                self.starts.contains_key(&id),
                "start in flight for {id}"
            );
        }
    }

    fn install(&mut self, name: &str, inputs: &[&str]) -> Result<(), InstallError> {
        self.install_all(vec![(name, inputs)])
    }

    fn install_all(&mut self, batch: Vec<(&str, &[&str])>) -> Result<(), InstallError> {
        let mut out = Vec::new();
        let batch = batch
            .into_iter()
            .map(|(n, i)| (n.to_owned(), OffLoop::new(manifold(i))))
            .collect();
        let r = self.m.install(batch, self.now, &mut out);
        self.apply(out);
        r
    }

    /// Completes the pending start of `name` with `result`, as a start
    /// job does: a verdict on a failure, and a watch on a new worker.
    fn start(&mut self, name: &str, result: Result<(), Error>) {
        let id = self.id(name);
        let (generation, inputs) = self.starts.remove(&id).expect("a start is pending");
        let mut out = Vec::new();
        let verdict = match &result {
            Ok(()) => Verdict::started(self.policies.sample()),
            Err(e) => self.verdict(name, Some(e.clone())),
        };
        let result = result.map(|()| {
            let worker: SharedWorker = Arc::new(Passive::new());
            self.all_workers.push(worker.clone());
            let seen = inputs
                .iter()
                .map(|(n, s)| {
                    let g = match s {
                        InputState::Running(o) => o.get::<usize>(),
                        _ => None,
                    };
                    (n.clone(), g)
                })
                .collect();
            self.seen.insert(id, seen);
            self.watched.insert(id, (generation, worker.clone()));
            OffLoop::new(Live {
                reports: worker.reporter().is_some(),
                worker,
                outputs: Arc::new(Outputs::new().with(generation as usize)),
            })
        });
        let started = Started { result, verdict };
        self.m.start_done(
            id,
            generation,
            started,
            self.now,
            SystemTime::now(),
            &mut out,
        );
        self.apply(out);
    }

    /// Ends the running worker of `name` with `result`.
    fn end(&mut self, name: &str, result: Result<(), Error>) {
        let id = self.id(name);
        let (generation, worker) = self.watched.get(&id).cloned().expect("watched");
        worker.kill();
        self.dying.retain(|d| d.0 != id);
        let mut out = Vec::new();
        let verdict = self.verdict(name, result.clone().err());
        self.m
            .worker_done(id, generation, result, verdict, self.now, &mut out);
        self.apply(out);
    }

    /// Delivers the ends of the killed workers.
    fn deliver_ends(&mut self) {
        while !self.dying.is_empty() {
            let (node, generation) = self.dying.remove(0);
            let mut out = Vec::new();
            let name = self.m.graph.name(node).to_string();
            let verdict = self.verdict(&name, None);
            self.m
                .worker_done(node, generation, Ok(()), verdict, self.now, &mut out);
            self.apply(out);
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        let mut out = Vec::new();
        self.m.tick(self.now, &mut out);
        self.apply(out);
    }

    fn kill(&mut self) {
        let mut out = Vec::new();
        self.m.kill(self.now, &mut out);
        self.apply(out);
    }

    fn why(&self, name: &str) -> String {
        self.node(name).why.as_ref().unwrap().to_string()
    }
}

//! The state machine driven directly: no threads, no clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use worker_core::{Error, Passive, SharedWorker, Worker};

use super::*;
use crate::backoff::NoJitter;
use crate::{GetError, Outputs};

const MS: Duration = Duration::from_millis(1);

#[derive(Debug, thiserror::Error)]
#[error("fatal!")]
struct Fatal;

type Snapshot = Vec<(Arc<str>, InputState)>;
type Seen = Vec<(Arc<str>, Option<usize>)>;

/// A simulated world around the machine: it records the actions, keeps
/// the pending starts and live workers, and plays the shell's part.
struct World {
    m: Machine,
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
}

fn policy(worst_calls: Arc<AtomicUsize>) -> Policy {
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
    Policy::from_config(&config)
}

fn manifold(inputs: &[&str]) -> Manifold {
    Manifold::new(|_| Ok(Passive::new())).inputs(inputs)
}

impl World {
    fn new() -> Self {
        let worst_calls = Arc::new(AtomicUsize::new(0));
        World {
            m: Machine::new(Arc::from("test"), policy(worst_calls.clone())),
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
                        .find(|(_, (_, w))| Arc::ptr_eq(w, &worker))
                        .map(|(n, (g, _))| (*n, *g))
                        .expect("killed worker is watched");
                    self.dying.push((node, generation));
                }
                Action::Watch {
                    node,
                    generation,
                    worker,
                } => {
                    self.watched.insert(node, (generation, worker));
                }
                Action::RecordStart { name } => self.starts_recorded.push(name),
                Action::RecordStop { .. } => {}
                Action::Removed { node } => self.removed.push(node),
                Action::Stuck { name, .. } => self.stuck.push(name),
            }
        }
        self.check_invariants();
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
            .map(|(n, i)| (n.to_owned(), manifold(i)))
            .collect();
        let r = self.m.install(batch, self.now, &mut out);
        self.apply(out);
        r
    }

    /// Completes the pending start of `name` with `result`.
    fn start(&mut self, name: &str, result: Result<(), Error>) {
        let id = self.id(name);
        let (generation, inputs) = self.starts.remove(&id).expect("a start is pending");
        let mut out = Vec::new();
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
            Live {
                worker,
                outputs: Arc::new(Outputs::new().with(generation as usize)),
            }
        });
        self.m.start_done(
            id,
            generation,
            result,
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
        self.m
            .worker_done(id, generation, result, self.now, &mut out);
        self.apply(out);
    }

    /// Delivers the ends of the killed workers.
    fn deliver_ends(&mut self) {
        while !self.dying.is_empty() {
            let (node, generation) = self.dying.remove(0);
            let mut out = Vec::new();
            self.m
                .worker_done(node, generation, Ok(()), self.now, &mut out);
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

#[test]
fn install_starts_at_once_and_start_registers_the_worker() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    assert_eq!(w.state("a"), "starting");
    w.start("a", Ok(()));
    assert_eq!(w.state("a"), "started");
    assert_eq!(w.starts_recorded, vec![Arc::from("a")]);
    assert_eq!(w.node("a").start_count, 1);
    assert_eq!(w.why("a"), "installed");
}

#[test]
fn an_input_start_bounces_its_starting_dependent() {
    let mut w = World::new();
    w.install_all(vec![("a", &[]), ("b", &["a"])]).unwrap();
    // b was dispatched with a not running.
    let b = w.id("b");
    assert!(matches!(w.starts[&b].1[0].1, InputState::NotRunning));
    w.start("a", Ok(()));
    assert_eq!(w.aborts, vec![b]);
    assert_eq!(w.state("b"), "stopping");
    w.start("b", Err(GetError::not_running("a").into()));
    // Restarted after the bounce delay regardless of the error.
    assert_eq!(w.state("b"), "starting");
    assert_eq!(w.m.next_deadline(), Some(w.now + 10 * MS));
    w.advance(10 * MS);
    assert!(matches!(w.starts[&b].1[0].1, InputState::Running(_)));
    w.start("b", Ok(()));
    assert_eq!(w.state("b"), "started");
    assert_eq!(w.why("b"), "input \"a\" started; restarted after 10ms");
}

#[test]
fn a_worker_started_after_its_abort_is_killed_and_never_offered() {
    let mut w = World::new();
    w.install_all(vec![("a", &[]), ("b", &["a"]), ("c", &["b"])])
        .unwrap();
    w.start("c", Err(Missing.into()));
    w.start("a", Ok(()));
    // b's start was aborted, but it returns a worker anyway.
    w.start("b", Ok(()));
    assert_eq!(w.kills, vec![Arc::from("b")]);
    assert_eq!(w.state("b"), "stopping");
    assert_eq!(w.node("b").start_count, 0);
    w.deliver_ends();
    // Not registered: c (stopped, missing) was not bounced by it.
    assert_eq!(w.state("c"), "stopped");
    assert_eq!(w.state("b"), "starting");
}

#[test]
fn a_stop_of_an_input_bounces_running_dependents() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.install("b", &["a"]).unwrap();
    w.start("b", Ok(()));
    w.end("a", Err(Error::msg("boom")));
    assert_eq!(w.kills, vec![Arc::from("b")]);
    w.deliver_ends();
    assert_eq!(w.state("b"), "starting");
    assert_eq!(w.why("b"), "input \"a\" stopped; restarted after 10ms");
    assert_eq!(
        w.why("a"),
        "failed (backoff step 1): boom; restarted after 100ms"
    );
}

#[test]
fn missing_leaves_the_manifold_stopped_until_an_input_changes() {
    let mut w = World::new();
    w.install("b", &["a"]).unwrap();
    w.start("b", Err(Missing.into()));
    assert_eq!(w.state("b"), "stopped");
    assert_eq!(w.m.next_deadline(), None);
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    assert_eq!(w.state("b"), "starting");
    w.advance(10 * MS);
    w.start("b", Ok(()));
    assert_eq!(w.state("b"), "started");
}

#[test]
fn completion_without_error_is_not_restarted() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.end("a", Ok(()));
    assert_eq!(w.state("a"), "stopped");
    assert_eq!(w.m.next_deadline(), None);
}

#[test]
fn errors_back_off_and_reset_after_a_long_run() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    let mut delays = Vec::new();
    for _ in 0..4 {
        w.start("a", Err(Error::msg("no")));
        let d = w.m.next_deadline().unwrap() - w.now;
        delays.push(d);
        w.advance(d);
    }
    assert_eq!(delays, vec![100 * MS, 200 * MS, 400 * MS, 800 * MS]);
    // Capped at max_delay (10 s) however long it goes on.
    for _ in 0..20 {
        w.start("a", Err(Error::msg("no")));
        let d = w.m.next_deadline().unwrap() - w.now;
        assert!(d <= Duration::from_secs(10));
        w.advance(d);
    }
    assert_eq!(w.m.next_deadline(), None);
    // A worker that ran past the reset time starts over at step 1.
    w.start("a", Ok(()));
    w.now += Duration::from_secs(2);
    w.end("a", Err(Error::msg("late")));
    assert_eq!(w.m.next_deadline().unwrap() - w.now, 100 * MS);
    assert_eq!(w.node("a").recent_errors, 1);
}

#[test]
fn a_success_after_errors_does_not_shorten_the_next_delay() {
    // Go: recentErrors 0 gives factor^-1, halving the delay.
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.end("a", Ok(()));
    assert_eq!(w.node("a").recent_errors, 0);
    w.install("b", &["a"]).unwrap();
    w.start("b", Ok(()));
    // a is stopped (completed); b's error now is the first failure.
    w.end("b", Err(Error::msg("x")));
    assert_eq!(w.m.next_deadline().unwrap() - w.now, 100 * MS);
}

#[test]
fn bounce_restarts_after_the_bounce_delay_without_backoff() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    for _ in 0..5 {
        w.start("a", Ok(()));
        w.end("a", Err(Bounce.into()));
        assert_eq!(w.m.next_deadline().unwrap() - w.now, 10 * MS);
        w.advance(10 * MS);
    }
    assert_eq!(w.why("a"), "worker asked to bounce; restarted after 10ms");
}

#[test]
fn an_input_change_during_a_delay_restarts_the_wait_as_a_bounce() {
    let mut w = World::new();
    w.install_all(vec![("a", &[]), ("b", &["a"])]).unwrap();
    w.start("b", Err(Error::msg("bad")));
    assert_eq!(w.m.next_deadline().unwrap() - w.now, 100 * MS);
    w.start("a", Ok(()));
    // The error delay was cut short: b restarts after the bounce delay.
    assert_eq!(w.m.next_deadline().unwrap() - w.now, 10 * MS);
    assert_eq!(w.node("b").recent_errors, 1);
    w.advance(10 * MS);
    w.start("b", Ok(()));
}

#[test]
fn uninstall_error_removes_the_manifold_and_bounces_dependents() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.install("b", &["a"]).unwrap();
    w.start("b", Ok(()));
    let a = w.id("a");
    w.end("a", Err(Uninstall.into()));
    assert_eq!(w.removed, vec![a]);
    assert!(!w.m.graph.is_installed(a));
    w.deliver_ends();
    w.advance(10 * MS);
    let b = w.id("b");
    assert!(matches!(w.starts[&b].1[0].1, InputState::NotRunning));
    // Reinstalling "a" bounces b again.
    w.start("b", Err(Missing.into()));
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    assert_eq!(w.state("b"), "starting");
}

#[test]
fn public_uninstall_stops_then_removes() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    let mut out = Vec::new();
    let id = w.m.uninstall("a", w.now, &mut out).unwrap();
    w.apply(out);
    assert!(w.removed.is_empty());
    w.deliver_ends();
    assert_eq!(w.removed, vec![id]);
    let mut out = Vec::new();
    assert_eq!(
        w.m.uninstall("a", w.now, &mut out),
        Err(UninstallError::NotInstalled("a".into()))
    );
    // A stopped manifold is removed at once.
    w.install("s", &[]).unwrap();
    w.start("s", Err(Missing.into()));
    let id = w.m.uninstall("s", w.now, &mut out).unwrap();
    w.apply(out);
    assert_eq!(w.removed.last(), Some(&id));
}

#[test]
fn filters_see_every_end_and_decide() {
    let mut w = World::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let m = manifold(&[]).filter(move |e| {
        c.fetch_add(1, Ordering::SeqCst);
        match e {
            None => Some(Error::msg("completed?!")),
            Some(e) if e.to_string() == "benign" => None,
            Some(e) => Some(e),
        }
    });
    let mut out = Vec::new();
    w.m.install(vec![("a".into(), m)], w.now, &mut out).unwrap();
    w.apply(out);
    w.start("a", Ok(()));
    w.end("a", Err(Error::msg("benign")));
    assert_eq!(w.state("a"), "stopped");
    let a = w.id("a");
    w.m.nodes[a].recent_errors = 0;
    let mut out = Vec::new();
    w.m.request_start(a, Delay::None, Cause::Installed, w.now, &mut out);
    w.apply(out);
    w.start("a", Ok(()));
    w.end("a", Ok(()));
    assert_eq!(w.state("a"), "starting");
    assert_eq!(
        w.node("a").last_error.as_ref().unwrap().to_string(),
        "completed?!"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_panicking_filter_becomes_the_error() {
    let mut w = World::new();
    let m = manifold(&[]).filter(|_| panic!("filter broke"));
    let mut out = Vec::new();
    w.m.install(vec![("a".into(), m)], w.now, &mut out).unwrap();
    w.apply(out);
    w.start("a", Err(Error::msg("x")));
    let err = w.node("a").last_error.clone().unwrap();
    assert!(err.is::<worker_core::Panicked>());
    assert_eq!(
        err.to_string(),
        "filter of manifold \"a\" panicked: filter broke"
    );
    assert_eq!(w.state("a"), "starting");
}

#[test]
fn a_fatal_error_stops_everything_dependents_first_and_surfaces_once() {
    let mut w = World::new();
    w.install_all(vec![("a", &[]), ("b", &["a"]), ("c", &["b"]), ("x", &[])])
        .unwrap();
    w.start("a", Ok(()));
    w.start("b", Err(Missing.into()));
    w.start("c", Err(Missing.into()));
    w.advance(10 * MS);
    w.start("b", Ok(()));
    w.advance(10 * MS);
    w.start("c", Ok(()));
    w.start("x", Ok(()));
    w.end("x", Err(Fatal.into()));
    assert!(w.m.is_dying());
    // Only c (no dependents) is killed first.
    assert_eq!(w.kills, vec![Arc::from("c")]);
    w.deliver_ends();
    assert_eq!(
        w.kills,
        vec![Arc::from("c"), Arc::from("b"), Arc::from("a")]
    );
    assert!(w.m.is_finished());
    assert_eq!(w.worst_calls.load(Ordering::SeqCst), 1);
    assert!(w.m.error().unwrap().is::<Fatal>());
    // Nothing restarts, and install is refused.
    assert_eq!(w.m.next_deadline(), None);
    assert!(matches!(
        w.install("z", &[]),
        Err(InstallError::ShuttingDown(_))
    ));
}

#[test]
fn a_panicking_is_fatal_counts_as_fatal() {
    let mut w = World::new();
    w.m.policy.is_fatal = Arc::new(|_| panic!("is_fatal broke"));
    w.install("a", &[]).unwrap();
    w.start("a", Err(Error::msg("x")));
    assert!(w.m.is_finished());
    let err = w.m.error().unwrap();
    assert!(err.is::<worker_core::Panicked>(), "{err}");
    assert_eq!(
        w.node("a").last_error.as_ref().unwrap().to_string(),
        err.to_string()
    );
}

#[test]
fn a_stuck_stop_is_reported_and_releases_inputs_during_shutdown() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.install("b", &["a"]).unwrap();
    w.start("b", Ok(()));
    w.kill();
    assert_eq!(w.kills, vec![Arc::from("b")]);
    // b never ends.
    w.dying.clear();
    assert_eq!(w.m.waiting_for(), vec!["a".to_owned(), "b".to_owned()]);
    w.advance(Duration::from_secs(5));
    assert_eq!(w.stuck, vec![Arc::from("b")]);
    assert_eq!(w.kills, vec![Arc::from("b"), Arc::from("a")]);
    w.deliver_ends();
    assert_eq!(w.m.waiting_for(), vec!["b".to_owned()]);
    assert!(!w.m.is_finished());
    w.end("b", Ok(()));
    assert!(w.m.is_finished());
}

#[test]
fn a_stuck_stop_outside_shutdown_is_reported_once() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    w.install("b", &["a"]).unwrap();
    w.start("b", Ok(()));
    w.end("a", Err(Bounce.into()));
    w.dying.clear();
    w.advance(Duration::from_secs(5));
    w.advance(Duration::from_secs(5));
    assert_eq!(w.stuck, vec![Arc::from("b")]);
    assert!(w.node("b").stuck);
}

#[test]
fn kill_aborts_delays_and_starts() {
    let mut w = World::new();
    w.install_all(vec![("a", &[]), ("b", &[])]).unwrap();
    w.start("a", Err(Error::msg("x")));
    w.kill();
    assert_eq!(w.state("a"), "stopped");
    assert_eq!(w.aborts, vec![w.id("b")]);
    w.start("b", Ok(()));
    assert_eq!(w.kills, vec![Arc::from("b")]);
    w.deliver_ends();
    assert!(w.m.is_finished());
}

#[test]
fn unexpected_events_are_internal_errors_that_stop_the_engine() {
    let mut w = World::new();
    w.install("a", &[]).unwrap();
    w.start("a", Ok(()));
    let mut out = Vec::new();
    w.m.worker_done(w.id("a"), 999, Ok(()), w.now, &mut out);
    w.apply(out);
    assert!(w.m.is_dying());
    assert!(w.m.has_internal_error());
    assert!(w.m.error().unwrap().is::<Internal>());
    w.deliver_ends();
    assert!(w.m.is_finished());
}

#[test]
fn a_failed_batch_installs_nothing() {
    let mut w = World::new();
    w.install("a", &["c"]).unwrap();
    let err = w
        .install_all(vec![("b", &["a"]), ("c", &["b"])])
        .unwrap_err();
    assert!(matches!(err, InstallError::Cycle { .. }), "{err}");
    assert_eq!(w.m.graph.id("b"), None);
    assert!(!w.m.graph.is_installed(w.id("c")));
    let err = w.install_all(vec![("q", &[]), ("q", &[])]).unwrap_err();
    assert_eq!(err, InstallError::DuplicateName("q".into()));
    assert_eq!(w.m.graph.id("q"), None);
}

#[test]
fn aborted_delays_never_reach_is_fatal() {
    let mut w = World::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    w.m.policy.is_fatal = Arc::new(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        false
    });
    w.install_all(vec![("a", &[]), ("b", &["a"])]).unwrap();
    w.start("b", Err(Error::msg("x")));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    w.start("a", Ok(()));
    // b's delay was aborted and restarted: is_fatal was not asked again.
    assert_eq!(w.state("b"), "starting");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// ----- property test ------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ok,
    Fail,
    Missing,
    Bounce,
    Uninstall,
    Fatal,
    Panic,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        6 => Just(Outcome::Ok),
        2 => Just(Outcome::Fail),
        2 => Just(Outcome::Missing),
        1 => Just(Outcome::Bounce),
        1 => Just(Outcome::Uninstall),
        1 => Just(Outcome::Fatal),
        1 => Just(Outcome::Panic),
    ]
}

fn to_result(o: Outcome) -> Result<(), Error> {
    match o {
        Outcome::Ok => Ok(()),
        Outcome::Fail => Err(Error::msg("failed")),
        Outcome::Missing => Err(Missing.into()),
        Outcome::Bounce => Err(Bounce.into()),
        Outcome::Uninstall => Err(Uninstall.into()),
        Outcome::Fatal => Err(Fatal.into()),
        Outcome::Panic => Err(Error::new(worker_core::Panicked {
            what: "start".into(),
            message: "boom".into(),
        })),
    }
}

#[derive(Debug, Clone)]
enum Op {
    ResolveStart(usize, Outcome),
    EndWorker(usize, Outcome),
    Advance(u64),
    Uninstall(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..8, outcome()).prop_map(|(i, o)| Op::ResolveStart(i, o)),
        2 => (0usize..8, outcome()).prop_map(|(i, o)| Op::EndWorker(i, o)),
        2 => (1u64..500).prop_map(Op::Advance),
        1 => (0usize..8).prop_map(Op::Uninstall),
    ]
}

fn graph() -> impl Strategy<Value = Vec<Vec<usize>>> {
    // Node i may only depend on nodes < i: acyclic by construction.
    (1usize..8).prop_flat_map(|n| {
        (0..n)
            .map(|i| proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i.min(3)))
            .collect::<Vec<_>>()
    })
}

fn name(i: usize) -> String {
    format!("m{i}")
}

impl World {
    fn fatal_count(&self) -> usize {
        self.worst_calls.load(Ordering::SeqCst)
    }

    fn pending_start(&self, i: usize) -> Option<String> {
        let id = self.m.graph.id(&name(i))?;
        self.starts.contains_key(&id).then(|| name(i))
    }

    fn running(&self, i: usize) -> Option<String> {
        let id = self.m.graph.id(&name(i))?;
        matches!(self.m.nodes[id].phase, Phase::Running { .. }).then(|| name(i))
    }

    /// Resolves every pending start successfully, delivers every kill and
    /// fires every timer, until nothing is left to do.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            if let Some(&id) = self.starts.keys().min() {
                let n = self.m.graph.name(id).to_string();
                self.start(&n, Ok(()));
            } else if !self.dying.is_empty() {
                self.deliver_ends();
            } else if let Some(at) = self.m.next_deadline() {
                let d = at.saturating_duration_since(self.now);
                self.advance(d);
            } else {
                return;
            }
        }
        panic!("did not settle");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_graphs_and_failures_settle_consistently(
        inputs in graph(),
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let mut w = World::new();
        let batch: Vec<(String, Manifold)> = inputs
            .iter()
            .enumerate()
            .map(|(i, ins)| {
                let names: Vec<String> = ins.iter().map(|&j| name(j)).collect();
                (name(i), manifold(&names.iter().map(String::as_str).collect::<Vec<_>>()))
            })
            .collect();
        let mut out = Vec::new();
        w.m.install(batch, w.now, &mut out).unwrap();
        w.apply(out);
        let mut fatals = 0;
        for op in ops {
            let fatal_before = w.fatal_count();
            match op {
                Op::ResolveStart(i, o) => {
                    if let Some(n) = w.pending_start(i) {
                        w.start(&n, to_result(o));
                    }
                }
                Op::EndWorker(i, o) => {
                    if let Some(n) = w.running(i) {
                        w.end(&n, to_result(o));
                    }
                }
                Op::Advance(ms) => {
                    w.deliver_ends();
                    w.advance(Duration::from_millis(ms));
                }
                Op::Uninstall(i) => {
                    let mut out = Vec::new();
                    let _ = w.m.uninstall(&name(i), w.now, &mut out);
                    w.apply(out);
                }
            }
            fatals += w.fatal_count() - fatal_before;
        }
        // Every fatal error was ranked exactly once, and is the result.
        prop_assert_eq!(w.m.error().is_some(), fatals > 0);
        w.settle();
        if !w.m.is_dying() {
            // Settled: nothing in flight, and every running manifold saw
            // exactly the current worker of each of its inputs.
            for id in w.m.graph.installed() {
                let node = &w.m.nodes[id];
                prop_assert!(
                    matches!(node.phase, Phase::Stopped | Phase::Running { stopping: None, .. }),
                    "{} is {}", w.m.graph.name(id), node.phase.name()
                );
                if matches!(node.phase, Phase::Running { .. }) {
                    for (input, seen) in &w.seen[&id] {
                        let input_id = w.m.graph.id(input).unwrap();
                        let current = match &w.m.nodes[input_id].phase {
                            Phase::Running { live, .. } => live.outputs.get::<usize>(),
                            _ => None,
                        };
                        prop_assert_eq!(*seen, current, "{} saw a stale {}", w.m.graph.name(id), input);
                    }
                }
            }
            w.kill();
            w.settle();
        }
        prop_assert!(w.m.is_finished());
        prop_assert!(w.m.waiting_for().is_empty());
        prop_assert_eq!(w.m.next_deadline(), None);
        // Every worker ever started has ended.
        for worker in &w.all_workers {
            prop_assert!(worker.dead_signal().unwrap().try_recv().is_err());
            prop_assert!(matches!(
                worker.dead_signal().unwrap().try_recv(),
                Err(crossbeam_channel::TryRecvError::Disconnected)
            ));
        }
        prop_assert_eq!(w.m.error().is_some(), fatals > 0 || w.fatal_count() > 0);
    }
}

//! Random acyclic graphs, random failures, random clock advances.

use std::sync::atomic::Ordering;
use std::time::Duration;

use proptest::prelude::*;
use worker_core::supervisor::offloop::OffLoop;
use worker_core::{Error, Worker};

use super::*;

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
        let batch = batch.into_iter().map(|(n, m)| (n, OffLoop::new(m))).collect();
        w.m.install(batch, w.now, &mut out).unwrap();
        w.apply(out);
        for op in ops {
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
        }
        // Every fatal verdict was recorded exactly once; none is ranked
        // before the engine ends.
        prop_assert_eq!(w.m.fatal_errors().len(), w.fatal_verdicts);
        prop_assert_eq!(w.m.error().is_some(), w.fatal_verdicts > 0);
        let ranked = if w.m.is_finished() { w.fatal_verdicts } else { 0 };
        prop_assert_eq!(w.fatal_count(), ranked);
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
        // Every worker ever started has ended, and was handed over to be
        // reaped exactly once.
        prop_assert_eq!(w.reaped, w.all_workers.len());
        for worker in &w.all_workers {
            prop_assert!(worker.dead_signal().unwrap().try_recv().is_err());
            prop_assert!(matches!(
                worker.dead_signal().unwrap().try_recv(),
                Err(crossbeam_channel::TryRecvError::Disconnected)
            ));
        }
        // Every fatal error was ranked exactly once, when the engine
        // ended, and the first (this ranking keeps it) is the result.
        prop_assert_eq!(w.m.fatal_errors().len(), w.fatal_verdicts);
        prop_assert_eq!(w.fatal_count(), w.fatal_verdicts);
        match w.result() {
            Ok(()) => prop_assert_eq!(w.fatal_verdicts, 0),
            Err(e) => prop_assert!(e.same(&w.m.fatal_errors()[0])),
        }
    }
}

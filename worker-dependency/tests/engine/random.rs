//! Random graphs with random failures, on real threads: the engine always
//! settles with every manifold running (or stops on a fatal error, which
//! surfaces exactly once), and after kill + wait nothing runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use worker_core::{Error, Passive, Worker, WorkerState};
use worker_dependency::{Bounce, Engine, EngineConfig, Manifold, Metrics};
use worker_testing::assert_threads_gone;

use crate::common::LONG;

#[derive(Debug, thiserror::Error)]
#[error("fatal")]
struct Fatal;

#[derive(Debug, Clone, Copy)]
enum Step {
    Run,
    StartError,
    StartPanic,
    EndBounce,
    EndError,
    Fatal,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Run),
        2 => Just(Step::StartError),
        1 => Just(Step::StartPanic),
        2 => Just(Step::EndBounce),
        2 => Just(Step::EndError),
        1 => Just(Step::Fatal),
    ]
}

struct Starts(crossbeam_channel::Sender<()>);

impl Metrics for Starts {
    fn record_start(&self, _: &str) {
        let _ = self.0.send(());
    }
}

static CASE: AtomicUsize = AtomicUsize::new(0);

fn run_case(inputs: Vec<Vec<usize>>, scripts: Vec<Vec<Step>>) -> Result<(), TestCaseError> {
    let name = format!("dep-random-{:05}-", CASE.fetch_add(1, Ordering::SeqCst));
    let fatals = Arc::new(AtomicUsize::new(0));
    let ranked = Arc::new(AtomicUsize::new(0));
    let (starts_tx, starts) = crossbeam_channel::unbounded();
    let mut config = EngineConfig::new(name.clone());
    config.error_delay = Duration::from_millis(1);
    config.bounce_delay = Duration::from_millis(1);
    config.backoff_factor = 0.0;
    config.is_fatal = Arc::new(|e| e.is::<Fatal>());
    let r = ranked.clone();
    config.worst_error = Arc::new(move |new: &Error, worst: Option<&Error>| {
        r.fetch_add(1, Ordering::SeqCst);
        worst.unwrap_or(new).clone()
    });
    let config = config.metrics(Starts(starts_tx));
    let engine = Engine::new(config).unwrap();
    let workers: Arc<Mutex<Vec<Arc<Passive>>>> = Arc::default();
    let manifolds: Vec<(String, Manifold)> = inputs
        .iter()
        .zip(scripts)
        .enumerate()
        .map(|(i, (ins, script))| {
            let names: Vec<String> = ins.iter().map(|j| format!("m{j}")).collect();
            let position = AtomicUsize::new(0);
            let workers = workers.clone();
            let fatals = fatals.clone();
            let input_names = names.clone();
            let m = Manifold::new(move |ctx| {
                for input in &input_names {
                    ctx.require(input)?;
                }
                let step = script
                    .get(position.fetch_add(1, Ordering::SeqCst))
                    .copied()
                    .unwrap_or(Step::Run);
                let worker = Arc::new(Passive::new());
                match step {
                    Step::Run => {}
                    Step::StartError => return Err(Error::msg("start failed")),
                    Step::StartPanic => panic!("start panicked"),
                    Step::EndBounce => worker.finish(Err(Error::new(Bounce))),
                    Step::EndError => worker.finish(Err(Error::msg("ended badly"))),
                    Step::Fatal => {
                        fatals.fetch_add(1, Ordering::SeqCst);
                        return Err(Error::new(Fatal));
                    }
                }
                workers.lock().unwrap().push(worker.clone());
                Ok(worker)
            })
            .inputs(&names);
            (format!("m{i}"), m)
        })
        .collect();
    let n = manifolds.len();
    engine.install_all(manifolds).unwrap();
    // Settle: every manifold running, or the engine stopped on its own.
    let dead = engine.dead_signal().unwrap();
    loop {
        if engine.dead_signal().unwrap().try_recv().is_err() && fatals.load(Ordering::SeqCst) == 0 {
            let report = engine.report();
            let running = report
                .manifolds
                .iter()
                .filter(|m| m.state == WorkerState::Started)
                .count();
            if running == n {
                break;
            }
        } else if fatals.load(Ordering::SeqCst) > 0 {
            break;
        }
        crossbeam_channel::select! {
            recv(starts) -> _ => {}
            recv(dead) -> _ => {}
            default(LONG) => {
                let report = serde_json::to_string(&engine.report()).unwrap();
                return Err(TestCaseError::fail(format!("did not settle: {report}")));
            }
        }
    }
    engine.kill();
    let result = engine.wait();
    let fatal_count = fatals.load(Ordering::SeqCst);
    prop_assert_eq!(ranked.load(Ordering::SeqCst), fatal_count);
    match result {
        Ok(()) => prop_assert_eq!(fatal_count, 0),
        Err(e) => {
            prop_assert!(e.is::<Fatal>(), "{}", e);
            prop_assert!(fatal_count > 0);
        }
    }
    for w in workers.lock().unwrap().iter() {
        prop_assert!(w.tomb().try_result().is_some(), "a worker is still running");
    }
    assert_threads_gone(&name);
    Ok(())
}

fn graph() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1usize..7).prop_flat_map(|n| {
        (0..n)
            .map(|i| proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i.min(3)))
            .collect::<Vec<_>>()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_graphs_settle_and_stop_cleanly(
        (inputs, scripts) in graph().prop_flat_map(|g| {
            let n = g.len();
            (Just(g), proptest::collection::vec(proptest::collection::vec(step(), 0..4), n))
        })
    ) {
        run_case(inputs, scripts)?;
    }
}

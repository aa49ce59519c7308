//! Machines that come and go, and a runner that keeps one worker per
//! machine: the dynamic part of the agent.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crossbeam_channel::select;
use serde::Serialize;
use tokio::runtime::Handle;
use worker_catacomb::{Catacomb, CatacombReport, Plan};
use worker_core::events::MetricsFacade;
use worker_core::task::TaskWorker;
use worker_core::{Error, Report, Reporter, SharedWorker, Worker};
use worker_dependency::Manifold;
use worker_runner::{Runner, RunnerParams, RunnerReport};

use super::names::*;
use super::{Serving, closed_connection_is_a_bounce, every, every_task};
use crate::agent::chaos::Chaos;
use crate::agent::model::{AgentConfig, ApiClient, MachineFeed};

/// Watches the controller for the machines this agent looks after: a new
/// one appears every so often, and the oldest goes once there are more
/// than three.
pub(super) fn watcher() -> Manifold {
    Manifold::new(|ctx| {
        let config: AgentConfig = ctx.get(CONFIG)?;
        let api: ApiClient = ctx.get(API)?;
        let feed = MachineFeed::default();
        let publish = feed.clone();
        let mut next = 0u32;
        let worker = every(MACHINE_WATCHER, config.machines_every, move |_| {
            api.call("watch-machines")?;
            let mut machines = publish.current();
            next += 1;
            machines.insert(format!("machine-{next}"));
            while machines.len() > 3 {
                let oldest = machines.iter().next().cloned();
                if let Some(oldest) = oldest {
                    machines.remove(&oldest);
                }
            }
            publish.set(machines);
            Ok(())
        });
        Ok(Serving {
            value: feed,
            worker,
        })
    })
    .inputs([CONFIG, API])
    .output(|w: &Serving<MachineFeed>, out| out.put(w.value()))
    .filter(closed_connection_is_a_bounce)
}

/// Keeps one worker per machine with a [`Runner`]: starts a worker when a
/// machine appears, stops it when the machine goes, and lets the runner
/// restart workers that fail. The manifold's worker is a catacomb that
/// binds the runner to the loop reading the feed.
pub(super) fn runner() -> Manifold {
    Manifold::new(|ctx| {
        let config: AgentConfig = ctx.get(CONFIG)?;
        let feed: MachineFeed = ctx.get(MACHINE_WATCHER)?;
        let runner = Arc::new(Runner::new(
            RunnerParams::new(MACHINES)
                .is_fatal(|_| false)
                .restart_delay(Duration::from_millis(500))
                .stop_timeout(Duration::from_secs(1))
                .hook(MetricsFacade::new()),
        )?);
        let looked_after = runner.clone();
        let (chaos, runtime) = (config.chaos.clone(), config.runtime.clone());
        // Named apart from the runner, so that their metrics (labelled by
        // supervisor) and log lines tell them apart.
        let plan = Plan::new(format!("{MACHINES}-fleet"), move |c: &Catacomb| {
            let mut current = BTreeSet::new();
            loop {
                reconcile(
                    &looked_after,
                    &mut current,
                    feed.current(),
                    &chaos,
                    &runtime,
                )?;
                select! {
                    recv(c.dying()) -> _ => return Err(c.err_dying()),
                    recv(feed.changes()) -> _ => {}
                }
            }
        })
        .init([runner.clone() as SharedWorker])
        .hook(MetricsFacade::new());
        Ok(MachineFleet {
            catacomb: Catacomb::invoke(plan)?,
            runner,
        })
    })
    .inputs([CONFIG, MACHINE_WATCHER])
}

/// Starts workers for new machines and stops those of machines that went.
fn reconcile(
    runner: &Runner,
    current: &mut BTreeSet<String>,
    wanted: BTreeSet<String>,
    chaos: &Arc<Chaos>,
    runtime: &Handle,
) -> Result<(), Error> {
    for gone in current.difference(&wanted) {
        tracing::info!(machine = %gone, "machine gone; stopping its worker");
        runner.stop_worker(gone)?;
    }
    for new in wanted.difference(current) {
        tracing::info!(machine = %new, "machine appeared; starting its worker");
        let (id, chaos, runtime) = (new.clone(), chaos.clone(), runtime.clone());
        let incarnations = Arc::new(AtomicU32::new(0));
        runner.start_worker(new.clone(), move || {
            let incarnation = incarnations.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(machine_worker(&runtime, &id, incarnation, chaos.clone()))
        })?;
    }
    *current = wanted;
    Ok(())
}

/// The worker of one machine: a task on the agent's runtime (a fleet of
/// machines costs no thread each). The first incarnation of every
/// odd-numbered machine times out once, so the runner's restarts show in a
/// plain run; under chaos any of them may fail.
fn machine_worker(runtime: &Handle, id: &str, incarnation: u32, chaos: Arc<Chaos>) -> TaskWorker {
    let odd = id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n % 2 == 1);
    let (id, mut checks) = (id.to_owned(), 0u32);
    every_task(
        runtime,
        &id.clone(),
        Duration::from_millis(700),
        move || {
            checks += 1;
            if odd && incarnation == 1 && checks == 2 {
                return Err(Error::msg(format!("provisioning {id} timed out")));
            }
            if chaos.strikes(0.05) {
                return Err(Error::msg(format!("{id} agent unreachable")));
            }
            Ok(())
        },
    )
}

/// The `machines` manifold's worker: the catacomb's lifetime, and a report
/// of both the catacomb and the runner it binds (so the engine's report
/// shows every machine's worker).
#[derive(Debug)]
struct MachineFleet {
    catacomb: Catacomb,
    runner: Arc<Runner>,
}

impl Worker for MachineFleet {
    worker_core::delegate_worker!(catacomb);

    fn reporter(&self) -> Option<&dyn Reporter> {
        Some(self)
    }
}

impl Reporter for MachineFleet {
    fn report(&self) -> Report {
        Report::new(FleetReport {
            catacomb: self.catacomb.report(),
            runner: self.runner.report(),
        })
    }
}

/// The `machines` manifold's report: the catacomb's own (`state`, `error`,
/// `workers` bound), and the report of the runner it binds under `runner`.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// The catacomb that binds the runner to the loop reading the feed.
    #[serde(flatten)]
    pub catacomb: CatacombReport,
    /// The runner of one worker per machine.
    pub runner: RunnerReport,
}

//! Workers that do a little work every so often: metrics, status, disk
//! checks, cleanup.

use std::time::Duration;

use worker_core::task::TaskWorker;
use worker_core::{Error, spawn};
use worker_dependency::{Engine, Manifold};

use super::names::*;
use super::{Serving, every, every_task};
use crate::agent::model::{AgentConfig, MetricsStore};

/// Collects counters, and offers the store to its dependents. Its worker
/// is a task on the agent's runtime: the engine starts, bounces and stops
/// it like the thread workers around it.
pub(super) fn metrics() -> Manifold {
    Manifold::new(|ctx| {
        let config: AgentConfig = ctx.get(CONFIG)?;
        let store = MetricsStore::default();
        let samples = store.clone();
        let worker = every_task(
            &config.runtime,
            METRICS,
            Duration::from_millis(500),
            move || {
                samples.add("samples", 1);
                Ok(())
            },
        );
        Ok(Serving {
            value: store,
            worker,
        })
    })
    .inputs([CONFIG])
    .output(|m: &Serving<MetricsStore, TaskWorker>, out| out.put(m.value()))
}

/// Logs a one-line status from the engine's own report (the engine reaches
/// its manifolds through the self manifold, `engine`).
pub(super) fn status() -> Manifold {
    Manifold::new(|ctx| {
        let engine: Engine = ctx.get(ENGINE)?;
        Ok(every(STATUS, Duration::from_secs(2), move |_| {
            let report = engine.report();
            let mut counts = std::collections::BTreeMap::<&str, usize>::new();
            for m in &report.manifolds {
                *counts.entry(m.state.as_str()).or_default() += 1;
            }
            let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
            tracing::info!("status: {}", summary.join(", "));
            Ok(())
        }))
    })
    .inputs([ENGINE])
}

/// Checks the disk. Under chaos its reading sometimes goes out of range
/// and it panics: the engine turns the panic into the manifold's error and
/// restarts it.
pub(super) fn disk_monitor() -> Manifold {
    Manifold::new(|ctx| {
        let config: AgentConfig = ctx.get(CONFIG)?;
        Ok(every(DISK, Duration::from_secs(1), move |_| {
            let mut usage = 40.0 + 40.0 * config.chaos.uniform();
            if config.chaos.strikes(0.2) {
                usage += 100.0;
            }
            assert!(
                usage <= 100.0,
                "disk usage reading out of range: {usage:.0}%"
            );
            Ok::<(), Error>(())
        }))
    })
    .inputs([CONFIG])
}

/// Cleans up now and then. Under chaos it ignores kill for three seconds,
/// longer than the engine's stop timeout: the engine reports it stuck,
/// stops the rest in order, and waits for it.
pub(super) fn janitor() -> Manifold {
    Manifold::new(|ctx| {
        let config: AgentConfig = ctx.get(CONFIG)?;
        Ok(spawn(format!("agent-{JANITOR}"), move |tomb| {
            let _ = tomb.dying().recv();
            if config.chaos.enabled() {
                tracing::info!("janitor: finishing a long sweep before stopping");
                std::thread::sleep(Duration::from_secs(3));
            }
            Ok(())
        }))
    })
    .inputs([CONFIG])
}

//! The agent's manifolds, and the two small building blocks they share.
//!
//! Each function returns one [`Manifold`]: its inputs, its start function
//! and what it offers to its dependents. [`all`] lists them under their
//! names; the names are constants so that inputs cannot be misspelt.

mod connection;
mod logs;
mod machines;
mod periodic;

use std::time::Duration;

use crossbeam_channel::{select, tick};
use tokio::runtime::Handle;
use worker_core::task::{self, TaskWorker};
use worker_core::{Error, ThreadWorker, Tomb, Worker, spawn};
use worker_dependency::{Bounce, Manifold, self_manifold};

use super::model::{AgentConfig, ConnectionClosed};

pub use machines::FleetReport;

/// Manifold names.
pub mod names {
    /// The configuration.
    pub const CONFIG: &str = "config";
    /// The flaky connection to the controller.
    pub const API: &str = "api-connection";
    /// Sends a heartbeat through the connection.
    pub const HEARTBEAT: &str = "heartbeat";
    /// Collects counters.
    pub const METRICS: &str = "metrics";
    /// Uploads the counters through the connection.
    pub const UPLOADER: &str = "uploader";
    /// Watches the set of machines.
    pub const MACHINE_WATCHER: &str = "machine-watcher";
    /// A runner of one worker per machine.
    pub const MACHINES: &str = "machines";
    /// A catacomb of helpers that ship log lines.
    pub const LOG_FORWARDER: &str = "log-forwarder";
    /// The engine itself, offered to its manifolds.
    pub const ENGINE: &str = "engine";
    /// Logs a one-line status from the engine's report.
    pub const STATUS: &str = "status";
    /// Checks the disk; panics under chaos.
    pub const DISK: &str = "disk-monitor";
    /// Cleans up; hangs when killed under chaos.
    pub const JANITOR: &str = "janitor";
    /// Holds the leadership lease; installed late, while the agent runs.
    pub const LEADERSHIP: &str = "leadership";
    /// Needs the leadership: missing until it is installed.
    pub const UPGRADER: &str = "upgrader";
}
use names::*;

/// Every manifold the agent installs at start, with its name.
/// [`leadership`] comes later, to show a missing input being resolved.
pub fn all(
    config: AgentConfig,
    engine: &worker_dependency::Engine,
) -> Vec<(&'static str, Manifold)> {
    vec![
        (CONFIG, Manifold::constant(config)),
        (API, connection::api_connection()),
        (HEARTBEAT, connection::heartbeat()),
        (METRICS, periodic::metrics()),
        (UPLOADER, connection::uploader()),
        (MACHINE_WATCHER, machines::watcher()),
        (MACHINES, machines::runner()),
        (LOG_FORWARDER, logs::forwarder()),
        (ENGINE, self_manifold(engine)),
        (STATUS, periodic::status()),
        (DISK, periodic::disk_monitor()),
        (JANITOR, periodic::janitor()),
        (UPGRADER, connection::upgrader()),
    ]
}

/// The leadership lease, installed while the agent runs.
pub fn leadership() -> Manifold {
    connection::leadership()
}

/// A worker that offers a value to its dependents for as long as it runs.
///
/// Many manifolds have this shape: a thread or a task that does the work,
/// and a handle (a client, a store, a feed) that dependents use. The
/// output function puts `value`; the worker part delegates to the thread
/// or task, including its completion callback, so the engine needs no
/// thread to watch it.
#[derive(Debug)]
pub struct Serving<T, W = ThreadWorker> {
    value: T,
    worker: W,
}

impl<T: Clone + Send + Sync + 'static, W> Serving<T, W> {
    /// The value dependents get.
    pub fn value(&self) -> T {
        self.value.clone()
    }
}

impl<T: Send + Sync + 'static, W: Worker> Worker for Serving<T, W> {
    worker_core::delegate_worker!(worker);
}

/// A thread worker that runs `step` every `every` until killed; the first
/// error `step` returns ends the worker with it.
pub fn every(
    name: &str,
    every: Duration,
    mut step: impl FnMut(&Tomb) -> Result<(), Error> + Send + 'static,
) -> ThreadWorker {
    spawn(format!("agent-{name}"), move |tomb| {
        let ticks = tick(every);
        loop {
            select! {
                recv(tomb.dying()) -> _ => return Ok(()),
                recv(ticks) -> _ => step(tomb)?,
            }
        }
    })
}

/// A task worker on the agent's runtime that runs `step` every `every`
/// until killed; the first error `step` returns ends the worker with it.
/// The task twin of [`every`]: it costs no thread, and a kill is seen at
/// its next await. Its first step logs that it runs, and on which thread
/// (one of the runtime's).
pub fn every_task(
    runtime: &Handle,
    name: &str,
    every: Duration,
    mut step: impl FnMut() -> Result<(), Error> + Send + 'static,
) -> TaskWorker {
    let name = name.to_owned();
    task::spawn_on(runtime, move |tomb| async move {
        let start = tokio::time::Instant::now() + every;
        let mut ticks = tokio::time::interval_at(start, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tokio::select! {
                _ = tomb.until_dying() => return Ok(()),
                _ = ticks.tick() => {
                    if std::mem::take(&mut first) {
                        let thread = std::thread::current();
                        let thread = thread.name().unwrap_or("unnamed");
                        tracing::info!(worker = %name, %thread, "task worker running");
                    }
                    step()?;
                }
            }
        }
    })
}

/// A manifold filter for workers that call the controller: a call on a
/// connection that has just closed means the connection manifold is being
/// restarted, and this one with it, so it is a bounce, not a failure.
fn closed_connection_is_a_bounce(err: Option<Error>) -> Option<Error> {
    match err {
        Some(e) if e.is::<ConnectionClosed>() => Some(Error::new(Bounce)),
        other => other,
    }
}

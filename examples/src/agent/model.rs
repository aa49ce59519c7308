//! What the agent's workers hand each other: plain values, published as the
//! typed outputs of their manifolds.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use worker_core::Error;

use super::chaos::Chaos;

/// The agent's configuration: the output of the `config` manifold.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where the (pretend) controller lives.
    pub api_url: String,
    /// How long a connection lasts before the controller resets it.
    pub connection_lifetime: Duration,
    /// How often the heartbeat is sent.
    pub heartbeat_every: Duration,
    /// How often metrics are uploaded.
    pub upload_every: Duration,
    /// How often the set of machines changes.
    pub machines_every: Duration,
    /// Fault injection, shared by every worker.
    pub chaos: Arc<Chaos>,
    /// The agent's tokio runtime, where its task workers run. Start
    /// functions run on the engine's and the runner's start threads, which
    /// are not runtime threads, so they name the runtime by this handle.
    pub runtime: tokio::runtime::Handle,
}

/// A handle on the connection to the controller: the output of the
/// `api-connection` manifold. Calls fail once the connection is gone.
#[derive(Debug, Clone)]
pub struct ApiClient {
    inner: Arc<ApiInner>,
}

#[derive(Debug)]
struct ApiInner {
    /// Which connection this is (1 for the first, counting reconnects).
    id: u64,
    open: AtomicBool,
    calls: AtomicU64,
}

/// A call was made on a connection that has closed; workers map it to a
/// bounce, since their manifold is about to be restarted anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection #{0} is closed")]
pub struct ConnectionClosed(pub u64);

impl ApiClient {
    /// A new open connection numbered `id`.
    pub fn new(id: u64) -> Self {
        ApiClient {
            inner: Arc::new(ApiInner {
                id,
                open: AtomicBool::new(true),
                calls: AtomicU64::new(0),
            }),
        }
    }

    /// Which connection this is.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Makes a (pretend) call to the controller.
    pub fn call(&self, _what: &str) -> Result<(), Error> {
        if !self.inner.open.load(Ordering::Acquire) {
            return Err(ConnectionClosed(self.inner.id).into());
        }
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// How many calls went through this connection.
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Closes the connection: later calls fail.
    pub fn close(&self) {
        self.inner.open.store(false, Ordering::Release);
    }
}

/// Counters the agent collects: the output of the `metrics` manifold.
#[derive(Debug, Clone, Default)]
pub struct MetricsStore {
    counters: Arc<Mutex<std::collections::BTreeMap<&'static str, u64>>>,
}

impl MetricsStore {
    /// Adds `n` to counter `name`.
    pub fn add(&self, name: &'static str, n: u64) {
        *self.lock().entry(name).or_default() += n;
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        self.lock().iter().map(|(k, v)| (*k, *v)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<&'static str, u64>> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The machines this agent looks after, and a signal when they change: the
/// output of the `machine-watcher` manifold.
#[derive(Debug, Clone)]
pub struct MachineFeed {
    current: Arc<Mutex<BTreeSet<String>>>,
    changed_tx: Sender<()>,
    changed: Receiver<()>,
}

impl Default for MachineFeed {
    fn default() -> Self {
        let (changed_tx, changed) = crossbeam_channel::bounded(1);
        MachineFeed {
            current: Arc::default(),
            changed_tx,
            changed,
        }
    }
}

impl MachineFeed {
    /// The machines now.
    pub fn current(&self) -> BTreeSet<String> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the set of machines and signals the change.
    pub fn set(&self, machines: BTreeSet<String>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = machines;
        // A pending signal already says "changed": no need for two.
        let _ = self.changed_tx.try_send(());
    }

    /// Yields a value after each change (changes in a burst may merge).
    pub fn changes(&self) -> &Receiver<()> {
        &self.changed
    }
}

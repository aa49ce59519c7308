//! The live observer: with `--observe 127.0.0.1:PORT`, the agent serves a
//! page on the loopback that shows its supervision tree and its dependency
//! graph as they change, and the data behind it.
//!
//! | path | what |
//! | --- | --- |
//! | `/` | the page: every supervisor and worker with its state, start count, last error and why it last restarted, and the graph drawn; it polls `/tree.json` and `/graph.svg` every second (its script and style are served here too: nothing comes from elsewhere) |
//! | `/tree.json` | the supervision tree as the page draws it ([`tree`]) |
//! | `/report.json` | the engine's full report |
//! | `/graph.json`, `/graph.dot` | the dependency graph as JSON and as Graphviz DOT |
//! | `/graph.svg` | the DOT laid out as SVG ([`graph`]) |
//! | `/metrics` | the Prometheus text format ([`metrics`] lists the series) |
//!
//! # Loopback only
//!
//! The observer shows the agent's internals (errors, names, addresses)
//! without authentication, so it listens on a loopback address only
//! ([`parse_address`] and [`Observer::bind`] refuse any other), and it
//! answers only requests whose `Host` names the loopback, which keeps web
//! pages from elsewhere out through DNS rebinding. To watch a remote agent,
//! tunnel the port (`ssh -L 8080:127.0.0.1:8080 host`).
//!
//! # In the supervision tree
//!
//! The observer is a [`Worker`]: one thread (a [spawned](worker_core::spawn())
//! one, so accounted for) that drives a current-thread tokio runtime of
//! its own, running hyper's HTTP/1 server. The agent binds it before the
//! engine starts (a bad or busy address fails the run at once), watches it
//! like the engine (if it fails, the agent stops in order and reports why),
//! and stops it after the engine, so the page shows the shutdown to its
//! end. Stopping it stops accepting, lets open requests finish (for at
//! most a second), and drops the runtime with every connection: when
//! `wait` returns, no thread or socket of the observer is left.
//!
//! Why hyper: it is the field's HTTP implementation, and the smallest
//! standard server that runs on the tokio runtime the agent's task workers
//! use; a handful of fixed paths need no router framework on top. A blocking
//! server (tiny_http) would have been as small, but it starts threads of
//! its own that it does not join.
//!
//! The observer reads the engine through an [`Engine`], which does
//! not keep the engine running; once the engine has stopped it serves the
//! final report. Each request takes a fresh report on the observer's
//! thread (workers' own reports included), so a slow worker report delays
//! the page, never the engine.

mod assets;
mod exporter;
pub mod graph;
pub mod metrics;
mod routes;
mod server;
pub mod tree;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;

use worker_core::{ThreadWorker, Worker, spawn};
use worker_dependency::Engine;

use metrics::Collect;

/// Why the observer cannot serve where it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The text is not `IP:PORT` (or `localhost:PORT`).
    #[error(
        "{0:?} is not an address: expected IP:PORT on the loopback, e.g. 127.0.0.1:8080 \
         (port 0 takes a free port)"
    )]
    BadAddress(String),
    /// The address is not on the loopback.
    #[error(
        "{0} is not a loopback address: the observer shows the agent's internals without \
         authentication, so it serves on the loopback only (127.0.0.0/8 or [::1])"
    )]
    NotLoopback(SocketAddr),
    /// The socket could not be opened (the port is taken, say).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// Where it was asked to listen.
        address: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Parses `--observe`'s value: `IP:PORT` or `localhost:PORT`, on the
/// loopback only.
///
/// ```
/// use worker_examples::agent::observer::{ObserveError, parse_address};
///
/// assert_eq!(parse_address("127.0.0.1:0")?.port(), 0);
/// assert!(parse_address("localhost:8080")?.ip().is_loopback());
/// assert!(parse_address("[::1]:8080")?.ip().is_loopback());
/// assert!(matches!(parse_address("0.0.0.0:8080"), Err(ObserveError::NotLoopback(_))));
/// assert!(matches!(parse_address("8080"), Err(ObserveError::BadAddress(_))));
/// # Ok::<(), ObserveError>(())
/// ```
pub fn parse_address(text: &str) -> Result<SocketAddr, ObserveError> {
    let address = match text.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
            .ok(),
        None => text.parse::<SocketAddr>().ok(),
    }
    .ok_or_else(|| ObserveError::BadAddress(text.to_owned()))?;
    loopback(address)
}

fn loopback(address: SocketAddr) -> Result<SocketAddr, ObserveError> {
    if address.ip().is_loopback() {
        Ok(address)
    } else {
        Err(ObserveError::NotLoopback(address))
    }
}

/// The observer: an HTTP server on the loopback, as a worker. Made in two
/// steps, [`Observer::bind`] then [`Bound::serve`], so that the address
/// is known (and a bad one refused) before there is an engine to watch.
///
/// ```
/// use worker_core::Worker;
/// use worker_dependency::{Engine, EngineConfig, Manifold};
/// use worker_examples::agent::observer::Observer;
///
/// let engine = Engine::new(EngineConfig::new("docs-observer"))?;
/// engine.install("config", Manifold::constant(7u32))?;
/// let bound = Observer::bind("127.0.0.1:0".parse()?)?;
/// let address = bound.local_addr(); // the port the system chose
/// assert!(address.ip().is_loopback() && address.port() != 0);
/// let observer = bound.serve(engine.clone(), Vec::new());
/// // ... http://{address}/ is live ...
/// worker_core::stop(&engine)?;
/// worker_core::stop(&observer)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Observer {
    worker: ThreadWorker,
    address: SocketAddr,
}

/// A listening socket for an [`Observer`], not serving yet.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    address: SocketAddr,
}

impl Observer {
    /// Opens `address` (a loopback one; port 0 takes a free port).
    /// Connections that arrive before [`Bound::serve`] wait in the
    /// socket's backlog.
    pub fn bind(address: SocketAddr) -> Result<Bound, ObserveError> {
        let address = loopback(address)?;
        let bind_error = |source| ObserveError::Bind { address, source };
        let listener = TcpListener::bind(address).map_err(bind_error)?;
        // tokio takes over the socket, which must not block.
        listener.set_nonblocking(true).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        Ok(Bound { listener, address })
    }

    /// Where it serves: the bound address, with the port the system chose
    /// if 0 was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }
}

impl Bound {
    /// Where it will serve.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Starts serving `engine` on the observer's thread (named
    /// `observer[<address>]`). `metrics` are further sources for
    /// `/metrics`, asked after the report's own families.
    pub fn serve(self, engine: Engine, metrics: Vec<Arc<dyn Collect>>) -> Observer {
        let Bound { listener, address } = self;
        let routes = Arc::new(routes::Routes::new(engine, metrics));
        let worker = spawn(format!("observer[{address}]"), move |tomb| {
            server::run(listener, routes, tomb)
        });
        tracing::info!(%address, "observer serving on http://{address}/");
        Observer { worker, address }
    }
}

impl Worker for Observer {
    worker_core::delegate_worker!(worker);
}

/// A dropped observer stops serving: it owns only its server thread,
/// never the tree it watches.
impl Drop for Observer {
    fn drop(&mut self) {
        self.worker.kill();
    }
}

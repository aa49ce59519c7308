//! One vocabulary for what happens to supervised workers: the same events,
//! with the same fields, from the runner, the engine and the catacomb, to
//! hooks, to `tracing` and to metrics.
//!
//! # Why one vocabulary
//!
//! An operator reading the logs of a service, a program paging someone
//! when a worker gives up, and a dashboard of restarts all ask the same
//! questions of every supervisor: what started, what failed and how, what
//! restarts and when, what will not stop. So every supervisor of the
//! family says it in the same words: an [`Event`] names its supervisor,
//! its worker and the worker's incarnation (its `generation`), and says
//! what happened ([`EventKind`]). The runner, the engine and the catacomb
//! hand these events to hooks, log them through `tracing` under the same
//! names with the same fields, and [`MetricsFacade`] (feature `metrics`)
//! counts them.
//!
//! # The life of an incarnation
//!
//! Each (re)start of a worker is an incarnation with a generation of its
//! own, and its events come in this order:
//!
//! ```text
//! Starting ─► Started ─► [Stopping ─► [Stuck]] ─► Failed | Stopped
//!     └──────────────────────────────────────────► Failed | Stopped   (no worker ran)
//! then, about what comes next:  Restarting | Bouncing | Removed | GaveUp | ShuttingDown
//! ```
//!
//! Exactly one `Failed` or `Stopped` ends every incarnation that had a
//! `Starting` (or, in a catacomb, a `Started`); its [`End`] says whether
//! it had started, how long after the stop request it ended, and whether
//! it was reported stuck.
//!
//! | event | runner | engine | catacomb |
//! |---|---|---|---|
//! | `Starting` | its start function is called | its start function is called | — |
//! | `Started` | the start function returned a worker | the start (and output) function returned a worker | a worker was bound (`add`, `init`) |
//! | `Stopping` | killed (stop, removal, shutdown, cascade) | killed (an input changed, uninstall, shutdown) | killed (the catacomb is dying) |
//! | `Stuck` | past its stop timeout | past `stop_timeout` | — (a catacomb waits without a timeout) |
//! | `Failed` | it or its start failed; `fatal` if `is_fatal` says so | it or its start failed (after the filter); `fatal` per `is_fatal` | a bound worker failed: always fatal to the catacomb |
//! | `Stopped` | it ended cleanly, or after a stop | it ended cleanly, after a stop, missing an input, or with `Bounce`/`Uninstall` | a bound worker ended cleanly |
//! | `Restarting` | after its restart delay (attempt, delay; `because_of` a sibling in a cascade) | after its error delay (attempt = backoff step) | — |
//! | `Bouncing` | — | an input started or stopped, or it returned `Bounce` | — |
//! | `Removed` | the id is forgotten | the manifold is uninstalled | — |
//! | `GaveUp`, `Paused`, `Resumed` | restart limits | — | — |
//! | `ShuttingDown` | killed, fatal, automatic | killed, fatal | killed, fatal, its work returned |
//!
//! Events about the supervisor itself (`Paused`, `Resumed`,
//! `ShuttingDown`) have no worker and generation 0. A catacomb does not
//! name its workers: their events have no worker, and their generation
//! numbers the binding.
//!
//! # Hooks
//!
//! A [`Hook`] (any `Fn(&Event)`, or a type of yours) receives the events
//! of the supervisors it is given to: `RunnerParams::on_event` /
//! `hook`, `EngineConfig::on_event` / `hook`, `Plan::on_event` / `hook`.
//! Hooks are user code, so no supervisor calls one on its loop or under a
//! lock: each supervisor queues its events in a [`Delivery`] and has them
//! delivered on one of its helper threads, in order, one at a time. A
//! panicking hook loses its event and nothing else; a blocking one
//! delays the events after it and the supervisor's final `wait`, never
//! the supervisor's work.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use worker_core::events::{Delivery, End, Event, EventKind};
//!
//! // A hook that keeps the names of the failures it sees.
//! let failed = Arc::new(Mutex::new(Vec::new()));
//! let seen = failed.clone();
//! let hook = move |e: &Event| {
//!     if let EventKind::Failed { error, .. } = &e.kind {
//!         seen.lock().unwrap().push(format!("{}: {error}", e.worker().unwrap_or("?")));
//!     }
//! };
//! // What a supervisor does with it (a supervisor of your own can too).
//! let delivery = Delivery::new("api".into(), vec![Arc::new(hook)]).unwrap();
//! let event = Event::new("api".into(), Some("db".into()), 1, EventKind::Failed {
//!     error: worker_core::Error::msg("connection reset"),
//!     fatal: false,
//!     end: End::new(true, None, false),
//! });
//! event.log(); // through `tracing`, at WARN
//! if delivery.push(event) {
//!     delivery.deliver(); // off the supervisor's loop
//! }
//! assert_eq!(*failed.lock().unwrap(), ["db: connection reset"]);
//! ```
//!
//! # Spans
//!
//! Every incarnation has a `tracing` span, [`worker_span`]: `worker` with
//! `supervisor`, `worker` and `generation`, the events' fields. The runner
//! and the engine enter it around the start function, and the workers
//! the library spawns carry it into their bodies: [`spawn`](crate::spawn())
//! and `task::spawn` take the span current when they are called (inside a
//! start function, the incarnation's), so a line a worker logs names the
//! worker and its incarnation without a field of its own. The supervisor
//! threads have a `supervisor` span with its `name`, which is also the
//! parent of the incarnation spans its start threads make; nested
//! supervisors nest their spans.
//!
//! ```
//! use worker_core::events::worker_span;
//! use worker_core::{spawn, stop};
//!
//! let worker = worker_span("docs", Some("ticker"), 1).in_scope(|| {
//!     // As inside a start function: the body runs in this span.
//!     spawn("ticker", |tomb| {
//!         tracing::info!("tick"); // logged with supervisor=docs worker=ticker generation=1
//!         let _ = tomb.dying().recv();
//!         Ok(())
//!     })
//! });
//! stop(&worker).unwrap();
//! ```
//!
//! # The hook, `tracing` or metrics: when to use which
//!
//! | you want to | use | because |
//! |---|---|---|
//! | read what happened, correlate it with your workers' own lines | `tracing` (a subscriber) | the events and your workers' lines share the incarnation's fields and span; the subscriber filters and ships them |
//! | act on an event: page someone, restart something elsewhere, record history, test a supervisor | a [`Hook`] | typed events, in order, with the errors themselves, off the supervisor's threads |
//! | count and graph: restarts, failures by kind, stop durations, live and stuck workers | [`MetricsFacade`] (feature `metrics`), or a hook of your own for another metrics system | one line per supervisor; the exporter you install serves it |
//!
//! The three are independent and can be combined. What none of them
//! costs when unused: a supervisor with no hook makes no event unless a
//! `tracing` subscriber is installed ([`logging`]), and then only the
//! event itself (no allocation: its names are shared), which `tracing`
//! filters by level.

mod event;
mod hook;
mod log;
#[cfg(feature = "metrics")]
mod metrics;

pub use event::{End, Event, EventKind, FailureKind, ShutdownCause};
pub use hook::{Delivery, Hook};
pub use log::{logging, worker_span};
#[cfg(feature = "metrics")]
pub use metrics::MetricsFacade;

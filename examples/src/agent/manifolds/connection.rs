//! The flaky connection to the controller, and the workers that use it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{after, select};
use worker_core::{Error, Passive, spawn};
use worker_dependency::Manifold;

use super::names::*;
use super::{Serving, closed_connection_is_a_bounce, every};
use crate::agent::model::{AgentConfig, ApiClient, MetricsStore};

/// The connection to the controller. It is deliberately flaky, so that a
/// plain run shows the engine at work:
/// - every connection is reset by the controller after a while (a failure:
///   restarted after the error delay, and its dependents bounced);
/// - the two dials after the first reset are refused (consecutive
///   failures: the delay backs off);
/// - under chaos, more dials are refused and connections live less long.
pub(super) fn api_connection() -> Manifold {
    let dials = Arc::new(AtomicU64::new(0));
    Manifold::new(move |ctx| {
        let config: AgentConfig = ctx.get(CONFIG)?;
        let dial = dials.fetch_add(1, Ordering::SeqCst) + 1;
        if dial == 2 || dial == 3 || config.chaos.strikes(0.3) {
            return Err(Error::msg(format!(
                "dialing {}: connection refused",
                config.api_url
            )));
        }
        let client = ApiClient::new(dial);
        let mut lifetime = config.connection_lifetime;
        if config.chaos.enabled() {
            lifetime = lifetime.mul_f64(0.3 + config.chaos.uniform());
        }
        let conn = client.clone();
        let worker = spawn(format!("agent-{API}"), move |tomb| {
            let reset = after(lifetime);
            let result = select! {
                recv(tomb.dying()) -> _ => Ok(()),
                recv(reset) -> _ => Err(Error::msg(format!(
                    "connection #{} reset by peer after {} calls",
                    conn.id(),
                    conn.calls()
                ))),
            };
            conn.close();
            result
        });
        tracing::info!(connection = dial, url = %config.api_url, "connected to the controller");
        Ok(Serving {
            value: client,
            worker,
        })
    })
    .inputs([CONFIG])
    .output(|conn: &Serving<ApiClient>, out| out.put(conn.value()))
}

/// Sends a heartbeat through the connection.
pub(super) fn heartbeat() -> Manifold {
    Manifold::new(|ctx| {
        let config: AgentConfig = ctx.get(CONFIG)?;
        let api: ApiClient = ctx.get(API)?;
        Ok(every(HEARTBEAT, config.heartbeat_every, move |_| {
            api.call("heartbeat")
        }))
    })
    .inputs([CONFIG, API])
    .filter(closed_connection_is_a_bounce)
}

/// Uploads the collected counters through the connection.
pub(super) fn uploader() -> Manifold {
    Manifold::new(|ctx| {
        let config: AgentConfig = ctx.get(CONFIG)?;
        let api: ApiClient = ctx.get(API)?;
        let metrics: MetricsStore = ctx.get(METRICS)?;
        Ok(every(UPLOADER, config.upload_every, move |_| {
            let snapshot = metrics.snapshot();
            api.call("upload-metrics")?;
            tracing::debug!(counters = snapshot.len(), "uploaded metrics");
            Ok(())
        }))
    })
    .inputs([CONFIG, API, METRICS])
    .filter(closed_connection_is_a_bounce)
}

/// The leadership lease: a thread-less worker that holds as long as the
/// connection does. Installed while the agent runs.
pub(super) fn leadership() -> Manifold {
    Manifold::new(|ctx| {
        let api: ApiClient = ctx.get(API)?;
        api.call("claim-leadership")?;
        tracing::info!(connection = api.id(), "leadership claimed");
        Ok(Passive::new())
    })
    .inputs([API])
    .filter(closed_connection_is_a_bounce)
}

/// Needs the leadership: until `leadership` is installed and running, its
/// start function finds the input missing, and the engine leaves it
/// stopped until the input starts.
pub(super) fn upgrader() -> Manifold {
    Manifold::new(|ctx| {
        ctx.require(LEADERSHIP)?;
        let config: AgentConfig = ctx.get(CONFIG)?;
        tracing::info!("leader: checking for upgrades");
        Ok(every(UPGRADER, config.upload_every, |_| Ok(())))
    })
    .inputs([CONFIG, LEADERSHIP])
}

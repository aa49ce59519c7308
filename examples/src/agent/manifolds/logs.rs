//! A catacomb-based worker: the log forwarder and its two helpers.

use std::time::Duration;

use crossbeam_channel::{select, tick};
use worker_catacomb::{Catacomb, Plan};
use worker_core::events::MetricsFacade;
use worker_core::{Error, SharedWorker, spawn};
use worker_dependency::Manifold;

use super::closed_connection_is_a_bounce;
use super::names::*;
use crate::agent::model::{AgentConfig, ApiClient};

/// Forwards log lines to the controller. Its worker is a catacomb that
/// binds two helpers: a tailer that reads lines, and a shipper that sends
/// them. If either fails, the catacomb fails with that error and stops the
/// other; the engine then restarts the whole forwarder.
pub(super) fn forwarder() -> Manifold {
    Manifold::new(|ctx| {
        let config: AgentConfig = ctx.get(CONFIG)?;
        let api: ApiClient = ctx.get(API)?;
        let (lines_tx, lines) = crossbeam_channel::bounded::<String>(64);

        let chaos = config.chaos.clone();
        let tailer = spawn(format!("agent-{LOG_FORWARDER}-tailer"), move |tomb| {
            let ticks = tick(Duration::from_millis(300));
            for n in 0u64.. {
                select! {
                    recv(tomb.dying()) -> _ => return Ok(()),
                    recv(ticks) -> _ => {
                        if chaos.strikes(0.05) {
                            return Err(Error::msg("log file rotated under the tailer"));
                        }
                        let _ = lines_tx.try_send(format!("log line {n}"));
                    }
                }
            }
            Ok(())
        });
        let shipper = spawn(format!("agent-{LOG_FORWARDER}-shipper"), move |tomb| {
            loop {
                select! {
                    recv(tomb.dying()) -> _ => return Ok(()),
                    recv(lines) -> line => match line {
                        Ok(_) => api.call("ship-log-line")?,
                        Err(_) => return Ok(()),
                    },
                }
            }
        });

        let plan = Plan::new(LOG_FORWARDER, |c: &Catacomb| {
            // The helpers do the work; the owner only waits to be stopped.
            let _ = c.dying().recv();
            Err(c.err_dying())
        })
        .init([
            std::sync::Arc::new(tailer) as SharedWorker,
            std::sync::Arc::new(shipper) as SharedWorker,
        ])
        .hook(MetricsFacade::new());
        Ok(Catacomb::invoke(plan)?)
    })
    .inputs([CONFIG, API])
    .filter(closed_connection_is_a_bounce)
}

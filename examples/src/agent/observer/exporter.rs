//! The supervisors' hooks as Prometheus series: the `metrics` facade's
//! Prometheus exporter, installed as the process's recorder and rendered
//! at each scrape.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::metrics::{Collect, Exposition, ExpositionError};

/// Why the supervisors' metrics cannot be served.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot install the Prometheus exporter as the metrics recorder: {0}")]
pub struct ExporterError(String);

/// What the supervisors' [`MetricsFacade`](worker_core::events::MetricsFacade)
/// hooks record, in the Prometheus text format: a [`Collect`] source for
/// `/metrics`.
///
/// The hooks record through the `metrics` facade, so whichever recorder
/// the process installed gets them; this one installs the facade's
/// Prometheus exporter (`metrics-exporter-prometheus`) and renders it at
/// each scrape. That is the one line a program of its own needs too:
/// `PrometheusBuilder::new().install_recorder()`, before the supervisors
/// start (their gauges move by increments).
///
/// ```
/// use worker_core::events::MetricsFacade;
/// use worker_examples::agent::observer::metrics::{Collect, Exposition, HookMetrics};
/// use worker_runner::{Runner, RunnerParams};
///
/// let metrics = HookMetrics::install()?;
/// let runner = Runner::new(RunnerParams::new("docs-hooked").hook(MetricsFacade::new()))?;
/// runner.start_worker("w", || Ok(worker_core::Passive::new()))?;
/// runner.worker("w", None)?; // started
/// worker_core::stop(&runner)?; // every event delivered
/// let mut out = Exposition::new();
/// metrics.collect(&mut out)?;
/// assert!(out.text().contains(r#"worker_starts_total{supervisor="docs-hooked",worker="w"} 1"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct HookMetrics {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for HookMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookMetrics").finish_non_exhaustive()
    }
}

impl HookMetrics {
    /// Installs the Prometheus exporter as the process's `metrics`
    /// recorder, the first time; later calls share it. Fails if another
    /// recorder was installed first.
    pub fn install() -> Result<HookMetrics, ExporterError> {
        static INSTALLED: OnceLock<Result<PrometheusHandle, ExporterError>> = OnceLock::new();
        INSTALLED
            .get_or_init(|| {
                PrometheusBuilder::new()
                    .install_recorder()
                    .map_err(|e| ExporterError(e.to_string()))
            })
            .clone()
            .map(|handle| HookMetrics { handle })
    }
}

impl Collect for HookMetrics {
    fn collect(&self, out: &mut Exposition) -> Result<(), ExpositionError> {
        // The exporter's upkeep (draining histogram samples) runs here, at
        // each scrape, instead of on a thread of its own.
        self.handle.run_upkeep();
        out.rendered(&self.handle.render())
    }
}

//! The events as numbers, through the `metrics` facade (feature
//! `metrics`).

use metrics::Label;

use super::{Event, EventKind, Hook};

/// A [`Hook`] that turns a supervisor's events into metrics through the
/// [`metrics`](https://docs.rs/metrics) facade, so that whichever exporter
/// the program installs (Prometheus, StatsD, ...) serves them:
///
/// | metric | type | labels | from |
/// |---|---|---|---|
/// | `worker_starts_total` | counter | `supervisor`, `worker` | every `Started` |
/// | `worker_restarts_total` | counter | `supervisor`, `worker` | every `Restarting` (after a failure) |
/// | `worker_bounces_total` | counter | `supervisor`, `worker` | every `Bouncing` (an engine's input changed) |
/// | `worker_failures_total` | counter | `supervisor`, `worker`, `kind` | every `Failed`; `kind` is its [`FailureKind`](super::FailureKind): `fatal`, `start`, `panic` or `error` |
/// | `worker_stop_seconds` | histogram | `supervisor`, `worker` | how long each worker took to stop once asked ([`End::stopped_after`](super::End::stopped_after)) |
/// | `worker_live` | gauge | `supervisor`, `worker` | running incarnations: +1 at `Started`, -1 at the end of one that had started |
/// | `worker_stuck` | gauge | `supervisor`, `worker` | incarnations reported `Stuck` that have not ended |
///
/// # The `worker` label
///
/// Runner ids and manifold names are the program's own names, and a
/// program that names a few dozen workers gets a few dozen series per
/// metric: the label is on by default. A runner whose ids come and go
/// without bound (one per tenant, per connection) would make a series per
/// id ever seen; drop the label for it with
/// [`without_worker_label`](MetricsFacade::without_worker_label), and the
/// metrics are per supervisor. A catacomb's workers have no names, so its
/// metrics never have the label.
///
/// The gauges move by increments: install the recorder before the
/// supervisors start, or they miss the starts that came before.
///
/// ```
/// use worker_core::events::MetricsFacade;
///
/// // With an exporter installed (say `metrics_exporter_prometheus`'s
/// // `PrometheusBuilder::new().install()`), one line per supervisor:
/// //   RunnerParams::new("api").hook(MetricsFacade::new())
/// //   EngineConfig::new("agent").hook(MetricsFacade::new())
/// //   Plan::new("conn", work).hook(MetricsFacade::new().without_worker_label())
/// let facade = MetricsFacade::new();
/// assert!(facade.has_worker_label());
/// ```
#[derive(Debug, Clone)]
pub struct MetricsFacade {
    worker_label: bool,
}

impl Default for MetricsFacade {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsFacade {
    /// The adapter, with the `worker` label. Describes the metrics (units
    /// and help texts) to the recorder installed now.
    pub fn new() -> Self {
        describe();
        MetricsFacade { worker_label: true }
    }

    /// Leaves the `worker` label out: one series per supervisor (see
    /// [the `worker` label](MetricsFacade#the-worker-label)).
    pub fn without_worker_label(mut self) -> Self {
        self.worker_label = false;
        self
    }

    /// Whether the metrics have the `worker` label.
    pub fn has_worker_label(&self) -> bool {
        self.worker_label
    }

    fn labels(&self, event: &Event) -> Vec<Label> {
        let mut labels = Vec::with_capacity(3);
        labels.push(Label::new("supervisor", event.supervisor.clone()));
        if let (true, Some(worker)) = (self.worker_label, &event.worker) {
            labels.push(Label::new("worker", worker.clone()));
        }
        labels
    }
}

fn describe() {
    use metrics::Unit;
    metrics::describe_counter!("worker_starts_total", "Worker incarnations started.");
    metrics::describe_counter!(
        "worker_restarts_total",
        "Restarts of workers after a failure."
    );
    metrics::describe_counter!(
        "worker_bounces_total",
        "Restarts of engine manifolds because an input changed or they asked."
    );
    metrics::describe_counter!(
        "worker_failures_total",
        "Failures of workers, by kind: fatal, start, panic, error."
    );
    metrics::describe_histogram!(
        "worker_stop_seconds",
        Unit::Seconds,
        "How long workers took to stop once asked to."
    );
    metrics::describe_gauge!("worker_live", "Running worker incarnations.");
    metrics::describe_gauge!(
        "worker_stuck",
        "Workers past their stop timeout that have not stopped."
    );
}

impl Hook for MetricsFacade {
    fn on_event(&self, event: &Event) {
        let labels = || self.labels(event);
        match &event.kind {
            EventKind::Started => {
                metrics::counter!("worker_starts_total", labels()).increment(1);
                metrics::gauge!("worker_live", labels()).increment(1.0);
            }
            EventKind::Restarting { .. } => {
                metrics::counter!("worker_restarts_total", labels()).increment(1)
            }
            EventKind::Bouncing { .. } => {
                metrics::counter!("worker_bounces_total", labels()).increment(1)
            }
            EventKind::Stuck { .. } => metrics::gauge!("worker_stuck", labels()).increment(1.0),
            _ => {}
        }
        if let Some(kind) = event.failure_kind() {
            let mut labels = labels();
            labels.push(Label::new("kind", kind.as_str()));
            metrics::counter!("worker_failures_total", labels).increment(1);
        }
        if let Some(end) = event.end() {
            if let Some(took) = end.stopped_after {
                metrics::histogram!("worker_stop_seconds", labels()).record(took.as_secs_f64());
            }
            if end.started {
                metrics::gauge!("worker_live", labels()).decrement(1.0);
            }
            if end.stuck {
                metrics::gauge!("worker_stuck", labels()).decrement(1.0);
            }
        }
    }
}

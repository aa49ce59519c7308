//! `/metrics`: the Prometheus text format (version 0.0.4).
//!
//! # What is served
//!
//! Two kinds of series. Counts of what happened since the agent started
//! (starts, restarts, bounces, failures by kind, stop durations, live and
//! stuck workers) come from the supervisors' own hooks:
//! [`MetricsFacade`](worker_core::events::MetricsFacade) on every engine,
//! runner and catacomb of the agent, recorded through the `metrics`
//! facade and rendered by its Prometheus exporter ([`HookMetrics`]); its
//! docs list those families (`worker_starts_total`, `worker_live`, ...).
//!
//! The state now is read off the reports, from the
//! [supervision tree](super::tree) at every scrape. These families, always
//! listed (a family with nothing to count has its `HELP` and `TYPE` lines
//! and no sample):
//!
//! | family | type | labels | value |
//! | --- | --- | --- | --- |
//! | `worker_engine_up` | gauge | `engine` | 1 while the engine runs, 0 once it stops |
//! | `worker_engine_dying` | gauge | `engine` | 1 while the engine stops |
//! | `worker_manifold_state` | gauge | `engine`, `manifold`, `state` | 1 for the manifold's state, 0 for the other three |
//! | `worker_manifold_starts_total` | counter | `engine`, `manifold` | successful starts |
//! | `worker_manifold_start_attempts` | gauge | `engine`, `manifold` | start requests since its last successful start, a pending restart included (the report's `start-attempts`) |
//! | `worker_manifold_failed` | gauge | `engine`, `manifold` | 1 while it is down after an error |
//! | `worker_manifold_stuck` | gauge | `engine`, `manifold` | 1 while it outlives the stop timeout |
//! | `worker_runner_worker_state` | gauge | `runner`, `worker`, `state` | 1 for the worker's state, 0 for the other three |
//! | `worker_runner_worker_restarts` | gauge | `runner`, `worker` | which restart in a row its incarnation is (0 after a first start) |
//! | `worker_runner_worker_stuck` | gauge | `runner`, `worker` | 1 while it outlives the stop timeout |
//! | `worker_catacomb_state` | gauge | `catacomb`, `state` | 1 for `alive`, `dying` or `dead`, 0 for the others |
//! | `worker_catacomb_workers` | gauge | `catacomb` | bound workers still running |
//!
//! `engine`, `runner` and `catacomb` are [tree paths](super::tree::Node::path)
//! (`agent`, `agent/machines/catacomb/runner`). Failures are gauges "in a
//! row", not counters: a report says how the current run of failures
//! stands, not how many there were since the start.
//!
//! # Feeding it more
//!
//! A source of further families implements [`Collect`] and is handed to
//! [`Bound::serve`](super::Bound::serve); the observer asks every source at
//! every scrape, after the families above. [`HookMetrics`] is one: the
//! agent hands it over.
//!
//! The report's families are written here rather than with the exporter:
//! an exporter keeps a registry of long-lived metrics that code updates as
//! things happen, which is what the hooks do, while these values are read
//! off a snapshot at each scrape; the text format is a few lines of rules
//! (enforced and tested below).

use std::collections::HashSet;
use std::fmt::{self, Write as _};

use super::tree::{Health, Kind, Node};

pub use super::exporter::{ExporterError, HookMetrics};

/// A source of metric families, asked at every scrape.
///
/// ```
/// use worker_examples::agent::observer::metrics::{Collect, Exposition, ExpositionError, Type};
///
/// struct Uptime(f64);
///
/// impl Collect for Uptime {
///     fn collect(&self, out: &mut Exposition) -> Result<(), ExpositionError> {
///         out.family("agent_uptime_seconds", Type::Gauge, "Seconds since the agent started.")?
///             .sample(&[], self.0)
///     }
/// }
///
/// let mut out = Exposition::new();
/// Uptime(1.5).collect(&mut out)?;
/// assert!(out.text().ends_with("agent_uptime_seconds 1.5\n"));
/// # Ok::<(), ExpositionError>(())
/// ```
pub trait Collect: Send + Sync {
    /// Writes this source's families to `out`.
    fn collect(&self, out: &mut Exposition) -> Result<(), ExpositionError>;
}

/// A metric family's type, as the `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Only goes up (resets when the process restarts).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
        })
    }
}

/// A metric or label name that the format does not allow, or a family
/// written twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpositionError {
    /// Metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("{0:?} is not a valid metric name")]
    MetricName(String),
    /// Label names match `[a-zA-Z_][a-zA-Z0-9_]*` and do not start with `__`.
    #[error("{0:?} is not a valid label name")]
    LabelName(String),
    /// A family's samples must come together, under one `TYPE` line.
    #[error("metric family {0:?} is written twice")]
    Duplicate(String),
}

/// A text exposition being written: families, each with its `HELP` and
/// `TYPE` lines and then its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
    families: HashSet<String>,
}

/// One family of an [`Exposition`], taking its samples.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut Exposition,
    name: String,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the family `name`: writes its `HELP` and `TYPE` lines.
    pub fn family(
        &mut self,
        name: &str,
        kind: Type,
        help: &str,
    ) -> Result<Family<'_>, ExpositionError> {
        if !valid_name(name, true) {
            return Err(ExpositionError::MetricName(name.to_owned()));
        }
        if !self.families.insert(name.to_owned()) {
            return Err(ExpositionError::Duplicate(name.to_owned()));
        }
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        Ok(Family {
            out: self,
            name: name.to_owned(),
        })
    }

    /// Appends families already in the text format (an exporter's
    /// rendering): each family it types (`# TYPE name ...`) must be new
    /// here and have a valid name, or nothing is appended.
    ///
    /// ```
    /// use worker_examples::agent::observer::metrics::{Exposition, ExpositionError, Type};
    ///
    /// let mut out = Exposition::new();
    /// out.family("a", Type::Gauge, "A.")?.sample(&[], 1.0)?;
    /// out.rendered("# TYPE b counter\nb 2\n")?;
    /// assert_eq!(out.rendered("# TYPE a gauge\na 3\n"), Err(ExpositionError::Duplicate("a".into())));
    /// assert!(out.text().ends_with("a 1\n# TYPE b counter\nb 2\n"));
    /// # Ok::<(), ExpositionError>(())
    /// ```
    pub fn rendered(&mut self, text: &str) -> Result<(), ExpositionError> {
        let mut typed = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let name = rest.split(' ').next().unwrap_or("");
            if !valid_name(name, true) {
                return Err(ExpositionError::MetricName(name.to_owned()));
            }
            if self.families.contains(name) || typed.contains(&name) {
                return Err(ExpositionError::Duplicate(name.to_owned()));
            }
            typed.push(name);
        }
        self.families.extend(typed.into_iter().map(str::to_owned));
        self.text.push_str(text);
        if !text.is_empty() && !text.ends_with('\n') {
            self.text.push('\n');
        }
        Ok(())
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text, to serve.
    pub fn into_text(self) -> String {
        self.text
    }
}

impl Family<'_> {
    /// Writes one sample: `name{labels} value`.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> Result<(), ExpositionError> {
        if let Some((bad, _)) = labels
            .iter()
            .find(|(l, _)| !valid_name(l, false) || l.starts_with("__"))
        {
            return Err(ExpositionError::LabelName((*bad).to_owned()));
        }
        let text = &mut self.out.text;
        text.push_str(&self.name);
        if !labels.is_empty() {
            text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let _ = write!(text, "{label}=\"{}\"", escape_label(value));
            }
            text.push('}');
        }
        let _ = writeln!(text, " {}", number(value));
        Ok(())
    }
}

fn valid_name(name: &str, colons: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (colons && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        value.to_string()
    }
}

/// The states a one-hot `state` family lists for supervised workers.
const WORKER_STATES: [&str; 4] = ["starting", "started", "stopping", "stopped"];
/// The states a catacomb's `state` family lists.
const CATACOMB_STATES: [&str; 3] = ["alive", "dying", "dead"];

/// The families of the table in the [module docs](self), in its order;
/// [`gather`] names them by the indexes below.
const FAMILIES: [(&str, Type, &str); 12] = [
    (
        "worker_engine_up",
        Type::Gauge,
        "1 while the engine runs, 0 once it stops.",
    ),
    (
        "worker_engine_dying",
        Type::Gauge,
        "1 while the engine stops.",
    ),
    (
        "worker_manifold_state",
        Type::Gauge,
        "1 for the manifold's state (starting, started, stopping, stopped), 0 for the others.",
    ),
    (
        "worker_manifold_starts_total",
        Type::Counter,
        "Successful starts of the manifold.",
    ),
    (
        "worker_manifold_start_attempts",
        Type::Gauge,
        "Start requests since the manifold's last successful start, a pending restart included.",
    ),
    (
        "worker_manifold_failed",
        Type::Gauge,
        "1 while the manifold is down after an error.",
    ),
    (
        "worker_manifold_stuck",
        Type::Gauge,
        "1 while the manifold has not stopped within the stop timeout.",
    ),
    (
        "worker_runner_worker_state",
        Type::Gauge,
        "1 for the runner worker's state (starting, started, stopping, stopped), 0 for the others.",
    ),
    (
        "worker_runner_worker_restarts",
        Type::Gauge,
        "Which restart in a row the runner worker's incarnation is (0 after a first start).",
    ),
    (
        "worker_runner_worker_stuck",
        Type::Gauge,
        "1 while the runner worker has not stopped within the stop timeout.",
    ),
    (
        "worker_catacomb_state",
        Type::Gauge,
        "1 for the catacomb's state (alive, dying, dead), 0 for the others.",
    ),
    (
        "worker_catacomb_workers",
        Type::Gauge,
        "Workers bound to the catacomb that are still running.",
    ),
];
const ENGINE_UP: usize = 0;
const ENGINE_DYING: usize = 1;
const MANIFOLD_STATE: usize = 2;
const MANIFOLD_STARTS: usize = 3;
const MANIFOLD_START_ATTEMPTS: usize = 4;
const MANIFOLD_FAILED: usize = 5;
const MANIFOLD_STUCK: usize = 6;
const WORKER_STATE: usize = 7;
const WORKER_RESTARTS: usize = 8;
const WORKER_STUCK: usize = 9;
const CATACOMB_STATE: usize = 10;
const CATACOMB_WORKERS: usize = 11;

/// The names of the families [`report_metrics`] writes, in order.
pub fn report_families() -> impl Iterator<Item = &'static str> {
    FAMILIES.iter().map(|(name, _, _)| *name)
}

/// Labelled samples of one family, gathered from the whole tree before
/// any is written (a family's samples must come together).
type Samples = Vec<(Vec<(&'static str, String)>, f64)>;

/// Writes the families of the table in the [module docs](self), read off
/// `tree`.
pub fn report_metrics(tree: &Node, out: &mut Exposition) -> Result<(), ExpositionError> {
    let mut samples: [Samples; FAMILIES.len()] = Default::default();
    gather(tree, None, &mut samples);
    for ((name, kind, help), samples) in FAMILIES.iter().zip(samples) {
        let mut family = out.family(name, *kind, help)?;
        for (labels, value) in samples {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            family.sample(&labels, value)?;
        }
    }
    Ok(())
}

/// Adds the samples of `node` (and of its children) to `samples`, indexed
/// as [`FAMILIES`].
fn gather(node: &Node, parent: Option<&str>, samples: &mut [Samples; FAMILIES.len()]) {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let state = node.state.as_deref().unwrap_or("");
    let parent = parent.unwrap_or("").to_owned();
    let one_hot = |samples: &mut [Samples],
                   family: usize,
                   labels: &[(&'static str, String)],
                   states: &[&str]| {
        for s in states {
            let mut labels = labels.to_vec();
            labels.push(("state", (*s).to_owned()));
            samples[family].push((labels, flag(state == *s)));
        }
    };
    match node.kind {
        Kind::Engine => {
            let labels = vec![("engine", node.path.clone())];
            samples[ENGINE_UP].push((labels.clone(), flag(state == "started")));
            samples[ENGINE_DYING].push((labels, flag(state == "stopping")));
        }
        Kind::Manifold => {
            let labels = vec![("engine", parent), ("manifold", node.name.clone())];
            one_hot(samples, MANIFOLD_STATE, &labels, &WORKER_STATES);
            let count = |n: Option<u64>| n.unwrap_or(0) as f64;
            samples[MANIFOLD_STARTS].push((labels.clone(), count(node.start_count)));
            samples[MANIFOLD_START_ATTEMPTS].push((labels.clone(), count(node.start_attempts)));
            let failed = node.health == Some(Health::Failed);
            samples[MANIFOLD_FAILED].push((labels.clone(), flag(failed)));
            samples[MANIFOLD_STUCK].push((labels, flag(node.stuck)));
        }
        Kind::Worker => {
            let labels = vec![("runner", parent), ("worker", node.name.clone())];
            one_hot(samples, WORKER_STATE, &labels, &WORKER_STATES);
            let restarts = f64::from(node.restarts.unwrap_or(0));
            samples[WORKER_RESTARTS].push((labels.clone(), restarts));
            samples[WORKER_STUCK].push((labels, flag(node.stuck)));
        }
        Kind::Catacomb => {
            let labels = vec![("catacomb", node.path.clone())];
            one_hot(samples, CATACOMB_STATE, &labels, &CATACOMB_STATES);
            let workers = node.live_workers.unwrap_or(0) as f64;
            samples[CATACOMB_WORKERS].push((labels, workers));
        }
        Kind::Runner => {}
    }
    for child in &node.children {
        gather(child, Some(&node.path), samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes_follow_the_format() {
        let mut out = Exposition::new();
        let mut f = out
            .family("a_total", Type::Counter, "Counts \\ things\nwell.")
            .unwrap();
        f.sample(&[], 3.0).unwrap();
        f.sample(&[("k", "q\"u\\o\nte"), ("j", "x")], 0.25).unwrap();
        out.family("b", Type::Gauge, "B.")
            .unwrap()
            .sample(&[], f64::INFINITY)
            .unwrap();
        assert_eq!(
            out.into_text(),
            concat!(
                "# HELP a_total Counts \\\\ things\\nwell.\n",
                "# TYPE a_total counter\n",
                "a_total 3\n",
                "a_total{k=\"q\\\"u\\\\o\\nte\",j=\"x\"} 0.25\n",
                "# HELP b B.\n",
                "# TYPE b gauge\n",
                "b +Inf\n",
            )
        );
    }

    #[test]
    fn bad_names_and_repeated_families_are_refused() {
        let mut out = Exposition::new();
        assert_eq!(
            out.family("1abc", Type::Gauge, "").unwrap_err(),
            ExpositionError::MetricName("1abc".into())
        );
        assert_eq!(
            out.family("a-b", Type::Gauge, "").unwrap_err(),
            ExpositionError::MetricName("a-b".into())
        );
        let mut f = out.family("ns:ok_1", Type::Gauge, "").unwrap();
        assert_eq!(
            f.sample(&[("a:b", "")], 1.0).unwrap_err(),
            ExpositionError::LabelName("a:b".into())
        );
        assert_eq!(
            f.sample(&[("__reserved", "")], 1.0).unwrap_err(),
            ExpositionError::LabelName("__reserved".into())
        );
        assert_eq!(
            out.family("ns:ok_1", Type::Gauge, "").unwrap_err(),
            ExpositionError::Duplicate("ns:ok_1".into())
        );
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
    }
}

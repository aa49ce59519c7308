//! A `metrics` recorder for tests (feature `metrics`): what the supervisors'
//! metrics adapter recorded, by name and labels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use worker_core::events::{Event, Hook};

/// Records every counter, gauge and histogram it is handed, to be read
/// back by name and labels.
///
/// A hook runs on a supervisor's own threads, so a recorder installed for
/// the test's thread alone (`metrics::with_local_recorder`) would not see
/// it: [`TestRecorder::hook`] wraps a hook so that each of its calls
/// records here, whatever the thread, with no process-wide recorder (tests
/// run in parallel).
///
/// ```
/// use worker_core::events::{Event, EventKind, Hook};
/// use worker_testing::TestRecorder;
///
/// let recorder = TestRecorder::new();
/// let hook = recorder.hook(|e: &Event| {
///     metrics::counter!("seen_total", "supervisor" => e.supervisor.clone()).increment(1);
/// });
/// hook.on_event(&Event::new("s".into(), None, 0, EventKind::Resumed));
/// assert_eq!(recorder.counter("seen_total", &[("supervisor", "s")]), 1);
/// ```
#[derive(Clone, Default)]
pub struct TestRecorder {
    values: Arc<Mutex<HashMap<String, Arc<Value>>>>,
}

#[derive(Default)]
struct Value(Mutex<Vec<f64>>);

impl Value {
    fn with<T>(&self, f: impl FnOnce(&mut Vec<f64>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn add(&self, delta: f64) {
        self.with(|v| match v.first_mut() {
            Some(total) => *total += delta,
            None => v.push(delta),
        });
    }
}

impl CounterFn for Value {
    fn increment(&self, value: u64) {
        self.add(value as f64);
    }
    fn absolute(&self, value: u64) {
        self.with(|v| *v = vec![value as f64]);
    }
}

impl GaugeFn for Value {
    fn increment(&self, value: f64) {
        self.add(value);
    }
    fn decrement(&self, value: f64) {
        self.add(-value);
    }
    fn set(&self, value: f64) {
        self.with(|v| *v = vec![value]);
    }
}

impl HistogramFn for Value {
    fn record(&self, value: f64) {
        self.with(|v| v.push(value));
    }
}

/// `name{a=1,b=2}`, labels sorted.
fn key_text(name: &str, labels: impl Iterator<Item = (String, String)>) -> String {
    let mut labels: Vec<(String, String)> = labels.collect();
    labels.sort();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

impl TestRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<Arc<Value>> {
        let key = key_text(
            name,
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.lock().get(&key).cloned()
    }

    fn register(&self, key: &Key) -> Arc<Value> {
        let text = key_text(
            key.name(),
            key.labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned())),
        );
        self.lock().entry(text).or_default().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Value>>> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The counter `name` with exactly these labels (0 if never touched).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.gauge(name, labels) as u64
    }

    /// The gauge `name` with exactly these labels (0 if never touched).
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .map_or(0.0, |v| v.with(|v| v.first().copied().unwrap_or(0.0)))
    }

    /// Every value recorded in the histogram `name` with exactly these
    /// labels, in order.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.value(name, labels)
            .map_or_else(Vec::new, |v| v.with(|v| v.clone()))
    }

    /// Every metric recorded, as `name{label=value,...}`, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// `hook`, recording here: each of its calls runs with this recorder
    /// as its thread's recorder.
    pub fn hook(&self, hook: impl Hook) -> impl Hook {
        let recorder = self.clone();
        move |event: &Event| metrics::with_local_recorder(&recorder, || hook.on_event(event))
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.register(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.register(key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.register(key))
    }
}

impl std::fmt::Debug for TestRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRecorder")
            .field("metrics", &self.keys())
            .finish()
    }
}

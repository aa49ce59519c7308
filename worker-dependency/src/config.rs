//! `EngineConfig`: the policies and delays of one engine.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use worker_core::events::{Event, EventKind, Hook};
use worker_core::{Clock, Error, WallClock};

use crate::ConfigError;
use crate::manifold::FilterFn;
use worker_core::jitter::{Jitter, SeededJitter};

/// Decides whether an error (after the manifold's filter) stops the whole
/// engine.
pub type IsFatalFn = Arc<dyn Fn(&Error) -> bool + Send + Sync>;

/// Ranks two fatal errors: given the new one and the worst so far (`None`
/// for the first), returns the one `wait` should report.
pub type WorstErrorFn = Arc<dyn Fn(&Error, Option<&Error>) -> Error + Send + Sync>;

/// The longest delay the engine ever waits when `max_delay` is zero (no
/// cap): one year, which is "never" for a service.
pub const UNCAPPED_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Go's metrics hook: told about every successful start (Go's
/// `Metrics.RecordStart`) and, beyond Go, every stop. Given to an engine
/// with [`EngineConfig::metrics`], which makes it a [`Hook`] on the
/// engine's events: `record_start` for each `Started`, `record_stop` for
/// each `Failed` (with its error) and `Stopped` (with its reason, such as
/// [`Missing`](crate::Missing)).
///
/// New code can take the events themselves
/// ([`EngineConfig::on_event`], [`EngineConfig::hook`]), which say more
/// (restarts, bounces, stops, stuck workers) in the vocabulary the runner
/// and the catacomb share; for metrics, `worker_core::events::MetricsFacade`
/// (feature `metrics`) serves them to any exporter.
///
/// Called on one of the engine's threads (never its loop), in the order
/// the engine decided them, after the engine has decided what follows; a
/// panic is logged. It may call the engine (install, report), but
/// waiting for the engine from it fails with
/// [`WouldDeadlock`](worker_core::WouldDeadlock).
pub trait Metrics: Send + Sync + 'static {
    /// The manifold `name` has a new running worker.
    fn record_start(&self, name: &str);

    /// The manifold `name` stopped: its worker ended, or its start
    /// function failed, with `error` (after the manifold's filter).
    fn record_stop(&self, name: &str, error: Option<&Error>) {
        let _ = (name, error);
    }
}

/// Metrics that record nothing (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn record_start(&self, _name: &str) {}
}

/// A [`Metrics`] as a [`Hook`] on the engine's events.
struct GoMetrics<M>(M);

impl<M: Metrics> Hook for GoMetrics<M> {
    fn on_event(&self, event: &Event) {
        let Some(name) = event.worker() else { return };
        match &event.kind {
            EventKind::Started => self.0.record_start(name),
            EventKind::Failed { error, .. } => self.0.record_stop(name, Some(error)),
            EventKind::Stopped { reason, .. } => self.0.record_stop(name, reason.as_ref()),
            _ => {}
        }
    }
}

/// How an engine behaves: its name, which errors are fatal, the restart
/// delays and backoff, the clock, hooks and jitter.
///
/// [`EngineConfig::new`] gives safe defaults (the values juju runs in
/// production); chained setters change them, as for the runner's
/// `RunnerParams` (every field is also public, for code that builds a
/// configuration step by step):
///
/// ```
/// use std::time::Duration;
/// use worker_dependency::EngineConfig;
///
/// let config = EngineConfig::new("agent")
///     .error_delay(Duration::from_secs(1))
///     .is_fatal(|e| e.to_string().contains("corrupt"));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Names the engine's threads (`<name>` for the loop, `<name>-start-N`
    /// for start functions) and its log lines. Must not be empty.
    pub name: String,
    /// Which errors stop the engine. Default: none. Asked off the loop,
    /// where the news starts: on the start thread for a failed start, on
    /// the thread that finished a worker for its end. A panic counts as
    /// fatal.
    pub is_fatal: IsFatalFn,
    /// Which of two fatal errors `wait` reports. Default: the first. Asked
    /// when the engine ends, once per fatal error in the order they came,
    /// off the loop; a report taken while the engine stops asks it again,
    /// on the caller's thread, for the worst so far (so keep it a plain
    /// ranking). A panic becomes the engine's error.
    pub worst_error: WorstErrorFn,
    /// Applied to the engine's final error when it stops (and `None` if
    /// there was none), once, off the loop. Default: none.
    pub filter: Option<FilterFn>,
    /// Delay before restarting a manifold that failed. Default: 3 s.
    ///
    /// Every duration here saturates: a delay the clock cannot reach (up
    /// to `Duration::MAX`) means practically never, not now.
    pub error_delay: Duration,
    /// Delay before restarting a manifold whose input started or stopped,
    /// or that returned [`Bounce`](crate::Bounce). Default: 10 ms.
    pub bounce_delay: Duration,
    /// Each consecutive failure multiplies the error delay by this; 0
    /// disables backoff, otherwise it must be >= 1. Default: 2.
    pub backoff_factor: f64,
    /// A worker that ran at least this long before failing starts its
    /// backoff over. Default: 1 minute.
    pub backoff_reset_time: Duration,
    /// The longest delay, jitter included; zero means no cap (delays then
    /// saturate at one year). Default: 2 minutes.
    pub max_delay: Duration,
    /// How long a manifold may take to stop before it is reported stuck
    /// (in the report, and with a warning log); shutdown still waits for
    /// it, but stops its inputs. Zero disables the check. Default: 30 s.
    pub stop_timeout: Duration,
    /// The source of time. Default: [`WallClock`].
    pub clock: Arc<dyn Clock>,
    /// Told about every event of the engine, in order, off its loop (see
    /// [`on_event`](Self::on_event)). Default: none.
    pub hooks: Vec<Arc<dyn Hook>>,
    /// Spreads delays by +-10%. Default: a [`SeededJitter`] seeded at
    /// random; use [`NoJitter`](crate::NoJitter) for exact delays. Sampled
    /// off the loop, once per start and per worker end; the delays one
    /// such event schedules share its sample.
    pub jitter: Arc<dyn Jitter>,
}

impl EngineConfig {
    /// A configuration with the defaults listed on each field.
    pub fn new(name: impl Into<String>) -> Self {
        EngineConfig {
            name: name.into(),
            is_fatal: Arc::new(|_| false),
            worst_error: Arc::new(|new, worst| worst.unwrap_or(new).clone()),
            filter: None,
            error_delay: worker_core::DEFAULT_RESTART_DELAY,
            bounce_delay: Duration::from_millis(10),
            backoff_factor: 2.0,
            backoff_reset_time: Duration::from_secs(60),
            max_delay: Duration::from_secs(120),
            stop_timeout: Duration::from_secs(30),
            clock: Arc::new(WallClock),
            hooks: Vec::new(),
            jitter: Arc::new(SeededJitter::from_entropy()),
        }
    }

    /// Sets [`is_fatal`](Self::is_fatal).
    pub fn is_fatal(mut self, f: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Self {
        self.is_fatal = Arc::new(f);
        self
    }

    /// Sets [`worst_error`](Self::worst_error).
    pub fn worst_error(
        mut self,
        f: impl Fn(&Error, Option<&Error>) -> Error + Send + Sync + 'static,
    ) -> Self {
        self.worst_error = Arc::new(f);
        self
    }

    /// Sets [`filter`](Self::filter).
    pub fn filter(
        mut self,
        f: impl Fn(Option<Error>) -> Option<Error> + Send + Sync + 'static,
    ) -> Self {
        self.filter = Some(Arc::new(f));
        self
    }

    /// Sets [`error_delay`](Self::error_delay).
    pub fn error_delay(mut self, delay: Duration) -> Self {
        self.error_delay = delay;
        self
    }

    /// Sets [`bounce_delay`](Self::bounce_delay).
    pub fn bounce_delay(mut self, delay: Duration) -> Self {
        self.bounce_delay = delay;
        self
    }

    /// Sets [`backoff_factor`](Self::backoff_factor).
    pub fn backoff_factor(mut self, factor: f64) -> Self {
        self.backoff_factor = factor;
        self
    }

    /// Sets [`backoff_reset_time`](Self::backoff_reset_time).
    pub fn backoff_reset_time(mut self, time: Duration) -> Self {
        self.backoff_reset_time = time;
        self
    }

    /// Sets [`max_delay`](Self::max_delay).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets [`stop_timeout`](Self::stop_timeout).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Sets [`clock`](Self::clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Sets [`clock`](Self::clock) to a clock shared with others.
    pub fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Calls `hook` with each of the engine's lifecycle events
    /// ([`Event`], the vocabulary every supervisor of the family shares:
    /// a manifold starting, started, failed, restarting, bouncing because
    /// an input changed, stopping, stuck, stopped, removed), in the order
    /// they happen. Each call adds a hook; each hook gets every event.
    ///
    /// The hook is user code, so it never runs on the engine's loop: the
    /// events are queued and delivered, one at a time, on the engine's
    /// start threads. A slow or blocking hook delays only the events after
    /// it and the engine's final `wait`; a panicking hook is logged, and
    /// the next event is delivered as usual.
    ///
    /// ```
    /// use worker_core::{Passive, Worker};
    /// use worker_dependency::{Engine, EngineConfig, Manifold};
    ///
    /// let (tx, events) = crossbeam_channel::unbounded();
    /// let engine = Engine::new(EngineConfig::new("hooked").on_event(move |e| {
    ///     let _ = tx.send((e.name(), e.worker().unwrap_or("").to_owned()));
    /// }))?;
    /// engine.install("db", Manifold::new(|_| Ok(Passive::new())))?;
    /// assert_eq!(events.recv().unwrap(), ("worker starting", "db".to_owned()));
    /// assert_eq!(events.recv().unwrap(), ("worker started", "db".to_owned()));
    /// engine.kill();
    /// engine.wait()?; // every event has been delivered
    /// let names: Vec<_> = events.try_iter().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["supervisor shutting down", "worker stopping", "worker stopped"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_event(self, hook: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.hook(hook)
    }

    /// Adds `hook` to [`hooks`](Self::hooks), as
    /// [`on_event`](Self::on_event) does for a closure: a [`Hook`] of your
    /// own, or the metrics adapter (`worker_core::events::MetricsFacade`,
    /// feature `metrics` of `worker-core`), for metrics in one line:
    /// `EngineConfig::new("agent").hook(MetricsFacade::new())`.
    pub fn hook(mut self, hook: impl Hook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Adds Go's metrics hook ([`Metrics`]) to [`hooks`](Self::hooks).
    pub fn metrics(self, metrics: impl Metrics) -> Self {
        self.hook(GoMetrics(metrics))
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn jitter(mut self, source: impl Jitter) -> Self {
        self.jitter = Arc::new(source);
        self
    }

    /// Checks the configuration; [`Engine::new`](crate::Engine::new) does
    /// it too. Durations are never refused: any of them may be as long as
    /// `Duration::MAX` (practically never).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::EmptyName);
        }
        let f = self.backoff_factor;
        if f != 0.0 && !(f >= 1.0 && f.is_finite()) {
            return Err(ConfigError::BackoffFactor(f));
        }
        Ok(())
    }
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("name", &self.name)
            .field("filter", &self.filter.is_some())
            .field("error_delay", &self.error_delay)
            .field("bounce_delay", &self.bounce_delay)
            .field("backoff_factor", &self.backoff_factor)
            .field("backoff_reset_time", &self.backoff_reset_time)
            .field("max_delay", &self.max_delay)
            .field("stop_timeout", &self.stop_timeout)
            .field("hooks", &self.hooks.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setters_read_like_the_runners_and_set_the_fields() {
        let config = EngineConfig::new("setters")
            .error_delay(Duration::from_secs(1))
            .bounce_delay(Duration::from_millis(5))
            .backoff_factor(1.5)
            .backoff_reset_time(Duration::from_secs(7))
            .max_delay(Duration::from_secs(9))
            .stop_timeout(Duration::ZERO)
            .is_fatal(|e| e.to_string() == "fatal")
            .worst_error(|new, _| new.clone())
            .filter(|e| e)
            .jitter(worker_core::jitter::NoJitter)
            .metrics(NoMetrics)
            .clock(WallClock);
        assert_eq!(config.error_delay, Duration::from_secs(1));
        assert_eq!(config.bounce_delay, Duration::from_millis(5));
        assert_eq!(config.backoff_factor, 1.5);
        assert_eq!(config.backoff_reset_time, Duration::from_secs(7));
        assert_eq!(config.max_delay, Duration::from_secs(9));
        assert_eq!(config.stop_timeout, Duration::ZERO);
        assert!((config.is_fatal)(&Error::msg("fatal")));
        assert!(!(config.is_fatal)(&Error::msg("fine")));
        assert!(config.filter.is_some());
        assert_eq!(config.jitter.sample(), 0.5);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(
            EngineConfig::new("").validate(),
            Err(ConfigError::EmptyName)
        );
        for bad in [0.9, -1.0, f64::NAN, f64::INFINITY] {
            let mut c = EngineConfig::new("e");
            c.backoff_factor = bad;
            assert!(
                matches!(c.validate(), Err(ConfigError::BackoffFactor(_))),
                "{bad}"
            );
        }
        let mut c = EngineConfig::new("e");
        c.backoff_factor = 0.0;
        assert!(c.validate().is_ok());
        c.backoff_factor = 1.0;
        assert!(c.validate().is_ok());
        let mut c = EngineConfig::new("e");
        c.backoff_factor = 0.9;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid config: backoff_factor 0.9 must be 0 or a finite number >= 1"
        );
    }

    #[test]
    fn huge_durations_are_valid() {
        let mut c = EngineConfig::new("e");
        c.error_delay = Duration::MAX;
        c.bounce_delay = Duration::MAX;
        c.backoff_reset_time = Duration::MAX;
        c.max_delay = Duration::MAX;
        c.stop_timeout = Duration::MAX;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn default_worst_error_keeps_the_first() {
        let c = EngineConfig::new("e");
        let a = Error::msg("a");
        let b = Error::msg("b");
        assert!((c.worst_error)(&a, None).same(&a));
        assert!((c.worst_error)(&b, Some(&a)).same(&a));
        assert!(!(c.is_fatal)(&a));
    }
}

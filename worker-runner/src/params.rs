//! `RunnerParams`: everything a runner can be told when it is made.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use worker_core::{Clock, Error, WallClock};

use crate::error::InvalidParams;
use crate::machine::{Config, Policies};
use worker_core::events::{Event, Hook};
use worker_core::jitter::{Jitter, SeededJitter};

use crate::policy::{ErrorPredicate, ErrorRanking, Intensity, RestartPolicy, RestartType};
use crate::supervision::{AutoShutdown, FailureBackoff, Shutdown, ShutdownOrder, Strategy};

/// How many threads run start functions before the runner considers
/// adding more (see [`RunnerParams::start_threads`]).
pub const DEFAULT_START_THREADS: usize = 2;

/// The parameters of [`Runner::new`](crate::Runner::new), built with
/// chained setters; everything but the name has a default, and the
/// defaults are Go's.
///
/// | setter | default | Go |
/// |---|---|---|
/// | [`is_fatal`](Self::is_fatal) | every error is fatal | same |
/// | [`should_restart`](Self::should_restart) | always | same |
/// | [`more_important`](Self::more_important) | the first fatal error wins | the doc says so; the code keeps the last |
/// | [`restart_delay`](Self::restart_delay) | 3 s (zero means the default) | same |
/// | [`restart_policy`](Self::restart_policy) | fixed delay, unlimited | same |
/// | [`restart_type`](Self::restart_type) | [`RestartType::Transient`] | same (no such option) |
/// | [`clock`](Self::clock) | [`WallClock`] | same |
/// | [`stop_timeout`](Self::stop_timeout) | none (no stuck detection) | none |
/// | [`jitter`](Self::jitter) | [`SeededJitter::from_entropy`] | none |
/// | [`start_threads`](Self::start_threads) | 2 | a goroutine per start |
/// | [`strategy`](Self::strategy) | [`Strategy::OneForOne`] | same (no such option) |
/// | [`intensity`](Self::intensity) | none (no runner-wide limit) | none |
/// | [`failure_backoff`](Self::failure_backoff) | none | none |
/// | [`shutdown`](Self::shutdown) | [`Shutdown::Wait`] | same |
/// | [`shutdown_order`](Self::shutdown_order) | [`ShutdownOrder::AllAtOnce`] | same |
/// | [`auto_shutdown`](Self::auto_shutdown) | [`AutoShutdown::Never`] | none |
/// | [`on_event`](Self::on_event) | none | none |
///
/// ```
/// use std::time::Duration;
/// use worker_runner::RunnerParams;
///
/// let params = RunnerParams::new("api")
///     .is_fatal(|e| e.to_string().contains("corrupt"))
///     .restart_delay(Duration::from_millis(500));
/// assert_eq!(params.name(), "api");
/// ```
pub struct RunnerParams {
    name: String,
    is_fatal: Option<ErrorPredicate>,
    should_restart: Option<ErrorPredicate>,
    more_important: Option<ErrorRanking>,
    restart_delay: Duration,
    policy: Option<RestartPolicy>,
    restart_type: RestartType,
    clock: Arc<dyn Clock>,
    stop_timeout: Option<Duration>,
    jitter: Option<Arc<dyn Jitter>>,
    start_threads: usize,
    strategy: Strategy,
    intensity: Option<Intensity>,
    failure_backoff: Option<FailureBackoff>,
    shutdown: Shutdown,
    shutdown_order: ShutdownOrder,
    auto_shutdown: AutoShutdown,
    hooks: Vec<Arc<dyn Hook>>,
}

impl RunnerParams {
    /// Parameters with Go's defaults. `name` labels the runner's threads,
    /// log spans and errors; it must not be empty, and giving each runner a
    /// distinct one makes its threads easy to find.
    pub fn new(name: impl Into<String>) -> Self {
        RunnerParams {
            name: name.into(),
            is_fatal: None,
            should_restart: None,
            more_important: None,
            restart_delay: Duration::ZERO,
            policy: None,
            restart_type: RestartType::default(),
            clock: Arc::new(WallClock),
            stop_timeout: None,
            jitter: None,
            start_threads: DEFAULT_START_THREADS,
            strategy: Strategy::default(),
            intensity: None,
            failure_backoff: None,
            shutdown: Shutdown::default(),
            shutdown_order: ShutdownOrder::default(),
            auto_shutdown: AutoShutdown::default(),
            hooks: Vec::new(),
        }
    }

    /// The runner's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Decides whether a worker's error (from its start function or its
    /// run) stops the whole runner. Default: every error is fatal, as in Go.
    /// A panic in `f` counts as "fatal".
    pub fn is_fatal(mut self, f: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Self {
        self.is_fatal = Some(Arc::new(f));
        self
    }

    /// Decides whether a worker that failed with a non-fatal error is
    /// restarted (`false` removes it). Default: always. A panic in `f`
    /// counts as "do not restart".
    pub fn should_restart(mut self, f: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Self {
        self.should_restart = Some(Arc::new(f));
        self
    }

    /// `f(a, b)` says whether fatal error `a` is more important than `b`;
    /// the runner's `wait` returns the most important fatal error it saw.
    /// Default: the first fatal error is kept (Go documents this, but its
    /// code keeps the last one). A panic in `f` keeps the earlier error.
    pub fn more_important(
        mut self,
        f: impl Fn(&Error, &Error) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.more_important = Some(Arc::new(f));
        self
    }

    /// The delay before a failed worker is restarted (the base delay of the
    /// restart policy). Zero means the default, 3 s, as in Go; for an
    /// immediate restart use `restart_policy(RestartPolicy::fixed(Duration::ZERO))`.
    pub fn restart_delay(mut self, delay: Duration) -> Self {
        self.restart_delay = delay;
        self
    }

    /// The default restart policy of every worker (backoff, intensity
    /// limit). A non-zero [`restart_delay`](Self::restart_delay) replaces
    /// its base delay.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The default restart type of every worker.
    pub fn restart_type(mut self, restart_type: RestartType) -> Self {
        self.restart_type = restart_type;
        self
    }

    /// The source of time for every delay and timeout of the runner.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The same, for a clock that is already shared.
    pub fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reports a worker as stuck (in the report, in
    /// [`Runner::waiting_for`](crate::Runner::waiting_for), as a
    /// [`EventKind::Stuck`](worker_core::events::EventKind::Stuck) event
    /// and with a tracing warning) when it has not
    /// finished `timeout` after it was asked to stop (killed, or still in
    /// its start function). The runner still waits for it: this only
    /// reports. To force a worker that can be forced, give it a
    /// [`Shutdown::Timeout`], which takes the place of this timeout for
    /// that worker.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = Some(timeout);
        self
    }

    /// Where backoff jitter comes from; inject
    /// [`NoJitter`](worker_core::jitter::NoJitter) or a fixed
    /// sequence (any `Fn() -> f64` closure) in tests.
    pub fn jitter(mut self, source: impl Jitter) -> Self {
        self.jitter = Some(Arc::new(source));
        self
    }

    /// How many threads run start functions concurrently before the
    /// runner waits for one to finish (at least 1; default 2). This bounds
    /// the threads a burst of starts costs. A start function that blocks
    /// cannot hold the others up for long: when none of them has finished
    /// for 20 ms of real time while others wait, the runner adds a thread
    /// (and another after each further 20 ms). Every start thread ends
    /// after 200 ms with nothing to do, so an idle runner keeps none
    /// (see [`StartQueue`](worker_core::StartQueue)).
    pub fn start_threads(mut self, n: usize) -> Self {
        self.start_threads = n;
        self
    }

    /// What a worker's restart does to the others (OTP's restart
    /// strategy); default [`Strategy::OneForOne`].
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// A runner-wide limit (OTP's supervisor intensity, MaxR in MaxT): at
    /// most `max_restarts` restarts of all the workers together in any
    /// `period` (a restart exactly `period` ago still counts); the next
    /// one ends the runner with
    /// [`RunnerIntensityExceeded`](crate::RunnerIntensityExceeded). A
    /// cascade of the [`strategy`](Self::strategy) counts once, as in OTP.
    /// `max_restarts` may be 0 (no restart at all, as in OTP); `period`
    /// must not be zero. Each worker's own limit
    /// ([`RestartPolicy::intensity`]) applies as well.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = Some(Intensity {
            max_restarts,
            period,
        });
        self
    }

    /// Suture's alternative to ending the runner: past a decaying count of
    /// failures, every restart pauses for a while (see
    /// [`FailureBackoff`]).
    pub fn failure_backoff(mut self, rule: FailureBackoff) -> Self {
        self.failure_backoff = Some(rule);
        self
    }

    /// How every worker is stopped unless its
    /// [`WorkerOptions::shutdown`](crate::WorkerOptions::shutdown) says
    /// otherwise; default [`Shutdown::Wait`].
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// In which order the workers stop when the runner shuts down; default
    /// [`ShutdownOrder::AllAtOnce`].
    pub fn shutdown_order(mut self, order: ShutdownOrder) -> Self {
        self.shutdown_order = order;
        self
    }

    /// Whether the runner ends on its own when significant workers end
    /// (OTP's `auto_shutdown`); default [`AutoShutdown::Never`].
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
        self
    }

    /// Calls `hook` with each of the runner's lifecycle events
    /// ([`Event`](worker_core::events::Event), the vocabulary every
    /// supervisor of the family shares), in the order they happen. Each
    /// call adds a hook; each hook gets every event.
    ///
    /// The hook is user code, so it never runs on the runner's loop: the
    /// events are queued and delivered, one at a time, on the runner's
    /// start threads. A slow or blocking hook delays only the events after
    /// it (which queue up meanwhile, without bound) and the runner's final
    /// `wait`, which waits for the last delivery; a panicking hook is
    /// logged, and the next event is delivered as usual.
    ///
    /// ```
    /// use worker_core::{Passive, Worker};
    /// use worker_runner::{Runner, RunnerParams};
    ///
    /// let (tx, events) = crossbeam_channel::unbounded();
    /// let runner = Runner::new(RunnerParams::new("hooked").on_event(move |e| {
    ///     let _ = tx.send(e.name());
    /// }))?;
    /// runner.start_worker("w", || Ok(Passive::new()))?;
    /// runner.worker("w", None)?;
    /// runner.kill();
    /// runner.wait()?; // every event has been delivered
    /// let names: Vec<_> = events.try_iter().collect();
    /// assert_eq!(names, [
    ///     "worker starting", "worker started",
    ///     "supervisor shutting down", "worker stopping", "worker stopped", "worker removed",
    /// ]);
    /// # Ok::<(), worker_core::Error>(())
    /// ```
    pub fn on_event(self, hook: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.hook(hook)
    }

    /// Adds `hook` to the runner's hooks, as [`on_event`](Self::on_event)
    /// does for a closure: a [`Hook`] of your own, or the metrics adapter
    /// (`worker_core::events::MetricsFacade`, feature `metrics` of
    /// `worker-core`), for metrics in one line:
    /// `RunnerParams::new("api").hook(MetricsFacade::new())`.
    pub fn hook(mut self, hook: impl Hook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidParams> {
        if let Some(i) = &self.intensity {
            if i.period.is_zero() {
                return Err(InvalidParams::new(
                    "runner intensity period must not be zero",
                ));
            }
        }
        if let Some(rule) = &self.failure_backoff {
            rule.validate()?;
        }
        if self.name.is_empty() {
            return Err(InvalidParams::new("name must not be empty"));
        }
        if self.start_threads == 0 {
            return Err(InvalidParams::new("start_threads must be at least 1"));
        }
        self.effective_policy().validate()
    }

    fn effective_policy(&self) -> RestartPolicy {
        let policy = self.policy.unwrap_or_default();
        if self.restart_delay.is_zero() {
            policy
        } else {
            policy.with_base_delay(self.restart_delay)
        }
    }

    /// Splits the parameters into the machine's and the shell's shares.
    pub(crate) fn into_parts(self) -> Parts {
        let policy = self.effective_policy();
        let jitter = self
            .jitter
            .unwrap_or_else(|| Arc::new(SeededJitter::from_entropy()));
        let name: Arc<str> = Arc::from(self.name.as_str());
        Parts {
            name: self.name,
            clock: self.clock,
            start_threads: self.start_threads,
            config: Config {
                restart_type: self.restart_type,
                stop_timeout: self.stop_timeout,
                keep_all_fatal: self.more_important.is_some(),
                strategy: self.strategy,
                intensity: self.intensity,
                failure_backoff: self.failure_backoff,
                shutdown: self.shutdown,
                shutdown_order: self.shutdown_order,
                auto_shutdown: self.auto_shutdown,
                name,
                events: !self.hooks.is_empty(),
                ..Config::new(policy)
            },
            hooks: self.hooks,
            policies: Policies {
                is_fatal: self.is_fatal,
                should_restart: self.should_restart,
                more_important: self.more_important,
                jitter,
            },
        }
    }
}

/// The shell's share of the parameters, the machine's [`Config`], and the
/// policies asked off the loop.
pub(crate) struct Parts {
    pub(crate) name: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) start_threads: usize,
    pub(crate) config: Config,
    pub(crate) policies: Policies,
    pub(crate) hooks: Vec<Arc<dyn Hook>>,
}

impl fmt::Debug for RunnerParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunnerParams")
            .field("name", &self.name)
            .field("is_fatal", &self.is_fatal.as_ref().map(|_| "custom"))
            .field(
                "should_restart",
                &self.should_restart.as_ref().map(|_| "custom"),
            )
            .field(
                "more_important",
                &self.more_important.as_ref().map(|_| "custom"),
            )
            .field("restart_delay", &self.restart_delay)
            .field("policy", &self.policy)
            .field("restart_type", &self.restart_type)
            .field("stop_timeout", &self.stop_timeout)
            .field("start_threads", &self.start_threads)
            .field("strategy", &self.strategy)
            .field("intensity", &self.intensity)
            .field("failure_backoff", &self.failure_backoff)
            .field("shutdown", &self.shutdown)
            .field("shutdown_order", &self.shutdown_order)
            .field("auto_shutdown", &self.auto_shutdown)
            .field("hooks", &self.hooks.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_restart_delay_means_go_default() {
        let parts = RunnerParams::new("x").into_parts();
        assert_eq!(
            parts.config.policy.base_delay(),
            worker_core::DEFAULT_RESTART_DELAY
        );
        let parts = RunnerParams::new("x")
            .restart_delay(Duration::from_millis(5))
            .into_parts();
        assert_eq!(parts.config.policy.base_delay(), Duration::from_millis(5));
        let parts = RunnerParams::new("x")
            .restart_policy(RestartPolicy::fixed(Duration::ZERO))
            .into_parts();
        assert_eq!(parts.config.policy.base_delay(), Duration::ZERO);
    }

    #[test]
    fn validation() {
        assert!(
            RunnerParams::new("")
                .validate()
                .unwrap_err()
                .reason
                .contains("name")
        );
        assert!(
            RunnerParams::new("x")
                .start_threads(0)
                .validate()
                .unwrap_err()
                .reason
                .contains("start_threads")
        );
        assert!(
            RunnerParams::new("x")
                .restart_policy(RestartPolicy::exponential(
                    Duration::from_secs(1),
                    f64::NAN,
                    Duration::from_secs(2)
                ))
                .validate()
                .is_err()
        );
    }
}

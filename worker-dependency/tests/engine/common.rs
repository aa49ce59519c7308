//! The harness shared by the behaviour tests.

use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use worker_core::{Error, Passive, Worker};
use worker_dependency::{Engine, EngineConfig, Manifold, Metrics, NoJitter};
use worker_testing::{TestClock, assert_threads_gone};

pub(crate) const LONG: Duration = Duration::from_secs(10);
pub(crate) const ERROR_DELAY: Duration = Duration::from_secs(1);
pub(crate) const BOUNCE_DELAY: Duration = Duration::from_millis(10);

/// Sends the name of every manifold whose worker the engine registered,
/// and of every manifold that stopped (with its error).
struct Recorder {
    started: Mutex<Sender<String>>,
    stopped: Mutex<Sender<(String, Option<String>)>>,
}

impl Metrics for Recorder {
    fn record_start(&self, name: &str) {
        let _ = self.started.lock().unwrap().send(name.to_owned());
    }

    fn record_stop(&self, name: &str, error: Option<&Error>) {
        let _ = self
            .stopped
            .lock()
            .unwrap()
            .send((name.to_owned(), error.map(|e| e.to_string())));
    }
}

/// A start function's call, as the test sees it.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) name: String,
    /// The worker it returned (if it returned one).
    pub(crate) worker: Option<Arc<Passive>>,
}

pub(crate) struct Harness {
    pub(crate) engine: Engine,
    pub(crate) clock: TestClock,
    pub(crate) name: String,
    started: Receiver<String>,
    stopped: Receiver<(String, Option<String>)>,
    calls_tx: Sender<Call>,
    calls: Receiver<Call>,
}

impl Harness {
    /// An engine on a test clock, with no jitter, no backoff, error delay
    /// 1 s, bounce delay 10 ms and no stop timeout.
    pub(crate) fn new(name: &str) -> Self {
        Harness::with(name, |_| {})
    }

    pub(crate) fn with(name: &str, tweak: impl FnOnce(&mut EngineConfig)) -> Self {
        let clock = TestClock::new();
        let (started_tx, started) = unbounded();
        let (stopped_tx, stopped) = unbounded();
        let mut config = EngineConfig::new(name);
        config.clock = Arc::new(clock.clone());
        config.jitter = Arc::new(NoJitter);
        config.error_delay = ERROR_DELAY;
        config.bounce_delay = BOUNCE_DELAY;
        config.backoff_factor = 0.0;
        config.stop_timeout = Duration::ZERO;
        let mut config = config.metrics(Recorder {
            started: Mutex::new(started_tx),
            stopped: Mutex::new(stopped_tx),
        });
        tweak(&mut config);
        let engine = Engine::new(config).expect("valid config");
        let (calls_tx, calls) = unbounded();
        Harness {
            engine,
            clock,
            name: name.to_owned(),
            started,
            stopped,
            calls_tx,
            calls,
        }
    }

    /// A manifold whose start function reports its call, fails with
    /// `Missing` unless every input runs, and returns a passive worker the
    /// test can end.
    pub(crate) fn manifold(&self, inputs: &[&str]) -> Manifold {
        let calls = self.calls_tx.clone();
        let names: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        Manifold::new(move |ctx| {
            for input in &names {
                if let Err(e) = ctx.require(input) {
                    let _ = calls.send(Call {
                        name: ctx.name().to_owned(),
                        worker: None,
                    });
                    return Err(e.into());
                }
            }
            let worker = Arc::new(Passive::new());
            let _ = calls.send(Call {
                name: ctx.name().to_owned(),
                worker: Some(worker.clone()),
            });
            Ok(worker)
        })
        .inputs(inputs)
    }

    pub(crate) fn install(&self, name: &str, inputs: &[&str]) {
        self.engine.install(name, self.manifold(inputs)).unwrap();
    }

    /// Installs `names` as a chain (each after the one before it has
    /// started, each needing the one before it) and returns their workers,
    /// in order.
    pub(crate) fn start_chain<const N: usize>(&self, names: [&str; N]) -> [Arc<Passive>; N] {
        std::array::from_fn(|i| {
            let inputs = if i == 0 { vec![] } else { vec![names[i - 1]] };
            self.install(names[i], &inputs);
            self.expect_started(&[names[i]]);
            self.call_of(names[i])
                .expect("a started manifold has a worker")
        })
    }

    /// Waits for the engine to register workers for exactly these
    /// manifolds (in any order).
    pub(crate) fn expect_started(&self, names: &[&str]) {
        let mut want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
        while !want.is_empty() {
            let got = self
                .started
                .recv_timeout(LONG)
                .unwrap_or_else(|_| panic!("still waiting for {want:?} to start"));
            assert!(
                want.remove(&got),
                "unexpected start of {got:?}; waiting for {want:?}"
            );
        }
    }

    /// Waits for the engine to have handled the stops of exactly these
    /// manifolds (in any order; a failed start counts as a stop), and
    /// returns their errors in the order given.
    pub(crate) fn expect_stopped(&self, names: &[&str]) -> Vec<Option<String>> {
        let mut got: Vec<Option<Option<String>>> = vec![None; names.len()];
        while got.iter().any(Option::is_none) {
            let (name, error) = self
                .stopped
                .recv_timeout(LONG)
                .unwrap_or_else(|_| panic!("still waiting for stops of {names:?}"));
            let slot = names
                .iter()
                .zip(got.iter_mut())
                .find(|(n, g)| **n == name && g.is_none())
                .unwrap_or_else(|| panic!("unexpected stop of {name:?} ({error:?})"));
            *slot.1 = Some(error);
        }
        got.into_iter().map(Option::unwrap).collect()
    }

    /// The next start function call.
    pub(crate) fn next_call(&self) -> Call {
        self.calls.recv_timeout(LONG).expect("a start call")
    }

    /// The next start function call, which must be `name`'s; returns its
    /// worker, if it made one.
    pub(crate) fn call_of(&self, name: &str) -> Option<Arc<Passive>> {
        let call = self.next_call();
        assert_eq!(call.name, name);
        call.worker
    }

    /// Starts of `names` (in any order) that returned workers.
    pub(crate) fn workers_of(&self, names: &[&str]) -> Vec<(String, Arc<Passive>)> {
        let mut want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
        let mut got = Vec::new();
        while !want.is_empty() {
            let call = self.next_call();
            if let Some(w) = call.worker {
                assert!(want.remove(&call.name), "unexpected {:?}", call.name);
                got.push((call.name, w));
            }
        }
        got
    }

    /// No start or stop registered so far beyond what was expected (as
    /// far as the engine's loop has seen: a report is a round trip).
    pub(crate) fn assert_quiet(&self) {
        let _ = self.engine.report();
        assert_eq!(self.started.try_recv().ok(), None);
        assert_eq!(self.stopped.try_recv().ok(), None);
    }

    /// Waits until the engine's loop has handled everything sent to it so
    /// far, including what that caused on the loop itself (a worker
    /// killed there reports its end there): a few report round trips.
    pub(crate) fn sync(&self) {
        for _ in 0..8 {
            let _ = self.engine.report();
        }
    }

    /// Moves time on by `d` once `n` timers are waiting.
    pub(crate) fn advance(&self, d: Duration, n: usize) {
        self.clock.wait_advance(d, LONG, n).unwrap();
    }

    /// The state of `manifold` in the report.
    pub(crate) fn state(&self, manifold: &str) -> &'static str {
        let report = self.engine.report();
        report.manifold(manifold).unwrap().state.as_str()
    }

    /// The report of `manifold`, as JSON (`null` if it is not installed).
    pub(crate) fn manifold_report(&self, manifold: &str) -> serde_json::Value {
        serde_json::to_value(self.engine.report()).unwrap()["manifolds"][manifold].take()
    }

    /// Kills the engine, waits, and checks that no thread is left.
    pub(crate) fn stop(&self) -> Result<(), Error> {
        self.engine.kill();
        let result = self.engine.wait();
        assert_threads_gone(&self.name);
        result
    }
}

/// A worker's end with `error`.
pub(crate) fn end(worker: &Passive, error: Option<Error>) {
    worker.finish(error.map_or(Ok(()), Err));
}

/// A unique-per-test message error.
pub(crate) fn err(text: &str) -> Error {
    Error::msg(text.to_owned())
}

/// Whether `worker` has finished.
pub(crate) fn is_dead(worker: &dyn Worker) -> bool {
    matches!(
        worker.dead_signal().unwrap().try_recv(),
        Err(crossbeam_channel::TryRecvError::Disconnected)
    )
}

/// Everything logged at WARN or above by any engine in this test binary
/// (a global subscriber: engines log from their own threads). Tests look
/// for lines naming their own engine.
pub(crate) fn logs() -> String {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buffer = LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || LogWriter(writer.clone()))
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    });
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

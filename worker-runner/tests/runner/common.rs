//! Shared helpers: a port of Go's `testWorkerStarter`, and runner set-up
//! and tear-down that checks nothing is left running.

use std::io::Write;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select, unbounded};
use worker_core::{
    DoneCallback, Error, Report, Reporter, SharedWorker, Signal, ThreadWorker, Worker, spawn,
};
use worker_runner::{Runner, RunnerParams};
use worker_testing::{TestClock, assert_threads_gone};

/// The failure timeout of every wait in these tests.
pub(crate) const LONG: Duration = Duration::from_secs(10);

/// Makes a runner named `name` (also the prefix of every thread the test
/// starts), with `params` applied to Go's defaults.
pub(crate) fn runner(name: &str, params: impl FnOnce(RunnerParams) -> RunnerParams) -> Runner {
    Runner::new(params(RunnerParams::new(name))).expect("runner starts")
}

/// Runs `body` in a child process (this test binary, running only `test`)
/// and fails if the child fails in any way: for tests whose failure, on a
/// broken build, is a stack overflow, which aborts the whole process.
pub(crate) fn in_child_process(test: &str, body: impl FnOnce()) {
    const CHILD: &str = "WORKER_RUNNER_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child process ({}) failed:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A runner on a fake clock, with nothing fatal and a 1 s restart delay.
pub(crate) fn clocked_runner(
    name: &str,
    params: impl FnOnce(RunnerParams) -> RunnerParams,
) -> (Runner, TestClock) {
    let clock = TestClock::new();
    let r = runner(name, |p| {
        params(
            p.clock(clock.clone())
                .is_fatal(none_fatal)
                .restart_delay(Duration::from_secs(1)),
        )
    });
    (r, clock)
}

pub(crate) fn none_fatal(_: &Error) -> bool {
    false
}

pub(crate) fn all_fatal(_: &Error) -> bool {
    true
}

/// Kills the runner, waits for it, and checks that none of the test's
/// threads (named after the runner) is left. Returns `wait`'s result.
pub(crate) fn finish(runner: &Runner) -> Result<(), Error> {
    runner.kill();
    let result = runner.wait();
    assert_threads_gone(runner.name());
    result
}

/// Waits (up to [`LONG`]) for the runner to finish on its own: a test of a
/// rule that should end the runner fails instead of hanging when it
/// does not.
#[track_caller]
pub(crate) fn assert_ends_on_its_own(runner: &Runner) {
    let dead = runner.dead_signal().expect("a runner has a dead signal");
    assert!(
        matches!(
            dead.recv_timeout(LONG),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        ),
        "the runner did not end on its own"
    );
}

/// Waits for the runner to finish on its own and checks that nothing is
/// left.
pub(crate) fn wait_gone(runner: &Runner) -> Result<(), Error> {
    let result = runner.wait();
    assert_threads_gone(runner.name());
    result
}

/// Go's `testWorkerStarter`: a start function whose workers announce on
/// `started` (true when started, false when they end), end with an error
/// sent on `die`, and can be set to fail at start, fail when killed,
/// block before exiting, run a hook, and report.
pub(crate) struct Starter {
    prefix: String,
    count: AtomicI32,
    calls: AtomicUsize,
    notify_tx: Sender<bool>,
    notify_rx: Receiver<bool>,
    die_tx: Sender<Option<Error>>,
    die_rx: Receiver<Option<Error>>,
    /// The start function fails with this.
    pub(crate) start_err: Option<Error>,
    /// The worker ends with this when it is asked to stop.
    pub(crate) stop_err: Option<Error>,
    /// Killing the worker records this error (Go's `killErr`).
    pub(crate) kill_err: Option<Error>,
    /// The worker waits for a value (or a disconnect) here before ending.
    pub(crate) stop_wait: Option<Receiver<()>>,
    /// Called on the worker's thread when it starts.
    pub(crate) hook: Option<Box<dyn Fn() + Send + Sync>>,
    /// What the worker reports (it is a `Reporter` only if set).
    pub(crate) report: Option<Report>,
}

impl Starter {
    /// A starter whose worker threads are named `"<prefix>-worker"`.
    pub(crate) fn new(prefix: &str) -> Self {
        let (notify_tx, notify_rx) = unbounded();
        let (die_tx, die_rx) = unbounded();
        Starter {
            prefix: prefix.to_owned(),
            count: AtomicI32::new(0),
            calls: AtomicUsize::new(0),
            notify_tx,
            notify_rx,
            die_tx,
            die_rx,
            start_err: None,
            stop_err: None,
            kill_err: None,
            stop_wait: None,
            hook: None,
            report: None,
        }
    }

    /// The start function to give the runner.
    pub(crate) fn start_fn(
        self: &Arc<Self>,
    ) -> impl FnMut() -> Result<SharedWorker, Error> + Send + 'static + use<> {
        let starter = Arc::clone(self);
        move || starter.start()
    }

    /// How many times the start function was called.
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn start(self: &Arc<Self>) -> Result<SharedWorker, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(n, 1, "more than one live incarnation");
        if let Some(e) = &self.start_err {
            self.notify_tx.send(false).unwrap();
            self.count.fetch_sub(1, Ordering::SeqCst);
            return Err(e.clone());
        }
        let starter = Arc::clone(self);
        let thread = spawn(format!("{}-worker", self.prefix), move |tomb| {
            if let Some(hook) = &starter.hook {
                hook();
            }
            let err = select! {
                recv(tomb.dying()) -> _ => starter.stop_err.clone(),
                recv(starter.die_rx) -> e => e.unwrap_or(None),
            };
            if let Some(wait) = &starter.stop_wait {
                let _ = wait.recv();
            }
            starter.count.fetch_sub(1, Ordering::SeqCst);
            starter.notify_tx.send(false).unwrap();
            err.map_or(Ok(()), Err)
        });
        self.notify_tx.send(true).unwrap();
        Ok(Arc::new(TestWorker {
            starter: Arc::clone(self),
            thread,
        }))
    }

    /// Waits for the next notification and checks it is `started`.
    #[track_caller]
    pub(crate) fn assert_started(&self, started: bool) {
        match self.notify_rx.recv_timeout(LONG) {
            Ok(got) => assert_eq!(got, started, "start notification"),
            Err(_) => panic!("timed out waiting for start notification ({started})"),
        }
    }

    /// Checks that no notification is pending (use only when the runner
    /// can no longer start the worker, e.g. after it has forgotten the id).
    #[track_caller]
    pub(crate) fn assert_no_notification(&self) {
        assert!(
            self.notify_rx.try_recv().is_err(),
            "unexpected notification"
        );
    }

    /// Makes the running worker end with `err`.
    pub(crate) fn die(&self, err: Option<Error>) {
        self.die_tx.send(err).unwrap();
    }
}

/// Go's `testWorker`: a thread-backed worker that knows its starter.
pub(crate) struct TestWorker {
    pub(crate) starter: Arc<Starter>,
    thread: ThreadWorker,
}

impl Worker for TestWorker {
    fn kill(&self) {
        self.thread.tomb().kill(self.starter.kill_err.clone());
    }
    fn wait(&self) -> Result<(), Error> {
        self.thread.wait()
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        self.thread.on_done(callback)
    }
    fn dead_signal(&self) -> Option<Signal> {
        self.thread.dead_signal()
    }
    fn reporter(&self) -> Option<&dyn Reporter> {
        self.starter.report.as_ref().map(|_| self as &dyn Reporter)
    }
}

impl Reporter for TestWorker {
    fn report(&self) -> Report {
        // Only asked for when set (see `reporter`).
        self.starter
            .report
            .clone()
            .unwrap_or_else(|| Report::new(serde_json::json!({})))
    }
}

/// The starter behind a worker the runner handed out.
pub(crate) fn starter_of(w: &SharedWorker) -> Arc<Starter> {
    worker_core::downcast_worker::<TestWorker>(w)
        .expect("a TestWorker")
        .starter
        .clone()
}

/// Checks that `err` (any of the runner's typed errors, or the shared
/// `Error` they convert into) is, or wraps, an `E`.
#[track_caller]
pub(crate) fn assert_is<E: std::error::Error + 'static>(err: &(impl Clone + Into<Error>)) {
    let err: Error = err.clone().into();
    assert!(
        err.is::<E>(),
        "expected a {} error, got: {err}",
        std::any::type_name::<E>()
    );
}

/// `is`, `downcast_ref` and `same` on the runner's typed errors, as on the
/// shared `Error` they convert into.
pub(crate) trait Typed: Clone + Into<Error> {
    fn is<E: std::error::Error + 'static>(&self) -> bool {
        self.clone().into().is::<E>()
    }

    /// Whether it is (or wraps) the very same error as `other`.
    fn same(&self, other: &Error) -> bool {
        self.clone().into().chain().any(|link| {
            std::ptr::addr_eq(
                link as *const dyn std::error::Error,
                other.as_std() as *const _,
            )
        })
    }
}

impl Typed for worker_runner::StartError {}
impl Typed for worker_runner::LookupError {}
impl Typed for worker_runner::RemoveError {}

/// An abort signal and the trigger that fires it (also when dropped).
pub(crate) fn abort_signal() -> (worker_core::AbortTrigger, worker_core::AbortSignal) {
    worker_core::AbortSignal::pair()
}

/// The error of `result`, which must be one (`unwrap_err` needs `Debug`,
/// which `dyn Worker` is not), as the shared `Error`.
#[track_caller]
pub(crate) fn err_of<T, E: Into<Error>>(result: Result<T, E>) -> Error {
    match result {
        Ok(_) => panic!("expected an error, got a value"),
        Err(e) => e.into(),
    }
}

/// Everything logged through `tracing` by this test binary, for checking
/// that a warning was given.
pub(crate) fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        logs
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The text logged so far (see [`captured_logs`]).
pub(crate) fn logged() -> String {
    String::from_utf8(captured_logs().lock().unwrap().clone()).unwrap()
}

/// The runner's report, serialised: Go's JSON layout, for tests about
/// what it reads.
pub(crate) fn json_report(runner: &Runner) -> serde_json::Value {
    serde_json::to_value(runner.report()).expect("a report serialises")
}

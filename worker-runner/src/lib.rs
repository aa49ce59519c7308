//! A runner of named workers that restarts them when they fail: the Rust
//! successor of Go's `worker.Runner` (juju/worker v3).
//!
//! # Why a runner
//!
//! A long-running service is mostly background work: a connection to keep
//! open, a queue to drain, a lease to renew, one watcher per tenant. Each
//! piece can fail for reasons that pass (a network blip, a restarted
//! peer), and the right answer is then to try again a little later, not to
//! bring the service down. Some failures do not pass (bad configuration, a
//! corrupt store), and the right answer is then to stop everything, in
//! order, and say why. A [`Runner`] is that policy, applied to workers
//! identified by name:
//!
//! - [`start_worker(id, start)`](Runner::start_worker) registers a start
//!   function under an id and calls it to make the worker;
//! - when the worker ends with an error that `is_fatal` says is not fatal,
//!   the runner calls the start function again after a delay; when it ends
//!   cleanly, the runner forgets it;
//! - when a worker ends with a fatal error, the runner stops every worker
//!   and finishes with the most important fatal error it saw;
//! - [`worker(id)`](Runner::worker) hands out the running instance,
//!   waiting while it is starting or between two incarnations;
//! - [`stop_worker`](Runner::stop_worker) and
//!   [`stop_and_remove_worker`](Runner::stop_and_remove_worker) take one
//!   out.
//!
//! The runner is itself a [`Worker`](worker_core::Worker) and a
//! [`Reporter`](worker_core::Reporter): it can run inside another runner,
//! a catacomb or a dependency engine, and its report nests its workers'.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use worker_core::{spawn, Worker, WorkerState};
//! use worker_runner::{Runner, RunnerParams};
//!
//! // Nothing is fatal; a failed worker comes back after 10 ms.
//! let runner = Runner::new(
//!     RunnerParams::new("example")
//!         .is_fatal(|_| false)
//!         .restart_delay(Duration::from_millis(10)),
//! )?;
//!
//! // A worker that runs until it is killed.
//! runner.start_worker("poller", || {
//!     Ok(spawn("poller", |tomb| {
//!         let _ = tomb.dying().recv(); // wait to be told to stop
//!         Ok(())
//!     }))
//! })?;
//!
//! // Wait until it runs, look at it, and take it out again.
//! let poller = runner.worker("poller", None)?;
//! let report = runner.report(); // typed; serialise it for JSON
//! assert_eq!(report.worker("poller").unwrap().state, WorkerState::Started);
//! runner.stop_and_remove_worker("poller", None)?;
//! assert!(poller.wait().is_ok());
//!
//! runner.kill();
//! runner.wait()?; // every worker has stopped, every thread is joined
//! # Ok::<(), worker_core::Error>(())
//! ```
//!
//! # How it works
//!
//! Every decision (what to start, kill, restart, when, what to report)
//! is made by a pure state machine that holds each id as an explicit state
//! (starting, started, stopping, waiting to restart, held for a cascade),
//! its deadlines as data and its final error. One loop thread per runner owns it (the
//! core's [supervisor driver](worker_core::supervisor), which the
//! dependency engine shares); the public methods send it messages, and the
//! answers come back on reply channels. There is no lock around the
//! runner's state, so there is no lock order to get wrong, and the rules
//! are tested without threads or clocks (including a property test over
//! random sequences of events).
//!
//! The loop runs none of your code. Start functions, `kill`, `abort`,
//! `wait` and `Drop` of your workers and start functions, your policies
//! (`is_fatal`, `should_restart`, `more_important`, the jitter source) and
//! your event hook all run on the runner's start threads or on the thread
//! that finished a worker, each under panic containment.
//!
//! # What a misbehaving worker can and cannot do
//!
//! | the worker... | the runner... |
//! |---|---|
//! | panics in its body, `kill`, `wait`, `report` or `Drop` | treats a panic in the body as the worker's error; logs the others and goes on |
//! | blocks in `kill` | goes on answering, starting and stopping others; that worker is reported stuck after the stop timeout, and `wait` waits for it |
//! | is slow or blocks in `Drop` | goes on; only its own disposal (and so the runner's final `wait`) waits for it |
//! | calls back into the runner from its start function, body or completion callback | answers at once what it can; a call that would wait for the runner itself (`wait`, `stop`, or waiting for its own id) fails with [`WouldDeadlock`](worker_core::WouldDeadlock) instead of hanging |
//! | never ends after `kill` | is reported stuck after its shutdown timeout; is forced if it can be ([`Worker::abortable`](worker_core::Worker::abortable): an async task, never a thread) and its [`Shutdown`] says so; otherwise `wait` waits for it and [`Runner::waiting_for`] says so |
//! | blocks in its start function after being stopped | is reported stuck the same way (a start function cannot be forced); killed as soon as it returns |
//!
//! The event hook ([`RunnerParams::on_event`]) is your code too: a panic
//! in it is logged and the next event is delivered as usual; a hook that
//! blocks delays only the events after it (which queue up) and the
//! runner's final `wait`.
//!
//! What a worker cannot be kept from: a `Drop` or `wait` that never
//! returns holds the runner's final `wait` (nothing can join a thread that
//! does not end), and a worker body spawned *outside* the runner's start
//! functions that stops the runner deadlocks (the runner cannot know the
//! thread is one of its workers).
//!
//! Nothing costs a thread per worker beyond the worker's own. Start
//! functions run on a few start threads (two by default; see
//! [`RunnerParams::start_threads`]), never on the loop or on the caller's
//! thread; the runner learns that a worker ended through its completion
//! callback ([`Worker::on_done`](worker_core::Worker::on_done)), which
//! costs no thread for workers built on [`Tomb`](worker_core::Tomb); a
//! caller waiting in `worker()` is an entry in a list, answered once. The
//! loop asks the [`Clock`](worker_core::Clock) for one timer at a time,
//! for the earliest deadline, so an idle runner uses no CPU and a fake
//! clock in a test sees exactly the timers that matter. Every incarnation
//! gets a generation number, so news about an incarnation that is gone is
//! never taken for news about the current one.
//!
//! Every thread the runner starts is named after it (`<name>-loop`,
//! `<name>-start-<n>`, `<name>-watch` for workers that cannot report their
//! own end) and has been joined when [`wait`](worker_core::Worker::wait)
//! returns.
//!
//! # The life of an id
//!
//! The report's `state` is where the id is:
//!
//! | state | meaning | `worker(id)` |
//! |---|---|---|
//! | `starting` | its start function is running | waits |
//! | `started` | an instance is running | returns it |
//! | `stopping` | its instance was killed and has not finished | waits, then `NotFound` |
//! | `stopped` | it failed and waits out its restart delay, or, in a cascade of the runner's [`Strategy`], waits for its siblings | waits |
//!
//! An id that ends for good (a clean exit, a stop, an error that is not
//! restarted) is forgotten: `worker(id)` says
//! [`NotFound`](worker_core::NotFound) and the id can be started again.
//!
//! # Errors
//!
//! | error | when |
//! |---|---|
//! | [`AlreadyExists`](worker_core::AlreadyExists) | `start_worker` with an id the runner knows, in any state |
//! | [`NotFound`](worker_core::NotFound) | `worker` / `stop_and_remove_worker` of an unknown id, or one that went away while waiting |
//! | [`Aborted`](worker_core::Aborted) | the caller's abort signal fired while it waited |
//! | [`Dying`] | `start_worker` while the runner shuts down |
//! | [`Dead`](worker_core::Dead) | any call once the runner has finished; `worker` and `stop_and_remove_worker` while it shuts down |
//! | [`EmptyId`], [`InvalidParams`] | bad input (including a significant worker the runner cannot honour); nothing else is affected |
//! | [`RestartIntensityExceeded`] | the runner's own fatal error when a worker restarts too often |
//! | [`RunnerIntensityExceeded`] | the runner's own fatal error when its workers together restart too often |
//! | [`RemoveTimedOut`] | [`stop_and_remove_worker_within`](Runner::stop_and_remove_worker_within) waited its timeout; says what became of the worker |
//! | [`WouldDeadlock`](worker_core::WouldDeadlock) | a call that would wait for the runner itself, made on one of its own threads |
//!
//! Each call returns an enum of exactly the ways it can fail:
//! [`StartError`] (`start_worker`), [`LookupError`] (`worker`),
//! [`RemoveError`] (`stop_and_remove_worker`, which also carries the
//! stopped worker's own error), [`NewError`] (`Runner::new`), and
//! [`Dead`](worker_core::Dead) alone for `stop_worker`. Match on them, or
//! let `?` turn them into [`worker_core::Error`], which keeps the specific
//! error in its chain: `err.is::<NotFound>()` still finds it. The
//! runner's own end (what `wait` returns) is a `worker_core::Error`, as
//! every worker's is.
//!
//! # Restart policies
//!
//! By default the runner behaves as Go's: every error is fatal unless
//! `is_fatal` says otherwise, a non-fatal error restarts the worker after
//! a fixed 3 s, forever, and a clean exit removes it. Each of these can be
//! changed, for the whole runner ([`RunnerParams`]) or for one worker
//! ([`WorkerOptions`] with [`Runner::start_worker_with`]):
//!
//! - [`RestartPolicy::exponential`]: a delay that doubles (or grows by any
//!   factor) with consecutive failures, up to a cap, starts over after a
//!   healthy run, and is spread by jitter from an injectable
//!   [`Jitter`] source;
//! - [`RestartPolicy::intensity`]: at most N restarts in a sliding window,
//!   after which the failure becomes fatal
//!   ([`RestartIntensityExceeded`]), as an Erlang/OTP supervisor does;
//! - [`RestartType`]: permanent workers are restarted even after a clean
//!   exit, temporary ones never.
//!
//! And for the runner as a whole ([`RunnerParams`]), as OTP and suture
//! supervisors do (see [OTP and suture](#otp-and-suture)):
//!
//! - [`Strategy`]: a restart can take the other workers with it (all of
//!   them, or those started after the failed one), restarted together;
//! - [`RunnerParams::intensity`]: at most N restarts of all the workers
//!   together in a sliding window ([`RunnerIntensityExceeded`]);
//! - [`FailureBackoff`]: past a decaying count of failures, every restart
//!   pauses for a while instead of ending the runner;
//! - [`AutoShutdown`]: the runner ends on its own when workers marked
//!   [significant](WorkerOptions::significant) have ended.
//!
//! # Reports
//!
//! [`Runner::report`] returns a [`RunnerReport`]: a [`WorkerReport`] per
//! id with its state, when the current or last incarnation started, the
//! worker's own report if it is a [`Reporter`](worker_core::Reporter)
//! (nested as it is, typed), why it was last restarted ([`Restart`]: the
//! attempt, the error and the delay, or the sibling whose restart took it
//! along) and, if it will not stop, for how
//! long. Taking one costs no JSON. Serialised (with `serde`), it keeps
//! Go's layout, ids in order:
//!
//! ```text
//! {"workers": {"poller": {"state": "started", "started": "2026-11-25T09:30:00Z",
//!     "report": {...}, "reason": "restart 2 after error: reset (delay 1.5s)",
//!     "stuck": "not stopped 30s after kill"}}}
//! ```
//!
//! with [`reason`](KEY_REASON) absent after a first start and
//! [`stuck`](KEY_STUCK) absent unless the worker is stuck. The loop only
//! copies the list out; the entries and the workers' own reports are made
//! on the caller's thread, so a slow worker report delays that caller and
//! nothing else. A worker whose report includes its own runner's report
//! gets that report once, with
//! [`NoReport::Recursive`](worker_core::NoReport) in its own place, instead
//! of recursing until the stack overflows
//! ([`ReportScope`](worker_core::ReportScope);
//! `report::a_report_that_includes_its_own_runner_does_not_recurse_forever`).
//!
//! # Stopping
//!
//! `kill` (and a fatal error, or an automatic shutdown) stops every worker
//! at once, as Go's runner does, or, with
//! [`ShutdownOrder::Reverse`], one at a time, the last started first, as
//! an OTP supervisor does. How each worker is stopped is its [`Shutdown`]
//! (for the whole runner with [`RunnerParams::shutdown`], or per worker):
//! asked and waited for (the default), asked and forced after a timeout,
//! or forced at once (OTP's `brutal_kill`).
//!
//! Forcing exists only where the worker offers it
//! ([`Worker::abortable`](worker_core::Worker::abortable)): an async task
//! can be aborted, a thread cannot (Rust cannot stop a thread from
//! outside). A worker past its shutdown timeout, or past
//! [`RunnerParams::stop_timeout`], is reported stuck (in the report, in
//! [`Runner::waiting_for`], as a [`RunnerEvent::Stuck`] and with a tracing
//! warning), forced if it can be and its shutdown says so, and an ordered
//! shutdown moves on to the next worker; a thread that never ends is still
//! waited for by `wait`, and `waiting_for` says on whom. The same goes for
//! a start function that has not returned after its worker was asked to
//! stop. A forced worker's ending is the runner's doing: its error does
//! not go to `is_fatal`.
//!
//! [`stop_and_remove_worker_within`](Runner::stop_and_remove_worker_within)
//! bounds a removal by a timeout on the runner's clock.
//!
//! A [`Runner`] is a handle: clones are cheap and all speak to the same
//! runner, and dropping them, even the last one, stops nothing. A runner
//! runs until it is killed or fails, as a Go runner does; to stop it when
//! a scope ends, hold it through
//! [`Worker::kill_on_drop`](worker_core::Worker::kill_on_drop)
//! (`shutdown::dropping_handles_never_stops_the_runner_and_kill_on_drop_does`).
//!
//! # Events
//!
//! [`RunnerParams::on_event`] hands a program the runner's lifecycle
//! events ([`RunnerEvent`]: started, failed, restarting with its delay,
//! gave up, paused, resumed, stuck, stopped, shutting down), in order, one
//! at a time, off the runner's loop. The runner's `tracing` events use the
//! same vocabulary: each is logged under its [name](RunnerEvent::name).
//!
//! # OTP and suture
//!
//! The rules of an Erlang/OTP `supervisor` and of Go's
//! [suture](https://github.com/thejerf/suture), and where they are here.
//! Every option is off by default, so a runner behaves as Go's until told
//! otherwise. The tests of each rule are in the machine's `tests_otp`
//! (driven by hand, at the boundaries) and in `tests/runner/strategies.rs`,
//! `stopping.rs`, `significant.rs` and `events.rs` (through a runner).
//!
//! | OTP / suture | here | differences, and why |
//! |---|---|---|
//! | `one_for_one` | [`Strategy::OneForOne`] (default) | none |
//! | `one_for_all`, `rest_for_one` | [`Strategy::OneForAll`], [`Strategy::RestForOne`] | OTP terminates the siblings one by one and restarts them at once; here they are killed together, and restarted together (in start order) once all have ended and the failed worker's restart delay is over (OTP has no delays). Their start functions may then run concurrently, as those of `start_worker` do: one that needs an earlier worker waits for it with [`Runner::worker`]. A failure while a cascade waits joins it. |
//! | `simple_one_for_one` | a runner with one-for-one | every `start_worker` brings its own start function; there is no child template |
//! | `intensity` / `period` | [`RunnerParams::intensity`] | OTP counts in whole seconds (so its window boundary falls on a second), this runner in nanoseconds; a restart exactly `period` old counts in both. OTP's default is 1 in 5 s; here none, as in Go. [`RestartPolicy::intensity`] adds a per-worker limit OTP does not have. |
//! | restart `permanent` / `transient` / `temporary` | [`RestartType`] | "abnormal" is any error `is_fatal` does not make fatal (OTP: any exit reason but `normal` and `shutdown`); the default is transient, as in Go (OTP: permanent) |
//! | child `shutdown`: `brutal_kill` | [`Shutdown::Abort`] | only a worker that can be aborted is forced; a thread cannot be, so it is killed (asked) and waited for, with a warning |
//! | child `shutdown`: a timeout | [`Shutdown::Timeout`] | past the timeout OTP kills the process; here the worker is reported stuck and aborted if it can be, else left to finish (and still waited for by `wait`); an ordered shutdown moves on either way |
//! | child `shutdown`: `infinity` | [`Shutdown::Wait`] (default) | [`RunnerParams::stop_timeout`] can still report it stuck |
//! | shutdown in reverse start order | [`ShutdownOrder::Reverse`] | the default stops all at once, as Go does, which is faster |
//! | `significant`, `auto_shutdown` | [`WorkerOptions::significant`], [`AutoShutdown`] | the same rules (only endings "by themselves" count; significant workers are refused without an automatic shutdown or when permanent); the runner ends with `Ok` |
//! | `terminate_child` + `delete_child` | [`Runner::stop_and_remove_worker`], [`Runner::stop_and_remove_worker_within`] | a removal can be bounded by the caller's timeout, besides the worker's own shutdown |
//! | supervisor reports, SASL | [`RunnerParams::on_event`], `tracing` | one vocabulary for both |
//! | suture `FailureThreshold`, `FailureDecay`, `FailureBackoff` | [`FailureBackoff`] | suture restarts at once outside a pause; here each restart keeps its own delay too. Suture adds jitter to the pause; here it is exact (spread restart delays with [`RestartPolicy::jitter`] instead). |
//! | suture `Timeout` | [`Shutdown::Timeout`], [`RunnerParams::stop_timeout`] | suture abandons the goroutine and lists it in `UnstoppedServiceReport`; here it is reported stuck and `wait` still waits for it (every thread is joined) |
//! | suture `EventHook` | [`RunnerParams::on_event`] | suture calls it on the supervisor's goroutine; here it never runs on the loop, and a hook that blocks or panics cannot stop the runner |
//! | suture `ErrDoNotRestart`, `ErrTerminateSupervisorTree` | `should_restart`, [`RestartType::Temporary`]; `is_fatal` | errors are classified by policies instead of sentinel values |
//!
//! # Differences from Go
//!
//! Each difference fixes a weak point of Go's runner or picks the safer of
//! two behaviours Go documents and implements differently; the test that
//! pins it is named.
//!
//! - **No dead instance during a restart delay.** Go's `Worker(id)` returns
//!   the instance that just failed until the next one starts, and its
//!   report calls it "started". Here the caller waits for the next
//!   incarnation and the report says "stopped"
//!   (`lookup::a_dead_instance_is_never_handed_out_during_the_restart_delay`).
//! - **`stop_and_remove_worker` goes through the runner.** Go stops the
//!   instance behind the runner's back: a non-nil stop error is then fatal
//!   (the whole runner dies) or restarts the worker, and the call hangs
//!   without an abort channel. Here the id is marked stopped, the call
//!   returns once the id is gone, with the instance's error, and that error
//!   is the caller's: it does not go to `is_fatal`, even once the caller
//!   has given up waiting (an abort, a timeout)
//!   (`remove::the_worker_error_goes_to_the_caller_not_to_is_fatal`,
//!   `stopping::a_removal_with_a_timeout_says_what_happened_and_the_stop_goes_on`,
//!   `remove::a_non_fatal_stop_error_neither_restarts_nor_hangs`). Any
//!   number of callers can wait for the same removal; Go signals one
//!   (`remove::concurrent_removers_never_hang_nor_lose_the_error`). During
//!   a restart delay it returns at once, where Go waits for the delay and
//!   a new instance (`remove::during_the_restart_delay_it_returns_at_once`).
//! - **A start request while the runner shuts down fails with [`Dying`].**
//!   Go returns nil and never runs the worker
//!   (`start_stop::start_while_dying_is_a_typed_error_not_a_silent_no_op`).
//! - **A restart delay can be cut short.** Go's sleeping restart wakes only
//!   on `Kill`: a `StopWorker` during the delay still calls the start
//!   function afterwards, and a fatal shutdown waits the delay out. Here
//!   stopping during the delay removes the id at once, and shutdown never
//!   waits for a delay (`restart::stop_during_the_restart_delay_never_calls_start_again`,
//!   `fatal::a_fatal_shutdown_does_not_wait_out_restart_delays`,
//!   `lookup::stopping_the_worker_ends_the_wait_with_not_found_at_once`).
//! - **A fatal error makes the runner dying for everyone at once.** In Go,
//!   until the last worker is gone, `Worker(id)` blocks then says
//!   NotFound and `StartWorker` is accepted and ignored. Here they answer
//!   [`Dead`](worker_core::Dead) and [`Dying`] at once
//!   (`fatal::a_fatal_error_makes_the_runner_dying_for_everyone_at_once`).
//! - **The first fatal error wins by default.** Go's documentation says so;
//!   its code keeps the last one. We follow the documentation; pass
//!   `more_important` to rank errors (`fatal::the_first_fatal_error_wins_by_default`,
//!   `fatal::more_important_ranks_the_errors_seen_during_shutdown`).
//! - **A zero restart delay can be asked for** with
//!   `RestartPolicy::fixed(Duration::ZERO)` (in Go, zero means 3 s and only
//!   a negative delay restarts at once); `restart_delay(Duration::ZERO)`
//!   still means 3 s, as in Go (`restart::a_zero_delay_policy_restarts_at_once`).
//! - **Worker reports never block the runner**, and the report's states
//!   are all reachable, with a start time that follows restarts. Go calls
//!   every worker's `Report` under the runner's lock, never shows
//!   "stopping" and shows the first start time forever
//!   (`report::a_slow_worker_report_does_not_stall_the_runner`,
//!   `report::report_shows_every_state_why_it_restarted_and_the_last_start_time`).
//!   A worker whose report includes its own runner's gets it once, with a
//!   marker (Go deadlocks on its own lock)
//!   (`report::a_report_that_includes_its_own_runner_does_not_recurse_forever`).
//! - **Reports are typed** ([`RunnerReport`]) and become JSON only when
//!   serialised, with times in RFC 3339 (Go: `2006-01-02 15:04:05`, no
//!   zone) and durations as Go prints them
//!   (`report::report_lists_every_worker_with_state_start_time_and_own_report`).
//! - **Waiting callers cost no thread and wake once.** Go parks a goroutine
//!   per waiting `Worker()` call and wakes all of them on every event
//!   (`lookup::waiting_callers_cost_the_runner_no_thread`).
//! - **Panics become errors.** A panic in a start function, a worker body,
//!   a policy callback or a worker's report is caught and handled like an
//!   error from that place; in Go it crashes the process, and a start
//!   function returning `(nil, nil)` does too (impossible here by type)
//!   (`restart::a_panicking_start_function_is_a_failed_start`,
//!   `restart::a_panicking_worker_body_is_a_worker_error`,
//!   `report::a_panicking_worker_report_shows_as_an_error`).
//! - **One timer per runner.** Go leaves one clock timer per restart
//!   running; here the loop holds one timer, for the earliest deadline
//!   (`restart::the_restart_waits_for_the_whole_delay`).
//! - **Bad input is refused:** an empty worker id ([`EmptyId`]), an empty
//!   runner name or an unusable policy ([`InvalidParams`]); Go accepts
//!   anything (`start_stop::empty_id_is_refused`,
//!   `policies::bad_parameters_are_refused_with_the_reason`).
//! - **`worker_names` is sorted**, and the abort parameter of the waiting
//!   calls is an [`AbortSignal`](worker_core::AbortSignal), fired by its
//!   trigger or when every trigger is dropped.
//!
//! Kept as in Go, deliberately: every error is fatal unless `is_fatal`
//! says otherwise (a runner that silently restarts a worker forever is
//! worse than one that stops and says why; callers decide what may be
//! retried), and an error returned by a worker stopped with `stop_worker`
//! or during shutdown goes to `is_fatal` and may become the runner's error
//! (`fatal::an_error_on_stop_goes_to_is_fatal_as_in_go`): `stop_worker`
//! does not wait, so nobody else would see it.

#![forbid(unsafe_code)]

mod error;
mod event;
mod machine;
mod params;
mod policy;
mod report;
mod runner;
mod shell;
mod status;
mod supervision;

pub use error::{
    Dying, EmptyId, InvalidParams, LookupError, NewError, RemoveError, RemoveTimedOut,
    RestartIntensityExceeded, RunnerIntensityExceeded, StartError,
};
pub use event::{EventHook, RunnerEvent, ShutdownCause};
pub use params::{DEFAULT_START_THREADS, RunnerParams};
pub use policy::{
    Backoff, ErrorPredicate, ErrorRanking, Intensity, RestartPolicy, RestartType, WorkerOptions,
};
pub use report::{KEY_REASON, KEY_STUCK, KEY_WORKERS, Restart, RunnerReport, WorkerReport};
pub use runner::Runner;
pub use status::{Stage, WaitingFor};
pub use supervision::{AutoShutdown, FailureBackoff, Shutdown, ShutdownOrder, Strategy};
/// Jitter sources, from the core (shared with the dependency engine).
pub use worker_core::jitter::{Jitter, NoJitter, SeededJitter};

//! Coming from Erlang/OTP or suture: the rules of an OTP `supervisor` and
//! of Go's [suture](https://github.com/thejerf/suture), and where they are
//! here. Every option is off by default, so a runner behaves as Go's until told
//! otherwise. The tests of each rule are in the machine's `tests_otp`
//! (driven by hand, at the boundaries) and in `tests/runner/strategies.rs`,
//! `stopping.rs`, `significant.rs` and `events.rs` (through a runner).
//!
//! | OTP / suture | here | differences, and why |
//! |---|---|---|
//! | `one_for_one` | [`Strategy::OneForOne`](crate::Strategy::OneForOne) (default) | none |
//! | `one_for_all`, `rest_for_one` | [`Strategy::OneForAll`](crate::Strategy::OneForAll), [`Strategy::RestForOne`](crate::Strategy::RestForOne) | OTP terminates the siblings one by one and restarts them at once; here they are killed together, and restarted together (in start order) once all have ended and the failed worker's restart delay is over (OTP has no delays). Their start functions may then run concurrently, as those of `start_worker` do: one that needs an earlier worker waits for it with [`Runner::worker`](crate::Runner::worker). A failure while a cascade waits joins it. |
//! | `simple_one_for_one` | a runner with one-for-one | every `start_worker` brings its own start function; there is no child template |
//! | `intensity` / `period` | [`RunnerParams::intensity`](crate::RunnerParams::intensity) | OTP counts in whole seconds (so its window boundary falls on a second), this runner in nanoseconds; a restart exactly `period` old counts in both. OTP's default is 1 in 5 s; here none, as in Go. [`RestartPolicy::intensity`](crate::RestartPolicy::intensity) adds a per-worker limit OTP does not have. |
//! | restart `permanent` / `transient` / `temporary` | [`RestartType`](crate::RestartType) | "abnormal" is any error `is_fatal` does not make fatal (OTP: any exit reason but `normal` and `shutdown`); the default is transient, as in Go (OTP: permanent) |
//! | child `shutdown`: `brutal_kill` | [`Shutdown::Abort`](crate::Shutdown::Abort) | only a worker that can be aborted is forced; a thread cannot be, so it is killed (asked) and waited for, with a warning |
//! | child `shutdown`: a timeout | [`Shutdown::Timeout`](crate::Shutdown::Timeout) | past the timeout OTP kills the process; here the worker is reported stuck and aborted if it can be, else left to finish (and still waited for by `wait`); an ordered shutdown moves on either way |
//! | child `shutdown`: `infinity` | [`Shutdown::Wait`](crate::Shutdown::Wait) (default) | [`RunnerParams::stop_timeout`](crate::RunnerParams::stop_timeout) can still report it stuck |
//! | shutdown in reverse start order | [`ShutdownOrder::Reverse`](crate::ShutdownOrder::Reverse) | the default stops all at once, as Go does, which is faster |
//! | `significant`, `auto_shutdown` | [`WorkerOptions::significant`](crate::WorkerOptions::significant), [`AutoShutdown`](crate::AutoShutdown) | the same rules (only endings "by themselves" count; significant workers are refused without an automatic shutdown or when permanent); the runner ends with `Ok` |
//! | `terminate_child` + `delete_child` | [`Runner::stop_and_remove_worker`](crate::Runner::stop_and_remove_worker), [`Runner::stop_and_remove_worker_within`](crate::Runner::stop_and_remove_worker_within) | a removal can be bounded by the caller's timeout, besides the worker's own shutdown |
//! | supervisor reports, SASL | [`RunnerParams::on_event`](crate::RunnerParams::on_event), `tracing` | one vocabulary for both |
//! | suture `FailureThreshold`, `FailureDecay`, `FailureBackoff` | [`FailureBackoff`](crate::FailureBackoff) | suture restarts at once outside a pause; here each restart keeps its own delay too. Suture adds jitter to the pause; here it is exact (spread restart delays with [`RestartPolicy::jitter`](crate::RestartPolicy::jitter) instead). |
//! | suture `Timeout` | [`Shutdown::Timeout`](crate::Shutdown::Timeout), [`RunnerParams::stop_timeout`](crate::RunnerParams::stop_timeout) | suture abandons the goroutine and lists it in `UnstoppedServiceReport`; here it is reported stuck and `wait` still waits for it (every thread is joined) |
//! | suture `EventHook` | [`RunnerParams::on_event`](crate::RunnerParams::on_event) | suture calls it on the supervisor's goroutine; here it never runs on the loop, and a hook that blocks or panics cannot stop the runner |
//! | suture `ErrDoNotRestart`, `ErrTerminateSupervisorTree` | `should_restart`, [`RestartType::Temporary`](crate::RestartType::Temporary); `is_fatal` | errors are classified by policies instead of sentinel values |

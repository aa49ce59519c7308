//! Coming from Go: where this crate deliberately differs from Go's `dependency` package.
//!
//! Each is pinned by a test (named in brackets; `tests/engine/*` unless
//! said otherwise). Everything not listed behaves as Go's engine does.
//!
//! - **Typed outputs.** Go's `Output(worker, out)` runs on the dependent's
//!   goroutine for every `Get`. Here the output function fills a
//!   type-keyed [`Outputs`](crate::Outputs) set once per start, right after the start
//!   function, and [`Context::get`](crate::Context::get) is a lookup. Not declared, not
//!   running, not exposed and wrong type are distinct [`GetError`](crate::GetError)s; the
//!   first three are [`Missing`](crate::Missing), a wrong type is a plain failure that is
//!   logged and retried (`context::each_way_of_failing_has_its_own_error`,
//!   `context::a_wrong_type_is_a_failure_that_is_retried_not_a_missing_input`).
//! - **The context expires when the start function returns**, for every
//!   clone of it; a context kept by a worker gets [`GetError::Expired`](crate::GetError::Expired)
//!   (`context::a_context_kept_past_its_start_function_has_expired`).
//! - **Backoff pitfalls fixed** (the rule is the core's
//!   [`Backoff`](worker_core::backoff::Backoff)): zero recent failures
//!   count as one (Go divides the delay by the factor); the delay
//!   saturates instead of overflowing (at `max_delay`, or one year without
//!   a cap), and a delay too long for the clock means practically never
//!   (Go's overflowing deadline restarts at once, in a hot loop); jitter is
//!   applied before the cap, so the cap holds; it is not rounded to the
//!   millisecond (which turned sub-millisecond delays into zero); the
//!   jitter source is injectable ([`Jitter`](crate::Jitter), [`NoJitter`](crate::NoJitter)); and bounces
//!   (a [`Bounce`](crate::Bounce) error or an input change) wait the bounce delay without
//!   backoff (`worker_core::backoff::tests`, `machine::tests::rules`,
//!   `errors::bounce_restarts_after_the_bounce_delay_and_is_not_backed_off`,
//!   `errors::consecutive_failures_back_off_up_to_the_cap`,
//!   `adversarial::duration_max_in_every_setting_means_never_and_breaks_nothing`).
//!   The delays one event schedules (a manifold's own restart and its
//!   dependents' bounces) share that event's jitter sample, drawn off the
//!   loop where the news starts.
//! - **The engine's own aborts are not errors**: a delayed start cut short
//!   by an input change never goes through filters or `is_fatal` (Go's
//!   `errAborted` could be fatal under an all-fatal policy), and `is_fatal`
//!   is never asked about "no error" (`machine::tests::rules::aborted_delays_never_reach_is_fatal`).
//! - **Shutdown in reverse dependency order**: a worker is killed only
//!   once the dependents that use it have stopped. A manifold slower than
//!   `stop_timeout` is reported stuck (report, `warn` log) and stops holding
//!   its inputs up; [`Engine::waiting_for`](crate::Engine::waiting_for) says what `wait` waits for
//!   (`shutdown::dependents_stop_before_the_inputs_they_use`,
//!   `shutdown::a_stuck_worker_is_reported_and_waited_for_but_does_not_hold_up_the_rest`).
//! - **Install**: the cycle check searches only downstream of the new
//!   manifold (Go copies and re-checks the whole graph: quadratic), and the
//!   error names the cycle (`a -> b -> a`); empty or repeated inputs are
//!   refused; [`Engine::install_all`](crate::Engine::install_all) is all or nothing; installing while
//!   the engine stops fails with [`ShuttingDown`](crate::ShuttingDown) instead of succeeding
//!   and starting nothing (`install::a_cycle_is_refused_with_its_path_and_nothing_changes`,
//!   `install::install_all_is_all_or_nothing`,
//!   `install::install_and_uninstall_after_kill_are_refused_at_once`,
//!   `graph::tests::install_refuses_exactly_the_cycles`).
//! - **Public uninstall** ([`Engine::uninstall`](crate::Engine::uninstall)), besides the
//!   [`Uninstall`](crate::Uninstall) error (`install::uninstall_stops_the_worker_bounces_dependents_and_forgets_the_name`).
//! - **Panics** in start, output and filter functions, and in `is_fatal`,
//!   become the manifold's error (a panicking `is_fatal` counts as fatal);
//!   a panicking `worst_error` is the engine's error; a panic in a
//!   worker's or an output value's `Drop` is logged, and changes nothing
//!   (`errors::panics_in_start_output_and_filter_become_the_manifolds_error`,
//!   `machine::tests::rules::a_panicking_is_fatal_counts_as_fatal`,
//!   `machine::tests::rules::a_panicking_worst_error_is_the_engines_error`,
//!   `adversarial::an_output_whose_drop_panics_at_uninstall_leaves_the_engine_working`,
//!   `adversarial::workers_whose_drop_panics_change_neither_the_run_nor_the_result`).
//! - **Nothing a manifold does freezes the engine**: a blocking `kill` is
//!   reported stuck, a slow `Drop` holds up only the final `wait`, and a
//!   call that would wait for itself fails with
//!   [`WouldDeadlock`](worker_core::WouldDeadlock) (Go deadlocks)
//!   (`adversarial::a_blocking_kill_freezes_nothing_but_its_own_stop`,
//!   `adversarial::a_slow_drop_stalls_no_query`,
//!   `adversarial::a_start_function_that_uninstalls_its_own_manifold_gets_an_error_not_a_deadlock`,
//!   `adversarial::waiting_for_the_engine_from_its_own_threads_fails_instead_of_deadlocking`).
//! - **Internal inconsistencies stop the engine** with [`Internal`](crate::Internal), which
//!   `wait` returns; Go kills its tomb and carries on
//!   (`machine::tests::rules::unexpected_events_are_internal_errors_that_stop_the_engine`).
//! - **Reports never stall the engine or recurse forever**: worker reports
//!   run on the caller's thread, and a worker reporting its own engine
//!   gets it once, with a marker where it would recurse (Go deadlocks)
//!   (`report::a_slow_worker_report_does_not_stall_the_engine`,
//!   `report::a_report_that_includes_its_own_engine_does_not_recurse_forever`).
//!   The last error stays visible while a manifold waits to restart (Go
//!   clears it when the restart is requested), a worker discarded after an
//!   aborted start shows as "stopping" (Go: "starting"), and the report
//!   explains each (re)start (`report::the_report_has_go_layout_plus_explanations`).
//! - **The self manifold is an ordinary worker**: no goroutine left
//!   blocked at shutdown, no `ErrDying` reaching `is_fatal`
//!   (`shutdown::the_self_manifold_stops_cleanly_even_when_every_error_is_fatal`).
//! - **The engine-wide filter runs once**, when the engine stops, and every
//!   `wait` returns the same result (Go filters on every `Wait`)
//!   (`errors::the_engine_filter_maps_the_final_error`).
//! - **Waiting for manifolds to start needs no polling.** Go's tests use
//!   `Install` as a sync point and then poll reports or metrics;
//!   [`Engine::wait_ready`](crate::Engine::wait_ready) (and its async twin)
//!   waits until named manifolds, or all of them, have started, with a
//!   timeout on the engine's clock and an abort
//!   (`ready::it_waits_until_the_manifold_starts_once_its_input_runs`,
//!   `ready::it_times_out_on_the_engines_clock_naming_what_did_not_start`,
//!   `ready::an_engine_that_stops_while_one_waits_says_why`).
//! - **A shutdown can have a deadline**:
//!   [`Engine::stop_within`](crate::Engine::stop_within) returns at the
//!   deadline with the manifolds still running, and the shutdown goes on
//!   (`ready::stop_within_names_the_manifolds_still_running_and_wait_still_returns`).
//! - **Start functions share a few threads** instead of one goroutine each:
//!   a start queued behind start functions that block waits about 2 ms per
//!   stalled round before another thread takes it
//!   (`install::a_blocking_start_function_does_not_hold_up_the_others`).
//! - **Configuration** has safe defaults ([`EngineConfig::new`](crate::EngineConfig::new)) instead of
//!   zero values that spin; durations cannot be negative; logging goes
//!   through `tracing` (no logger field) and never picks a level by
//!   matching error text; [`Metrics`](crate::Metrics) also hears of every stop, and is
//!   called off the loop (`install::metrics_hear_of_each_registered_start_and_each_stop`).
//! - **When `wait` returns, every worker has ended and been waited for**
//!   (joining its thread, if it has one), although the engine learns of
//!   endings from completion callbacks that can run before a worker's
//!   thread returns (`shutdown::when_wait_returns_the_workers_threads_are_gone`).
//!
//! Kept from Go on purpose: the blunt bounce rule (no check whether an
//! output really changed), control errors passing through `is_fatal`
//! (an all-fatal policy makes [`Missing`](crate::Missing) fatal too), and an input change
//! cutting a long error backoff short (a changed input is new
//! information, so the manifold retries after the bounce delay).

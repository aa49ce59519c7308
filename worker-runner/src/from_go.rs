//! Coming from Go: where this crate deliberately differs from Go's `worker.Runner`.
//!
//! Each difference fixes a weak point of Go's runner or picks the safer of
//! two behaviours Go documents and implements differently, and names the
//! test that pins it (relative to this crate's `tests/` and `src/` trees).
//! Everything not listed behaves as Go's runner does.
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
//! - **A start request while the runner shuts down fails with [`Dying`](crate::Dying).**
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
//!   [`Dead`](worker_core::Dead) and [`Dying`](crate::Dying) at once
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
//! - **Reports are typed** ([`RunnerReport`](crate::RunnerReport)) and become JSON only when
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
//! - **Bad input is refused:** an empty worker id ([`EmptyId`](crate::EmptyId)), an empty
//!   runner name or an unusable policy ([`InvalidParams`](crate::InvalidParams)); Go accepts
//!   anything (`start_stop::empty_id_is_refused`,
//!   `policies::bad_parameters_are_refused_with_the_reason`).
//! - **Every program can wait for starts.** Go's runner tells only its own
//!   tests when it registers a worker (`NewRunnerWithNotify`, a blocking
//!   send from the loop); here [`Runner::wait_ready`](crate::Runner::wait_ready)
//!   (and its async twin) waits until named workers, or all of them, have
//!   started, with a timeout on the runner's clock and an abort, answered
//!   by the loop as it registers each start
//!   (`ready::it_waits_until_the_start_registers`,
//!   `ready::it_times_out_on_the_runners_clock_naming_what_did_not_start`,
//!   `ready::a_runner_that_dies_while_one_waits_says_why`).
//! - **A shutdown can have a deadline.** Go's `Stop` waits as long as the
//!   slowest worker; [`Runner::stop_within`](crate::Runner::stop_within)
//!   returns at the deadline with the workers still running, and the
//!   shutdown goes on
//!   (`stop_within::past_the_deadline_it_names_the_stragglers_and_a_later_wait_still_returns`).
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

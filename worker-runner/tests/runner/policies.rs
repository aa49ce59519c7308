//! Restart policies beyond Go's fixed delay: backoff with injected jitter,
//! the intensity limit, restart types; Go's defaults; bad parameters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use worker_core::{Error, Worker};
use worker_runner::{
    InvalidParams, RestartIntensityExceeded, RestartPolicy, RestartType, Runner, RunnerParams,
    WorkerOptions,
};
use worker_testing::TestClock;

use crate::common::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A jitter source that replays `samples`, then stays at 0.5 (no jitter).
fn replay(samples: &[f64]) -> impl Fn() -> f64 + Send + Sync + 'static {
    let samples: Vec<f64> = samples.to_vec();
    let samples = Mutex::new(samples.into_iter());
    move || samples.lock().unwrap().next().unwrap_or(0.5)
}

/// A worker whose start function always fails.
fn failing(r: &Runner) -> Arc<Starter> {
    let mut s = Starter::new(r.name());
    s.start_err = Some(Error::msg("still down"));
    Arc::new(s)
}

#[test]
fn by_default_every_error_is_fatal_as_in_go() {
    let r = runner("rt-policy-go-default", |p| p);
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    starter.die(Some(Error::msg("any error")));
    assert_eq!(wait_gone(&r).unwrap_err().to_string(), "any error");
}

#[test]
fn backoff_grows_is_capped_and_takes_its_jitter_from_the_injected_source() {
    let (r, clock) = clocked_runner("rt-policy-backoff-grows", |p| {
        p.restart_policy(RestartPolicy::exponential(secs(1), 2.0, secs(8)).jitter(0.5))
            .restart_delay(Duration::ZERO)
            .jitter(replay(&[0.5, 1.0, 0.0, 0.5, 0.5]))
    });
    let starter = failing(&r);
    r.start_worker("id", starter.start_fn()).unwrap();
    let mut delays = Vec::new();
    for _ in 0..5 {
        starter.assert_started(false);
        clock.wait_timers(1, LONG).unwrap();
        let delay = clock.waiting()[0];
        delays.push(delay);
        clock.advance(delay);
    }
    // 1 s; 2 s +50 %; 4 s -50 %; 8 s; 16 s capped to 8 s.
    assert_eq!(delays, vec![secs(1), secs(3), secs(2), secs(8), secs(8)]);
    assert!(finish(&r).is_ok());
}

#[test]
fn backoff_starts_over_after_a_healthy_run() {
    let (r, clock) = clocked_runner("rt-policy-backoff-reset", |p| {
        p.restart_policy(RestartPolicy::exponential(secs(1), 2.0, secs(60)).reset_after(secs(30)))
            .restart_delay(Duration::ZERO)
    });
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("id", starter.start_fn()).unwrap();
    let delay_after = |run_for: Duration| {
        starter.assert_started(true);
        let w = r.worker("id", None).unwrap();
        clock.advance(run_for);
        starter.die(Some(Error::msg("oops")));
        let _ = w.wait();
        clock.wait_timers(1, LONG).unwrap();
        let delay = clock.waiting()[0];
        clock.advance(delay);
        starter.assert_started(false);
        delay
    };
    assert_eq!(delay_after(secs(1)), secs(1));
    assert_eq!(delay_after(secs(1)), secs(2));
    assert_eq!(delay_after(secs(1)), secs(4));
    assert_eq!(delay_after(secs(30)), secs(1), "a healthy run resets");
    assert!(finish(&r).is_ok());
}

#[test]
fn too_many_restarts_escalate_to_a_fatal_error() {
    let (r, clock) = clocked_runner("rt-policy-intensity", |p| {
        p.restart_policy(RestartPolicy::fixed(secs(1)).intensity(2, secs(60)))
    });
    let starter = failing(&r);
    r.start_worker("id", starter.start_fn()).unwrap();
    for _ in 0..2 {
        starter.assert_started(false);
        clock.wait_advance(secs(1), LONG, 1).unwrap();
    }
    let err = wait_gone(&r).unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker \"id\" restarted more than 2 times in 60s: still down"
    );
    let escalated = err.downcast_ref::<RestartIntensityExceeded>().unwrap();
    assert_eq!(escalated.id, "id");
    assert_eq!(
        escalated.last_error.as_ref().unwrap().to_string(),
        "still down"
    );
    assert_eq!(starter.calls(), 3);
}

#[test]
fn a_worker_failing_exactly_every_period_escalates() {
    // One restart allowed in 10 s, and a restart delay of exactly 10 s:
    // the start fails at t = 0 and again at t = 10 s. OTP counts the
    // restart at `now - period`, so the second failure escalates; one
    // nanosecond later it would not.
    for (delay, escalates) in [
        (secs(10), true),
        (secs(10) + Duration::from_nanos(1), false),
    ] {
        let (r, clock) = clocked_runner("rt-policy-intensity-boundary", |p| {
            p.restart_policy(RestartPolicy::fixed(delay).intensity(1, secs(10)))
        });
        let starter = failing(&r);
        r.start_worker("id", starter.start_fn()).unwrap();
        starter.assert_started(false);
        clock.wait_advance(delay, LONG, 1).unwrap();
        starter.assert_started(false);
        if escalates {
            assert_ends_on_its_own(&r);
            let err = wait_gone(&r).unwrap_err();
            assert_is::<RestartIntensityExceeded>(&err);
        } else {
            // Restarted again: a third start is scheduled.
            clock.wait_timers(1, LONG).unwrap();
            assert!(finish(&r).is_ok());
        }
        assert_eq!(starter.calls(), 2);
    }
}

#[test]
fn a_permanent_worker_restarts_after_a_clean_exit() {
    let (r, clock) = clocked_runner("rt-policy-permanent", |p| p);
    let starter = Arc::new(Starter::new(r.name()));
    let permanent = WorkerOptions::new().restart_type(RestartType::Permanent);
    r.start_worker_with("id", permanent, starter.start_fn())
        .unwrap();
    starter.assert_started(true);
    starter.die(None);
    starter.assert_started(false);
    clock.wait_advance(secs(1), LONG, 1).unwrap();
    starter.assert_started(true);
    let report = r.report();
    let reason = report.worker("id").unwrap().reason.as_ref().unwrap();
    assert_eq!((reason.attempt, reason.error.is_none()), (1, true));
    assert_eq!(reason.to_string(), "restart 1 after clean exit (delay 1s)");
    assert!(finish(&r).is_ok());
}

#[test]
fn a_temporary_worker_is_never_restarted() {
    let (r, clock) = clocked_runner("rt-policy-temporary", |p| {
        p.restart_type(RestartType::Temporary)
    });
    let starter = Arc::new(Starter::new(r.name()));
    r.start_worker("id", starter.start_fn()).unwrap();
    let w = r.worker("id", None).unwrap();
    starter.die(Some(Error::msg("oops")));
    assert!(w.wait().is_err());
    assert!(r.worker_names().is_empty());
    assert!(clock.waiting().is_empty());
    assert!(finish(&r).is_ok());
}

#[test]
fn a_worker_policy_overrides_the_runner_default() {
    let (r, clock) = clocked_runner("rt-policy-override", |p| p);
    let starter = failing(&r);
    let options = WorkerOptions::new().restart_policy(RestartPolicy::fixed(secs(5)));
    r.start_worker_with("id", options, starter.start_fn())
        .unwrap();
    starter.assert_started(false);
    clock.wait_timers(1, LONG).unwrap();
    assert_eq!(clock.waiting(), vec![secs(5)]);
    assert!(finish(&r).is_ok());
}

#[test]
fn bad_parameters_are_refused_with_the_reason() {
    let err = Runner::new(RunnerParams::new("")).unwrap_err();
    assert_is::<InvalidParams>(&err);
    assert_eq!(
        err.to_string(),
        "invalid runner parameters: name must not be empty"
    );
    let err = Runner::new(
        RunnerParams::new("rt-policy-bad-runner").restart_policy(RestartPolicy::exponential(
            secs(1),
            0.5,
            secs(2),
        )),
    )
    .unwrap_err();
    assert!(err.to_string().contains("factor"), "{err}");

    let r = runner("rt-policy-bad-worker", |p| p.is_fatal(none_fatal));
    let starter = Arc::new(Starter::new(r.name()));
    let bad =
        WorkerOptions::new().restart_policy(RestartPolicy::fixed(secs(1)).intensity(0, secs(1)));
    let err = r
        .start_worker_with("id", bad, starter.start_fn())
        .unwrap_err();
    assert_is::<InvalidParams>(&err);
    assert_eq!(starter.calls(), 0);
    // Everything else goes on.
    r.start_worker("id", starter.start_fn()).unwrap();
    starter.assert_started(true);
    assert!(finish(&r).is_ok());
}

#[test]
fn the_default_jitter_source_varies_between_runners() {
    // Without an injected source, two runners do not restart in lock
    // step: their first jittered delays differ.
    let delay = |name: &str| {
        let clock = TestClock::new();
        let r = runner(name, |p| {
            p.clock(clock.clone())
                .is_fatal(none_fatal)
                .restart_policy(RestartPolicy::exponential(secs(100), 2.0, secs(200)).jitter(1.0))
        });
        let starter = failing(&r);
        r.start_worker("id", starter.start_fn()).unwrap();
        clock.wait_timers(1, LONG).unwrap();
        let d = clock.waiting()[0];
        assert!(finish(&r).is_ok());
        d
    };
    let a = delay("rt-policy-jitter-a");
    let b = delay("rt-policy-jitter-b");
    assert!(a <= secs(200) && b <= secs(200));
    assert_ne!(a, b);
}

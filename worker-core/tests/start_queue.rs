//! The start queue that supervisors run their start functions from.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select, unbounded};
use worker_core::StartQueue;
use worker_core::threads::{live_threads_with_prefix, wait_threads_gone};

const LONG: Duration = Duration::from_secs(10);

/// A job for the tests: report its number, after waiting for `gate` if it
/// has one (a start function that blocks).
struct Job {
    n: usize,
    gate: Option<Receiver<()>>,
}

fn quick(n: usize) -> Job {
    Job { n, gate: None }
}

/// A queue whose jobs report their number on the returned channel, and
/// that panics if a job is refused (the tests never run out of threads).
fn queue(name: &str) -> (StartQueue<Job>, Receiver<usize>) {
    let (tx, rx): (Sender<usize>, _) = unbounded();
    let q = StartQueue::new(
        name,
        move |job: Job| {
            if let Some(gate) = job.gate {
                let _ = gate.recv();
            }
            let _ = tx.send(job.n);
        },
        |job: Job, e| panic!("job {} refused: {e}", job.n),
    );
    (q, rx)
}

/// The owner's loop: waits for `count` results, telling the queue of each
/// and applying the stall rule when its timer fires.
fn drive(q: &mut StartQueue<Job>, results: &Receiver<usize>, count: usize) -> Vec<usize> {
    let mut got = Vec::with_capacity(count);
    let deadline = Instant::now() + LONG;
    while got.len() < count {
        let stall = q.stall_timer().clone();
        select! {
            recv(results) -> n => {
                got.push(n.unwrap());
                q.finished();
            }
            recv(stall) -> _ => q.check_stall(),
            default(deadline.saturating_duration_since(Instant::now())) => {
                panic!("only {} of {count} jobs finished", got.len())
            }
        }
    }
    got
}

#[test]
fn a_burst_of_quick_jobs_uses_the_limit_not_a_thread_per_job() {
    let name = "start-queue-test-burst";
    // A stall rule that cannot fire: this is about the limit alone.
    let (q, results) = queue(name);
    let mut q = q.limit(2).stall(LONG);
    for n in 0..10_000 {
        q.push(quick(n));
    }
    assert_eq!(q.held(), 10_000);
    q.flush();
    assert_eq!(q.held(), 0);
    let mut got = drive(&mut q, &results, 10_000);
    got.sort_unstable();
    assert!(got.iter().copied().eq(0..10_000), "each job ran once");
    assert!(
        q.threads_started() <= 2,
        "{} threads for 10,000 jobs",
        q.threads_started()
    );
    q.join();
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn sequential_jobs_reuse_one_thread() {
    // The loop hears of each job before its thread is back waiting; the
    // next job must still not start a second thread.
    let name = "start-queue-test-sequential";
    let (q, results) = queue(name);
    let mut q = q.linger(LONG).stall(LONG);
    for n in 0..1000 {
        q.push(quick(n));
        q.flush();
        assert_eq!(drive(&mut q, &results, 1), vec![n]);
    }
    assert_eq!(q.threads_started(), 1);
    q.join();
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn a_blocked_job_below_the_limit_holds_nothing_up() {
    let name = "start-queue-test-below-limit";
    let (q, results) = queue(name);
    let mut q = q.limit(2).stall(LONG);
    let (release, gate) = crossbeam_channel::bounded::<()>(0);
    q.push(Job {
        n: 0,
        gate: Some(gate),
    });
    q.push(quick(1));
    q.flush();
    // No stall rule involved: the second thread was there from the start.
    assert_eq!(results.recv_timeout(LONG).unwrap(), 1);
    q.finished();
    drop(release);
    assert_eq!(results.recv_timeout(LONG).unwrap(), 0);
    q.finished();
    assert_eq!(q.threads_started(), 2);
    q.join();
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn a_blocked_job_holds_up_the_queue_only_until_the_stall() {
    let name = "start-queue-test-stall";
    let stall = Duration::from_millis(20);
    let (q, results) = queue(name);
    let mut q = q.limit(1).stall(stall);
    // More blocked jobs than the limit, then a quick one.
    let (release, gate) = crossbeam_channel::bounded::<()>(0);
    for n in 0..3 {
        q.push(Job {
            n,
            gate: Some(gate.clone()),
        });
    }
    q.push(quick(99));
    let flushed = Instant::now();
    q.flush();
    assert_eq!(q.threads_started(), 1);
    // Only the stall rule can get the quick one going: a thread per
    // blocked job, then one for it.
    assert_eq!(drive(&mut q, &results, 1), vec![99]);
    assert!(flushed.elapsed() >= stall, "ran before any stall");
    assert!(q.threads_started() >= 4, "{}", q.threads_started());
    drop(release);
    let mut rest = drive(&mut q, &results, 3);
    rest.sort_unstable();
    assert_eq!(rest, vec![0, 1, 2]);
    assert_eq!(q.stall_deadline(), None, "no job waits: no timer");
    q.join();
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn the_stall_watch_is_armed_only_while_jobs_wait() {
    let name = "start-queue-test-armed";
    let (tx, rx) = unbounded();
    let mut q = StartQueue::new(
        name,
        move |gate: Receiver<()>| {
            let _ = gate.recv();
            let _ = tx.send(());
        },
        |_, e| panic!("refused: {e}"),
    )
    .limit(1)
    .stall(LONG);
    assert_eq!(q.stall_deadline(), None);
    let (release_a, gate_a) = crossbeam_channel::bounded::<()>(0);
    q.push(gate_a);
    q.flush();
    let (release_b, gate_b) = crossbeam_channel::bounded::<()>(1);
    release_b.send(()).unwrap();
    drop(release_b);
    for _ in 0..2 {
        q.push(gate_b.clone());
    }
    q.flush();
    // With one thread, at least two jobs wait: the watch is armed.
    let at = q
        .stall_deadline()
        .expect("jobs wait behind a blocked one, yet no stall watch");
    assert!(at > Instant::now());
    assert!(q.stall_timer().try_recv().is_err(), "not due yet");
    drop(release_a);
    for _ in 0..3 {
        rx.recv_timeout(LONG).unwrap();
        q.finished();
    }
    assert_eq!(q.stall_deadline(), None, "no job waits: no timer");
    q.join();
}

#[test]
fn long_jobs_with_nothing_behind_them_keep_no_timer() {
    let name = "start-queue-test-long";
    let (running_tx, running) = unbounded();
    let (done_tx, done) = unbounded();
    let mut q = StartQueue::new(
        name,
        move |gate: Receiver<()>| {
            running_tx.send(()).unwrap();
            let _ = gate.recv();
            done_tx.send(()).unwrap();
        },
        |_, e| panic!("refused: {e}"),
    )
    .limit(1)
    .stall(Duration::from_millis(10));
    let (release, gate) = crossbeam_channel::bounded::<()>(0);
    // One job, one thread: nothing can wait, nothing is watched.
    q.push(gate.clone());
    q.flush();
    assert_eq!(q.stall_deadline(), None);
    running.recv_timeout(LONG).unwrap();
    // A second job waits behind it: watched until the stall rule has
    // given it a thread, and no longer, though both still run.
    q.push(gate);
    q.flush();
    assert!(q.stall_deadline().is_some());
    let deadline = Instant::now() + LONG;
    while q.stall_deadline().is_some() {
        let timer = q.stall_timer().clone();
        timer
            .recv_deadline(deadline)
            .expect("the watch never let go");
        q.check_stall();
    }
    running.recv_timeout(LONG).unwrap();
    assert_eq!(q.stall_deadline(), None);
    assert!(q.threads_started() >= 2);
    assert!(done.try_recv().is_err(), "the jobs still run");
    drop(release);
    for _ in 0..2 {
        done.recv_timeout(LONG).unwrap();
        q.finished();
    }
    q.join();
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn idle_drains_to_zero_threads_and_no_timer() {
    let name = "start-queue-test-idle";
    let (q, results) = queue(name);
    let mut q = q.limit(3).linger(Duration::from_millis(1));
    for n in 0..100 {
        q.push(quick(n));
    }
    q.flush();
    drive(&mut q, &results, 100);
    wait_threads_gone(name, LONG).unwrap();
    assert_eq!(q.threads(), 0);
    assert_eq!(q.stall_deadline(), None);
    // And it comes back to work.
    q.push(quick(7));
    q.flush();
    assert_eq!(drive(&mut q, &results, 1), vec![7]);
    q.join();
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn no_job_is_stranded_when_threads_leave_as_jobs_arrive() {
    // Threads that leave the moment the queue is empty, and no stall rule
    // to rescue a stranded job: the hand-off between a leaving thread and
    // a new job must never lose the job.
    let name = "start-queue-test-handoff";
    let (q, results) = queue(name);
    let mut q = q.limit(2).linger(Duration::ZERO).stall(LONG);
    for round in 0..300 {
        let jobs = round % 5 + 1;
        for n in 0..jobs {
            q.push(quick(n));
        }
        q.flush();
        for _ in 0..jobs {
            assert!(
                results.recv_timeout(LONG).is_ok(),
                "a job was stranded in round {round}"
            );
            q.finished();
        }
    }
    q.join();
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn threads_are_named_after_the_queue() {
    let name = "start-queue-test-names";
    let (tx, rx) = unbounded();
    let mut q = StartQueue::new(
        name,
        move |()| {
            let _ = tx.send(std::thread::current().name().map(str::to_owned));
        },
        |_, e| panic!("refused: {e}"),
    );
    q.push(());
    q.flush();
    let thread = rx.recv_timeout(LONG).unwrap().unwrap_or_default();
    assert_eq!(thread, format!("{name}-0"));
    q.join();
}

#[test]
fn a_panicking_job_leaves_its_thread_working() {
    let name = "start-queue-test-panic";
    let (tx, rx) = unbounded();
    let mut q = StartQueue::new(
        name,
        move |n: usize| {
            if n == 0 {
                panic!("job failed");
            }
            let _ = tx.send(n);
        },
        |_, e| panic!("refused: {e}"),
    )
    .limit(1)
    .linger(LONG);
    q.push(0);
    q.push(1);
    q.flush();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), 1);
    assert_eq!(q.threads_started(), 1);
    q.join();
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn join_runs_the_jobs_handed_over_and_leaves_no_thread() {
    let name = "start-queue-test-join";
    let (q, results) = queue(name);
    let mut q = q.linger(LONG);
    for n in 0..500 {
        q.push(quick(n));
    }
    q.flush();
    q.push(quick(1000)); // held, never handed over
    q.join();
    assert_eq!(live_threads_with_prefix(name), 0);
    let ran: Vec<usize> = results.try_iter().collect();
    assert_eq!(ran.len(), 500);
    assert!(!ran.contains(&1000));
    // Joined: later jobs are dropped unrun, and no thread starts.
    let started = q.threads_started();
    q.push(quick(2000));
    q.flush();
    q.join();
    assert_eq!(q.threads_started(), started);
    assert!(results.try_recv().is_err());
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn dropping_the_queue_joins_its_threads() {
    let name = "start-queue-test-drop";
    let (mut q, results) = queue(name);
    q.push(quick(1));
    q.flush();
    assert_eq!(results.recv_timeout(LONG).unwrap(), 1);
    drop(q);
    assert_eq!(live_threads_with_prefix(name), 0);
}

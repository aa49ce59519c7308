//! The async surface without a runtime: a tomb's dying and dead moments,
//! any worker's end, run on a std-only executor (`common::block_on`).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use common::{Counter, block_on, copies, poll_once};
use worker_core::threads::live_threads_with_prefix;
use worker_core::{Error, Passive, Tomb, Worker, finished, spawn};

#[test]
fn until_dying_completes_when_another_thread_kills() {
    let tomb = Tomb::new();
    let killer = tomb.clone();
    let thread = std::thread::spawn(move || killer.kill(Some(Error::msg("enough"))));
    block_on(tomb.until_dying());
    assert_eq!(tomb.err().unwrap().to_string(), "enough");
    thread.join().unwrap();
}

#[test]
fn until_dying_is_ready_at_once_when_no_longer_alive() {
    let dying = Tomb::new();
    dying.kill(None);
    let dead = Tomb::new();
    dead.done(Ok(()));
    let (_, waker) = Counter::new();
    assert!(poll_once(&mut dying.until_dying(), &waker).is_ready());
    assert!(poll_once(&mut dead.until_dying(), &waker).is_ready());
}

#[test]
fn until_dying_waits_while_alive_and_is_woken_once_by_the_kill() {
    let tomb = Tomb::new();
    let (counter, waker) = Counter::new();
    let mut dying = tomb.until_dying();
    assert!(poll_once(&mut dying, &waker).is_pending());
    assert!(poll_once(&mut dying, &waker).is_pending());
    assert_eq!(copies(&counter), 1, "re-polling keeps one waker");
    tomb.kill(None);
    assert_eq!(counter.wakes(), 1);
    assert_eq!(copies(&counter), 0, "the kill let go of the waker");
    assert!(poll_once(&mut dying, &waker).is_ready());
}

#[test]
fn until_dead_gives_what_wait_gives() {
    let tomb = Tomb::new();
    let finisher = tomb.clone();
    let thread = std::thread::spawn(move || {
        finisher.kill(Some(Error::msg("first")));
        finisher.done(Err(Error::msg("second")));
    });
    let result = block_on(tomb.until_dead());
    assert!(result.unwrap_err().same(&tomb.wait().unwrap_err()));
    thread.join().unwrap();
}

#[test]
fn until_dead_waits_through_dying() {
    let tomb = Tomb::new();
    let (counter, waker) = Counter::new();
    let mut dead = tomb.until_dead();
    assert!(poll_once(&mut dead, &waker).is_pending());
    tomb.kill(None);
    // Woken by the change of state, it finds the tomb only dying and
    // waits on, with one waker kept.
    assert_eq!(counter.wakes(), 1);
    assert!(poll_once(&mut dead, &waker).is_pending());
    assert_eq!(copies(&counter), 1);
    tomb.done(Ok(()));
    assert_eq!(counter.wakes(), 2);
    assert!(matches!(poll_once(&mut dead, &waker), Poll::Ready(Ok(()))));
}

#[test]
fn a_dropped_future_leaves_nothing_in_the_tomb() {
    let tomb = Tomb::new();
    let (counter, waker) = Counter::new();
    // A select! loop makes a new future in every round and drops it.
    for _ in 0..1_000 {
        let mut dying = tomb.until_dying();
        let mut dead = tomb.until_dead();
        assert!(poll_once(&mut dying, &waker).is_pending());
        assert!(poll_once(&mut dead, &waker).is_pending());
        assert_eq!(copies(&counter), 2);
    }
    assert_eq!(
        copies(&counter),
        0,
        "every dropped future took its waker out"
    );
    tomb.kill(None);
    assert_eq!(counter.wakes(), 0, "nobody left to wake");
}

#[test]
fn a_future_that_moves_to_another_task_wakes_the_new_one() {
    let tomb = Tomb::new();
    let (first, first_waker) = Counter::new();
    let (second, second_waker) = Counter::new();
    let mut dying = tomb.until_dying();
    assert!(poll_once(&mut dying, &first_waker).is_pending());
    assert!(poll_once(&mut dying, &second_waker).is_pending());
    assert_eq!(copies(&first), 0, "the old waker was replaced");
    tomb.kill(None);
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
}

/// Says when `inner` has been polled once (and so has registered).
struct Announce<F> {
    inner: F,
    polled: Option<crossbeam_channel::Sender<()>>,
}

impl<F: Future + Unpin> Future for Announce<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let poll = Pin::new(&mut self.inner).poll(cx);
        if let Some(tx) = self.polled.take() {
            tx.send(()).unwrap();
        }
        poll
    }
}

#[test]
fn many_tasks_await_one_tomb() {
    const TASKS: usize = 64;
    let tomb = Tomb::new();
    let (polled_tx, polled) = crossbeam_channel::unbounded();
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let tomb = tomb.clone();
            let polled = Some(polled_tx.clone());
            std::thread::spawn(move || {
                // Half wait for dying, half for dead.
                if i % 2 == 0 {
                    block_on(Announce {
                        inner: tomb.until_dying(),
                        polled,
                    });
                    None
                } else {
                    Some(block_on(Announce {
                        inner: tomb.until_dead(),
                        polled,
                    }))
                }
            })
        })
        .collect();
    for _ in 0..TASKS {
        polled.recv_timeout(common::LONG).unwrap();
    }
    let over = Error::msg("over");
    tomb.kill(None);
    tomb.done(Err(over.clone()));
    for task in tasks {
        if let Some(result) = task.join().unwrap() {
            assert!(result.unwrap_err().same(&over));
        }
    }
}

#[test]
fn finished_gives_what_wait_gives_for_every_kind_of_worker() {
    let passive = Arc::new(Passive::new());
    let thread = Arc::new(spawn("futures-finished", |tomb| {
        tomb.dying().recv().ok();
        Err(Error::msg("killed and failed"))
    }));
    let pending = finished(&passive);
    passive.finish(Err(Error::msg("lease lost")));
    assert!(
        block_on(pending)
            .unwrap_err()
            .same(&passive.wait().unwrap_err())
    );
    let pending = finished(&thread);
    thread.kill();
    assert_eq!(
        block_on(pending).unwrap_err().to_string(),
        "killed and failed"
    );
    // Already finished: ready at once, and again if polled again.
    let (_, waker) = Counter::new();
    let mut done = finished(&thread);
    assert!(poll_once(&mut done, &waker).is_ready());
    assert!(poll_once(&mut done, &waker).is_ready());
}

#[test]
fn a_dropped_finished_lets_go_of_the_waker() {
    let worker = Arc::new(Passive::new());
    let (counter, waker) = Counter::new();
    let mut pending = finished(&worker);
    assert!(poll_once(&mut pending, &waker).is_pending());
    assert_eq!(copies(&counter), 1);
    drop(pending);
    assert_eq!(copies(&counter), 0);
    worker.kill();
    assert_eq!(counter.wakes(), 0);
}

/// A worker with no completion callback and no signal.
struct Foreign(crossbeam_channel::Receiver<()>);

impl Worker for Foreign {
    fn kill(&self) {}
    fn wait(&self) -> Result<(), Error> {
        let _ = self.0.recv();
        Err(Error::msg("foreign ended"))
    }
}

#[test]
fn a_foreign_worker_is_finished_through_one_watcher_thread() {
    let (end, ended) = crossbeam_channel::bounded(0);
    let worker = Arc::new(Foreign(ended));
    let before = live_threads_with_prefix("worker-watch");
    let pending = finished(&worker);
    // The documented exception: one thread blocked in the worker's wait.
    assert!(live_threads_with_prefix("worker-watch") > before);
    drop(end);
    assert_eq!(block_on(pending).unwrap_err().to_string(), "foreign ended");
}

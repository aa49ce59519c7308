//! Reusable threads for supervisors' short jobs (mostly start functions).
//!
//! Supervisors must not run user code on their loop thread, yet starting an
//! OS thread per start function costs 40-110 us, which would dominate a
//! runner that starts 100,000 cheap workers. A [`ThreadPool`] keeps the
//! threads it started and hands each new job to an idle one, starting a new
//! thread only when all are busy. It never limits concurrency (a start
//! function may block, and must not hold up the others), so it grows to the
//! largest number of jobs that were ever running at once, and no further.
//!
//! It suits occasional jobs only. A thread counts as idle once its job has
//! returned, so jobs submitted faster than threads come back (a burst of
//! quick ones) start nearly a thread each: 107-318 threads were seen for
//! 10,000 jobs of a few microseconds. Supervisors run their start
//! functions from a [`StartQueue`](crate::StartQueue) instead, which queues
//! them for a few threads and adds one only when they stall.
//!
//! Idle threads block on a channel and use no CPU. [`ThreadPool::join`]
//! (also run on drop) lets running jobs finish and joins every thread, so a
//! supervisor that owns a pool leaves no thread behind when it stops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::{Error, Panicked};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A growable set of reusable threads; see the [module docs](self).
///
/// ```
/// use worker_core::ThreadPool;
///
/// let pool = ThreadPool::new("example");
/// let (tx, rx) = crossbeam_channel::unbounded();
/// for i in 0..10 {
///     let tx = tx.clone();
///     pool.execute(move || tx.send(i).unwrap()).unwrap();
/// }
/// pool.join();
/// assert_eq!(rx.try_iter().sum::<i32>(), 45);
/// ```
pub struct ThreadPool {
    name: String,
    jobs: Mutex<Option<Sender<Job>>>,
    receiver: Receiver<Job>,
    /// Threads blocked (or about to block) on `receiver` and not yet
    /// claimed by a job.
    idle: Arc<AtomicUsize>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl ThreadPool {
    /// An empty pool; `name` prefixes its threads' names.
    pub fn new(name: impl Into<String>) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        ThreadPool {
            name: name.into(),
            jobs: Mutex::new(Some(tx)),
            receiver: rx,
            idle: Arc::new(AtomicUsize::new(0)),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Runs `job` on an idle thread, or on a new one if none is idle.
    ///
    /// A panic in `job` is caught and logged; the thread stays in the pool.
    /// Fails only if the pool has been joined, or the system refuses a new
    /// thread; the job is then dropped without running.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sender) = jobs.as_ref() else {
            return Err(Error::msg(format!(
                "thread pool {:?} has been shut down",
                self.name
            )));
        };
        let job: Job = Box::new(job);
        // Claim an idle thread if there is one; the job then goes through
        // the channel and whichever idle thread wakes first runs it.
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if claimed {
            sender
                .send(job)
                .map_err(|_| Error::msg("thread pool channel closed"))?;
            return Ok(());
        }
        // Keep `jobs` locked while starting the thread, so that a concurrent
        // `join` cannot miss it.
        self.start_thread(job)
    }

    fn start_thread(&self, first: Job) -> Result<(), Error> {
        let receiver = self.receiver.clone();
        let idle = Arc::clone(&self.idle);
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!("{}-{}", self.name, threads.len());
        let handle = crate::threads::spawn_named(name, move || {
            run_job(first);
            loop {
                idle.fetch_add(1, Ordering::AcqRel);
                match receiver.recv() {
                    Ok(job) => run_job(job),
                    Err(_) => return,
                }
            }
        })
        .map_err(|e| Error::new(e).context("cannot start a pool thread"))?;
        threads.push(handle);
        Ok(())
    }

    /// How many threads the pool has started so far.
    pub fn threads(&self) -> usize {
        self.threads.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Stops taking jobs, lets queued and running jobs finish, and joins
    /// every thread. Idempotent; later [`execute`](Self::execute) calls fail.
    pub fn join(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let me = std::thread::current().id();
        for handle in threads {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

fn run_job(job: Job) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
        let panicked = Panicked::from_payload("a pool job", &*payload);
        tracing::error!(error = %panicked, "pool job panicked");
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.join();
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("name", &self.name)
            .field("threads", &self.threads())
            .field("idle", &self.idle.load(Ordering::Relaxed))
            .finish()
    }
}

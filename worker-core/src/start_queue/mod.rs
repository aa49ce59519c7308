//! Running a supervisor's start functions off its loop, on few threads.
//!
//! A supervisor must not run start functions (user code, which may block)
//! on its loop thread, nor pay a thread per start: a burst of 10,000 starts
//! on a plain pool that starts a thread whenever all of its threads are
//! busy grows to hundreds of threads for jobs of a few microseconds
//! (107-318 were seen for 10,000 quick jobs), because a thread only counts
//! as free once its job has returned. A [`StartQueue`] is the other way
//! round: jobs wait in one queue, and a few *drainer* threads take them one
//! after another.
//!
//! # How it runs
//!
//! The supervisor's loop owns the queue and drives it; nothing in it runs
//! on its own:
//!
//! - [`push`](StartQueue::push) collects a job and [`flush`](StartQueue::flush)
//!   hands the collected ones over, so that a burst wakes the drainers once
//!   rather than once per job (the runner holds jobs back while its callers'
//!   start requests keep coming: on two cores, handing them over mid-burst
//!   made its S1 scenario bimodal, ~20 ms or ~300 ms). The handing over
//!   starts drainers, up to [`limit`](StartQueue::limit), for as many jobs
//!   as are in flight, and no more.
//! - The loop tells the queue when it learns that a job has finished
//!   ([`finished`](StartQueue::finished)): the job's own message to the loop
//!   is the only reliable sign that its drainer is about to be free again, so
//!   a job that comes right after it does not start a thread for nothing.
//!   (Whatever a job does after sending that message must therefore be
//!   quick: its drainer already counts as free.)
//! - A drainer that finds the queue empty waits for [`linger`](StartQueue::linger)
//!   before it ends, so a steady trickle of starts (a chain of manifolds
//!   bouncing, a worker restarting every microsecond) finds a thread ready,
//!   and an idle supervisor soon has no drainer at all. A drainer that
//!   leaves just as a job comes takes it; no job is ever stranded.
//!
//! # Blocking start functions: the stall rule
//!
//! A start function may block (on the network, a lock, a slow disk), and
//! holds up only its own drainer. When jobs wait in the queue and no job
//! has finished for [`stall`](StartQueue::stall), every drainer is taken to
//! be stuck, and one more is started; and again after each further stall
//! period. So a blocked start delays those queued behind it by about the
//! stall time, and the number of threads grows only while starts really are
//! blocked. The rule is watched only while jobs may wait: from a hand-over
//! that leaves more jobs in flight than drainers, until no job is in flight
//! or the watch fires and finds none waiting (a start that blocks for an
//! hour costs no wake-up at all unless jobs queue behind it). The loop asks
//! for the deadline ([`stall_deadline`](StartQueue::stall_deadline), or the
//! [`stall_timer`](StartQueue::stall_timer) channel to `select!` on) each
//! time before it blocks, and calls [`check_stall`](StartQueue::check_stall)
//! when it has passed. An idle supervisor has no deadline, no timer and, once
//! its drainers have lingered, no thread beyond its loop.
//!
//! The stall rule uses real time ([`Instant`]), not the supervisor's
//! [`Clock`](crate::Clock). It judges whether the machine is making
//! progress on start functions, a matter of thread scheduling, not of the
//! supervisor's behaviour: a test's fake clock, which stands still until
//! the test moves it, must not be able to hold a start up forever, and the
//! timers that a test counts on its fake clock must be the supervisor's own
//! deadlines only.
//!
//! # Threads
//!
//! The protocol, and why it is enough, is explained in `README.md` beside
//! this file; its handshake is model-checked with loom.
//!
//! Drainers are named `<name>-<n>` and started through
//! [`threads::spawn_named`](crate::threads::spawn_named), so
//! [`threads::wait_threads_gone`](crate::threads::wait_threads_gone)
//! accounts for them. [`join`](StartQueue::join) (also run on drop) closes
//! the queue, lets the drainers finish the jobs handed over, and joins
//! every drainer that was ever started.

use std::sync::Arc;
mod handshake;

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, never};

use crate::{Error, Panicked};

/// How many drainers a queue runs while its jobs make progress, unless
/// told otherwise.
pub const DEFAULT_LIMIT: usize = 2;

/// How long jobs wait with no job finishing before another drainer is
/// started, unless told otherwise: long enough that a busy machine does
/// not grow threads for starts that are merely slow to be scheduled.
pub const DEFAULT_STALL: Duration = Duration::from_millis(20);

/// How long an idle drainer waits for another job before it ends, unless
/// told otherwise.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(200);

/// What a drainer does with each job.
type RunFn<J> = Box<dyn Fn(J) + Send + Sync + 'static>;

/// What the loop does with jobs that no thread can be had for.
type RefusedFn<J> = Box<dyn FnMut(J, Error) + Send + 'static>;

/// A queue of jobs run by a few drainer threads, driven by its owner's
/// loop; see the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use worker_core::StartQueue;
///
/// let (results, finished) = crossbeam_channel::unbounded();
/// let mut queue = StartQueue::new(
///     "docs-example-start",
///     move |n: u64| results.send(n * n).unwrap(),
///     |n, error| eprintln!("job {n} not run: {error}"),
/// );
/// for n in 0..1000 {
///     queue.push(n);
/// }
/// queue.flush();
/// let mut sum = 0;
/// for _ in 0..1000 {
///     // An owner's loop would also select on `queue.stall_timer()`.
///     sum += finished.recv_timeout(Duration::from_secs(10)).unwrap();
///     queue.finished();
/// }
/// assert_eq!(sum, (0..1000u64).map(|n| n * n).sum::<u64>());
/// assert!(queue.threads_started() <= 2); // not a thread per job
/// queue.join();
/// ```
pub struct StartQueue<J: Send + 'static> {
    name: String,
    shared: Arc<Shared<J>>,
    /// The queue's sending side; `None` once joined.
    jobs: Option<Sender<J>>,
    /// Jobs pushed and not yet handed over.
    held: Vec<J>,
    refused: RefusedFn<J>,
    limit: usize,
    stall: Duration,
    /// Jobs handed over and not yet reported finished by the owner.
    in_flight: usize,
    /// Jobs reported finished so far.
    finished: u64,
    /// The stall watch, while jobs may wait.
    armed: Option<Armed>,
    /// What [`stall_timer`](Self::stall_timer) hands out while disarmed.
    never: Receiver<Instant>,
    /// Every drainer started and not yet joined.
    threads: Vec<JoinHandle<()>>,
    started: usize,
}

/// The drainers' side.
struct Shared<J> {
    queue: Receiver<J>,
    run: RunFn<J>,
    /// Drainers running, and the handshake that keeps a job from being
    /// stranded as a drainer leaves (`README.md` beside this file).
    drainers: handshake::Drainers,
    /// How long an idle drainer waits, in nanoseconds.
    linger: AtomicU64,
    name: String,
}

/// The stall watch: when it is due, and how many jobs had finished when it
/// was armed.
struct Armed {
    at: Instant,
    finished: u64,
    timer: Option<Receiver<Instant>>,
}

impl<J: Send + 'static> StartQueue<J> {
    /// An empty queue with no thread. `name` prefixes its drainers' names
    /// (`<name>-0`, `<name>-1`, ...). Each job is passed to `run` on a
    /// drainer; `run` should catch the panics of the user code it calls (a
    /// panic that escapes it is logged, and the drainer goes on).
    ///
    /// `refused` is called on the owner's thread, from
    /// [`flush`](Self::flush) or [`check_stall`](Self::check_stall), with
    /// each waiting job when the system refuses a thread and no drainer is
    /// left to run it, so that the owner can fail the job rather than wait
    /// for it forever. Such a job is still in flight until the owner
    /// reports it [`finished`](Self::finished), like any other: the
    /// callback usually sends the loop the message the job would have.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        run: impl Fn(J) + Send + Sync + 'static,
        refused: impl FnMut(J, Error) + Send + 'static,
    ) -> Self {
        let name = name.into();
        let (tx, rx) = crossbeam_channel::unbounded();
        StartQueue {
            shared: Arc::new(Shared {
                queue: rx,
                run: Box::new(run),
                drainers: handshake::Drainers::default(),
                linger: AtomicU64::new(nanos(DEFAULT_LINGER)),
                name: name.clone(),
            }),
            name,
            jobs: Some(tx),
            held: Vec::new(),
            refused: Box::new(refused),
            limit: DEFAULT_LIMIT,
            stall: DEFAULT_STALL,
            in_flight: 0,
            finished: 0,
            armed: None,
            never: never(),
            threads: Vec::new(),
            started: 0,
        }
    }

    /// Sets how many drainers run while jobs make progress (at least 1;
    /// default [`DEFAULT_LIMIT`]). The stall rule may add more.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// Sets how long waiting jobs tolerate no job finishing before another
    /// drainer starts (default [`DEFAULT_STALL`]).
    #[must_use]
    pub fn stall(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }

    /// Sets how long an idle drainer waits for more work before it ends
    /// (default [`DEFAULT_LINGER`]).
    #[must_use]
    pub fn linger(self, linger: Duration) -> Self {
        self.shared.linger.store(nanos(linger), Ordering::Relaxed);
        self
    }

    /// Collects `job`; it is handed over at the next [`flush`](Self::flush).
    pub fn push(&mut self, job: J) {
        self.held.push(job);
    }

    /// How many pushed jobs wait to be handed over.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Hands the collected jobs to the drainers, starting drainers (up to
    /// the limit) for the jobs in flight that no drainer is free for.
    /// After [`join`](Self::join), the jobs are dropped.
    pub fn flush(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let Some(jobs) = &self.jobs else {
            self.held.clear();
            return;
        };
        self.in_flight += self.held.len();
        for job in self.held.drain(..) {
            // The receiver lives in `shared`: the queue is never closed here.
            let _ = jobs.send(job);
        }
        // Either a drainer about to end sees these jobs, or this sees it
        // gone and starts another (`README.md`).
        let wanted = self.limit.min(self.in_flight);
        let mut running = self.shared.drainers.after_publish();
        while running < wanted {
            if !self.add_drainer() {
                break;
            }
            running = self.shared.drainers.running();
        }
        // More jobs than drainers: some wait, so the stall rule watches
        // from now on. (With no more jobs than drainers, each job has a
        // drainer that is free or about to be, and nothing is watched.)
        if self.armed.is_none() && self.in_flight > self.shared.drainers.running() {
            self.arm();
        }
    }

    /// Records that a job handed over has finished (or was refused), as
    /// the owner learnt from the job's own message; call it exactly once
    /// per job. The job's drainer is then about to take the next job, so a
    /// new job needs no new thread.
    pub fn finished(&mut self) {
        self.finished += 1;
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// When the owner should call [`check_stall`](Self::check_stall), or
    /// `None` while no job waits for a drainer. The watch is armed when a
    /// [`flush`](Self::flush) leaves more jobs in flight than drainers, and
    /// disarmed when it fires and finds no job waiting, or no job is in
    /// flight any more. Call it each time before the loop blocks.
    pub fn stall_deadline(&mut self) -> Option<Instant> {
        self.refresh();
        self.armed.as_ref().map(|a| a.at)
    }

    /// A channel that fires at the [`stall_deadline`](Self::stall_deadline)
    /// (and never while there is none), for a loop that blocks in
    /// `select!`. Call it each time before the loop blocks.
    pub fn stall_timer(&mut self) -> &Receiver<Instant> {
        self.refresh();
        match &mut self.armed {
            Some(armed) => armed
                .timer
                .get_or_insert_with(|| crossbeam_channel::at(armed.at)),
            None => &self.never,
        }
    }

    /// Applies the stall rule if its deadline has passed (otherwise does
    /// nothing, so it may be called at any time): if jobs still wait and
    /// none finished during the stall period, starts one more drainer. The
    /// watch is then armed again for as long as jobs wait.
    pub fn check_stall(&mut self) {
        let Some(armed) = &self.armed else {
            return;
        };
        if Instant::now() < armed.at {
            return;
        }
        let stuck = armed.finished == self.finished;
        self.armed = None;
        if self.shared.queue.is_empty() {
            // Nothing waits (jobs may still run): no watch until a flush
            // leaves jobs waiting again, so a start that blocks for an
            // hour does not wake the loop every stall period.
            return;
        }
        if stuck {
            tracing::debug!(
                queue = %self.name,
                drainers = self.shared.drainers.running(),
                waiting = self.shared.queue.len(),
                stall = ?self.stall,
                "no start finished while starts wait; adding a thread"
            );
            self.add_drainer();
        }
        self.arm();
    }

    /// Disarms the watch once no job is in flight. It does not look at
    /// the queue: the drainers write its ends, so a look would cost the
    /// loop a cache miss each time it blocks. The queue is looked at only
    /// when the watch fires.
    fn refresh(&mut self) {
        if self.in_flight == 0 {
            self.armed = None;
        }
    }

    fn arm(&mut self) {
        self.armed = Some(Armed {
            at: crate::deadline(Instant::now(), self.stall),
            finished: self.finished,
            timer: None,
        });
    }

    /// Starts a drainer; if the system refuses the thread and no drainer
    /// is left, hands every waiting job to the `refused` callback.
    fn add_drainer(&mut self) -> bool {
        reap_finished(&mut self.threads);
        self.shared.drainers.arrive();
        let shared = Arc::clone(&self.shared);
        let name = format!("{}-{}", self.name, self.started);
        match crate::threads::spawn_named(name, move || drain(&shared)) {
            Ok(handle) => {
                self.started += 1;
                self.threads.push(handle);
                true
            }
            Err(e) => {
                let left = self.shared.drainers.not_started();
                let error = Error::new(e).context("cannot start a thread to run start functions");
                tracing::error!(queue = %self.name, %error, drainers = left);
                if left == 0 {
                    while let Ok(job) = self.shared.queue.try_recv() {
                        (self.refused)(job, error.clone());
                    }
                }
                false
            }
        }
    }

    /// How many drainers run now (a moment's view).
    pub fn threads(&self) -> usize {
        self.shared.drainers.running()
    }

    /// How many drainers have been started so far.
    pub fn threads_started(&self) -> usize {
        self.started
    }

    /// Closes the queue, lets the drainers finish the jobs handed over,
    /// and joins every drainer. Jobs still held (pushed, not flushed) are
    /// dropped. Idempotent; later jobs are dropped unrun.
    pub fn join(&mut self) {
        self.held.clear();
        // Dropping the only sender closes the queue: lingering drainers
        // leave at once.
        self.jobs = None;
        self.armed = None;
        let me = std::thread::current().id();
        for handle in self.threads.drain(..) {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

/// A drainer: runs jobs until the queue has been empty for the linger
/// time, or is closed.
fn drain<J>(shared: &Shared<J>) {
    loop {
        let linger = Duration::from_nanos(shared.linger.load(Ordering::Relaxed));
        while let Ok(job) = shared.queue.recv_timeout(linger) {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (shared.run)(job)));
            if let Err(payload) = ran {
                let panicked = Panicked::from_payload("a start queue job", &*payload);
                tracing::error!(queue = %shared.name, error = %panicked, "start queue job panicked");
            }
        }
        // A job that came as we were leaving (its sender may have counted
        // us) keeps us.
        if shared.drainers.try_leave(|| shared.queue.is_empty()) {
            return;
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Joins the drainers that have already ended, so that a long-lived
/// queue whose drainers come and go does not pile up their handles.
fn reap_finished(threads: &mut Vec<JoinHandle<()>>) {
    let mut i = 0;
    while i < threads.len() {
        if threads[i].is_finished() {
            // Ended already: joining does not block.
            let _ = threads.swap_remove(i).join();
        } else {
            i += 1;
        }
    }
}

impl<J: Send + 'static> Drop for StartQueue<J> {
    fn drop(&mut self) {
        self.join();
    }
}

impl<J: Send + 'static> std::fmt::Debug for StartQueue<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartQueue")
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("stall", &self.stall)
            .field(
                "linger",
                &Duration::from_nanos(self.shared.linger.load(Ordering::Relaxed)),
            )
            .field("held", &self.held.len())
            .field("in_flight", &self.in_flight)
            .field("drainers", &self.threads())
            .field("stall_deadline", &self.armed.as_ref().map(|a| a.at))
            .finish()
    }
}

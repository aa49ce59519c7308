//! The driver: one loop thread that runs a [`Machine`], and everything
//! around it that is the same for every supervisor.
//!
//! See the [module docs](super) for the protocol.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, select};

use super::effects::{BATCH_LIMIT, Batch, Effects, Finalize, Finish, Work};
use super::error::{SupervisorFailed, WouldDeadlock};
use super::offloop::{LoopGuard, bury, take_graveyard};
use super::own_news::OwnNews;
use super::reply::Spin;
use crate::threads::JoinSlot;
use crate::{
    Clock, DoneCallback, Error, Panicked, SharedWorker, Signal, StartQueue, Tomb, catch_panic,
};

/// A supervisor's decisions, as a state machine the [driver](start) runs.
///
/// The machine holds no thread, channel or clock: time comes in with each
/// call, and what it wants done goes out through [`Effects`]. It must not
/// call user code (policies, `kill`, `Drop` of user values): it asks for
/// that through [`Effects`], or has it done by its jobs, before the news
/// reaches it. Each entry point settles the machine (does everything the
/// new state implies) before it returns.
pub trait Machine: Send + 'static {
    /// What the machine is told: requests from handles, news from its
    /// jobs and its workers' completion callbacks.
    type Event: Send + 'static;
    /// What it has run off the loop (a start function, usually): the
    /// driver hands each to the job runner given to [`start`].
    type Job: Send + 'static;

    /// Handles one event.
    fn handle(&mut self, event: Self::Event, now: Instant, fx: &mut Effects<Self::Job>);

    /// The supervisor was asked to stop (idempotent).
    fn kill(&mut self, now: Instant, fx: &mut Effects<Self::Job>);

    /// The machine's earliest deadline, if any.
    fn poll_timeout(&mut self) -> Option<Instant>;

    /// Time has passed: handles every deadline due at `now`.
    fn handle_timeout(&mut self, now: Instant, fx: &mut Effects<Self::Job>);

    /// Whether `event` is the report of one of the machine's jobs
    /// finishing (its executor thread is free again).
    fn ends_job(event: &Self::Event) -> bool;

    /// A burst of events has been handled: the driver is about to hand
    /// the effects over and wait for more. A machine that coalesces
    /// effects over a burst (one call for the metrics hooks of many
    /// events, say) asks for them here. Does nothing by default.
    fn burst_end(&mut self, fx: &mut Effects<Self::Job>) {
        let _ = fx;
    }

    /// The driver has given up on the machine (one of its calls
    /// panicked): every worker it still holds, to be killed and waited
    /// for. Must not panic on a machine left half-way through a call.
    fn abandon(&mut self) -> Vec<SharedWorker>;
}

/// Tuning of a driver; [`DriverConfig::new`] has the defaults.
#[derive(Clone)]
#[non_exhaustive]
pub struct DriverConfig {
    /// The supervisor's name: its threads are `<name>-loop` and
    /// `<name>-start-<n>`.
    pub name: Arc<str>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// How many executor threads run while jobs make progress.
    pub threads: usize,
    /// How long waiting jobs tolerate no job finishing before another
    /// executor thread is added (real time).
    pub stall: Duration,
    /// How long an idle executor thread waits for work before it ends.
    pub linger: Duration,
}

impl DriverConfig {
    /// Defaults: 2 threads, a 20 ms stall rule, 200 ms of linger.
    pub fn new(name: impl Into<Arc<str>>, clock: Arc<dyn Clock>) -> Self {
        DriverConfig {
            name: name.into(),
            clock,
            threads: crate::start_queue::DEFAULT_LIMIT,
            stall: crate::start_queue::DEFAULT_STALL,
            linger: crate::start_queue::DEFAULT_LINGER,
        }
    }

    /// Sets [`threads`](Self::threads).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Sets [`stall`](Self::stall).
    pub fn stall(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }

    /// Sets [`linger`](Self::linger).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }
}

impl std::fmt::Debug for DriverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverConfig")
            .field("name", &self.name)
            .field("threads", &self.threads)
            .field("stall", &self.stall)
            .field("linger", &self.linger)
            .finish_non_exhaustive()
    }
}

/// What reaches the loop.
enum Inbox<E> {
    Event(E),
    Kill,
    /// A ticket of a work batch was worked through.
    Worked,
    /// No thread could be had for a work batch: try it again later.
    Retry(Arc<Batch>),
    /// A thread watching a worker that cannot report its own end.
    Watcher(JoinHandle<()>),
    /// The deferred end computation returned.
    Finalized(Result<(), Error>),
}

/// An executor job.
enum Job<J> {
    Machine(J),
    Work(Arc<Batch>),
    Finalize(Finalize),
}

/// How jobs and completion callbacks talk to the loop.
pub struct Events<E> {
    tx: Sender<Inbox<E>>,
    /// The supervisor's id: sent from its own loop thread, an event skips
    /// the channel (see [`own_news`](super::own_news)).
    id: u64,
}

impl<E> Clone for Events<E> {
    fn clone(&self) -> Self {
        Events {
            tx: self.tx.clone(),
            id: self.id,
        }
    }
}

impl<E: Send + 'static> Events<E> {
    /// Tells the machine `event`; gives it back if the supervisor has
    /// finished.
    pub fn send(&self, event: E) -> Result<(), E> {
        // On the loop's own thread (a worker it killed itself has ended),
        // straight into the loop's own queue.
        let event = match super::own_news::push(self.id, event) {
            Ok(()) => return Ok(()),
            Err(event) => event,
        };
        self.tx.send(Inbox::Event(event)).map_err(|e| match e.0 {
            Inbox::Event(event) => event,
            _ => unreachable!("sent an event"),
        })
    }

    /// Hands the loop a thread that watches a worker, to be joined before
    /// the supervisor ends.
    pub fn watcher(&self, handle: JoinHandle<()>) {
        if let Err(e) = self.tx.send(Inbox::Watcher(handle)) {
            // The supervisor has ended: nobody else will join it.
            if let Inbox::Watcher(handle) = e.0 {
                let _ = handle.join();
            }
        }
    }
}

impl<E> std::fmt::Debug for Events<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

/// A handle on a running supervisor: send it events, kill it, wait for
/// it. Cheap to clone.
pub struct Handle<E> {
    shared: Arc<HandleShared<E>>,
}

struct HandleShared<E> {
    id: u64,
    name: Arc<str>,
    tx: Sender<Inbox<E>>,
    tomb: Tomb,
    thread: JoinSlot,
}

impl<E> Clone for Handle<E> {
    fn clone(&self) -> Self {
        Handle {
            shared: self.shared.clone(),
        }
    }
}

impl<E: Send + 'static> Handle<E> {
    /// The supervisor's id (see [`threads::serve`](crate::threads::serve)).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The supervisor's name.
    pub fn name(&self) -> &Arc<str> {
        &self.shared.name
    }

    /// Sends `event` to the machine; gives it back once the supervisor
    /// has finished (or is finishing and takes no more).
    pub fn send(&self, event: E) -> Result<(), E> {
        self.shared
            .tx
            .send(Inbox::Event(event))
            .map_err(|e| match e.0 {
                Inbox::Event(event) => event,
                _ => unreachable!("sent an event"),
            })
    }

    /// Asks the supervisor to stop. Returns at once; idempotent.
    pub fn kill(&self) {
        let _ = self.shared.tx.send(Inbox::Kill);
    }

    /// The supervisor's lifetime: dying once it stops, dead once it has
    /// stopped and every thread is joined... except that `wait` also joins
    /// the loop thread itself, so use [`wait`](Self::wait) to wait.
    pub fn tomb(&self) -> &Tomb {
        &self.shared.tomb
    }

    /// Fails with [`WouldDeadlock`] when called on one of the
    /// supervisor's own threads, where waiting for it would never end.
    pub fn check_not_own_thread(&self, call: &'static str) -> Result<(), WouldDeadlock> {
        if crate::threads::serves(self.shared.id) {
            return Err(WouldDeadlock {
                supervisor: self.shared.name.to_string(),
                call,
            });
        }
        Ok(())
    }

    /// Waits until the supervisor has finished and every thread it started
    /// has been joined, and returns its result; fails at once with
    /// [`WouldDeadlock`] on one of its own threads.
    pub fn wait(&self) -> Result<(), Error> {
        self.check_not_own_thread("wait")?;
        let result = self.shared.tomb.wait();
        self.shared.thread.join();
        result
    }

    /// Registers a completion callback (see [`Worker::on_done`](crate::Worker::on_done)).
    pub fn on_done(&self, callback: DoneCallback) {
        self.shared.tomb.on_done(callback);
    }

    /// A signal that disconnects once the supervisor has finished.
    pub fn dead_signal(&self) -> Signal {
        self.shared.tomb.dead()
    }
}

impl<E> std::fmt::Debug for Handle<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.shared.name)
            .field("state", &self.shared.tomb.state())
            .finish()
    }
}

/// Starts a supervisor: its loop thread (`<name>-loop`) running `machine`.
///
/// `run_job` runs each of the machine's jobs on an executor thread
/// (`<name>-start-<n>`); it must report back through the [`Events`] with
/// an event for which [`Machine::ends_job`] is true, and contain the
/// panics of the user code it calls. `refused` is called, on the loop
/// thread, with each job for which no thread can be had, so that it can
/// send the machine the failure its job would have reported.
///
/// Fails only when the system refuses the loop thread, with what the
/// system said.
pub fn start<M, R, F>(
    config: DriverConfig,
    machine: M,
    run_job: R,
    mut refused: F,
) -> Result<Handle<M::Event>, std::io::Error>
where
    M: Machine,
    R: Fn(M::Job, &Events<M::Event>) + Send + Sync + 'static,
    F: FnMut(M::Job, Error, &Events<M::Event>) + Send + 'static,
{
    let id = crate::threads::supervisor_id();
    let (tx, rx) = crossbeam_channel::unbounded();
    let events = Events { tx: tx.clone(), id };
    let tomb = Tomb::new();
    let name = config.name.clone();

    let run_events = events.clone();
    let refused_events = events.clone();
    let run_name = name.clone();
    // The loop and the executor threads run in the supervisor's span, so
    // the spans of the incarnations its jobs start are its children.
    let span = tracing::error_span!("supervisor", name = %name);
    let job_span = span.clone();
    let executor = StartQueue::new(
        format!("{name}-start"),
        move |job: Job<M::Job>| {
            let _span = job_span.enter();
            match job {
                Job::Machine(job) => run_job(job, &run_events),
                Job::Work(batch) => {
                    batch.work(&run_name);
                    let _ = run_events.tx.send(Inbox::Worked);
                }
                Job::Finalize(finalize) => {
                    let result = catch_panic(
                        || format!("the final result of supervisor {run_name:?}"),
                        finalize,
                    );
                    let _ = run_events.tx.send(Inbox::Finalized(result));
                }
            }
        },
        move |job, error: Error| match job {
            Job::Machine(job) => refused(job, error, &refused_events),
            Job::Work(batch) => {
                let _ = refused_events.tx.send(Inbox::Retry(batch));
            }
            Job::Finalize(finalize) => {
                // No thread at all: the end has to be computed somewhere.
                tracing::error!(error = %error, "no thread for the final result; computing it on the loop");
                let result = catch_panic(|| "the final result".to_owned(), finalize);
                let _ = refused_events.tx.send(Inbox::Finalized(result));
            }
        },
    )
    .limit(config.threads)
    .stall(config.stall)
    .linger(config.linger);

    let stall = config.stall;
    let event_loop = Loop {
        id,
        own: None,
        name: name.clone(),
        machine,
        rx,
        clock: config.clock,
        tomb: tomb.clone(),
        executor,
        fx: Some(Effects::on_loop()),
        work: Vec::new(),
        batches: Vec::new(),
        retry: Vec::new(),
        rescue_at: None,
        stall,
        timer: None,
        watchers: Vec::new(),
        result: None,
        broken: false,
        flush: false,
        holding: false,
        killing: false,
    };
    let thread = JoinSlot::default();
    let loop_tomb = tomb.clone();
    let loop_name = name.clone();
    thread.spawn(format!("{name}-loop"), move || {
        let _entered = span.enter();
        crate::threads::serve(id);
        let guard = LoopGuard::enter();
        let result = match catch_unwind(AssertUnwindSafe(|| event_loop.run())) {
            Ok(result) => result,
            Err(payload) => {
                // A bug in the driver itself: whatever is left of the
                // loop has been dropped during the unwind. End the
                // supervisor, so nobody waits for it forever.
                let panicked = Panicked::from_payload("the supervisor loop", &*payload);
                tracing::error!(error = %panicked, "supervisor loop died");
                // What the unwind buried has nowhere safe to go.
                std::mem::forget(take_graveyard());
                Err(Error::new(SupervisorFailed {
                    supervisor: loop_name.to_string(),
                    reason: panicked.to_string(),
                }))
            }
        };
        drop(guard);
        loop_tomb.kill(None);
        loop_tomb.done(result);
    })?;
    drop(events);
    Ok(Handle {
        shared: Arc::new(HandleShared {
            id,
            name,
            tx,
            tomb,
            thread,
        }),
    })
}

/// A handle on a supervisor that never ran: it has already finished with
/// `error` (the system refused its loop thread, say). Sends give their
/// event back, `wait` returns `error` at once; no thread is involved.
///
/// For a supervisor whose constructor promises a supervisor rather than an
/// error, so that its callers need no second error path (as
/// [`spawn`](crate::spawn()) returns a dead worker when it gets no thread).
pub fn finished<E: Send + 'static>(name: impl Into<Arc<str>>, error: Error) -> Handle<E> {
    let (tx, rx) = crossbeam_channel::unbounded();
    drop(rx);
    let tomb = Tomb::new();
    tomb.kill(None);
    tomb.done(Err(error));
    Handle {
        shared: Arc::new(HandleShared {
            id: crate::threads::supervisor_id(),
            name: name.into(),
            tx,
            tomb,
            thread: JoinSlot::default(),
        }),
    }
}

/// Moves what the loop thread's graveyard holds into `work`, to be dropped
/// off the loop.
fn bury_graveyard(work: &mut Vec<Work>) {
    if super::offloop::graveyard_is_empty() {
        return;
    }
    let graveyard = take_graveyard();
    work.extend(graveyard.calls.into_iter().map(Work::Call));
    work.extend(graveyard.workers.into_iter().map(Work::DropWorker));
    work.extend(graveyard.values.into_iter().map(Work::Drop));
}

/// How many messages the loop handles between two looks at the clock, so
/// a flood of messages cannot delay a due deadline.
const BATCH: usize = 256;

/// How many workers the loop kills itself (see `Loop::kill_quietly`)
/// before it handles the endings they caused.
const KILL_CHUNK: usize = 512;

/// How many values the loop's graveyard gathers during a burst before
/// they go to the executor as one batch; the rest go at the end of the
/// burst. They are only dropped, so they wait without harm, and the
/// executor's threads do not compete with the loop for the CPU (nor for
/// the allocator) while it is busiest.
const GRAVES_LIMIT: usize = 64 * BATCH_LIMIT;

/// The most jobs held back during a burst of requests.
const HOLD_BACK: usize = 8192;

/// How long the loop looks for more messages after one, before it hands
/// held-back jobs over and blocks: the requests of a caller making many
/// calls in a row arrive well within it, so a burst is seen as one; and a
/// deadline due within it is waited for directly, without a clock timer
/// (a timer sleep overshoots by tens of microseconds of timer slack).
/// Real time: a matter of CPU scheduling, not of the machine's rules.
const SPIN: Duration = Duration::from_micros(5);

/// The loop thread's state.
struct Loop<M: Machine> {
    /// The supervisor's id.
    id: u64,
    /// The loop's own news (see [`own_news`](super::own_news)), while it
    /// runs.
    own: Option<OwnNews<M::Event>>,
    name: Arc<str>,
    machine: M,
    rx: Receiver<Inbox<M::Event>>,
    clock: Arc<dyn Clock>,
    tomb: Tomb,
    executor: StartQueue<Job<M::Job>>,
    /// Reused between transitions (taken out during one).
    fx: Option<Effects<M::Job>>,
    /// Work asked for and not yet packed into a batch.
    work: Vec<Work>,
    /// Batches handed over and not complete, with how many of their items
    /// were done at the last progress check.
    batches: Vec<(Arc<Batch>, usize)>,
    /// Batches no thread could be had for.
    retry: Vec<Arc<Batch>>,
    /// When batches' progress is checked next (real time).
    rescue_at: Option<Instant>,
    stall: Duration,
    /// The clock's timer for the machine's earliest deadline, and that
    /// deadline. A [`Timer`](crate::Timer), so that a test clock sees it
    /// dropped when a nearer deadline replaces it.
    timer: Option<(crate::Timer, Instant)>,
    watchers: Vec<JoinHandle<()>>,
    /// The supervisor's result, once known.
    result: Option<Result<(), Error>>,
    /// A machine call panicked: the machine is not called again.
    broken: bool,
    /// Jobs are to be handed over at the end of this transition.
    flush: bool,
    /// Jobs are held back for the end of a burst of requests.
    holding: bool,
    /// The loop is killing workers itself (`Loop::kill_quietly`): the
    /// work asked for meanwhile waits until it is done.
    killing: bool,
}

impl<M: Machine> Loop<M> {
    fn run(mut self) -> Result<(), Error> {
        self.own = Some(OwnNews::install(self.id));
        while self.result.is_none() {
            self.block();
            self.stay_busy();
            if self.result.is_none() {
                self.step(|m, _, fx| m.burst_end(fx));
            }
            self.flush_all();
            self.arm_timer();
        }
        // Sends from this thread go to the channel again, where `close`
        // finds them.
        self.own = None;
        self.close()
    }

    /// Blocks until a message, the machine's timer, or a real-time check
    /// (the executor's stall rule, batches' progress) is due; or, if the
    /// loop's own news is waiting, handles it instead.
    fn block(&mut self) {
        if self.take_own_news() {
            return;
        }
        let check_at = match (self.executor.stall_deadline(), self.rescue_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = check_at.map_or(Duration::MAX, |at| {
            at.saturating_duration_since(Instant::now())
        });
        match &self.timer {
            None => match self.rx.recv_timeout(timeout) {
                Ok(msg) => self.receive(msg),
                Err(RecvTimeoutError::Timeout) => self.real_time_checks(),
                // The loop's own channel: handles and jobs hold senders,
                // and `Events` clones; never closed while it runs.
                Err(RecvTimeoutError::Disconnected) => {}
            },
            Some((timer, _)) => {
                let timer = timer.receiver().clone();
                select! {
                    recv(self.rx) -> msg => {
                        if let Ok(msg) = msg {
                            self.receive(msg);
                        }
                    }
                    recv(timer) -> _ => {
                        self.timer = None;
                        self.tick_due();
                    }
                    default(timeout) => self.real_time_checks(),
                }
            }
        }
    }

    /// Goes on handling messages and due deadlines while they keep coming,
    /// looking for more for up to [`SPIN`] before the loop blocks again.
    fn stay_busy(&mut self) {
        let mut handled = 0usize;
        let mut spin = Spin::new();
        while self.result.is_none() {
            if self.take_own_news() {
                spin = Spin::new();
                continue;
            }
            match self.rx.try_recv() {
                Ok(msg) => {
                    self.receive(msg);
                    spin = Spin::new();
                    handled += 1;
                    if handled % BATCH == 0 {
                        self.tick_due();
                        self.real_time_checks();
                    }
                    continue;
                }
                Err(_) => {
                    self.tick_due();
                    self.hand_over_work();
                }
            }
            if !spin.again(SPIN) {
                self.real_time_checks();
                return;
            }
        }
    }

    fn receive(&mut self, msg: Inbox<M::Event>) {
        match msg {
            Inbox::Event(event) => {
                if M::ends_job(&event) {
                    self.executor.finished();
                }
                // Whatever arrives after a deadline has passed sees that
                // deadline's effects, even if the timer's wake-up is still
                // queued.
                let now = self.tick_due();
                self.step_at(now, |m, now, fx| m.handle(event, now, fx));
            }
            Inbox::Kill => {
                let now = self.tick_due();
                self.step_at(now, |m, now, fx| m.kill(now, fx));
            }
            Inbox::Worked => {
                self.executor.finished();
                self.batches.retain(|(b, _)| !b.is_complete());
                if self.batches.is_empty() {
                    self.rescue_at = None;
                }
            }
            Inbox::Retry(batch) => {
                self.executor.finished();
                self.retry.push(batch);
                self.arm_rescue();
            }
            Inbox::Watcher(handle) => {
                self.watchers.retain(|h| !h.is_finished());
                self.watchers.push(handle);
            }
            Inbox::Finalized(result) => {
                self.executor.finished();
                self.result = Some(result);
            }
        }
    }

    /// Runs one machine call and carries out its effects. A panic marks
    /// the machine broken and ends the supervisor (see [`Loop::fail`]).
    fn step(&mut self, call: impl FnOnce(&mut M, Instant, &mut Effects<M::Job>)) {
        self.step_at(None, call);
    }

    /// [`Loop::step`] at `now`, if the clock was just read (by
    /// [`Loop::tick_due`]: one reading serves both).
    fn step_at(
        &mut self,
        now: Option<Instant>,
        call: impl FnOnce(&mut M, Instant, &mut Effects<M::Job>),
    ) {
        if self.broken {
            return;
        }
        let now = now.unwrap_or_else(|| self.clock.now());
        // (The transitions of the news handled while this one's kills are
        // done, see `kill_quietly`, make effects of their own.)
        let mut fx = self.fx.take().unwrap_or_else(Effects::on_loop);
        let machine = &mut self.machine;
        let outcome = catch_unwind(AssertUnwindSafe(|| call(machine, now, &mut fx)));
        match outcome {
            Ok(()) => self.apply(&mut fx),
            Err(payload) => self.fail(&*payload, &mut fx),
        }
        self.fx = Some(fx);
        if self.flush || self.executor.held() >= HOLD_BACK {
            self.flush = false;
            self.executor.flush();
        }
    }

    fn apply(&mut self, fx: &mut Effects<M::Job>) {
        let (hold, dying, finish) = fx.take_flags();
        if !fx.jobs().is_empty() {
            if hold {
                self.holding = true;
            } else {
                self.flush = true;
            }
        }
        if !fx.jobs().is_empty() {
            for job in fx.drain_jobs() {
                self.executor.push(Job::Machine(job));
            }
        }
        // The work goes out in order, but the kills the loop may do itself
        // are done first, here (see `Effects::on_loop`): none of the work
        // is handed over while they are being done, so it still sees them
        // done first.
        if !fx.work().is_empty() {
            self.work.extend(fx.drain_work());
        }
        if fx.has_quiet() {
            self.kill_quietly(fx);
        }
        // Calls deferred on the loop go out in order with the rest; the
        // values it let go of wait in its graveyard until a batch of them
        // is due (they are only dropped: the order does not matter).
        let graves = super::offloop::take_calls_into(&mut self.work);
        if graves >= GRAVES_LIMIT {
            self.hand_over_graves();
        }
        if self.work.len() >= BATCH_LIMIT && !self.killing {
            self.pack_work();
            self.flush = true;
        }
        if dying {
            self.tomb.kill(None);
        }
        match finish {
            None => {}
            Some(Finish::Now(result)) => self.result = Some(result),
            Some(Finish::Later(finalize)) => {
                self.executor.push(Job::Finalize(finalize));
                self.flush = true;
            }
        }
    }

    /// Kills, on the loop, the workers `fx` kept apart for it: the
    /// library's own thread-free ones, whose kill runs no user code (no
    /// thread hop either). Each such kill makes its worker report its end
    /// at once, so every [`KILL_CHUNK`] kills the news that came meanwhile
    /// is handled before the next ones: stopping 100,000 workers never
    /// queues 100,000 endings (the memory they take, and the cache misses
    /// of handling them long after their entries were last touched). A
    /// kill the worker refuses to be quiet about (a dying hook was
    /// registered since) goes to the executor instead.
    fn kill_quietly(&mut self, fx: &mut Effects<M::Job>) {
        // News handled meanwhile hands no work over before these kills
        // are done (see `apply`); and its own kills are done at once.
        let outer = !std::mem::replace(&mut self.killing, true);
        let mut killed = 0usize;
        for (worker, label) in fx.drain_quiet() {
            match super::quiet::kill(worker) {
                Ok(()) => {
                    killed += 1;
                    if outer && killed % KILL_CHUNK == 0 {
                        self.take_news();
                    }
                }
                Err(worker) => self.work.push(Work::Kill(worker, label)),
            }
        }
        if outer {
            self.killing = false;
        }
    }

    /// Handles the loop's own news, then the messages queued now (not
    /// those that come meanwhile).
    fn take_news(&mut self) {
        self.take_own_news();
        for _ in 0..self.rx.len() {
            match self.rx.try_recv() {
                Ok(msg) => self.receive(msg),
                Err(_) => return,
            }
        }
    }

    /// Handles the news the loop made itself (the ends of the workers it
    /// killed), all of it, including what handling it makes; returns
    /// whether there was any. One reading of the clock serves a batch:
    /// its news came at once.
    fn take_own_news(&mut self) -> bool {
        let Some(own) = &mut self.own else {
            return false;
        };
        if own.is_empty() {
            return false;
        }
        loop {
            let Some(own) = &mut self.own else {
                return true;
            };
            let mut news = own.take();
            if news.is_empty() {
                own.give_back(news);
                return true;
            }
            let now = match self.tick_due() {
                Some(now) => now,
                // No deadline to look at: the clock was not read.
                None => self.clock.now(),
            };
            for event in news.drain(..) {
                if self.result.is_some() {
                    // The supervisor has finished: dropped, as `close`
                    // drops what its channel still holds.
                    continue;
                }
                if M::ends_job(&event) {
                    self.executor.finished();
                }
                self.step_at(Some(now), |m, now, fx| m.handle(event, now, fx));
            }
            if let Some(own) = &mut self.own {
                own.give_back(news);
            }
        }
    }

    /// A machine call panicked: the machine is not trusted again. Every
    /// worker it holds is killed and waited for, and the supervisor ends
    /// with [`SupervisorFailed`].
    fn fail(&mut self, payload: &(dyn std::any::Any + Send), fx: &mut Effects<M::Job>) {
        self.broken = true;
        let panicked = Panicked::from_payload("the supervisor's state machine", payload);
        tracing::error!(error = %panicked, "supervisor failed; stopping its workers");
        for job in fx.drain_jobs() {
            self.work.push(Work::Drop(Box::new(job)));
        }
        self.work.extend(fx.drain_work());
        self.work.extend(
            fx.drain_quiet()
                .map(|(worker, label)| Work::Kill(worker, label)),
        );
        let _ = fx.take_flags();
        self.tomb.kill(None);
        let machine = &mut self.machine;
        let workers = catch_unwind(AssertUnwindSafe(|| machine.abandon())).unwrap_or_else(|_| {
            tracing::error!("cannot list the workers of a failed supervisor; they may run on");
            Vec::new()
        });
        let label: Arc<str> = Arc::from("a worker of a failed supervisor");
        for worker in &workers {
            self.work.push(Work::Kill(worker.clone(), label.clone()));
        }
        self.work.extend(workers.into_iter().map(Work::Reap));
        self.result = Some(Err(Error::new(SupervisorFailed {
            supervisor: self.name.to_string(),
            reason: panicked.to_string(),
        })));
    }

    /// Handles the machine's deadlines that are due.
    fn tick_due(&mut self) -> Option<Instant> {
        if self.broken {
            return None;
        }
        loop {
            let machine = &mut self.machine;
            let next = match catch_unwind(AssertUnwindSafe(|| machine.poll_timeout())) {
                Ok(next) => next,
                Err(payload) => {
                    let mut fx = self.fx.take().unwrap_or_else(Effects::on_loop);
                    self.fail(&*payload, &mut fx);
                    self.fx = Some(fx);
                    return None;
                }
            };
            let at = next?;
            let now = self.clock.now();
            if at > now {
                // Nothing is due: this reading of the clock is still "now"
                // for whatever is handled next.
                return Some(now);
            }
            self.step_at(Some(now), |m, now, fx| m.handle_timeout(now, fx));
            if self.broken {
                return None;
            }
        }
    }

    /// The checks that run on real time: the executor's stall rule, and
    /// the progress of work batches.
    fn real_time_checks(&mut self) {
        self.executor.check_stall();
        let Some(at) = self.rescue_at else { return };
        let now = Instant::now();
        if now < at {
            return;
        }
        for batch in std::mem::take(&mut self.retry) {
            self.executor.push(Job::Work(batch));
        }
        for (batch, seen) in &mut self.batches {
            let done = batch.done();
            if done == *seen && batch.has_unclaimed() {
                tracing::debug!(supervisor = %self.name, ?batch, "work is stuck behind an item; adding a ticket");
                self.executor.push(Job::Work(batch.clone()));
            }
            *seen = done;
        }
        self.rescue_at = None;
        self.arm_rescue();
        self.executor.flush();
    }

    fn arm_rescue(&mut self) {
        if self.rescue_at.is_none() && !(self.batches.is_empty() && self.retry.is_empty()) {
            self.rescue_at = Some(crate::deadline(Instant::now(), self.stall));
        }
    }

    /// Hands what the loop let go of (its graveyard's values) to the
    /// executor, to be dropped there: one batch for all of them, with no
    /// item made for each on the loop. A value whose `Drop` blocks holds up
    /// only the drops behind it, and those for about one stall period (a
    /// second ticket takes them, as for any batch); kills and calls are
    /// never in such a batch.
    fn hand_over_graves(&mut self) {
        let (workers, values) = super::offloop::take_graves();
        if workers.is_empty() && values.is_empty() {
            return;
        }
        let batch = Batch::graves(workers, values);
        self.executor.push(Job::Work(batch.clone()));
        self.batches.push((batch, 0));
        self.arm_rescue();
        self.flush = true;
    }

    /// Packs pending work, and the loop's graveyard, into batches for the
    /// executor.
    fn pack_work(&mut self) {
        self.hand_over_graves();
        let work = std::mem::take(&mut self.work);
        if work.is_empty() {
            return;
        }
        if work.len() <= BATCH_LIMIT {
            // The common case: the list is the batch, as it is.
            let batch = Batch::new(work);
            self.executor.push(Job::Work(batch.clone()));
            self.batches.push((batch, 0));
            self.arm_rescue();
            return;
        }
        let mut items = work.into_iter();
        loop {
            let chunk: Vec<Work> = items.by_ref().take(BATCH_LIMIT).collect();
            if chunk.is_empty() {
                break;
            }
            let batch = Batch::new(chunk);
            self.executor.push(Job::Work(batch.clone()));
            self.batches.push((batch, 0));
        }
        self.arm_rescue();
    }

    fn flush_all(&mut self) {
        if !self.work.is_empty() || super::offloop::graves() > 0 {
            self.pack_work();
        }
        self.executor.flush();
        self.holding = false;
    }

    /// The inbox is empty for now: hands pending work over at once rather
    /// than after the spin, so that while the loop looks for more messages
    /// the executor is already killing or reaping (a chain of stops, each
    /// waiting for the one before, then costs no spin per link). Unless
    /// jobs are held for the end of a burst of requests: they would go
    /// with it.
    fn hand_over_work(&mut self) {
        if self.holding || (self.work.is_empty() && super::offloop::graves() == 0) {
            return;
        }
        self.pack_work();
        self.executor.flush();
    }

    /// Asks the clock for a timer for the machine's earliest deadline,
    /// unless the current timer fires no later than that.
    fn arm_timer(&mut self) {
        if self.broken || self.result.is_some() {
            return;
        }
        let machine = &mut self.machine;
        let Ok(Some(deadline)) = catch_unwind(AssertUnwindSafe(|| machine.poll_timeout())) else {
            return;
        };
        if let Some((_, armed)) = &self.timer {
            if *armed <= deadline {
                return;
            }
        }
        let now = self.clock.now();
        let timer = self.clock.timer(deadline.saturating_duration_since(now));
        self.timer = Some((timer, deadline));
    }

    /// Leaves nothing behind: closes the inbox (what was still queued is
    /// dropped off the loop, and callers waiting for answers learn that
    /// the supervisor is gone), hands the machine and every value the loop
    /// let go of to the executor, joins the executor and the watcher
    /// threads, and returns the result.
    fn close(self) -> Result<(), Error> {
        let Loop {
            name,
            machine,
            rx,
            mut executor,
            mut work,
            watchers,
            result,
            ..
        } = self;
        // Take what is still queued, so that no watcher thread goes
        // unjoined; the rest is buried (it may hold user values).
        let mut watchers = watchers;
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Inbox::Watcher(handle) => watchers.push(handle),
                // Dropped here, not buried whole: what an event holds of
                // user code is `OffLoop` and goes to the graveyard anyway,
                // while a request's reply goes now, so that its caller
                // learns at once that the supervisor is gone rather than
                // after the executor has dropped, behind a slow `Drop`,
                // everything the loop let go of.
                Inbox::Event(event) => drop(event),
                other => bury(other),
            }
        }
        drop(rx);
        work.push(Work::Drop(Box::new(machine)));
        bury_graveyard(&mut work);
        executor.push(Job::Work(Batch::new(work)));
        executor.flush();
        executor.join();
        for handle in watchers {
            let _ = handle.join();
        }
        tracing::debug!(supervisor = %name, "supervisor finished");
        result.unwrap_or(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_handle_refuses_everything_and_returns_its_error() {
        let handle: Handle<u32> = finished("never-ran", Error::msg("no thread"));
        assert_eq!(handle.send(7), Err(7));
        handle.kill();
        assert_eq!(handle.wait().unwrap_err().to_string(), "no thread");
        assert_eq!(handle.wait().unwrap_err().to_string(), "no thread");
        assert!(matches!(
            handle.dead_signal().try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        ));
        assert!(handle.check_not_own_thread("wait").is_ok());
        assert_eq!(&**handle.name(), "never-ran");
    }
}

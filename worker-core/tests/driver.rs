//! The supervisor driver, with a toy machine that holds workers, kills
//! them when asked and forgets them when told they ended. What is tested
//! is the driver's promise, whatever the machine: user code never runs on
//! the loop, a blocking item holds up only itself, a broken machine ends
//! the supervisor with an error after stopping its workers, waits from the
//! supervisor's own threads fail fast, and every thread is joined when
//! `wait` returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use worker_core::supervisor::offloop::OffLoop;
use worker_core::supervisor::{Call, DriverConfig, Effects, Finish, Handle, Machine, Reply, start};
use worker_core::threads::live_threads_with_prefix;
use worker_core::{
    DoneCallback, Error, Passive, SharedWorker, Signal, SupervisorFailed, Tomb, WallClock, Worker,
    WouldDeadlock,
};

const LONG: Duration = Duration::from_secs(10);

enum Event {
    /// Hold a worker.
    Adopt(OffLoop<SharedWorker>, Reply<usize>),
    /// A held worker has ended: reap it.
    Ended(usize),
    /// A fatal error, for the end's ranking.
    Fatal(Error),
    /// The next transition panics.
    Explode,
    /// How many workers are held.
    Count(Reply<usize>),
    /// Let go of a value (its Drop is user code).
    Forget(OffLoop<Box<dyn Send>>),
    /// The loop waits (in the machine) until this disconnects, so that
    /// what is sent meanwhile queues up.
    Hold(Receiver<()>),
    /// End now, with `Ok`.
    End,
}

#[derive(Default)]
struct Toy {
    workers: Vec<Option<OffLoop<SharedWorker>>>,
    dying: bool,
    finished: bool,
    errors: Vec<Error>,
}

impl Toy {
    fn settle(&mut self, fx: &mut Effects<()>) {
        if self.dying && !self.finished && self.workers.iter().all(Option::is_none) {
            self.finished = true;
            let errors = std::mem::take(&mut self.errors);
            let ranked_on = std::thread::current().name().map(str::to_owned);
            fx.finish(Finish::Later(Box::new(move || {
                // The ranking is user code: it must not run on the loop.
                let here = std::thread::current().name().map(str::to_owned);
                assert_ne!(here, ranked_on, "ranked on the loop thread");
                match errors.into_iter().max_by_key(|e| e.to_string().len()) {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            })));
        }
    }
}

impl Machine for Toy {
    type Event = Event;
    type Job = ();

    fn handle(&mut self, event: Event, _now: Instant, fx: &mut Effects<()>) {
        match event {
            Event::Adopt(worker, reply) => {
                self.workers.push(Some(worker));
                reply.send(self.workers.len() - 1);
            }
            Event::Ended(i) => {
                if let Some(w) = self.workers.get_mut(i).and_then(Option::take) {
                    fx.reap(w.into_inner());
                }
            }
            Event::Fatal(e) => self.errors.push(e),
            Event::Explode => panic!("the toy machine exploded"),
            Event::Count(reply) => reply.send(self.workers.iter().flatten().count()),
            Event::Forget(value) => drop(value),
            Event::Hold(until) => {
                let _ = until.recv();
            }
            Event::End => {
                self.finished = true;
                fx.finish(Finish::Now(Ok(())));
            }
        }
        self.settle(fx);
    }

    fn kill(&mut self, _now: Instant, fx: &mut Effects<()>) {
        if !self.dying {
            self.dying = true;
            fx.dying();
            for (i, w) in self.workers.iter().enumerate() {
                if let Some(w) = w {
                    fx.kill((**w).clone(), Arc::from(format!("toy-{i}")));
                }
            }
        }
        self.settle(fx);
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant, _fx: &mut Effects<()>) {}

    fn ends_job(_event: &Event) -> bool {
        false
    }

    fn abandon(&mut self) -> Vec<SharedWorker> {
        self.workers
            .iter()
            .flatten()
            .map(|w| (**w).clone())
            .collect()
    }
}

fn toy(name: &str) -> Handle<Event> {
    start(
        DriverConfig::new(name, Arc::new(WallClock)),
        Toy::default(),
        |(), _| {},
        |(), _, _| {},
    )
    .expect("driver starts")
}

/// Hands `worker` to the toy, and arranges for its end to be reported.
fn adopt(handle: &Handle<Event>, worker: SharedWorker) -> usize {
    let (call, reply) = Call::new();
    assert!(
        handle
            .send(Event::Adopt(OffLoop::new(worker.clone()), reply))
            .is_ok()
    );
    let i = call.wait().expect("adopted");
    let events = handle.clone();
    worker_core::watch(&worker, move |_| {
        let _ = events.send(Event::Ended(i));
    });
    i
}

fn count(handle: &Handle<Event>) -> Option<usize> {
    let (call, reply) = Call::new();
    handle.send(Event::Count(reply)).ok()?;
    call.wait().ok()
}

/// A value that reports the thread it is dropped on.
struct Tattletale(Sender<Option<String>>);

impl Drop for Tattletale {
    fn drop(&mut self) {
        let _ = self
            .0
            .send(std::thread::current().name().map(str::to_owned));
    }
}

#[test]
fn values_the_machine_lets_go_of_are_dropped_off_the_loop() {
    let name = "drv-test-drops";
    let handle = toy(name);
    let (tx, dropped_on) = unbounded();
    let value: Box<dyn Send> = Box::new(Tattletale(tx));
    assert!(handle.send(Event::Forget(OffLoop::new(value))).is_ok());
    let thread = dropped_on.recv_timeout(LONG).unwrap().unwrap();
    assert!(thread.starts_with(&format!("{name}-start-")), "{thread}");
    handle.kill();
    handle.wait().unwrap();
    assert_eq!(live_threads_with_prefix(name), 0);
}

/// A worker whose `kill` blocks until `release` disconnects, after saying
/// on `entered` that it has started blocking.
struct Stubborn {
    tomb: Tomb,
    entered: Sender<()>,
    release: Receiver<()>,
}

impl Worker for Stubborn {
    fn kill(&self) {
        let _ = self.entered.send(());
        let _ = self.release.recv();
        self.tomb.kill(None);
        self.tomb.done(Ok(()));
    }
    fn wait(&self) -> Result<(), Error> {
        self.tomb.wait()
    }
    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        Worker::on_done(&self.tomb, callback)
    }
    fn dead_signal(&self) -> Option<Signal> {
        Some(self.tomb.dead())
    }
}

#[test]
fn a_blocking_kill_holds_up_only_itself() {
    let name = "drv-test-stubborn";
    let handle = toy(name);
    let (entered_tx, entered) = bounded(1);
    let (release_tx, release) = bounded::<()>(0);
    let stubborn: SharedWorker = Arc::new(Stubborn {
        tomb: Tomb::new(),
        entered: entered_tx,
        release,
    });
    // First in line, so that the others share its work batch.
    adopt(&handle, stubborn.clone());
    let others: Vec<Arc<Passive>> = (0..600).map(|_| Arc::new(Passive::new())).collect();
    for w in &others {
        adopt(&handle, w.clone());
    }
    handle.kill();
    entered.recv_timeout(LONG).unwrap();
    for w in &others {
        assert!(
            w.tomb().dead().recv_timeout(LONG).is_err(),
            "killed although the first kill blocks"
        );
    }
    assert_eq!(count(&handle), Some(1), "the loop answers meanwhile");
    drop(release_tx);
    handle.wait().unwrap();
    assert!(stubborn.wait().is_ok());
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn a_broken_machine_ends_the_supervisor_after_stopping_its_workers() {
    let name = "drv-test-broken";
    let handle = toy(name);
    let workers: Vec<Arc<Passive>> = (0..3).map(|_| Arc::new(Passive::new())).collect();
    for w in &workers {
        adopt(&handle, w.clone());
    }
    assert!(handle.send(Event::Explode).is_ok());
    let err = handle.wait().unwrap_err();
    let failed = err.downcast_ref::<SupervisorFailed>().expect("typed");
    assert_eq!(failed.supervisor, name);
    assert!(
        failed.reason.contains("the toy machine exploded"),
        "{}",
        failed.reason
    );
    for w in &workers {
        assert!(w.wait().is_ok(), "stopped");
    }
    assert_eq!(count(&handle), None, "nobody waits for a dead supervisor");
    assert_eq!(live_threads_with_prefix(name), 0);
}

#[test]
fn a_wait_from_the_supervisors_own_threads_fails_at_once() {
    let name = "drv-test-reentrant";
    let handle = toy(name);
    let passive = Arc::new(Passive::new());
    let (result_tx, result) = bounded(1);
    let inner = handle.clone();
    // The toy's kill runs on an executor thread, and a passive worker's
    // completion callbacks run on the thread that kills it.
    passive.tomb().on_done(move |_| {
        let _ = result_tx.send(inner.wait());
    });
    adopt(&handle, passive.clone());
    handle.kill();
    let err = result.recv_timeout(LONG).unwrap().unwrap_err();
    assert!(err.is::<WouldDeadlock>(), "{err}");
    handle.wait().unwrap();
}

#[test]
fn the_end_is_ranked_off_the_loop() {
    let handle = toy("drv-test-ranking");
    for e in ["short", "the longest one", "medium"] {
        assert!(handle.send(Event::Fatal(Error::msg(e))).is_ok());
    }
    handle.kill();
    assert_eq!(handle.wait().unwrap_err().to_string(), "the longest one");
}

#[test]
fn a_dead_supervisor_refuses_events_and_gives_them_back() {
    let handle = toy("drv-test-dead");
    handle.kill();
    handle.wait().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let value: Box<dyn Send> = Box::new(Flag(dropped.clone()));
    let refused = handle.send(Event::Forget(OffLoop::new(value)));
    assert!(refused.is_err());
    assert!(!dropped.load(Ordering::SeqCst), "given back, not dropped");
    drop(refused);
    assert!(dropped.load(Ordering::SeqCst));
}

/// A value whose `Drop` says it started, then blocks until `release`
/// disconnects.
struct SlowDrop {
    entered: Sender<()>,
    release: Receiver<()>,
}

impl Drop for SlowDrop {
    fn drop(&mut self) {
        let _ = self.entered.send(());
        let _ = self.release.recv();
    }
}

/// Found by the chaos test: a request still queued when the supervisor
/// ended was buried whole, with the values the loop let go of, and its
/// caller only learnt that the supervisor was gone once the executor got
/// to it, behind a slow `Drop`: a query froze for as long.
#[test]
fn a_request_queued_at_the_end_is_refused_at_once_not_behind_a_slow_drop() {
    let name = "drv-test-queued-at-end";
    let handle = start(
        DriverConfig::new(name, Arc::new(WallClock)).threads(1),
        Toy::default(),
        |(), _| {},
        |(), _, _| {},
    )
    .expect("driver starts");
    // The only executor thread blocks in a value's Drop.
    let (entered_tx, entered) = bounded(1);
    let (release, release_rx) = bounded::<()>(0);
    let slow: Box<dyn Send> = Box::new(SlowDrop {
        entered: entered_tx,
        release: release_rx,
    });
    assert!(handle.send(Event::Forget(OffLoop::new(slow))).is_ok());
    entered.recv_timeout(LONG).unwrap();
    // The loop holds while the end and a query queue up behind it.
    let (unhold, hold) = bounded::<()>(0);
    assert!(handle.send(Event::Hold(hold)).is_ok());
    assert!(handle.send(Event::End).is_ok());
    let (call, reply) = Call::new();
    assert!(handle.send(Event::Count(reply)).is_ok());
    drop(unhold);
    let (answered, answer) = bounded(1);
    std::thread::spawn(move || {
        let _ = answered.send(call.wait());
    });
    let got = answer.recv_timeout(LONG);
    drop(release);
    assert!(
        matches!(got, Ok(Err(worker_core::supervisor::CallError::Closed))),
        "the query was not refused at once: {got:?}"
    );
    assert!(handle.wait().is_ok());
    assert_eq!(live_threads_with_prefix(name), 0);
}

/// A worker whose `Drop` panics (when it is not already unwinding).
struct DropBomb(Passive);

impl Drop for DropBomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("DropBomb dropped");
        }
    }
}

impl Worker for DropBomb {
    fn kill(&self) {
        self.0.kill();
    }
    fn wait(&self) -> Result<(), Error> {
        self.0.wait()
    }
}

/// Found by the chaos test: a kill item held the last reference to its
/// worker and dropped it outside the panic containment, so a panicking
/// `Drop` killed the executor thread and the rest of its batch was never
/// done (then dropped, on the loop, as the supervisor closed).
#[test]
fn a_work_item_holding_a_workers_last_reference_contains_its_drop() {
    use worker_core::supervisor::effects::{Batch, Work};
    let (tx, dropped_on) = unbounded();
    let value: Box<dyn Send> = Box::new(Tattletale(tx));
    let killed: SharedWorker = Arc::new(DropBomb(Passive::new()));
    let reaped: SharedWorker = Arc::new(DropBomb(Passive::new()));
    reaped.kill();
    let batch = Batch::new(vec![
        Work::Kill(killed, Arc::from("bomb")),
        Work::Reap(reaped),
        Work::Drop(value),
    ]);
    let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batch.work("items")));
    assert!(worked.is_ok(), "a worker's Drop panic escaped its item");
    assert!(batch.is_complete());
    assert!(dropped_on.try_recv().is_ok(), "the last item was not done");
}

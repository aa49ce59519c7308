//! What a machine asks its driver to do, and how the driver gets user
//! code done off the loop.
//!
//! A machine's transitions write into an [`Effects`]: jobs to run (its
//! start functions), workers to kill, workers to reap (wait for, which
//! joins their threads, then drop), calls to make (metrics hooks), values
//! to drop, and the supervisor's end. Everything but the end is user code,
//! so the driver runs it on its executor threads, never on the loop.
//!
//! # Work batches
//!
//! Killing 10,000 workers one executor job each would cost more channel
//! traffic than the kills themselves, so the driver packs kills, reaps,
//! calls and drops into [`Batch`]es of up to [`BATCH_LIMIT`] items, one
//! executor job each. A batch is worked through in order by the thread
//! that took it. But one item may block (a `kill` that waits on a lock, a
//! `Drop` that takes seconds), and the items behind it must not wait for
//! it: while a batch is outstanding the driver checks its progress every
//! stall period, and when it has items nobody has claimed and none was
//! done since the last check, the driver queues another *ticket* for the
//! same batch. Whichever executor thread takes the ticket claims the next
//! items; and since the ticket is a job that waits, the executor's own
//! stall rule adds a thread if every thread is stuck. A blocked item thus
//! holds up the rest of its batch for about one stall period.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Error, SharedWorker, catch_panic};

/// The most items in one [`Batch`].
pub const BATCH_LIMIT: usize = 256;

/// A deferred end computation: user code (an error ranking, a filter)
/// that the driver runs off the loop to get the supervisor's result.
pub type Finalize = Box<dyn FnOnce() -> Result<(), Error> + Send + 'static>;

/// How a machine's supervisor ends.
pub enum Finish {
    /// With this result.
    Now(Result<(), Error>),
    /// With the result of this function, run off the loop.
    Later(Finalize),
}

impl fmt::Debug for Finish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finish::Now(result) => f.debug_tuple("Now").field(result).finish(),
            Finish::Later(_) => f.write_str("Later(..)"),
        }
    }
}

/// One piece of user code to run off the loop.
pub enum Work {
    /// Call the worker's `kill`; the label names it in logs.
    Kill(SharedWorker, Arc<str>),
    /// The worker has finished: call its `wait` (joining its threads) and
    /// drop it.
    Reap(SharedWorker),
    /// Make a call (a metrics hook, say).
    Call(Box<dyn FnOnce() + Send + 'static>),
    /// Drop a worker handle.
    DropWorker(SharedWorker),
    /// Drop a value.
    Drop(Box<dyn Send + 'static>),
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::Kill(_, label) => write!(f, "Kill({label:?})"),
            Work::Reap(_) => f.write_str("Reap"),
            Work::Call(_) => f.write_str("Call"),
            Work::DropWorker(_) => f.write_str("DropWorker"),
            Work::Drop(_) => f.write_str("Drop"),
        }
    }
}

impl Work {
    /// Does it, containing panics (logged: there is nobody to return an
    /// error to, and a kill that panicked leaves its worker to the
    /// supervisor's stuck reporting).
    fn run(self, supervisor: &str) {
        let result = match self {
            Work::Kill(worker, label) => {
                let killed = catch_panic(
                    || format!("kill of {label:?} (supervisor {supervisor:?})"),
                    || {
                        worker.kill();
                        Ok(())
                    },
                );
                // This may be the last reference: its `Drop` is user code
                // too, contained apart (not while a panic unwinds).
                contained_drop(worker, supervisor);
                killed
            }
            Work::Reap(worker) => {
                let waited = catch_panic(
                    || format!("wait of a finished worker (supervisor {supervisor:?})"),
                    || {
                        // It has finished: its result is known; this joins
                        // its threads.
                        let _ = worker.wait();
                        Ok(())
                    },
                );
                contained_drop(worker, supervisor);
                waited
            }
            Work::Call(call) => catch_panic(
                || format!("a hook of supervisor {supervisor:?}"),
                || {
                    call();
                    Ok(())
                },
            ),
            Work::DropWorker(worker) => catch_panic(
                || format!("drop of a worker (supervisor {supervisor:?})"),
                || {
                    drop(worker);
                    Ok(())
                },
            ),
            Work::Drop(value) => catch_panic(
                || format!("drop of a value (supervisor {supervisor:?})"),
                || {
                    drop(value);
                    Ok(())
                },
            ),
        };
        if let Err(e) = result {
            tracing::error!(supervisor, error = %e, "user code panicked off the loop");
        }
    }
}

/// Drops `worker`, containing a panic in its `Drop` (logged).
fn contained_drop(worker: SharedWorker, supervisor: &str) {
    let dropped = catch_panic(
        || format!("drop of a worker (supervisor {supervisor:?})"),
        move || {
            drop(worker);
            Ok(())
        },
    );
    if let Err(e) = dropped {
        tracing::error!(supervisor, error = %e, "user code panicked off the loop");
    }
}

/// Items of [`Work`] that any number of executor threads work through,
/// each claiming the next item; see the [module docs](self).
pub struct Batch {
    items: Mutex<Items>,
    len: usize,
    done: AtomicUsize,
}

/// A batch's items not yet claimed.
enum Items {
    Work(std::vec::IntoIter<Work>),
    /// What a loop let go of: worker handles, then other values, each an
    /// item of its own (as [`Work::DropWorker`] and [`Work::Drop`]),
    /// handed over as the loop collected them.
    Graves {
        workers: std::vec::IntoIter<SharedWorker>,
        values: std::vec::IntoIter<Box<dyn Send + 'static>>,
    },
}

impl Items {
    fn next(&mut self) -> Option<Work> {
        match self {
            Items::Work(items) => items.next(),
            Items::Graves { workers, values } => workers
                .next()
                .map(Work::DropWorker)
                .or_else(|| values.next().map(Work::Drop)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Items::Work(items) => items.len(),
            Items::Graves { workers, values } => workers.len() + values.len(),
        }
    }
}

impl Batch {
    /// A batch of `items`.
    pub fn new(items: Vec<Work>) -> Arc<Batch> {
        Arc::new(Batch {
            len: items.len(),
            items: Mutex::new(Items::Work(items.into_iter())),
            done: AtomicUsize::new(0),
        })
    }

    /// A batch that drops `workers`, then `values`: a loop's graveyard,
    /// as it is (no item made for each on the loop).
    pub fn graves(workers: Vec<SharedWorker>, values: Vec<Box<dyn Send + 'static>>) -> Arc<Batch> {
        Arc::new(Batch {
            len: workers.len() + values.len(),
            items: Mutex::new(Items::Graves {
                workers: workers.into_iter(),
                values: values.into_iter(),
            }),
            done: AtomicUsize::new(0),
        })
    }

    /// Claims and does items until none is left unclaimed.
    pub fn work(&self, supervisor: &str) {
        loop {
            // The lock is held only to take the item, never while running it.
            let next = self
                .items
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .next();
            let Some(item) = next else {
                return;
            };
            item.run(supervisor);
            self.done.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// How many items are done.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Whether every item is done.
    pub fn is_complete(&self) -> bool {
        self.done() == self.len
    }

    /// Whether some item is still unclaimed.
    pub fn has_unclaimed(&self) -> bool {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
            > 0
    }

    /// How many items it was made with.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it was made empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("len", &self.len)
            .field("done", &self.done())
            .finish()
    }
}

/// What a machine's transition asks for; see the [module docs](self).
///
/// A machine only writes into it; the driver carries it out. Tests of a
/// machine read it back with the accessors.
pub struct Effects<J> {
    jobs: Vec<J>,
    work: Vec<Work>,
    hold: bool,
    dying: bool,
    finish: Option<Finish>,
    /// A loop's own: see [`Effects::on_loop`].
    on_loop: bool,
    /// Kills the loop may do itself, apart from the rest of the work.
    quiet: Vec<(SharedWorker, Arc<str>)>,
}

impl<J> Default for Effects<J> {
    fn default() -> Self {
        Effects {
            jobs: Vec::new(),
            work: Vec::new(),
            hold: false,
            dying: false,
            finish: None,
            on_loop: false,
            quiet: Vec::new(),
        }
    }
}

impl<J> Effects<J> {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `job` on an executor thread (the driver's job runner gets it).
    pub fn run(&mut self, job: J) {
        self.jobs.push(job);
    }

    /// The jobs of this transition may wait for the end of a burst of
    /// requests before they are handed to the executor (one wake-up for
    /// a burst instead of one per job).
    pub fn hold(&mut self) {
        self.hold = true;
    }

    /// The effects of a driver's loop. The kills of the library's own
    /// thread-free workers are kept apart, for the loop to do itself (see
    /// `quiet`) before any other work of the transition runs; and a reaped
    /// worker that is spent is let go of at once (dropping it runs no user
    /// code, and it has no thread to join).
    pub(crate) fn on_loop() -> Self {
        Effects {
            on_loop: true,
            ..Effects::default()
        }
    }

    /// Kill `worker` (off the loop); `label` names it in logs.
    pub fn kill(&mut self, worker: SharedWorker, label: Arc<str>) {
        if self.on_loop && super::quiet::can_kill_quietly(&worker) {
            self.quiet.push((worker, label));
        } else {
            self.work.push(Work::Kill(worker, label));
        }
    }

    /// `worker` has finished: wait for it (joining its threads) and drop
    /// it, off the loop.
    pub fn reap(&mut self, worker: SharedWorker) {
        if self.on_loop && super::quiet::is_spent(&worker) {
            // Dropping it runs no user code, and it has no thread to join.
            return;
        }
        self.work.push(Work::Reap(worker));
    }

    /// Make `call` off the loop (in order with the other work of this
    /// supervisor, unless something before it blocks).
    pub fn call(&mut self, call: impl FnOnce() + Send + 'static) {
        self.work.push(Work::Call(Box::new(call)));
    }

    /// Drop `value` off the loop.
    pub fn dispose<T: Send + 'static>(&mut self, value: T) {
        self.work.push(Work::Drop(Box::new(value)));
    }

    /// The supervisor has started dying (its dying signal fires).
    pub fn dying(&mut self) {
        self.dying = true;
    }

    /// The supervisor has nothing left to wait for: it ends with `result`.
    pub fn finish(&mut self, finish: Finish) {
        self.finish = Some(finish);
    }

    /// The jobs asked for.
    pub fn jobs(&self) -> &[J] {
        &self.jobs
    }

    /// The work asked for.
    pub fn work(&self) -> &[Work] {
        &self.work
    }

    /// Whether the jobs may be held back.
    pub fn is_held(&self) -> bool {
        self.hold
    }

    /// Whether dying was announced.
    pub fn is_dying(&self) -> bool {
        self.dying
    }

    /// The end, if announced.
    pub fn finished(&self) -> Option<&Finish> {
        self.finish.as_ref()
    }

    /// Takes the jobs out (keeping the buffer for the next transition).
    pub fn drain_jobs(&mut self) -> std::vec::Drain<'_, J> {
        self.jobs.drain(..)
    }

    /// Takes the work out (keeping the buffer for the next transition).
    pub fn drain_work(&mut self) -> std::vec::Drain<'_, Work> {
        self.work.drain(..)
    }

    /// Whether kills were kept apart for the loop.
    pub(crate) fn has_quiet(&self) -> bool {
        !self.quiet.is_empty()
    }

    /// Takes out the kills kept apart for the loop (see
    /// [`Effects::on_loop`]).
    pub(crate) fn drain_quiet(&mut self) -> std::vec::Drain<'_, (SharedWorker, Arc<str>)> {
        self.quiet.drain(..)
    }

    /// Takes the rest out: (hold, dying, finish), leaving it empty.
    pub(crate) fn take_flags(&mut self) -> (bool, bool, Option<Finish>) {
        let flags = (self.hold, self.dying, self.finish.take());
        self.hold = false;
        self.dying = false;
        flags
    }
}

impl<J> fmt::Debug for Effects<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Effects")
            .field("jobs", &self.jobs.len())
            .field("work", &self.work)
            .field("quiet", &self.quiet.len())
            .field("hold", &self.hold)
            .field("dying", &self.dying)
            .field("finish", &self.finish)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn a_batch_is_shared_by_whoever_takes_a_ticket() {
        // The first item blocks until released; a second ticket does the
        // rest meanwhile.
        let (release_tx, release) = crossbeam_channel::bounded::<()>(0);
        let (claimed_tx, claimed) = crossbeam_channel::bounded::<()>(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let mut items = vec![Work::Call(Box::new(move || {
            claimed_tx.send(()).unwrap();
            let _ = release.recv();
        }))];
        for _ in 0..10 {
            let ran = ran.clone();
            items.push(Work::Call(Box::new(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })));
        }
        let batch = Batch::new(items);
        let first = {
            let batch = batch.clone();
            std::thread::spawn(move || batch.work("test"))
        };
        claimed.recv().unwrap();
        batch.work("test");
        assert_eq!(ran.load(Ordering::SeqCst), 10);
        assert!(!batch.is_complete());
        drop(release_tx);
        first.join().unwrap();
        assert!(batch.is_complete());
    }

    #[test]
    fn panics_in_work_are_contained() {
        let after = Arc::new(AtomicBool::new(false));
        let flag = after.clone();
        let batch = Batch::new(vec![
            Work::Call(Box::new(|| panic!("hook exploded"))),
            Work::Call(Box::new(move || flag.store(true, Ordering::SeqCst))),
        ]);
        batch.work("test");
        assert!(after.load(Ordering::SeqCst));
        assert!(batch.is_complete());
    }

    struct Counted(Arc<AtomicUsize>, bool);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
            if self.1 {
                panic!("a Drop that panics");
            }
        }
    }

    #[test]
    fn a_graveyard_batch_drops_each_value_and_contains_panics() {
        let drops = Arc::new(AtomicUsize::new(0));
        let worker: SharedWorker = Arc::new(crate::Passive::new());
        let values: Vec<Box<dyn Send>> = vec![
            Box::new(Counted(drops.clone(), true)),
            Box::new(Counted(drops.clone(), false)),
            Box::new(Counted(drops.clone(), true)),
        ];
        let batch = Batch::graves(vec![worker.clone()], values);
        assert_eq!(batch.len(), 4);
        batch.work("test");
        assert_eq!(drops.load(Ordering::SeqCst), 3, "every value dropped");
        assert!(batch.is_complete());
        assert!(!batch.has_unclaimed());
        assert_eq!(Arc::strong_count(&worker), 1, "the handle was dropped");
    }

    /// A worker of the user's: its kill may run anything.
    struct Foreign;

    impl crate::Worker for Foreign {
        fn kill(&self) {}
        fn wait(&self) -> Result<(), Error> {
            Ok(())
        }
    }

    #[test]
    fn on_a_loop_the_librarys_own_kills_are_kept_apart_and_spent_reaps_dropped() {
        let passive = Arc::new(crate::Passive::new());
        let worker: SharedWorker = passive.clone();
        let label: Arc<str> = Arc::from("w");
        // Outside a loop's effects, everything is work, in order.
        let mut fx = Effects::<()>::new();
        fx.kill(worker.clone(), label.clone());
        assert_eq!(fx.work().len(), 1);
        assert_eq!(fx.drain_quiet().count(), 0);
        // A loop's own: the kill is kept for the loop to do itself...
        let mut fx = Effects::<()>::on_loop();
        fx.kill(worker.clone(), label.clone());
        assert!(fx.work().is_empty());
        assert_eq!(fx.drain_quiet().count(), 1);
        // ...and a worker that is not the library's is killed off the loop.
        let foreign: SharedWorker = Arc::new(Foreign);
        fx.kill(foreign, label);
        assert_eq!(fx.work().len(), 1);
        let _ = fx.drain_work();
        // A spent worker reaped: nothing left to do.
        crate::Worker::kill(&*passive);
        fx.reap(worker);
        assert!(fx.work().is_empty());
    }
}

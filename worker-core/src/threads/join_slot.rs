//! Joining an owner's thread from `wait`, whoever calls it, in any order.

use std::io;

use super::spawn_named;
use crate::sync::{Condvar, Mutex, MutexGuard};

/// A thread the slot can hold: std's, or loom's under the model checker.
pub(crate) trait Joinable: Send + Sized + 'static {
    /// Identifies a thread.
    type Id: Copy + Eq + Send + std::fmt::Debug;
    /// The held thread's id.
    fn id(&self) -> Self::Id;
    /// The calling thread's id.
    fn current() -> Self::Id;
    /// Waits for the thread to end (a panic that escaped it is dropped).
    fn join(self);
}

impl Joinable for std::thread::JoinHandle<()> {
    type Id = std::thread::ThreadId;

    fn id(&self) -> Self::Id {
        self.thread().id()
    }

    fn current() -> Self::Id {
        std::thread::current().id()
    }

    fn join(self) {
        let _ = std::thread::JoinHandle::join(self);
    }
}

#[cfg(loom)]
impl Joinable for loom::thread::JoinHandle<()> {
    type Id = loom::thread::ThreadId;

    fn id(&self) -> Self::Id {
        self.thread().id()
    }

    fn current() -> Self::Id {
        loom::thread::current().id()
    }

    fn join(self) {
        let _ = loom::thread::JoinHandle::join(self);
    }
}

/// Where an owner keeps the handle of a thread it started, so that every
/// caller of its `wait` returns only once that thread is gone.
///
/// [`join`](JoinSlot::join) joins the thread once; concurrent callers wait
/// until that join is over, later ones return at once. The thread itself
/// may call `join` too (a worker waiting for itself from a completion
/// callback): it returns at once instead of deadlocking on a self-join,
/// whoever else is joining. The joiner does not hold the slot's lock while
/// it joins, so no order of calls can deadlock (model-checked with loom:
/// `loom_join_slot` in the crate's unit tests).
///
/// The thread is started by [`JoinSlot::spawn`], so the handle is in the
/// slot before the thread can run: a `join` can never miss it.
///
/// ```
/// use worker_core::threads::JoinSlot;
///
/// let slot = JoinSlot::default();
/// slot.spawn("join-slot-doc".into(), || {}).unwrap();
/// slot.join();
/// slot.join(); // already joined: returns at once
/// ```
#[derive(Debug, Default)]
pub struct JoinSlot {
    slot: Slot<std::thread::JoinHandle<()>>,
}

impl JoinSlot {
    /// Starts a thread with [`spawn_named`] and keeps its handle, all under
    /// the slot's lock, so that no `join` (the thread's own included) can
    /// run before the handle is kept. Fails if the system refuses the
    /// thread, or if the slot already holds one (`AlreadyExists`).
    pub fn spawn<F>(&self, name: String, f: F) -> io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        self.slot.put(|| spawn_named(name, f))
    }

    /// The id of the thread the slot holds, until it has been joined.
    pub fn thread_id(&self) -> Option<std::thread::ThreadId> {
        self.slot.thread_id()
    }

    /// Joins the thread, unless it is the calling thread or was joined
    /// already; returns once it is gone. A panic that escaped the thread is
    /// not re-raised: the library's threads catch their user code's panics
    /// themselves.
    pub fn join(&self) {
        self.slot.join()
    }
}

/// The slot's protocol, for any [`Joinable`].
#[derive(Debug)]
pub(crate) struct Slot<T: Joinable> {
    state: Mutex<SlotState<T>>,
    joined: Condvar,
}

#[derive(Debug)]
enum SlotState<T: Joinable> {
    Empty,
    Ready(T),
    /// Someone is joining the thread with this id.
    Joining(T::Id),
    Joined,
}

impl<T: Joinable> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            state: Mutex::new(SlotState::Empty),
            joined: Condvar::new(),
        }
    }
}

impl<T: Joinable> Slot<T> {
    /// Starts a thread with `spawn` and keeps it, under the lock.
    pub(crate) fn put(&self, spawn: impl FnOnce() -> io::Result<T>) -> io::Result<()> {
        let mut state = self.lock();
        if !matches!(*state, SlotState::Empty) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this join slot already holds a thread",
            ));
        }
        *state = SlotState::Ready(spawn()?);
        Ok(())
    }

    pub(crate) fn thread_id(&self) -> Option<T::Id> {
        match &*self.lock() {
            SlotState::Ready(handle) => Some(handle.id()),
            SlotState::Joining(id) => Some(*id),
            SlotState::Empty | SlotState::Joined => None,
        }
    }

    pub(crate) fn join(&self) {
        let me = T::current();
        let mut state = self.lock();
        loop {
            match &*state {
                SlotState::Empty | SlotState::Joined => return,
                SlotState::Ready(handle) if handle.id() == me => return,
                SlotState::Joining(id) if *id == me => return,
                SlotState::Joining(_) => {
                    state = self
                        .joined
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                SlotState::Ready(handle) => {
                    let id = handle.id();
                    let SlotState::Ready(handle) =
                        std::mem::replace(&mut *state, SlotState::Joining(id))
                    else {
                        unreachable!("matched Ready above");
                    };
                    drop(state);
                    handle.join();
                    *self.lock() = SlotState::Joined;
                    self.joined.notify_all();
                    return;
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        // Nothing but this module's transitions runs under the lock.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(all(test, loom))]
mod loom_join_slot {
    use super::Slot;
    use loom::sync::Arc;
    use loom::thread;

    /// The thread joins its own slot while another thread joins it: both
    /// return, and the slot ends joined.
    #[test]
    fn loom_join_slot_self_join_and_another_joiner() {
        loom::model(|| {
            let slot: Arc<Slot<thread::JoinHandle<()>>> = Arc::new(Slot::default());
            let inner = slot.clone();
            slot.put(|| Ok(thread::spawn(move || inner.join())))
                .unwrap();
            let other = slot.clone();
            let joiner = thread::spawn(move || other.join());
            slot.join();
            joiner.join().unwrap();
            assert_eq!(slot.thread_id(), None);
        });
    }

    /// Two joiners: both return only once the thread is gone.
    #[test]
    fn loom_join_slot_concurrent_joiners() {
        loom::model(|| {
            let slot: Arc<Slot<thread::JoinHandle<()>>> = Arc::new(Slot::default());
            let done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let flag = done.clone();
            slot.put(|| {
                Ok(thread::spawn(move || {
                    flag.store(true, loom::sync::atomic::Ordering::SeqCst)
                }))
            })
            .unwrap();
            let other = slot.clone();
            let seen = done.clone();
            let joiner = thread::spawn(move || {
                other.join();
                assert!(seen.load(loom::sync::atomic::Ordering::SeqCst));
            });
            slot.join();
            assert!(done.load(loom::sync::atomic::Ordering::SeqCst));
            joiner.join().unwrap();
        });
    }
}

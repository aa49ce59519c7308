//! Keeping user code off a supervisor's loop thread, including `Drop`.
//!
//! Dropping a value runs its `Drop`, and a worker, a start closure or an
//! output value is user code: its `Drop` may panic (killing the loop), be
//! slow (stalling every caller) or block. A supervisor's loop must
//! therefore never be the one to drop such a value. Calling the right
//! "dispose" effect at every place a value leaves the machine is easy to
//! get wrong once, so the rule is enforced by type instead:
//!
//! - values that may run user code in `Drop` are held as [`OffLoop<T>`];
//! - a loop thread marks itself with [`LoopGuard`] while it runs;
//! - an `OffLoop` dropped on a marked thread does not drop its value: it
//!   moves it to the thread's *graveyard*, and the driver hands the
//!   graveyard to its executor threads (with [`take_graveyard`]), where
//!   the values are dropped under panic containment;
//! - dropped anywhere else, an `OffLoop` is just its value.
//!
//! Workers, the commonest case, go to the graveyard without an allocation
//! each.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::effects::Work;
use crate::SharedWorker;

thread_local! {
    /// Whether this thread is a supervisor's loop.
    static ON_LOOP: Cell<bool> = const { Cell::new(false) };
    static GRAVEYARD: RefCell<Graveyard> = const {
        RefCell::new(Graveyard {
            workers: Vec::new(),
            values: Vec::new(),
            calls: Vec::new(),
        })
    };
}

/// What a loop thread let go of and must not drop itself, and the calls
/// it must not make itself.
#[derive(Default)]
pub struct Graveyard {
    /// Worker handles (the common case: no box each).
    pub workers: Vec<SharedWorker>,
    /// Anything else.
    pub values: Vec<Box<dyn Send>>,
    /// Calls [deferred](defer) off the loop.
    pub calls: Vec<Box<dyn FnOnce() + Send>>,
}

impl Graveyard {
    /// Whether nothing waits to be dropped or called.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty() && self.values.is_empty() && self.calls.is_empty()
    }

    /// How many values wait to be dropped or called.
    pub fn len(&self) -> usize {
        self.workers.len() + self.values.len() + self.calls.len()
    }
}

impl fmt::Debug for Graveyard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graveyard")
            .field("workers", &self.workers.len())
            .field("values", &self.values.len())
            .field("calls", &self.calls.len())
            .finish()
    }
}

/// Marks the current thread as a supervisor's loop for as long as it
/// lives: [`OffLoop`] values dropped meanwhile go to the graveyard.
#[derive(Debug)]
pub struct LoopGuard {
    was: bool,
}

impl LoopGuard {
    /// Marks the current thread.
    #[must_use = "the thread is marked only while the guard lives"]
    pub fn enter() -> LoopGuard {
        LoopGuard {
            was: ON_LOOP.with(|on| on.replace(true)),
        }
    }
}

impl Drop for LoopGuard {
    fn drop(&mut self) {
        ON_LOOP.with(|on| on.set(self.was));
    }
}

/// Whether the current thread is a supervisor's loop.
pub fn on_loop() -> bool {
    ON_LOOP.with(Cell::get)
}

/// Whether this thread's graveyard is empty (a cheap look, for the loop
/// to make after each transition).
pub fn graveyard_is_empty() -> bool {
    GRAVEYARD.with(|g| g.borrow().is_empty())
}

/// Moves the calls this thread's graveyard holds into `work`, in order,
/// and returns how many values (worker handles and others) it still holds.
pub(crate) fn take_calls_into(work: &mut Vec<Work>) -> usize {
    GRAVEYARD.with(|g| {
        let mut g = g.borrow_mut();
        if !g.calls.is_empty() {
            work.extend(g.calls.drain(..).map(Work::Call));
        }
        g.workers.len() + g.values.len()
    })
}

/// How many values (worker handles and others) this thread's graveyard
/// holds.
pub(crate) fn graves() -> usize {
    GRAVEYARD.with(|g| {
        let g = g.borrow();
        g.workers.len() + g.values.len()
    })
}

/// Takes the values (worker handles, then others) this thread's graveyard
/// holds, leaving its calls.
pub(crate) fn take_graves() -> (Vec<SharedWorker>, Vec<Box<dyn Send>>) {
    GRAVEYARD.with(|g| {
        let mut g = g.borrow_mut();
        (
            std::mem::take(&mut g.workers),
            std::mem::take(&mut g.values),
        )
    })
}

/// Takes what this thread's graveyard holds.
pub fn take_graveyard() -> Graveyard {
    GRAVEYARD.with(|g| std::mem::take(&mut *g.borrow_mut()))
}

/// Drops `value` here, unless this is a loop thread, where it goes to the
/// graveyard instead.
pub fn bury<T: Send + 'static>(value: T) {
    if !on_loop() {
        drop(value);
        return;
    }
    let mut value = Some(value);
    if let Some(worker) = (&mut value as &mut dyn Any).downcast_mut::<Option<SharedWorker>>() {
        let worker = worker.take().expect("just made");
        if super::quiet::is_spent(&worker) {
            // Dropping it runs no user code: no need for the graveyard.
            return;
        }
        GRAVEYARD.with(|g| g.borrow_mut().workers.push(worker));
        return;
    }
    let boxed: Box<dyn Send> = Box::new(value);
    GRAVEYARD.with(|g| g.borrow_mut().values.push(boxed));
}

/// [`bury`] for a value that is already boxed: on a loop thread it goes
/// to the graveyard as it is, without a second box. A type that holds a
/// boxed closure (a supervisor's start function, say) buries it with this
/// in its own `Drop`, rather than being an [`OffLoop`] of the box.
pub fn bury_box(value: Box<dyn Send>) {
    if on_loop() {
        GRAVEYARD.with(|g| g.borrow_mut().values.push(value));
    }
}

/// Makes `call` now, unless this is a loop thread: there it is handed to
/// the supervisor's executor threads, to be made off the loop, in order
/// with the loop's other work.
///
/// Code of the library that may find itself on a loop (a supervisor's
/// completion callback, when the loop kills one of the library's own
/// thread-free workers and so finishes it) uses it for the part that
/// runs user code: asking the user's policies about the worker's end.
pub fn defer(call: impl FnOnce() + Send + 'static) {
    if !on_loop() {
        call();
        return;
    }
    GRAVEYARD.with(|g| g.borrow_mut().calls.push(Box::new(call)));
}

/// A value whose `Drop` may run user code, and is therefore never dropped
/// on a supervisor's loop thread; see the [module docs](self).
///
/// It dereferences to the value; [`into_inner`](OffLoop::into_inner) takes
/// it out (and the rule with it).
///
/// ```
/// use worker_core::supervisor::offloop::{take_graveyard, LoopGuard, OffLoop};
///
/// struct Noisy;
/// impl Drop for Noisy {
///     fn drop(&mut self) { panic!("a Drop that must not run on a loop") }
/// }
///
/// {
///     let _loop = LoopGuard::enter();
///     drop(OffLoop::new(Noisy)); // goes to the graveyard, does not panic
///     let graveyard = take_graveyard();
///     assert_eq!(graveyard.len(), 1);
///     std::mem::forget(graveyard); // (the executor would drop it, off the loop)
/// }
/// ```
pub struct OffLoop<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> OffLoop<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        OffLoop(Some(value))
    }

    /// The value, unwrapped: dropping it is the caller's business again.
    pub fn into_inner(mut self) -> T {
        self.0
            .take()
            .expect("an OffLoop holds its value until dropped")
    }
}

impl<T: Send + 'static> Drop for OffLoop<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            bury(value);
        }
    }
}

impl<T: Send + 'static> Deref for OffLoop<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0
            .as_ref()
            .expect("an OffLoop holds its value until dropped")
    }
}

impl<T: Send + 'static> DerefMut for OffLoop<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0
            .as_mut()
            .expect("an OffLoop holds its value until dropped")
    }
}

impl<T: Send + Clone + 'static> Clone for OffLoop<T> {
    fn clone(&self) -> Self {
        OffLoop::new((**self).clone())
    }
}

impl<T: Send + fmt::Debug + 'static> fmt::Debug for OffLoop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Send + 'static> From<T> for OffLoop<T> {
    fn from(value: T) -> Self {
        OffLoop::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_deferred_call_runs_now_off_a_loop_and_later_on_one() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        defer(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let counter = calls.clone();
        {
            let _loop = LoopGuard::enter();
            defer(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(calls.load(Ordering::SeqCst), 1, "not on the loop");
        }
        for call in take_graveyard().calls {
            call();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn off_a_loop_it_is_just_its_value() {
        let drops = Arc::new(AtomicUsize::new(0));
        drop(OffLoop::new(Counted(drops.clone())));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(take_graveyard().is_empty());
    }

    #[test]
    fn on_a_loop_values_and_workers_go_to_the_graveyard() {
        let drops = Arc::new(AtomicUsize::new(0));
        let worker: SharedWorker = Arc::new(crate::Passive::new());
        {
            let _loop = LoopGuard::enter();
            drop(OffLoop::new(Counted(drops.clone())));
            drop(OffLoop::new(worker.clone()));
            bury(Counted(drops.clone()));
        }
        assert_eq!(
            drops.load(Ordering::SeqCst),
            0,
            "nothing dropped on the loop"
        );
        let graveyard = take_graveyard();
        assert_eq!(graveyard.workers.len(), 1);
        assert_eq!(graveyard.values.len(), 2);
        assert!(Arc::ptr_eq(&graveyard.workers[0], &worker));
        drop(graveyard);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        // The mark ends with the guard.
        drop(OffLoop::new(Counted(drops.clone())));
        assert_eq!(drops.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_boxed_value_is_buried_as_it_is() {
        let drops = Arc::new(AtomicUsize::new(0));
        bury_box(Box::new(Counted(drops.clone())));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "dropped at once off a loop"
        );
        {
            let _loop = LoopGuard::enter();
            bury_box(Box::new(Counted(drops.clone())));
            assert_eq!(graves(), 1);
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1, "not dropped on the loop");
        let (workers, values) = take_graves();
        assert!(workers.is_empty());
        assert_eq!(values.len(), 1);
        drop(values);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }
}

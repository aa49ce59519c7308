//! Every thread the library starts, accounted for.
//!
//! The library promises that each thread it starts is joined, or at least
//! accounted for, when its owner stops. To make that checkable, every such
//! thread is started through [`spawn_named`], which records its name in a
//! process-wide registry for exactly as long as the thread's closure runs
//! (a panic included). [`live_threads`] lists the names recorded now.
//!
//! Tests run in parallel in one process, so counting the process's threads
//! says little about one test. Names do: give the supervisor under test a
//! unique name, stop it, and check that no library thread whose name starts
//! with it is left (`worker-testing` has a helper for that).
//!
//! The registry costs one short lock when a thread starts and one when it
//! ends, next to the 40-110 us a thread start takes anyway.

mod join_slot;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static REGISTRY: LazyLock<Mutex<HashMap<u64, String>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
/// Notified whenever a thread leaves the registry.
static REMOVED: Condvar = Condvar::new();
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

fn registry() -> MutexGuard<'static, HashMap<u64, String>> {
    // Only inserts and removes run under this lock, so a poisoned lock
    // still holds a valid map.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes its thread's entry when dropped, so the entry goes away when the
/// closure returns or unwinds.
struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        registry().remove(&self.0);
        REMOVED.notify_all();
    }
}

/// Starts a thread named `name` running `f`, and records it in the registry
/// until `f` returns or panics.
///
/// The name is what [`live_threads`] shows; the OS sees it truncated to 15
/// bytes. Fails only when the system refuses a new thread.
///
/// ```
/// use worker_core::threads::{live_threads, spawn_named};
///
/// let (tx, rx) = crossbeam_channel::bounded::<()>(0);
/// let handle = spawn_named("docs-example-thread".into(), move || { let _ = rx.recv(); }).unwrap();
/// assert!(live_threads().iter().any(|n| n == "docs-example-thread"));
/// drop(tx);
/// handle.join().unwrap();
/// assert!(!live_threads().iter().any(|n| n == "docs-example-thread"));
/// ```
pub fn spawn_named<F, T>(name: String, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    // Register before the thread exists, so that a check made right after
    // this returns sees it, and a thread that never started is removed.
    registry().insert(key, name.clone());
    let guard = Registered(key);
    let served = SERVED.with(|s| s.borrow().clone());
    std::thread::Builder::new()
        .name(name.replace('\0', " "))
        .spawn(move || {
            let _guard = guard;
            SERVED.with(|s| *s.borrow_mut() = served);
            f()
        })
}

thread_local! {
    /// The supervisors whose progress this thread's progress is part of.
    static SERVED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

static NEXT_SUPERVISOR: AtomicU64 = AtomicU64::new(1);

/// A new supervisor id, for [`serve`] and [`serves`]; never 0 and never
/// reused.
pub fn supervisor_id() -> u64 {
    NEXT_SUPERVISOR.fetch_add(1, Ordering::Relaxed)
}

/// Marks the calling thread as serving supervisor `id` from now on: the
/// supervisor cannot finish while this thread is stuck, so this thread must
/// never wait for the supervisor to finish. Threads started from it with
/// [`spawn_named`] (and so [`spawn`](crate::spawn())ed workers, whose bodies
/// a start function started) inherit the mark.
///
/// A supervisor marks its loop thread and its start threads, and its
/// waiting methods ask [`serves`] first: a wait that could only deadlock
/// fails at once with [`WouldDeadlock`](crate::WouldDeadlock) instead.
pub fn serve(id: u64) {
    SERVED.with(|s| {
        let mut s = s.borrow_mut();
        if !s.contains(&id) {
            s.push(id);
        }
    });
}

/// Runs `f` with the calling thread marked as serving supervisor `id` (see
/// [`serve`]), and takes the mark off again when `f` returns or panics,
/// unless the thread was marked before. For work a supervisor hands to a
/// thread it does not own, such as the caller's own thread when no thread
/// of its own could be started.
///
/// ```
/// use worker_core::threads::{serves, serving, supervisor_id};
///
/// let id = supervisor_id();
/// assert!(serving(id, || serves(id)));
/// assert!(!serves(id));
/// ```
pub fn serving<T>(id: u64, f: impl FnOnce() -> T) -> T {
    struct Unmark(Option<u64>);
    impl Drop for Unmark {
        fn drop(&mut self) {
            if let Some(id) = self.0 {
                SERVED.with(|s| s.borrow_mut().retain(|&x| x != id));
            }
        }
    }
    let _unmark = Unmark((!serves(id)).then(|| {
        serve(id);
        id
    }));
    f()
}

/// Whether the calling thread serves supervisor `id` (see [`serve`]).
pub fn serves(id: u64) -> bool {
    SERVED.with(|s| s.borrow().contains(&id))
}

pub use join_slot::JoinSlot;

/// The names of the library's threads that are running now (in no
/// particular order).
pub fn live_threads() -> Vec<String> {
    registry().values().cloned().collect()
}

/// How many of the library's threads whose name starts with `prefix` are
/// running now.
pub fn live_threads_with_prefix(prefix: &str) -> usize {
    registry()
        .values()
        .filter(|n| n.starts_with(prefix))
        .count()
}

/// Waits until no library thread whose name starts with `prefix` is
/// running, for at most `timeout`; on timeout, returns the names of those
/// still running.
///
/// A worker's thread announces its completion (its `wait` returns, its
/// completion callbacks run) a moment before it actually returns, so a
/// check made right after a supervisor stops should wait briefly rather
/// than look once. The wait is on a condition variable, never a poll.
pub fn wait_threads_gone(prefix: &str, timeout: Duration) -> Result<(), Vec<String>> {
    let deadline = crate::deadline(Instant::now(), timeout);
    let mut threads = registry();
    loop {
        let left: Vec<String> = threads
            .values()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(left);
        }
        threads = REMOVED
            .wait_timeout(threads, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_itself_can_join_while_another_thread_joins_it() {
        // The deadlock this guards against: a joiner holds the slot's lock
        // while joining the thread, and the thread (say, a completion
        // callback waiting for its own worker) asks the slot too.
        let slot = std::sync::Arc::new(JoinSlot::default());
        let (go_tx, go) = crossbeam_channel::bounded::<()>(0);
        let (back_tx, back) = crossbeam_channel::bounded::<()>(1);
        let inner = slot.clone();
        slot.spawn("threads-test-self-join".into(), move || {
            let _ = go.recv();
            inner.join();
            let _ = back_tx.send(());
        })
        .unwrap();
        let (joining_tx, joining) = crossbeam_channel::bounded::<()>(1);
        let joiner = slot.clone();
        let outer = std::thread::spawn(move || {
            joining_tx.send(()).unwrap();
            joiner.join();
        });
        joining.recv().unwrap();
        go_tx.send(()).unwrap();
        back.recv_timeout(Duration::from_secs(10))
            .expect("the thread's own join returned");
        outer.join().unwrap();
        assert_eq!(live_threads_with_prefix("threads-test-self-join"), 0);
    }

    #[test]
    fn a_slot_takes_one_thread() {
        let slot = JoinSlot::default();
        slot.spawn("threads-test-one".into(), || {}).unwrap();
        assert!(slot.thread_id().is_some());
        let err = slot.spawn("threads-test-one".into(), || {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        slot.join();
        assert_eq!(slot.thread_id(), None);
        assert_eq!(live_threads_with_prefix("threads-test-one"), 0);
    }

    #[test]
    fn concurrent_joiners_all_return_after_the_thread_is_gone() {
        let slot = std::sync::Arc::new(JoinSlot::default());
        let (release_tx, release) = crossbeam_channel::bounded::<()>(0);
        slot.spawn("threads-test-joiners".into(), move || {
            let _ = release.recv();
        })
        .unwrap();
        let joiners: Vec<_> = (0..4)
            .map(|_| {
                let slot = slot.clone();
                std::thread::spawn(move || {
                    slot.join();
                    live_threads_with_prefix("threads-test-joiners")
                })
            })
            .collect();
        drop(release_tx);
        for joiner in joiners {
            assert_eq!(joiner.join().unwrap(), 0);
        }
    }

    #[test]
    fn a_panicking_thread_is_removed() {
        let name = "threads-test-panicking".to_owned();
        let handle = spawn_named(name.clone(), || panic!("boom")).unwrap();
        assert!(handle.join().is_err());
        assert_eq!(live_threads_with_prefix(&name), 0);
    }

    #[test]
    fn a_running_thread_is_listed_until_it_returns() {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let handle = spawn_named("threads-test-running".into(), move || {
            let _ = rx.recv();
        })
        .unwrap();
        assert_eq!(live_threads_with_prefix("threads-test-running"), 1);
        assert_eq!(
            wait_threads_gone("threads-test-running", Duration::from_millis(1)),
            Err(vec!["threads-test-running".to_owned()])
        );
        drop(tx);
        wait_threads_gone("threads-test-running", Duration::from_secs(10)).unwrap();
        handle.join().unwrap();
        assert_eq!(live_threads_with_prefix("threads-test-running"), 0);
    }
}

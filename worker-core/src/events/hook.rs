//! Hooks, and delivering a supervisor's events to them: in order, one at a
//! time, off the supervisor's own threads, with no lock held.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Event;

/// Receives a supervisor's [`Event`]s, in the order they happened.
///
/// A closure `Fn(&Event)` is a hook; so is
/// [`MetricsFacade`](super::MetricsFacade) (feature `metrics`), and any
/// type of yours. Give one to a supervisor with its `hook` setter (a
/// closure with `on_event`); a supervisor may have several, and each
/// gets every event.
///
/// A hook is called on one of the supervisor's helper threads, never on
/// its loop and never under one of its locks, one event at a time. A
/// panic is logged and the next event is delivered as usual; a hook that
/// blocks delays only the events after it (which queue up meanwhile) and
/// the supervisor's final `wait`, which waits for the last delivery.
/// Waiting for the supervisor itself from a hook fails with
/// [`WouldDeadlock`](crate::WouldDeadlock) (runner, engine) or
/// `WaitError::OwnThread` (catacomb) instead of hanging.
pub trait Hook: Send + Sync + 'static {
    /// Called with each event.
    fn on_event(&self, event: &Event);
}

impl<F> Hook for F
where
    F: Fn(&Event) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// The hooks of one supervisor and the events waiting for them: what a
/// supervisor uses to deliver its events in order, off its own threads.
///
/// The supervisor [`push`](Delivery::push)es each event where it happens
/// (on its loop, with no user code run); when `push` says so, it has
/// [`deliver`](Delivery::deliver) called off the loop (the driver's
/// [`Effects::call`](crate::supervisor::Effects::call), say). Exactly one
/// delivery is outstanding at a time: it delivers everything queued, in
/// order, and the next `push` after it has emptied the queue asks for
/// another. So events reach the hooks in the order they were pushed and
/// never two at a time, and no lock is held while a hook runs.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use worker_core::events::{Delivery, Event, EventKind};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// let delivery = Delivery::new(
///     "docs".into(),
///     vec![Arc::new(move |e: &Event| sink.lock().unwrap().push(e.generation))],
/// )
/// .expect("one hook");
/// let event = |g| Event::new("docs".into(), Some("w".into()), g, EventKind::Started);
/// assert!(delivery.push(event(1))); // schedule a delivery...
/// assert!(!delivery.push(event(2))); // ...one is outstanding already
/// delivery.deliver(); // (off the supervisor's loop)
/// assert_eq!(*seen.lock().unwrap(), [1, 2]);
/// ```
pub struct Delivery {
    supervisor: Arc<str>,
    hooks: Box<[Arc<dyn Hook>]>,
    queue: Mutex<Queue>,
}

struct Queue {
    events: VecDeque<Event>,
    /// A delivery has been asked for and has not found the queue empty.
    scheduled: bool,
}

impl Delivery {
    /// The delivery of `supervisor`'s events to `hooks`; `None` if there
    /// is no hook (then nothing is to be delivered, or even made).
    pub fn new(supervisor: Arc<str>, hooks: Vec<Arc<dyn Hook>>) -> Option<Arc<Delivery>> {
        if hooks.is_empty() {
            return None;
        }
        Some(Arc::new(Delivery {
            supervisor,
            hooks: hooks.into_boxed_slice(),
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                scheduled: false,
            }),
        }))
    }

    /// Queues `event` (runs no user code). Returns whether the caller must
    /// now have [`deliver`](Delivery::deliver) called, off its own
    /// threads: `false` when a delivery is outstanding, which will deliver
    /// this event too.
    #[must_use = "a `true` means nobody delivers the event unless `deliver` is called"]
    pub fn push(&self, event: Event) -> bool {
        let mut queue = self.lock();
        queue.events.push_back(event);
        !std::mem::replace(&mut queue.scheduled, true)
    }

    /// Delivers every queued event to every hook, in order, until the
    /// queue is empty. Call it once for each `push` that returned `true`;
    /// a panicking hook is logged and loses only that event.
    pub fn deliver(&self) {
        loop {
            let event = {
                let mut queue = self.lock();
                match queue.events.pop_front() {
                    Some(event) => event,
                    None => {
                        queue.scheduled = false;
                        return;
                    }
                }
            };
            for hook in self.hooks.iter() {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| hook.on_event(&event))) {
                    let error = crate::Panicked::from_payload("an event hook", &*payload);
                    tracing::error!(
                        supervisor = &*self.supervisor,
                        event = event.name(),
                        %error,
                        "event hook panicked"
                    );
                }
            }
        }
    }

    /// How many events wait for a delivery.
    pub fn queued(&self) -> usize {
        self.lock().events.len()
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // No user code runs under this lock.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("supervisor", &self.supervisor)
            .field("hooks", &self.hooks.len())
            .field("queued", &self.queued())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn event(g: u64) -> Event {
        Event::new("t".into(), Some("w".into()), g, EventKind::Started)
    }

    #[test]
    fn no_hook_no_delivery() {
        assert!(Delivery::new("t".into(), Vec::new()).is_none());
    }

    #[test]
    fn events_arrive_in_order_one_at_a_time_while_pushed_from_elsewhere() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let inside = Arc::new(AtomicUsize::new(0));
        let (s, i) = (seen.clone(), inside.clone());
        let hook = move |e: &Event| {
            assert_eq!(i.fetch_add(1, Ordering::SeqCst), 0, "two at once");
            s.lock().unwrap().push(e.generation);
            i.fetch_sub(1, Ordering::SeqCst);
        };
        let d = Delivery::new("t".into(), vec![Arc::new(hook)]).unwrap();
        // A pusher that starts a delivering thread whenever `push` asks.
        let mut deliverers = Vec::new();
        for g in 0..2000 {
            if d.push(event(g)) {
                let d = d.clone();
                deliverers.push(std::thread::spawn(move || d.deliver()));
            }
        }
        for t in deliverers {
            t.join().unwrap();
        }
        assert_eq!(*seen.lock().unwrap(), (0..2000).collect::<Vec<_>>());
        assert_eq!(d.queued(), 0);
    }

    #[test]
    fn a_panicking_hook_loses_only_its_own_event_and_the_others_get_it() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let other = Arc::new(AtomicUsize::new(0));
        let (s, o) = (seen.clone(), other.clone());
        let d = Delivery::new(
            "t".into(),
            vec![
                Arc::new(move |e: &Event| {
                    assert_ne!(e.generation, 1, "hook bug");
                    s.lock().unwrap().push(e.generation);
                }),
                Arc::new(move |_: &Event| {
                    o.fetch_add(1, Ordering::SeqCst);
                }),
            ],
        )
        .unwrap();
        assert!(d.push(event(0)));
        for g in 1..3 {
            assert!(!d.push(event(g)));
        }
        d.deliver();
        assert_eq!(*seen.lock().unwrap(), vec![0, 2]);
        assert_eq!(other.load(Ordering::SeqCst), 3);
        // Delivered: the next push asks for a delivery again.
        assert!(d.push(event(3)));
    }
}

//! Delivering the runner's events to the user's hook: in order, one at a
//! time, off the loop.
//!
//! The loop queues each event and asks the driver for a call
//! ([`Effects::call`](worker_core::supervisor::Effects::call)) that drains
//! the queue. The driver may run calls on several executor threads at
//! once (a blocked item gets a second ticket), so whoever drains first
//! takes a flag and delivers everything queued, in order, and the others
//! find the flag taken and leave: events are delivered in the order they
//! happened and never two at a time. No lock is held while the hook runs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::event::{EventHook, RunnerEvent};

/// The events waiting for the hook; see the [module docs](self).
pub(crate) struct HookQueue {
    hook: EventHook,
    queue: Mutex<VecDeque<RunnerEvent>>,
    draining: AtomicBool,
}

impl HookQueue {
    pub(crate) fn new(hook: EventHook) -> Self {
        HookQueue {
            hook,
            queue: Mutex::new(VecDeque::new()),
            draining: AtomicBool::new(false),
        }
    }

    /// Queues `event` (on the loop: no user code runs).
    pub(crate) fn push(&self, event: RunnerEvent) {
        self.lock().push_back(event);
    }

    /// Delivers what is queued, unless another thread already does.
    pub(crate) fn drain(&self) {
        loop {
            if self.draining.swap(true, Ordering::AcqRel) {
                return;
            }
            while let Some(event) = self.pop() {
                let hook = &self.hook;
                let delivered =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&event)));
                if let Err(payload) = delivered {
                    let p = worker_core::Panicked::from_payload("runner event hook", &*payload);
                    tracing::error!(error = %p, event = event.name(), "event hook panicked");
                }
            }
            self.draining.store(false, Ordering::Release);
            // An event queued after the last look, whose own drain found
            // the flag taken, must not wait for the next event.
            if self.lock().is_empty() {
                return;
            }
        }
    }

    fn pop(&self) -> Option<RunnerEvent> {
        self.lock().pop_front()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<RunnerEvent>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for HookQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookQueue")
            .field("queued", &self.lock().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn event(n: usize) -> RunnerEvent {
        RunnerEvent::Started {
            id: n.to_string().into(),
        }
    }

    #[test]
    fn events_arrive_in_order_one_at_a_time_from_many_drainers() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let inside = Arc::new(AtomicUsize::new(0));
        let (s, i) = (seen.clone(), inside.clone());
        let q = Arc::new(HookQueue::new(Arc::new(move |e: &RunnerEvent| {
            assert_eq!(
                i.fetch_add(1, Ordering::SeqCst),
                0,
                "two deliveries at once"
            );
            s.lock()
                .unwrap()
                .push(e.id().unwrap().parse::<usize>().unwrap());
            i.fetch_sub(1, Ordering::SeqCst);
        })));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for n in 0..500 {
                        if t == 0 {
                            q.push(event(n));
                        }
                        q.drain();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        q.drain();
        assert_eq!(*seen.lock().unwrap(), (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_hook_loses_only_its_own_event() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let q = HookQueue::new(Arc::new(move |e: &RunnerEvent| {
            let n: usize = e.id().unwrap().parse().unwrap();
            assert_ne!(n, 1, "hook bug");
            s.lock().unwrap().push(n);
        }));
        for n in 0..3 {
            q.push(event(n));
        }
        q.drain();
        assert_eq!(*seen.lock().unwrap(), vec![0, 2]);
        assert!(!q.draining.load(Ordering::SeqCst));
    }
}

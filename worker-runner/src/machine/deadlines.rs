//! The machine's timers, as data: a min-heap of deadlines.
//!
//! Cancelling a deadline (a worker stopped during its restart delay, a
//! stuck check for a worker that did stop) does not touch the heap: each
//! deadline names the incarnation it is for, and one that no longer
//! matches its entry is skipped when it comes up. The shell asks the clock
//! for one timer, for the earliest deadline, so the machine never holds a
//! clock and the number of timers never grows with the number of workers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::{Generation, Slot};

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// The restart delay of a `Delayed` entry is over.
    Restart,
    /// A killed instance has had its stop timeout.
    Stuck,
}

/// One deadline: when, for which incarnation, and for what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) slot: Slot,
    pub(crate) generation: Generation,
    pub(crate) kind: Kind,
}

/// Deadlines, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<Deadline>>,
}

impl Deadlines {
    pub(crate) fn push(&mut self, deadline: Deadline) {
        self.heap.push(Reverse(deadline));
    }

    pub(crate) fn peek(&self) -> Option<&Deadline> {
        self.heap.peek().map(|r| &r.0)
    }

    pub(crate) fn pop(&mut self) -> Option<Deadline> {
        self.heap.pop().map(|r| r.0)
    }

    /// Removes the earliest deadline if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Deadline> {
        if self.peek()?.at <= now {
            self.pop()
        } else {
            None
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_only_when_due() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        for (secs, slot) in [(3, 0), (1, 1), (2, 2)] {
            d.push(Deadline {
                at: t0 + Duration::from_secs(secs),
                slot,
                generation: 0,
                kind: Kind::Restart,
            });
        }
        assert_eq!(d.peek().unwrap().slot, 1);
        assert!(d.pop_due(t0).is_none());
        let due: Vec<Slot> =
            std::iter::from_fn(|| d.pop_due(t0 + Duration::from_secs(2)).map(|x| x.slot)).collect();
        assert_eq!(due, vec![1, 2]);
        assert_eq!(d.len(), 1);
    }
}

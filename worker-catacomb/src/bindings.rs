//! The set of workers bound to a catacomb: a small generational slab.
//!
//! Each [`Catacomb::add`](crate::Catacomb::add) takes one slot and gets a
//! [`Key`] back; the worker's completion callback releases the slot by that
//! key. A key names one binding forever (it carries a serial number that is
//! never reused, even after the slab shrinks), so a stale or repeated
//! release (a worker that calls
//! its completion callback twice, or a fallback watcher racing a callback)
//! finds nothing and changes nothing. The number of occupied slots is
//! exactly the number of bound workers that have not finished, which is
//! what the catacomb waits for before it is dead.
//!
//! When the catacomb is killed, its bound workers are *lent* to the errand
//! that kills them: moved out of their slots, which stay occupied. Moving
//! rather than cloning spares two atomic operations per worker on the
//! kill path; the errand hands back the workers that have not ended yet
//! ([`Bindings::lend_back`]) when it is done with them.
//!
//! No locking here: the catacomb keeps this inside its mutex.

use worker_core::SharedWorker;

/// Names one binding: its slot and its serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    serial: u64,
}

impl Key {
    /// The binding's number in the catacomb's events (its `generation`):
    /// never 0, never reused.
    pub(crate) fn number(self) -> u64 {
        self.serial + 1
    }
}

struct Slot {
    serial: u64,
    state: SlotState,
}

enum SlotState {
    Free,
    /// Bound, and the catacomb holds the worker here.
    Bound(SharedWorker),
    /// Bound, and the worker is lent to a kill errand.
    Lent,
}

/// What [`Bindings::release`] found.
pub(crate) enum Released {
    /// No such binding (already released, or a stale key).
    Unknown,
    /// The binding is released; here is its worker.
    Worker(SharedWorker),
    /// The binding is released; its worker is lent to a kill errand.
    Lent,
}

/// The bound workers that have not finished yet.
#[derive(Default)]
pub(crate) struct Bindings {
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
    next_serial: u64,
}

impl Bindings {
    /// Binds `worker`, reusing a free slot if there is one.
    pub(crate) fn insert(&mut self, worker: SharedWorker) -> Key {
        self.occupy(SlotState::Bound(worker))
    }

    /// Binds a worker that is lent out at once (to be killed).
    pub(crate) fn insert_lent(&mut self) -> Key {
        self.occupy(SlotState::Lent)
    }

    fn occupy(&mut self, state: SlotState) -> Key {
        self.len += 1;
        let serial = self.next_serial;
        self.next_serial += 1;
        let slot = Slot { serial, state };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = slot;
                index
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("more than 2^32 bound workers");
                self.slots.push(slot);
                index
            }
        };
        Key { index, serial }
    }

    fn slot(&mut self, key: Key) -> Option<&mut Slot> {
        self.slots
            .get_mut(key.index as usize)
            .filter(|slot| slot.serial == key.serial)
    }

    /// Releases the binding `key` (its worker has ended).
    pub(crate) fn release(&mut self, key: Key) -> Released {
        let Some(slot) = self.slot(key) else {
            return Released::Unknown;
        };
        let released = match std::mem::replace(&mut slot.state, SlotState::Free) {
            SlotState::Free => return Released::Unknown,
            SlotState::Bound(worker) => Released::Worker(worker),
            SlotState::Lent => Released::Lent,
        };
        self.free.push(key.index);
        self.len -= 1;
        released
    }

    /// Moves every bound worker out, to be killed; their slots stay
    /// occupied (lent).
    pub(crate) fn lend_all(&mut self) -> Vec<(Key, SharedWorker)> {
        let mut lent = Vec::with_capacity(self.len);
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let SlotState::Bound(_) = slot.state {
                let SlotState::Bound(worker) = std::mem::replace(&mut slot.state, SlotState::Lent)
                else {
                    unreachable!("matched Bound above");
                };
                // Slot indices fit: `occupy` checks.
                let key = Key {
                    index: index as u32,
                    serial: slot.serial,
                };
                lent.push((key, worker));
            }
        }
        lent
    }

    /// Gives a lent worker back to its binding; `Err` hands it back if the
    /// binding has been released meanwhile (the worker has ended).
    pub(crate) fn lend_back(&mut self, key: Key, worker: SharedWorker) -> Result<(), SharedWorker> {
        match self.slot(key) {
            Some(slot) if matches!(slot.state, SlotState::Lent) => {
                slot.state = SlotState::Bound(worker);
                Ok(())
            }
            _ => Err(worker),
        }
    }

    /// How many bindings are held (lent ones included).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no binding is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Gives the memory back once nothing is bound any more.
    pub(crate) fn shrink_if_empty(&mut self) {
        if self.len == 0 {
            self.slots = Vec::new();
            self.free = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use worker_core::Passive;

    use super::*;

    fn worker() -> SharedWorker {
        Arc::new(Passive::new())
    }

    fn released_worker(released: Released) -> SharedWorker {
        match released {
            Released::Worker(worker) => worker,
            Released::Unknown => panic!("unknown binding"),
            Released::Lent => panic!("lent binding"),
        }
    }

    #[test]
    fn insert_and_release_count_bindings() {
        let mut b = Bindings::default();
        let k1 = b.insert(worker());
        let k2 = b.insert(worker());
        assert_eq!(b.len(), 2);
        assert_ne!(k1, k2);
        released_worker(b.release(k1));
        assert_eq!(b.len(), 1);
        released_worker(b.release(k2));
        assert!(b.is_empty());
    }

    #[test]
    fn a_key_releases_its_binding_once() {
        let mut b = Bindings::default();
        let k = b.insert(worker());
        released_worker(b.release(k));
        assert!(matches!(b.release(k), Released::Unknown));
        assert!(b.is_empty());
    }

    #[test]
    fn a_stale_key_does_not_release_the_slot_reused_after_it() {
        let mut b = Bindings::default();
        let old = b.insert(worker());
        released_worker(b.release(old));
        let new = b.insert(worker());
        assert_eq!(old.index, new.index, "the slot is reused");
        assert!(matches!(b.release(old), Released::Unknown));
        assert_eq!(b.len(), 1);
        released_worker(b.release(new));
    }

    #[test]
    fn the_same_worker_can_be_bound_twice() {
        let mut b = Bindings::default();
        let w = worker();
        let k1 = b.insert(w.clone());
        let k2 = b.insert(w.clone());
        assert!(Arc::ptr_eq(&released_worker(b.release(k1)), &w));
        assert_eq!(b.len(), 1);
        assert!(Arc::ptr_eq(&released_worker(b.release(k2)), &w));
    }

    #[test]
    fn lent_workers_stay_bound_until_released_or_given_back() {
        let mut b = Bindings::default();
        let (w1, w2, w3) = (worker(), worker(), worker());
        let k1 = b.insert(w1.clone());
        let k2 = b.insert(w2.clone());
        let gone = b.insert(worker());
        released_worker(b.release(gone));
        let lent = b.lend_all();
        assert_eq!(lent.len(), 2, "only bound workers are lent");
        assert_eq!(lent[0].0, k1);
        assert!(Arc::ptr_eq(&lent[0].1, &w1));
        assert_eq!(b.len(), 2, "lent workers are still bound");
        assert!(b.lend_all().is_empty(), "nothing left to lend");

        // Ended while lent: released, and not taken back.
        assert!(matches!(b.release(k1), Released::Lent));
        assert!(b.lend_back(k1, w1.clone()).is_err());
        // Still running: taken back, and released later with its worker.
        assert!(b.lend_back(k2, w2.clone()).is_ok());
        assert!(b.lend_back(k2, w2.clone()).is_err(), "only a lent one");
        assert!(Arc::ptr_eq(&released_worker(b.release(k2)), &w2));

        let k3 = b.insert_lent();
        assert_eq!(b.len(), 1);
        assert!(b.lend_back(k3, w3).is_ok());
        released_worker(b.release(k3));
        assert!(b.is_empty());
    }

    #[test]
    fn shrink_releases_memory_only_when_empty() {
        let mut b = Bindings::default();
        let k = b.insert(worker());
        b.shrink_if_empty();
        assert_eq!(b.slots.len(), 1);
        released_worker(b.release(k));
        b.shrink_if_empty();
        assert_eq!(b.slots.capacity(), 0);
        assert_eq!(b.free.capacity(), 0);
        let k = b.insert(worker());
        released_worker(b.release(k));
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let mut b = Bindings::default();
        let k = b.insert(worker());
        released_worker(b.release(k));
        b.shrink_if_empty();
        assert!(matches!(b.release(k), Released::Unknown));
        assert!(b.lend_back(k, worker()).is_err());
        // After a shrink the slot is new, the key still stale.
        let new = b.insert(worker());
        assert_eq!(new.index, k.index);
        assert!(matches!(b.release(k), Released::Unknown));
        assert_eq!(b.len(), 1);
    }
}

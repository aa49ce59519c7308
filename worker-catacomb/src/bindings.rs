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
//! No locking here: the catacomb keeps this inside its mutex.

use worker_core::SharedWorker;

/// Names one binding: its slot and its serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    serial: u64,
}

struct Slot {
    serial: u64,
    worker: Option<SharedWorker>,
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
        self.len += 1;
        let serial = self.next_serial;
        self.next_serial += 1;
        let slot = Slot {
            serial,
            worker: Some(worker),
        };
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

    /// Releases the binding `key`, returning its worker; `None` if it was
    /// already released.
    pub(crate) fn remove(&mut self, key: Key) -> Option<SharedWorker> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.serial != key.serial {
            return None;
        }
        let worker = slot.worker.take()?;
        self.free.push(key.index);
        self.len -= 1;
        Some(worker)
    }

    /// How many bindings are held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no binding is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Clones of every bound worker (to kill them outside the lock).
    pub(crate) fn workers(&self) -> Vec<SharedWorker> {
        let mut workers = Vec::with_capacity(self.len);
        workers.extend(self.slots.iter().filter_map(|s| s.worker.clone()));
        workers
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

    #[test]
    fn insert_and_remove_count_bindings() {
        let mut b = Bindings::default();
        let k1 = b.insert(worker());
        let k2 = b.insert(worker());
        assert_eq!(b.len(), 2);
        assert_ne!(k1, k2);
        assert!(b.remove(k1).is_some());
        assert_eq!(b.len(), 1);
        assert_eq!(b.workers().len(), 1);
        assert!(b.remove(k2).is_some());
        assert!(b.is_empty());
    }

    #[test]
    fn a_key_releases_its_binding_once() {
        let mut b = Bindings::default();
        let k = b.insert(worker());
        assert!(b.remove(k).is_some());
        assert!(b.remove(k).is_none());
        assert!(b.is_empty());
    }

    #[test]
    fn a_stale_key_does_not_release_the_slot_reused_after_it() {
        let mut b = Bindings::default();
        let old = b.insert(worker());
        b.remove(old);
        let new = b.insert(worker());
        assert_eq!(old.index, new.index, "the slot is reused");
        assert!(b.remove(old).is_none());
        assert_eq!(b.len(), 1);
        assert!(b.remove(new).is_some());
    }

    #[test]
    fn the_same_worker_can_be_bound_twice() {
        let mut b = Bindings::default();
        let w = worker();
        let k1 = b.insert(w.clone());
        let k2 = b.insert(w.clone());
        assert!(Arc::ptr_eq(&b.remove(k1).unwrap(), &w));
        assert_eq!(b.len(), 1);
        assert!(Arc::ptr_eq(&b.remove(k2).unwrap(), &w));
    }

    #[test]
    fn shrink_releases_memory_only_when_empty() {
        let mut b = Bindings::default();
        let k = b.insert(worker());
        b.shrink_if_empty();
        assert_eq!(b.slots.len(), 1);
        b.remove(k);
        b.shrink_if_empty();
        assert_eq!(b.slots.capacity(), 0);
        assert_eq!(b.free.capacity(), 0);
        let k = b.insert(worker());
        assert!(b.remove(k).is_some());
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let mut b = Bindings::default();
        let k = b.insert(worker());
        b.remove(k);
        b.shrink_if_empty();
        assert!(b.remove(k).is_none());
        // After a shrink the slot is new, the key still stale.
        let new = b.insert(worker());
        assert_eq!(new.index, k.index);
        assert!(b.remove(k).is_none());
        assert_eq!(b.len(), 1);
    }
}

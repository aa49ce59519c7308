//! The small lists a tomb keeps: callbacks and hooks ([`Few`]) and the
//! wakers of the futures waiting on it ([`Wakers`]).
//!
//! Both are sized for the common case, which at a million workers is what
//! counts: a tomb has one completion callback (its supervisor's) and at
//! most a future or two waiting on it. Neither allocates until used, and
//! [`Few`] does not allocate for a single item beyond the item itself.

use std::task::Waker;

use super::TombState;

/// None, one or many items; one item needs no vector.
#[derive(Default)]
pub(super) enum Few<T> {
    #[default]
    None,
    One(T),
    Many(Vec<T>),
}

impl<T> Few<T> {
    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Few::None)
    }

    pub(super) fn push(&mut self, item: T) {
        *self = match std::mem::take(self) {
            Few::None => Few::One(item),
            Few::One(first) => Few::Many(vec![first, item]),
            Few::Many(mut items) => {
                items.push(item);
                Few::Many(items)
            }
        };
    }
}

impl<T> IntoIterator for Few<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        let (one, many) = match self {
            Few::None => (None, Vec::new()),
            Few::One(item) => (Some(item), Vec::new()),
            Few::Many(items) => (None, items),
        };
        one.into_iter().chain(many)
    }
}

/// Where a waiting future's waker is kept: its slot, and the state of the
/// tomb when it took it.
///
/// Every change of state takes the whole list away to wake it, so a key
/// is only valid while the tomb is still in the state it was taken in;
/// a future whose key is stale simply takes a new slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WakerKey {
    epoch: TombState,
    index: u32,
}

enum Slot {
    Vacant { next: u32 },
    Waiting(Waker),
}

/// No vacant slot.
const NONE: u32 = u32::MAX;

/// The wakers of the futures waiting on a tomb. Registering, updating and
/// forgetting one is O(1), and a future that is dropped takes its waker
/// out, so a tomb awaited in a `select!` loop does not grow.
///
/// One waiting future (a task worker's body on its dying moment: the case
/// a million times over) is kept inline, with no allocation; a second one
/// moves both into a slab.
#[derive(Default)]
pub(super) enum Wakers {
    #[default]
    Empty,
    /// The future with index 0.
    One(Waker),
    Many(Slab),
}

/// Slots linked into a list of vacant ones.
pub(super) struct Slab {
    slots: Vec<Slot>,
    /// The first vacant slot, linked through `Slot::Vacant::next`.
    vacant: u32,
    /// Slots owned by a future.
    live: u32,
}

impl Wakers {
    /// Keeps `waker` for the future that holds `key`, taking a slot if it
    /// has none valid in `epoch` (the tomb's state now).
    pub(super) fn register(&mut self, key: &mut Option<WakerKey>, epoch: TombState, waker: &Waker) {
        if let Some(k) = *key {
            if k.epoch == epoch {
                let kept = match self {
                    Wakers::One(kept) if k.index == 0 => Some(kept),
                    Wakers::Many(slab) => match slab.slots.get_mut(k.index as usize) {
                        Some(Slot::Waiting(kept)) => Some(kept),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(kept) = kept {
                    if !kept.will_wake(waker) {
                        kept.clone_from(waker);
                    }
                    return;
                }
                debug_assert!(false, "a valid waker key points at no waker");
            }
        }
        let index = match std::mem::take(self) {
            Wakers::Empty => {
                *self = Wakers::One(waker.clone());
                0
            }
            Wakers::One(first) => {
                let mut slab = Slab {
                    slots: Vec::with_capacity(2),
                    vacant: NONE,
                    live: 0,
                };
                slab.insert(first);
                let index = slab.insert(waker.clone());
                *self = Wakers::Many(slab);
                index
            }
            Wakers::Many(mut slab) => {
                let index = slab.insert(waker.clone());
                *self = Wakers::Many(slab);
                index
            }
        };
        *key = Some(WakerKey { epoch, index });
    }

    /// Gives back the slot of `key`, if it is still valid in `epoch`.
    pub(super) fn forget(&mut self, key: WakerKey, epoch: TombState) {
        if key.epoch != epoch {
            return;
        }
        match self {
            Wakers::One(_) if key.index == 0 => *self = Wakers::Empty,
            Wakers::Many(slab) => {
                slab.remove(key.index);
                if slab.live == 0 {
                    *self = Wakers::Empty;
                }
            }
            _ => {}
        }
    }

    /// Wakes every future that was waiting. Call it outside the tomb's
    /// lock: a waker is executor code.
    pub(super) fn wake_all(self) {
        match self {
            Wakers::Empty => {}
            Wakers::One(waker) => waker.wake(),
            Wakers::Many(slab) => {
                for slot in slab.slots {
                    if let Slot::Waiting(waker) = slot {
                        waker.wake();
                    }
                }
            }
        }
    }
}

impl Slab {
    fn insert(&mut self, waker: Waker) -> u32 {
        self.live += 1;
        if self.vacant == NONE {
            self.slots.push(Slot::Waiting(waker));
            return u32::try_from(self.slots.len() - 1)
                .expect("fewer than 4 billion futures per tomb");
        }
        let index = self.vacant;
        let slot = std::mem::replace(&mut self.slots[index as usize], Slot::Waiting(waker));
        self.vacant = match slot {
            Slot::Vacant { next } => next,
            Slot::Waiting(_) => unreachable!("the vacant list holds only vacant slots"),
        };
        index
    }

    fn remove(&mut self, index: u32) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if matches!(slot, Slot::Vacant { .. }) {
            return;
        }
        *slot = Slot::Vacant { next: self.vacant };
        self.vacant = index;
        self.live -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn few_keeps_order_and_needs_no_vector_for_one() {
        let empty: Few<u8> = Few::default();
        assert!(empty.into_iter().next().is_none());
        let mut few = Few::default();
        few.push(1);
        assert!(matches!(few, Few::One(1)));
        few.push(2);
        few.push(3);
        assert_eq!(few.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    fn live(wakers: &Wakers) -> usize {
        match wakers {
            Wakers::Empty => 0,
            Wakers::One(_) => 1,
            Wakers::Many(slab) => slab.live as usize,
        }
    }

    #[test]
    fn one_waiting_future_needs_no_allocation() {
        let mut wakers = Wakers::default();
        let (count, a) = counter();
        let mut key = None;
        wakers.register(&mut key, TombState::Alive, &a);
        wakers.register(&mut key, TombState::Alive, &a);
        assert!(matches!(wakers, Wakers::One(_)));
        wakers.forget(key.take().unwrap(), TombState::Alive);
        assert!(matches!(wakers, Wakers::Empty));
        wakers.register(&mut key, TombState::Alive, &a);
        wakers.wake_all();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_re_registered_future_keeps_its_slot_and_a_forgotten_one_frees_it() {
        let mut wakers = Wakers::default();
        let (count_a, a) = counter();
        let (count_b, b) = counter();
        let mut key_a = None;
        let mut key_b = None;
        wakers.register(&mut key_a, TombState::Alive, &a);
        wakers.register(&mut key_b, TombState::Alive, &b);
        wakers.register(&mut key_a, TombState::Alive, &a);
        assert_eq!(live(&wakers), 2);
        // A new waker for the same future replaces the old one.
        let (count_c, c) = counter();
        wakers.register(&mut key_a, TombState::Alive, &c);
        assert_eq!(live(&wakers), 2);
        // A freed slot is reused.
        wakers.forget(key_b.unwrap(), TombState::Alive);
        let mut key_d = None;
        wakers.register(&mut key_d, TombState::Alive, &b);
        assert_eq!(key_d.unwrap().index, key_b.unwrap().index);
        let Wakers::Many(slab) = &wakers else {
            panic!("two futures need the slab")
        };
        assert_eq!(slab.slots.len(), 2);
        wakers.wake_all();
        assert_eq!(count_a.0.load(Ordering::SeqCst), 0);
        assert_eq!(count_b.0.load(Ordering::SeqCst), 1);
        assert_eq!(count_c.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn forgetting_the_last_waker_empties_the_list() {
        let mut wakers = Wakers::default();
        let (_, a) = counter();
        let mut keys = [None; 3];
        for key in &mut keys {
            wakers.register(key, TombState::Alive, &a);
        }
        for key in keys {
            wakers.forget(key.unwrap(), TombState::Alive);
        }
        assert!(matches!(wakers, Wakers::Empty));
    }

    #[test]
    fn a_key_from_another_epoch_is_stale() {
        let mut wakers = Wakers::default();
        let (_, a) = counter();
        let mut old = None;
        wakers.register(&mut old, TombState::Alive, &a);
        let old_key = old.unwrap();
        let taken = std::mem::take(&mut wakers);
        drop(taken);
        // Forgetting a stale key touches nothing.
        let mut fresh = None;
        wakers.register(&mut fresh, TombState::Dying, &a);
        wakers.forget(old_key, TombState::Dying);
        assert_eq!(live(&wakers), 1);
        // Registering with a stale key takes a new slot.
        wakers.register(&mut old, TombState::Dying, &a);
        assert_eq!(live(&wakers), 2);
        assert_eq!(old.unwrap().epoch, TombState::Dying);
    }
}

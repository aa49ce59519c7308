//! Deadlines by key, earliest first, with removal.
//!
//! A supervisor keeps one deadline per thing it waits for (a restart
//! delay, a stop timeout) and cancels many of them: a worker stopped
//! during its restart delay, a stop timeout for a worker that did stop. A
//! plain binary heap cannot remove an entry, so cancelled deadlines used
//! to stay in it until they reached the front; while an earlier deadline
//! was pending, each stop left one behind (+14 MiB over 450,000 start /
//! stop cycles of a runner). [`Timers`] is an indexed heap: every key
//! knows its position, so [`cancel`](Timers::cancel) and
//! [`set`](Timers::set) take `O(log n)` and the memory held is exactly
//! that of the live deadlines. Keys are hashed once per call: the heap
//! holds small slot numbers, whose positions it keeps in a plain vector
//! as entries move (hashing on every move cost the engine about 15% of
//! its time when 10,000 manifolds bounced at once). The hash is a fast
//! one with no defence against chosen collisions: keys are ids a
//! supervisor makes itself (slots, node numbers), not its users' data.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::Instant;

/// Deadlines by key, earliest first, with removal: cancelled deadlines
/// leave nothing behind, so memory follows the live deadlines.
///
/// Ties are broken by insertion order, so deadlines due at the same
/// instant come out in the order they were set, which keeps a machine
/// driven by hand deterministic.
///
/// ```
/// use std::time::{Duration, Instant};
/// use worker_core::supervisor::Timers;
///
/// let t0 = Instant::now();
/// let mut timers = Timers::new();
/// timers.set("restart a", t0 + Duration::from_secs(3));
/// timers.set("stuck b", t0 + Duration::from_secs(1));
/// timers.cancel(&"stuck b");                     // b stopped in time
/// assert_eq!(timers.next(), Some(t0 + Duration::from_secs(3)));
/// assert_eq!(timers.pop_due(t0 + Duration::from_secs(3)), Some(("restart a", t0 + Duration::from_secs(3))));
/// assert!(timers.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Timers<K> {
    /// A binary min-heap of (deadline, order, slot).
    heap: Vec<(Instant, u64, u32)>,
    /// Each slot's key and its position in `heap`: moving entries in the
    /// heap updates positions here, by index, without hashing.
    slots: Vec<Slot<K>>,
    /// Slots free for reuse.
    free: Vec<u32>,
    /// Each key's slot: one lookup per `set`, `cancel` or `get`.
    index: HashMap<K, u32, BuildHasherDefault<IdHasher>>,
    /// The order of the next `set`, for ties.
    next_order: u64,
}

/// The hasher of the keys' index. The keys are ids the machines make
/// themselves (slots, node numbers, a kind), never data a user chooses, so
/// they need no defence against chosen collisions; SipHash, the standard
/// one, cost more than the heap itself when 1,000 manifolds bounce. This
/// is the multiply-rotate mix rustc uses for its own tables (Fx).
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl IdHasher {
    fn add(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot<K> {
    key: K,
    position: usize,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::default(),
            next_order: 0,
        }
    }
}

impl<K: Copy + Eq + Hash> Timers<K> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`'s deadline to `at`, replacing any deadline it had.
    pub fn set(&mut self, key: K, at: Instant) {
        let order = self.next_order;
        self.next_order += 1;
        match self.index.get(&key) {
            Some(&slot) => {
                let i = self.slots[slot as usize].position;
                let old = self.heap[i].0;
                self.heap[i] = (at, order, slot);
                if at < old {
                    self.sift_up(i);
                } else {
                    self.sift_down(i);
                }
            }
            None => {
                let position = self.heap.len();
                let entry = Slot { key, position };
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot as usize] = entry;
                        slot
                    }
                    None => {
                        self.slots.push(entry);
                        u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 deadlines")
                    }
                };
                self.index.insert(key, slot);
                self.heap.push((at, order, slot));
                self.sift_up(position);
            }
        }
    }

    /// Removes `key`'s deadline; returns whether it had one.
    pub fn cancel(&mut self, key: &K) -> bool {
        if self.heap.is_empty() {
            return false;
        }
        let Some(slot) = self.index.remove(key) else {
            return false;
        };
        self.remove_at(self.slots[slot as usize].position);
        self.free.push(slot);
        if self.heap.is_empty() {
            // Give the memory of a burst back once it is over.
            self.shrink();
        }
        true
    }

    /// `key`'s deadline, if it has one.
    pub fn get(&self, key: &K) -> Option<Instant> {
        let &slot = self.index.get(key)?;
        Some(self.heap[self.slots[slot as usize].position].0)
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.heap.first().map(|e| e.0)
    }

    /// Removes and returns the earliest deadline if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(K, Instant)> {
        let &(at, _, slot) = self.heap.first()?;
        if at > now {
            return None;
        }
        let key = self.slots[slot as usize].key;
        self.cancel(&key);
        Some((key, at))
    }

    /// How many deadlines are set.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no deadline is set.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Takes the entry at heap position `i` out, keeping the heap order.
    fn remove_at(&mut self, i: usize) {
        let last = self.heap.len() - 1;
        if i == last {
            self.heap.pop();
            return;
        }
        self.swap(i, last);
        self.heap.pop();
        // The entry moved into the hole goes one way or the other.
        if i > 0 && self.less(i, (i - 1) / 2) {
            self.sift_up(i);
        } else {
            self.sift_down(i);
        }
    }

    fn shrink(&mut self) {
        if self.heap.capacity() > 64 {
            *self = Timers {
                next_order: self.next_order,
                ..Timers::default()
            };
        }
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (x, y) = (&self.heap[a], &self.heap[b]);
        (x.0, x.1) < (y.0, y.1)
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.slots[self.heap[a].2 as usize].position = a;
        self.slots[self.heap[b].2 as usize].position = b;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.less(i, parent) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < self.heap.len() && self.less(l, least) {
                least = l;
            }
            if r < self.heap.len() && self.less(r, least) {
                least = r;
            }
            if least == i {
                break;
            }
            self.swap(i, least);
            i = least;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_hash_tells_small_ids_apart() {
        use std::collections::HashSet;
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: HashSet<u64> = (0..1000usize)
            .flat_map(|id| [(id, 0u8), (id, 1u8)])
            .map(|key| build.hash_one(key))
            .collect();
        assert_eq!(hashes.len(), 2000);
        assert_ne!(build.hash_one("ab"), build.hash_one("ba"));
    }
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    #[test]
    fn memory_follows_the_live_deadlines() {
        // The leak this replaces: one early deadline stays pending while
        // many later ones are set and cancelled.
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.set(u64::MAX, t0);
        for k in 0..100_000u64 {
            timers.set(k, t0 + Duration::from_secs(10));
            assert!(timers.cancel(&k));
        }
        assert_eq!(timers.len(), 1);
        assert!(timers.heap.capacity() < 16, "{}", timers.heap.capacity());
        assert!(timers.slots.len() <= 2, "{}", timers.slots.len());
    }

    #[test]
    fn ties_come_out_in_the_order_they_were_set() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        for k in [5, 3, 9, 1] {
            timers.set(k, t0);
        }
        let order: Vec<i32> = std::iter::from_fn(|| timers.pop_due(t0).map(|(k, _)| k)).collect();
        assert_eq!(order, vec![5, 3, 9, 1]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, u16),
        Cancel(u8),
        Pop(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..32, 0u16..1000).prop_map(|(k, t)| Op::Set(k, t)),
            (0u8..32).prop_map(Op::Cancel),
            (0u16..1000).prop_map(Op::Pop),
        ]
    }

    proptest! {
        /// The table behaves as a map from key to deadline that hands out
        /// its earliest due entry.
        #[test]
        fn behaves_like_a_sorted_map(ops in proptest::collection::vec(op(), 0..300)) {
            let t0 = Instant::now();
            let at = |t: u16| t0 + Duration::from_millis(u64::from(t));
            let mut timers = Timers::new();
            // key -> (deadline, order)
            let mut model: BTreeMap<u8, (u16, u64)> = BTreeMap::new();
            let mut order = 0u64;
            for op in ops {
                match op {
                    Op::Set(k, t) => {
                        timers.set(k, at(t));
                        model.insert(k, (t, order));
                        order += 1;
                    }
                    Op::Cancel(k) => {
                        prop_assert_eq!(timers.cancel(&k), model.remove(&k).is_some());
                    }
                    Op::Pop(now) => {
                        let expected = model
                            .iter()
                            .filter(|(_, (t, _))| *t <= now)
                            .min_by_key(|(_, (t, o))| (*t, *o))
                            .map(|(k, (t, _))| (*k, *t));
                        let got = timers.pop_due(at(now));
                        prop_assert_eq!(got, expected.map(|(k, t)| (k, at(t))));
                        if let Some((k, _)) = expected {
                            model.remove(&k);
                        }
                    }
                }
                prop_assert_eq!(timers.len(), model.len());
                let earliest = model.values().map(|(t, _)| *t).min().map(at);
                prop_assert_eq!(timers.next(), earliest);
                for (k, (t, _)) in &model {
                    prop_assert_eq!(timers.get(k), Some(at(*t)));
                }
            }
        }
    }
}

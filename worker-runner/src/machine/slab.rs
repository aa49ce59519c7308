//! The slot table: entries by slot number, in fixed-size chunks.
//!
//! A `Vec` that doubles would, for 100,000 entries, carry up to 30 % of
//! empty slots and reallocate (and copy) ever larger blocks as it grows.
//! Chunks of [`CHUNK`] slots are allocated once each, so the table wastes
//! at most one partly used chunk and never moves an entry.

use super::Slot;

/// Slots per chunk.
const CHUNK: usize = 1024;

/// Slots holding an `E` or nothing; see the [module docs](self).
pub(crate) struct Slab<E> {
    chunks: Vec<Box<[Option<E>]>>,
    /// Slots handed out so far (used or freed); the next new slot.
    len: usize,
}

impl<E> Default for Slab<E> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<E> Slab<E> {
    /// Slots handed out so far; the slot a [`push`](Self::push) fills.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Fills the next new slot with `e`, returning its number.
    pub(crate) fn push(&mut self, e: E) -> Slot {
        if self.len == self.chunks.len() * CHUNK {
            self.chunks
                .push(std::iter::repeat_with(|| None).take(CHUNK).collect());
        }
        let slot = self.len;
        self.chunks[slot / CHUNK][slot % CHUNK] = Some(e);
        self.len += 1;
        slot as Slot
    }

    /// The cell of a slot that was handed out.
    pub(crate) fn cell(&mut self, slot: Slot) -> &mut Option<E> {
        let slot = slot as usize;
        assert!(slot < self.len, "slot {slot} was never handed out");
        &mut self.chunks[slot / CHUNK][slot % CHUNK]
    }

    pub(crate) fn get(&self, slot: Slot) -> Option<&E> {
        let slot = slot as usize;
        if slot >= self.len {
            return None;
        }
        self.chunks[slot / CHUNK][slot % CHUNK].as_ref()
    }

    pub(crate) fn get_mut(&mut self, slot: Slot) -> Option<&mut E> {
        let slot = slot as usize;
        if slot >= self.len {
            return None;
        }
        self.chunks[slot / CHUNK][slot % CHUNK].as_mut()
    }

    /// Every filled slot's entry, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &E> {
        self.chunks.iter().flat_map(|c| c.iter()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_span_chunks_and_can_be_emptied_and_refilled() {
        let mut s: Slab<usize> = Slab::default();
        for i in 0..CHUNK * 2 + 5 {
            assert_eq!(s.push(i) as usize, i);
        }
        assert_eq!(s.len(), CHUNK * 2 + 5);
        assert_eq!(s.get(CHUNK as Slot + 3), Some(&(CHUNK + 3)));
        assert_eq!(s.cell(7).take(), Some(7));
        assert_eq!(s.get(7), None);
        *s.cell(7) = Some(70);
        *s.get_mut(8).unwrap() += 1;
        assert_eq!(s.get(8), Some(&9));
        assert_eq!(s.iter().count(), CHUNK * 2 + 5);
        assert_eq!(s.get(u32::MAX), None);
        assert_eq!(s.chunks.len(), 3);
    }
}

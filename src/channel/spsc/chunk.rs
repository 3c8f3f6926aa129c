//! Zero-copy access to the slots of an [`Spsc`](super::Spsc): [`WriteChunk`] and
//! [`ReadChunk`], after rtrb's chunks. A chunk is at most two slices (the free or
//! queued slots may wrap around the end of the array); nothing is published or freed
//! until it is committed, so a chunk dropped (or a process that dies) before its
//! commit leaves the ring as it was.
//!
//! Not built under loom, whose cells hand out no slices; the batch operations, which
//! share the chunks' protocol, are modelled there.

use core::slice::{from_raw_parts, from_raw_parts_mut};

use bytemuck::Pod;

use super::{Consumer, Producer};

/// Free slots of the ring to write in place, from [`Producer::write_chunk`].
///
/// The slots hold whatever they held before (any bit pattern is a `T`). Write the
/// items, then [`commit`](Self::commit) how many to publish.
pub struct WriteChunk<'p, 'a, T: Pod, const N: usize> {
    producer: &'p mut Producer<'a, T, N>,
    /// The slots up to the end of the array, then those from its start.
    parts: (&'p mut [T], &'p mut [T]),
}

impl<'p, 'a, T: Pod, const N: usize> WriteChunk<'p, 'a, T, N> {
    /// `len` free slots from index `start` (the producer checked that they are free).
    pub(crate) fn new(producer: &'p mut Producer<'a, T, N>, start: u64, len: usize) -> Self {
        let ((a, a_len), (b, b_len)) = producer.ring().runs(start, len);
        // SAFETY: both runs lie inside the slot array and do not overlap each other
        // (`Spsc::runs`, len ≤ N). The producer owns slots [tail, head + N) ⊇
        // [start, start + len): the consumer does not touch them until `commit`
        // publishes them, and the producer's `&mut` borrow keeps this process from
        // pushing while the chunk lives.
        let parts = unsafe { (from_raw_parts_mut(a, a_len), from_raw_parts_mut(b, b_len)) };
        WriteChunk { producer, parts }
    }

    /// The slots, in order: the second slice is non-empty only when they wrap.
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        (&mut *self.parts.0, &mut *self.parts.1)
    }

    /// The slots in order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.parts.0.iter_mut().chain(self.parts.1.iter_mut())
    }

    /// Copies `items` into the first `items.len()` slots.
    ///
    /// # Panics
    ///
    /// If `items` is longer than the chunk (a caller's bug, not the ring's state).
    pub fn copy_from_slice(&mut self, items: &[T]) {
        assert!(
            items.len() <= self.len(),
            "more items than slots in the chunk"
        );
        let k = items.len().min(self.parts.0.len());
        self.parts.0[..k].copy_from_slice(&items[..k]);
        self.parts.1[..items.len() - k].copy_from_slice(&items[k..]);
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.parts.0.len() + self.parts.1.len()
    }

    /// Has the chunk no slots?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Publishes the first `n` slots (at most the chunk's length) to the consumer.
    pub fn commit(self, n: usize) {
        self.producer.commit_chunk(n.min(self.len()));
    }

    /// Publishes every slot of the chunk.
    pub fn commit_all(self) {
        self.commit(usize::MAX)
    }
}

/// Queued items to read in place, from [`Consumer::read_chunk`]; nothing is popped
/// until [`commit`](Self::commit).
pub struct ReadChunk<'c, 'a, T: Pod, const N: usize> {
    consumer: &'c mut Consumer<'a, T, N>,
    /// The items up to the end of the array, then those from its start.
    parts: (&'c [T], &'c [T]),
}

impl<'c, 'a, T: Pod, const N: usize> ReadChunk<'c, 'a, T, N> {
    /// `len` queued items from index `start` (the consumer checked that they are
    /// published).
    pub(crate) fn new(consumer: &'c mut Consumer<'a, T, N>, start: u64, len: usize) -> Self {
        let ((a, a_len), (b, b_len)) = consumer.ring().runs(start, len);
        // SAFETY: in bounds as in `WriteChunk::new`; every bit pattern is a `T`. The
        // consumer owns slots [head, tail) ⊇ [start, start + len): the producer does
        // not write them until `commit` frees them.
        let parts = unsafe { (from_raw_parts(a, a_len), from_raw_parts(b, b_len)) };
        ReadChunk { consumer, parts }
    }

    /// The items, in order: the second slice is non-empty only when they wrap.
    pub fn as_slices(&self) -> (&[T], &[T]) {
        self.parts
    }

    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.parts.0.iter().chain(self.parts.1.iter())
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.parts.0.len() + self.parts.1.len()
    }

    /// Has the chunk no items?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pops the first `n` items (at most the chunk's length), freeing their slots.
    pub fn commit(self, n: usize) {
        self.consumer.commit_chunk(n.min(self.len()));
    }

    /// Pops every item of the chunk.
    pub fn commit_all(self) {
        self.commit(usize::MAX)
    }
}

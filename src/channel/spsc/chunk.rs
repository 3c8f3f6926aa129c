//! Zero-copy access to the slots of an [`Spsc`](super::Spsc): [`WriteChunk`] and
//! [`ReadChunk`], after rtrb's chunks. A chunk is at most two slices (the free or
//! queued slots may wrap around the end of the array); nothing is published or freed
//! until it is committed, so a chunk dropped (or a process that dies) before its
//! commit leaves the ring as it was.
//!
//! Not built under loom, whose cells hand out no slices; the batch operations, which
//! share the chunks' protocol, are modelled there.

use bytemuck::Pod;

use super::{Consumer, Producer};

/// Free slots of the ring to write in place, from [`Producer::write_chunk`].
///
/// The slots hold whatever they held before (any bit pattern is a `T`). Write the
/// items, then [`commit`](Self::commit) how many to publish.
pub struct WriteChunk<'p, 'a, T: Pod, const N: usize> {
    producer: &'p mut Producer<'a, T, N>,
    first: &'p mut [T],
    second: &'p mut [T],
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
        let (first, second) = unsafe {
            (
                core::slice::from_raw_parts_mut(a, a_len),
                core::slice::from_raw_parts_mut(b, b_len),
            )
        };
        WriteChunk {
            producer,
            first,
            second,
        }
    }

    /// The slots, in order: the second slice is non-empty only when they wrap.
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        (&mut *self.first, &mut *self.second)
    }

    /// The slots in order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.first.iter_mut().chain(self.second.iter_mut())
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
        let k = items.len().min(self.first.len());
        self.first[..k].copy_from_slice(&items[..k]);
        self.second[..items.len() - k].copy_from_slice(&items[k..]);
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    /// Has the chunk no slots?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Publishes the first `n` slots (at most the chunk's length) to the consumer.
    pub fn commit(self, n: usize) {
        let n = n.min(self.len());
        self.producer.commit_chunk(n)
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
    first: &'c [T],
    second: &'c [T],
}

impl<'c, 'a, T: Pod, const N: usize> ReadChunk<'c, 'a, T, N> {
    /// `len` queued items from index `start` (the consumer checked that they are
    /// published).
    pub(crate) fn new(consumer: &'c mut Consumer<'a, T, N>, start: u64, len: usize) -> Self {
        let ((a, a_len), (b, b_len)) = consumer.ring().runs(start, len);
        // SAFETY: in bounds as in `WriteChunk::new`; every bit pattern is a `T`. The
        // consumer owns slots [head, tail) ⊇ [start, start + len): the producer does
        // not write them until `commit` frees them.
        let (first, second) = unsafe {
            (
                core::slice::from_raw_parts(a, a_len),
                core::slice::from_raw_parts(b, b_len),
            )
        };
        ReadChunk {
            consumer,
            first,
            second,
        }
    }

    /// The items, in order: the second slice is non-empty only when they wrap.
    pub fn as_slices(&self) -> (&[T], &[T]) {
        (self.first, self.second)
    }

    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(self.second.iter())
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    /// Has the chunk no items?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pops the first `n` items (at most the chunk's length), freeing their slots.
    pub fn commit(self, n: usize) {
        let n = n.min(self.len());
        self.consumer.commit_chunk(n)
    }

    /// Pops every item of the chunk.
    pub fn commit_all(self) {
        self.commit(usize::MAX)
    }
}

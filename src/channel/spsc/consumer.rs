//! The consumer's handle of an [`Spsc`].

use core::fmt;
use core::time::Duration;

use bytemuck::Pod;

#[cfg(not(shmkit_loom))]
use super::chunk::ReadChunk;
use super::end::{Bound, EndClaim};
use super::handle::{end_handle, wait_for};
use super::{Spsc, used};
use crate::error::Error;
use crate::primitive::{Deadline, Ordering};

/// The consumer's end of an [`Spsc`]: a process-local handle (`Send`; its methods take
/// `&mut self`, so one thread at a time pops).
///
/// # Ownership
///
/// As for the [`Producer`](super::Producer): the first process and handle that pops
/// (or asks what is queued) owns the end; a handle moved into a
/// [`Process::spawn`](crate::Process::spawn) closure belongs to the child; a process
/// may adopt the end of a dead owner, and then pops from where the dead owner's last
/// completed pop left off.
///
/// # Closing and crashes
///
/// Once the producer's end is closed, dropped, or its owner dies (even by `kill -9`),
/// pops return every item that was pushed, then [`Error::Disconnected`]. The producer is
/// looked at only when the ring is empty: at once by `try_` calls, within milliseconds
/// by blocked ones.
pub struct Consumer<'a, T: Pod, const N: usize> {
    ring: &'a Spsc<T, N>,
    claim: EndClaim,
    /// Items ever popped by this end (the shared `head` is written, never read back).
    head: u64,
    /// The last `tail` read from the segment.
    tail_cache: u64,
}

impl<'a, T: Pod, const N: usize> Consumer<'a, T, N> {
    pub(crate) fn new(ring: &'a Spsc<T, N>) -> Self {
        Consumer {
            ring,
            claim: EndClaim::new(1),
            head: 0,
            tail_cache: 0,
        }
    }

    /// After a fresh claim: pops go on from the segment's `head` (`bind_slow` checked
    /// the pair).
    fn adopt(&mut self, head: u64, _tail: u64) {
        self.head = head;
        self.tail_cache = head;
    }

    /// Items available as this handle knows them (no shared load).
    #[inline(always)]
    fn available_cached(&self) -> usize {
        self.tail_cache.wrapping_sub(self.head) as usize
    }

    /// Reloads `tail` from the segment; returns the items available.
    #[inline]
    fn refresh(&mut self) -> Result<usize, Error> {
        // SYNC POINT with the Release store of `tail` in `Producer::publish`: the
        // slots up to `tail` are written.
        let tail = self.ring.tail.0.load(Ordering::Acquire);
        // `tail` never moves backwards, nor past `head + N`.
        if tail.wrapping_sub(self.tail_cache) > N as u64 {
            return Err(Error::Corrupted);
        }
        used(self.head, tail, N)?;
        self.tail_cache = tail;
        Ok(self.available_cached())
    }

    /// At least one item now, or why not: `WouldBlock`, `Disconnected` (the producer
    /// is gone and everything it published has been popped), `Corrupted`.
    #[inline]
    fn items(&mut self, check_liveness: bool) -> Result<usize, Error> {
        let n = self.refresh()?;
        if n > 0 {
            return Ok(n);
        }
        if !self.claim.peer_gone(&self.ring.ends.0, check_liveness) {
            return Err(Error::WouldBlock);
        }
        // The producer is gone: what it published before closing (or dying) is
        // visible now. Look once more.
        match self.refresh()? {
            0 => Err(Error::Disconnected),
            n => Ok(n),
        }
    }

    /// Waits (up to `deadline`; `None` = don't) for at least one item.
    #[cold]
    #[inline(never)]
    fn wait_items(&mut self, deadline: Option<Deadline>) -> Result<usize, Error> {
        let ring = self.ring;
        wait_for(&ring.ends.0.data, deadline, |check| self.items(check))
    }

    /// At least one item, looking first without the peer's liveness, then waiting.
    #[inline]
    fn items_or_wait(&mut self, deadline: Option<Deadline>) -> Result<usize, Error> {
        match self.items(false) {
            Err(Error::WouldBlock) => self.wait_items(deadline),
            r => r,
        }
    }

    /// Frees the slots up to `head` and wakes a sleeping producer.
    #[inline(always)]
    fn advance(&mut self, head: u64) {
        self.head = head;
        // SYNC POINT with the Acquire load of `head` in `Producer::refresh`: our reads
        // of the freed slots are done.
        self.ring.head.0.store(head, Ordering::Release);
        self.ring.ends.0.space.notify_all();
    }

    #[inline(always)]
    fn pop_impl(&mut self, deadline: Option<Deadline>) -> Result<T, Error> {
        self.bind()?;
        // Empty as far as the cache knows: reload `tail` inline (as rtrb does), and
        // take the cold path (the peer's state, waiting) only if it is really empty.
        if self.available_cached() == 0 && self.refresh()? == 0 {
            self.wait_items(deadline)?;
        }
        let value = self.ring.read_slot(self.head);
        self.advance(self.head.wrapping_add(1));
        Ok(value)
    }

    /// Pops the next item, waiting while the ring is empty.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] once the producer is gone and everything it pushed has
    /// been popped; [`Error::Closed`], [`Error::EndpointInUse`], [`Error::Corrupted`].
    #[inline]
    pub fn pop(&mut self) -> Result<T, Error> {
        self.pop_impl(Some(Deadline::NEVER))
    }

    /// Pops the next item if one is queued now.
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] if none is; otherwise as [`pop`](Self::pop).
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, Error> {
        self.pop_impl(None)
    }

    /// Pops the next item, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if none came; otherwise as [`pop`](Self::pop).
    pub fn pop_timeout(&mut self, timeout: Duration) -> Result<T, Error> {
        self.pop_impl(Some(Deadline::after(timeout)))
    }

    /// Pops up to `out.len()` items into `out` (at least one unless `out` is empty),
    /// waiting while the ring is empty; one publication and one wake-up check for the
    /// whole batch. Returns how many were popped.
    ///
    /// # Errors
    ///
    /// As [`pop`](Self::pop); nothing was popped then.
    pub fn pop_slice(&mut self, out: &mut [T]) -> Result<usize, Error> {
        self.pop_slice_impl(out, Some(Deadline::NEVER))
    }

    /// As [`pop_slice`](Self::pop_slice), without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] if the ring is empty (and `out` is not); otherwise as
    /// [`pop`](Self::pop).
    pub fn try_pop_slice(&mut self, out: &mut [T]) -> Result<usize, Error> {
        self.pop_slice_impl(out, None)
    }

    /// As [`pop_slice`](Self::pop_slice), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if none came; otherwise as [`pop`](Self::pop).
    pub fn pop_slice_timeout(&mut self, out: &mut [T], timeout: Duration) -> Result<usize, Error> {
        self.pop_slice_impl(out, Some(Deadline::after(timeout)))
    }

    #[inline]
    fn pop_slice_impl(
        &mut self,
        out: &mut [T],
        deadline: Option<Deadline>,
    ) -> Result<usize, Error> {
        self.bind()?;
        if out.is_empty() {
            return Ok(0);
        }
        let mut n = self.available_cached();
        if n < out.len() {
            n = self.items_or_wait(deadline)?;
        }
        let n = n.min(out.len());
        self.ring.read_slots(self.head, &mut out[..n]);
        self.advance(self.head.wrapping_add(n as u64));
        Ok(n)
    }

    /// Zero-copy: up to `max` queued items to read in place (at least one, waiting
    /// while the ring is empty), as a [`ReadChunk`]; nothing is popped until its
    /// [`commit`](ReadChunk::commit).
    ///
    /// # Errors
    ///
    /// As [`pop`](Self::pop).
    #[cfg(not(shmkit_loom))]
    pub fn read_chunk(&mut self, max: usize) -> Result<ReadChunk<'_, 'a, T, N>, Error> {
        self.read_chunk_impl(max, Some(Deadline::NEVER))
    }

    /// As [`read_chunk`](Self::read_chunk), without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] if the ring is empty; otherwise as [`pop`](Self::pop).
    #[cfg(not(shmkit_loom))]
    pub fn try_read_chunk(&mut self, max: usize) -> Result<ReadChunk<'_, 'a, T, N>, Error> {
        self.read_chunk_impl(max, None)
    }

    #[cfg(not(shmkit_loom))]
    fn read_chunk_impl(
        &mut self,
        max: usize,
        deadline: Option<Deadline>,
    ) -> Result<ReadChunk<'_, 'a, T, N>, Error> {
        self.bind()?;
        let max = max.min(N);
        let mut n = self.available_cached();
        if n < max.max(1) {
            n = self.items_or_wait(deadline)?;
        }
        let start = self.head;
        Ok(ReadChunk::new(self, start, n.min(max)))
    }

    /// Frees `n` slots read through a chunk (`n` ≤ the chunk's length).
    #[cfg(not(shmkit_loom))]
    pub(crate) fn commit_chunk(&mut self, n: usize) {
        if n > 0 {
            self.advance(self.head.wrapping_add(n as u64));
        }
    }

    /// Items queued now (reloads the producer's index). A racy snapshot: more may
    /// arrive at any moment.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::EndpointInUse`], [`Error::Corrupted`].
    pub fn len(&mut self) -> Result<usize, Error> {
        self.bind()?;
        self.refresh()
    }

    /// Is nothing queued now? As [`len`](Self::len) `== 0`.
    ///
    /// # Errors
    ///
    /// As [`len`](Self::len).
    pub fn is_empty(&mut self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }
}

end_handle!(
    Consumer,
    head,
    peer: "producer",
    close: "Closes this end: the producer's pushes get [`Error::Disconnected`] once the \
        ring is full. Idempotent; only the owning handle closes the end. Dropping the \
        handle closes it too.",
    abandoned: "Checks liveness (a few system calls at most once per millisecond). Items \
        may still be queued.",
);

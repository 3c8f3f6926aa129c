//! The producer's handle of an [`Spsc`].

use core::fmt;
use core::time::Duration;

use bytemuck::Pod;

#[cfg(not(shmkit_loom))]
use super::chunk::WriteChunk;
use super::end::{Bound, EndClaim};
use super::handle::{end_handle, wait_for};
use super::{Spsc, used};
use crate::error::Error;
use crate::primitive::{Deadline, Ordering};

/// An item that could not be pushed, handed back with the reason.
pub enum PushError<T> {
    /// The ring is full (`try_push`).
    Full(T),
    /// It stayed full until the timeout (`push_timeout`).
    Timeout(T),
    /// The consumer closed its end or died.
    Disconnected(T),
    /// This handle cannot push: [`Error::Closed`], [`Error::EndpointInUse`] or
    /// [`Error::Corrupted`].
    Failed(Error, T),
}

impl<T> PushError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v)
            | PushError::Timeout(v)
            | PushError::Disconnected(v)
            | PushError::Failed(_, v) => v,
        }
    }

    /// The kit's [`Error`] for this failure (`Full` is [`Error::WouldBlock`]).
    pub fn error(&self) -> Error {
        match self {
            PushError::Full(_) => Error::WouldBlock,
            PushError::Timeout(_) => Error::Timeout,
            PushError::Disconnected(_) => Error::Disconnected,
            PushError::Failed(e, _) => *e,
        }
    }

    fn with(error: Error, value: T) -> Self {
        match error {
            Error::WouldBlock => PushError::Full(value),
            Error::Timeout => PushError::Timeout(value),
            Error::Disconnected => PushError::Disconnected(value),
            e => PushError::Failed(e, value),
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
            PushError::Timeout(_) => f.write_str("Timeout(..)"),
            PushError::Disconnected(_) => f.write_str("Disconnected(..)"),
            PushError::Failed(e, _) => write!(f, "Failed({e:?}, ..)"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error(), f)
    }
}

impl<T> core::error::Error for PushError<T> {}

/// The producer's end of an [`Spsc`]: a process-local handle (`Send`; its methods take
/// `&mut self`, so one thread at a time pushes).
///
/// # Ownership
///
/// The end belongs to the first process — and the first handle in it — that pushes
/// (or asks for room). Any other handle gets [`Error::EndpointInUse`], except that a
/// process may *adopt* the end of an owner that died. A handle moved into a
/// [`Process::spawn`](crate::Process::spawn) closure belongs to the child from then
/// on. A handle that never pushed may be dropped with no effect on the owner.
///
/// # Closing and crashes
///
/// Dropping or [`close`](Self::close)-ing the owning handle closes the end: the
/// consumer receives everything pushed, then [`Error::Disconnected`]. Pushes do not
/// look at the consumer while there is room: a closed or dead consumer is noticed when
/// the ring is full (at once by `try_` calls, within milliseconds by blocked ones).
pub struct Producer<'a, T: Pod, const N: usize> {
    ring: &'a Spsc<T, N>,
    claim: EndClaim,
    /// Items ever pushed by this end (the shared `tail` is written, never read back).
    tail: u64,
    /// The last `head` read from the segment.
    head_cache: u64,
}

impl<'a, T: Pod, const N: usize> Producer<'a, T, N> {
    pub(crate) fn new(ring: &'a Spsc<T, N>) -> Self {
        Producer {
            ring,
            claim: EndClaim::new(0),
            tail: 0,
            head_cache: 0,
        }
    }

    /// After a fresh claim: pushes go on from the segment's `tail` (`bind_slow`
    /// checked the pair). Anything the last owner wrote past it was never published,
    /// and is overwritten.
    fn adopt(&mut self, head: u64, tail: u64) {
        self.tail = tail;
        self.head_cache = head;
    }

    /// Free slots as this handle knows them (no shared load).
    #[inline(always)]
    fn free_cached(&self) -> usize {
        N - self.tail.wrapping_sub(self.head_cache) as usize
    }

    /// Reloads `head` from the segment; returns the free slots.
    #[inline]
    fn refresh(&mut self) -> Result<usize, Error> {
        // SYNC POINT with the Release store of `head` in `Consumer::advance`: the
        // consumer's reads of the slots it freed are done.
        let head = self.ring.head.0.load(Ordering::Acquire);
        // `head` never moves backwards, nor past `tail`.
        if head.wrapping_sub(self.head_cache) > N as u64 {
            return Err(Error::Corrupted);
        }
        used(head, self.tail, N)?;
        self.head_cache = head;
        Ok(self.free_cached())
    }

    /// At least `want` (≥ 1) free slots now, or the reason why not: `WouldBlock`,
    /// `Disconnected`, `Corrupted`. Checks the consumer only when the ring is full.
    #[inline]
    fn room(&mut self, want: usize, check_liveness: bool) -> Result<usize, Error> {
        let free = self.free_cached();
        if free >= want {
            return Ok(free);
        }
        let free = self.refresh()?;
        if free >= want {
            return Ok(free);
        }
        if free == 0 && self.claim.peer_gone(&self.ring.ends.0, check_liveness) {
            return Err(Error::Disconnected);
        }
        if free > 0 {
            return Ok(free);
        }
        Err(Error::WouldBlock)
    }

    /// Waits (up to `deadline`; `None` = don't) for at least one free slot.
    #[cold]
    #[inline(never)]
    fn wait_room(&mut self, deadline: Option<Deadline>) -> Result<usize, Error> {
        let ring = self.ring;
        wait_for(&ring.ends.0.space, deadline, |check| self.room(1, check))
    }

    /// At least `want` free slots if there are, else at least one, looking first
    /// without the peer's liveness, then waiting.
    #[inline]
    fn room_or_wait(&mut self, want: usize, deadline: Option<Deadline>) -> Result<usize, Error> {
        match self.room(want, false) {
            Err(Error::WouldBlock) => self.wait_room(deadline),
            r => r,
        }
    }

    /// Publishes `tail` and wakes a sleeping consumer.
    #[inline(always)]
    fn publish(&mut self, tail: u64) {
        self.tail = tail;
        // SYNC POINT with the Acquire load of `tail` in `Consumer::refresh`: the
        // slots up to `tail` are written.
        self.ring.tail.0.store(tail, Ordering::Release);
        self.ring.ends.0.data.notify_all();
    }

    #[inline(always)]
    fn push_impl(&mut self, value: T, deadline: Option<Deadline>) -> Result<(), PushError<T>> {
        if let Err(e) = self.bind() {
            return Err(PushError::with(e, value));
        }
        // Full as far as the cache knows: reload `head` inline (as rtrb does), and take
        // the cold path (the peer's state, waiting) only if it is really full.
        if self.free_cached() == 0 && !matches!(self.refresh(), Ok(1..)) {
            if let Err(e) = self.wait_room(deadline) {
                return Err(PushError::with(e, value));
            }
        }
        self.ring.write_slot(self.tail, value);
        self.publish(self.tail.wrapping_add(1));
        Ok(())
    }

    /// Pushes `value`, waiting while the ring is full.
    ///
    /// # Errors
    ///
    /// [`PushError::Disconnected`] if the consumer closed its end or died (noticed when
    /// the ring is full); [`PushError::Failed`] with [`Error::Closed`],
    /// [`Error::EndpointInUse`] or [`Error::Corrupted`]. The item is handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = Box::new(shmkit::Spsc::<u32, 4>::new());
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push(7).unwrap();
    /// assert_eq!(rx.pop(), Ok(7));
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        self.push_impl(value, Some(Deadline::NEVER))
    }

    /// Pushes `value` if there is room now.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] if the ring is full; otherwise as [`push`](Self::push).
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), PushError<T>> {
        self.push_impl(value, None)
    }

    /// Pushes `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PushError::Timeout`] if the ring stayed full; otherwise as [`push`](Self::push).
    pub fn push_timeout(&mut self, value: T, timeout: Duration) -> Result<(), PushError<T>> {
        self.push_impl(value, Some(Deadline::after(timeout)))
    }

    /// Pushes a prefix of `items` (as many as there is room for, at least one unless
    /// `items` is empty), waiting while the ring is full; one publication and one
    /// wake-up check for the whole batch. Returns how many were pushed.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] (consumer gone, ring full), [`Error::Closed`],
    /// [`Error::EndpointInUse`], [`Error::Corrupted`]; nothing was pushed then.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = Box::new(shmkit::Spsc::<u8, 4>::new());
    /// let (mut tx, mut rx) = ring.split();
    /// assert_eq!(tx.push_slice(b"hello"), Ok(4)); // room for four
    /// let mut out = [0u8; 8];
    /// assert_eq!(rx.pop_slice(&mut out), Ok(4));
    /// assert_eq!(&out[..4], b"hell");
    /// ```
    pub fn push_slice(&mut self, items: &[T]) -> Result<usize, Error> {
        self.push_slice_impl(items, Some(Deadline::NEVER))
    }

    /// As [`push_slice`](Self::push_slice), without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] if the ring is full (and `items` is not empty); otherwise
    /// as [`push_slice`](Self::push_slice).
    pub fn try_push_slice(&mut self, items: &[T]) -> Result<usize, Error> {
        self.push_slice_impl(items, None)
    }

    /// As [`push_slice`](Self::push_slice), waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the ring stayed full; otherwise as
    /// [`push_slice`](Self::push_slice).
    pub fn push_slice_timeout(&mut self, items: &[T], timeout: Duration) -> Result<usize, Error> {
        self.push_slice_impl(items, Some(Deadline::after(timeout)))
    }

    #[inline]
    fn push_slice_impl(&mut self, items: &[T], deadline: Option<Deadline>) -> Result<usize, Error> {
        self.bind()?;
        if items.is_empty() {
            return Ok(0);
        }
        let mut free = self.free_cached();
        if free < items.len() {
            free = self.room_or_wait(items.len(), deadline)?;
        }
        let n = free.min(items.len());
        self.ring.write_slots(self.tail, &items[..n]);
        self.publish(self.tail.wrapping_add(n as u64));
        Ok(n)
    }

    /// Zero-copy: up to `max` free slots to write in place (at least one, waiting while
    /// the ring is full), as a [`WriteChunk`]; nothing is published until its
    /// [`commit`](WriteChunk::commit). Slots hold whatever they held (any `Pod` bits).
    ///
    /// # Errors
    ///
    /// As [`push_slice`](Self::push_slice).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = Box::new(shmkit::Spsc::<u64, 8>::new());
    /// let (mut tx, mut rx) = ring.split();
    /// let mut chunk = tx.write_chunk(3)?;
    /// for (i, slot) in chunk.iter_mut().enumerate() {
    ///     *slot = i as u64 * 10;
    /// }
    /// chunk.commit_all();
    /// let chunk = rx.read_chunk(8)?;
    /// assert_eq!(chunk.iter().copied().collect::<Vec<_>>(), [0, 10, 20]);
    /// chunk.commit_all();
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[cfg(not(shmkit_loom))]
    pub fn write_chunk(&mut self, max: usize) -> Result<WriteChunk<'_, 'a, T, N>, Error> {
        self.write_chunk_impl(max, Some(Deadline::NEVER))
    }

    /// As [`write_chunk`](Self::write_chunk), without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] if the ring is full; otherwise as
    /// [`push_slice`](Self::push_slice).
    #[cfg(not(shmkit_loom))]
    pub fn try_write_chunk(&mut self, max: usize) -> Result<WriteChunk<'_, 'a, T, N>, Error> {
        self.write_chunk_impl(max, None)
    }

    #[cfg(not(shmkit_loom))]
    fn write_chunk_impl(
        &mut self,
        max: usize,
        deadline: Option<Deadline>,
    ) -> Result<WriteChunk<'_, 'a, T, N>, Error> {
        self.bind()?;
        let max = max.min(N);
        let mut free = self.free_cached();
        if free < max {
            free = self.room_or_wait(max.max(1), deadline)?;
        }
        let start = self.tail;
        Ok(WriteChunk::new(self, start, free.min(max)))
    }

    /// Publishes `n` slots written through a chunk (`n` ≤ the chunk's length).
    #[cfg(not(shmkit_loom))]
    pub(crate) fn commit_chunk(&mut self, n: usize) {
        if n > 0 {
            self.publish(self.tail.wrapping_add(n as u64));
        }
    }

    /// Free slots now (reloads the consumer's index). A racy snapshot: more may free
    /// up at any moment.
    ///
    /// # Errors
    ///
    /// As [`push_slice`](Self::push_slice), without `Disconnected`.
    pub fn slots(&mut self) -> Result<usize, Error> {
        self.bind()?;
        self.refresh()
    }

    /// Loom models only: writes `value` into the next slot without publishing it,
    /// then dies (a `kill -9` in the middle of a push).
    #[cfg(shmkit_loom)]
    #[doc(hidden)]
    pub fn __loom_die_mid_push(mut self, value: T) {
        if self.bind().is_ok() && self.room(1, false).is_ok() {
            self.ring.write_slot(self.tail, value);
        }
        crate::primitive::loom_die();
        core::mem::forget(self);
    }
}

end_handle!(
    Producer,
    tail,
    peer: "consumer",
    close: "Closes this end: the consumer receives what was pushed, then \
        [`Error::Disconnected`]. Idempotent; only the owning handle closes the end (a \
        handle that never pushed closes only itself). Dropping the handle closes it too.",
    abandoned: "Checks liveness (a few system calls at most once per millisecond).",
);

//! The SPSC byte ring: variable-length records in a fixed array of `CAP` bytes.
//!
//! One producer appends records at `tail`, one consumer removes them at `head`; both
//! indices are 64-bit byte counts that only grow (they never wrap in practice: 2^64
//! bytes is centuries at any bus speed), and `index % CAP` is the position in the
//! data array.
//!
//! ## Publication by header
//!
//! A record is published by the Release store of its 8-byte header word, written after
//! its payload; the consumer Acquire-loads the header word at `head` and finds either
//! zero (nothing yet) or a complete record. So a receiver that keeps up with the sender
//! touches one cache line per small message — the one holding the record — instead of
//! two (`tail`'s line, then the record's), which halves the latency of a round trip.
//! `tail` is still stored after each record, for the producer's own use (and for a
//! process that adopts the producer's end), but the consumer never waits on it.
//!
//! Zero means "nothing yet" only because of one invariant: **the header word at `tail`
//! is zero, or `tail` is at position 0**. The ring starts all zero, and before
//! publishing a record the producer zeroes the word right after it (the next record's
//! header). For that the producer keeps 8 bytes of slack: a record that ends before the
//! end of the array is written only if its size plus 8 is free, so the word after it is
//! free space. Position 0 needs no zeroing: every lap starts with a record there, so the
//! word at 0 is either the new header or the header the previous lap wrote at 0, which
//! the consumer recognises by its seal (sealed for the index one lap back) and treats as
//! "nothing yet". The consumer frees space with a Release store of `head`, which the
//! producer Acquire-loads before it overwrites the space.
//!
//! ## Layout (`#[repr(C)]`, `CAP` a power of two, 64 ≤ `CAP` ≤ 2^31)
//!
//! ```text
//! offset      size  field   written by
//!      0         8  tail    producer (Release after each record)
//!    128         8  head    consumer (Release after a record is read)
//!    256         8  data    Notifier "data available": producer wakes, consumer sleeps
//!    264         8  space   Notifier "space available": consumer wakes, producer sleeps
//!    384       CAP  bytes   records: producer writes [tail, head + CAP), consumer reads [head, tail)
//! ```
//!
//! Each index sits on a 128-byte line of its own (two 64-byte lines: the adjacent-line
//! prefetcher pulls pairs), so the two sides never write the same line on the fast path.
//!
//! ## Records
//!
//! ```text
//! +0  u32 len    payload length in bytes (DATA), or the bytes to skip after the header (PADDING)
//! +4  u32 seal   SEAL_SET | kind bit | 30 bits of a hash of (record start index, len)
//! +8  payload    len bytes, then zero to seven bytes to the next multiple of 8
//! ```
//!
//! The two halves form one little-endian `u64` word, stored and loaded atomically. The
//! seal's top bit makes every header non-zero; the next bit tells padding from data; the
//! hash ties the header to the index it was written at, so a stale header from an
//! earlier lap, or bytes a scribbler wrote, are not taken for a record (but for
//! corruption) except by a 2^-30 chance.
//!
//! Records start at multiples of 8, so every payload is 8-byte aligned (the data array
//! is 128-byte aligned) and `recv_with` hands out aligned slices. A record is always
//! contiguous: when the next one does not fit before the end of the array, the
//! producer first fills the rest with one PADDING record (as Aeron does) and starts
//! again at position 0. The padding is published on its own, even if the record itself
//! must still wait for room: so a record of the largest size, `CAP` bytes with its
//! header (which ends at the end of the array and so needs no slack), always fits once
//! the consumer has caught up, wherever `tail` stood.
//!
//! ## Caches
//!
//! The producer keeps, in its process-local handle, the last value it read of `head`
//! (as rtrb does), and reloads the shared one only when the ring looks full: in a
//! steady stream it touches the consumer's line once per wrap, not once per message.
//!
//! ## Validation
//!
//! Everything read from the shared array or indices is checked before it is used:
//! `head` and `tail` must be multiples of 8 with `0 ≤ tail - head ≤ CAP` (where the
//! producer uses them); a header must carry the seal for its index, and its whole
//! extent must lie inside the array without crossing its end; a padding record must end
//! exactly at the end of the array and never start at position 0. A header is read
//! once into a local, so a concurrent scribbler cannot change it between the check and
//! the use. A failure is [`Error::Corrupted`]; no loop here runs more than twice, except
//! the adopting producer's walk over published records, bounded by `CAP / 8` steps.

use core::cell::Cell;

use crate::error::Error;
use crate::primitive::{AtomicU64, Ordering, UnsafeCell};
use crate::sync::notifier::Notifier;

/// A record header's size, the alignment of every record, and the producer's slack.
pub(crate) const HEADER: usize = 8;
/// Set in every seal: a published header is never zero.
const SEAL_SET: u32 = 1 << 31;
/// Set in the seal of a padding record.
const SEAL_PADDING: u32 = 1 << 30;

/// The header word of a record of payload length `len` (or, for padding, the bytes it
/// skips after its header) that starts at ring index `start`.
#[inline]
fn header_word(start: u64, len: u32, padding: bool) -> u64 {
    // A multiplicative hash of the index (in 8-byte units) and the length; the top 30
    // bits of the product are the best mixed.
    let key = (start >> 3) ^ (u64::from(len) << 40) ^ u64::from(len);
    let hash = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 34) as u32;
    let seal = SEAL_SET | if padding { SEAL_PADDING } else { 0 } | hash;
    u64::from(len) | (u64::from(seal) << 32)
}

/// A value alone on a 128-byte line.
#[repr(C, align(128))]
#[derive(Default)]
pub(crate) struct Line<T>(pub(crate) T);

/// The two notifiers of a ring (see the layout table).
#[repr(C)]
#[derive(Default)]
pub(crate) struct Wakers {
    /// "A record (or padding) was published": the producer wakes, the consumer sleeps.
    pub(crate) data: Notifier,
    /// "Space was freed": the consumer wakes, the producer sleeps.
    pub(crate) space: Notifier,
}

/// The shared state of one byte ring; see the module docs for its layout.
#[repr(C)]
pub(crate) struct Ring<const CAP: usize> {
    /// Bytes ever published. Written by the producer only.
    tail: Line<AtomicU64>,
    /// Bytes ever consumed. Written by the consumer only.
    head: Line<AtomicU64>,
    /// The notifiers.
    pub(crate) wake: Line<Wakers>,
    /// The records.
    bytes: [UnsafeCell<u8>; CAP],
    /// Under loom, the header words live apart from the bytes (loom's atomics are not
    /// views of memory): `headers[pos / 8]` is the word at `pos`.
    #[cfg(shmkit_loom)]
    headers: std::vec::Vec<AtomicU64>,
}

#[cfg(not(shmkit_loom))]
const _: () = {
    assert!(core::mem::offset_of!(Ring<64>, tail) == 0);
    assert!(core::mem::offset_of!(Ring<64>, head) == 128);
    assert!(core::mem::offset_of!(Ring<64>, wake) == 256);
    assert!(core::mem::offset_of!(Ring<64>, bytes) == 384);
    assert!(core::mem::size_of::<Ring<64>>() == 512);
    assert!(core::mem::size_of::<Ring<4096>>() == 384 + 4096);
    assert!(core::mem::align_of::<Ring<64>>() == 128);
};

/// Where a reserved record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// The record's start, as a ring index (`tail` before the record).
    start: u64,
    /// Payload length.
    len: usize,
}

/// The next message, found by [`Ring::peek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message {
    /// Payload offset in the data array.
    offset: usize,
    /// Payload length.
    pub(crate) len: usize,
    /// `head` after this record.
    next_head: u64,
}

impl Message {
    /// `head` after this record (for batches, which publish `head` once).
    #[inline]
    pub(crate) fn next_head(&self) -> u64 {
        self.next_head
    }
}

/// The slack a record ending at array offset `end` (of `cap`) needs after it: one header
/// word to zero, unless it ends at the end of the array (position 0 is never zeroed
/// ahead).
#[inline]
const fn slack(end: usize, cap: usize) -> usize {
    if end == cap { 0 } else { HEADER }
}

/// Rounds up to the record alignment.
#[inline]
const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

impl<const CAP: usize> Ring<CAP> {
    /// Rejects bad capacities at compile time (post-monomorphisation).
    pub(crate) const CAP_OK: () = assert!(
        CAP.is_power_of_two() && CAP >= 64 && CAP <= 1 << 31,
        "Pipe capacity must be a power of two in 64..=2^31"
    );

    /// The largest payload: one record filling the whole ring.
    pub(crate) const MAX_MESSAGE: usize = CAP - HEADER;

    crate::primitive::loom_const_fn! {
        /// An empty ring (all zero).
        pub(crate) const fn new() -> Self {
            #[allow(clippy::let_unit_value)]
            let () = Self::CAP_OK;
            Ring {
                tail: Line(AtomicU64::new(0)),
                head: Line(AtomicU64::new(0)),
                wake: Line(Wakers { data: Notifier::new(), space: Notifier::new() }),
                bytes: new_bytes::<CAP>(),
                #[cfg(shmkit_loom)]
                headers: (0..CAP / HEADER).map(|_| AtomicU64::new(0)).collect(),
            }
        }
    }

    // ---- producer side -------------------------------------------------------------

    /// Reserves room for a `len`-byte payload (`len <= MAX_MESSAGE`, checked by the
    /// caller). `cached_head` is the producer's cache of `head`. `Ok(None)`: no room
    /// now. May publish a padding record (then wakes the consumer) even when it then
    /// finds no room for the record itself.
    #[inline]
    pub(crate) fn try_reserve(
        &self,
        cached_head: &Cell<u64>,
        len: usize,
    ) -> Result<Option<Reservation>, Error> {
        debug_assert!(len <= Self::MAX_MESSAGE);
        // The common case, inline: the record fits before the end of the array and the
        // cached `head` already shows room for it and the slack (no shared load at all).
        let record = HEADER + round8(len);
        // Only the producer writes `tail`; Relaxed reads our own last store.
        let tail = self.tail.0.load(Ordering::Relaxed);
        let pos = (tail % CAP as u64) as usize;
        if let Ok(used) = self.check_indices(cached_head.get(), tail) {
            if record <= CAP - pos && record + slack(pos + record, CAP) <= CAP - used {
                return Ok(Some(Reservation { start: tail, len }));
            }
        }
        self.try_reserve_slow(cached_head, len)
    }

    /// [`try_reserve`](Self::try_reserve) when the cache shows no room or the record
    /// must wrap: reloads `head`, publishes padding.
    #[cold]
    #[inline(never)]
    fn try_reserve_slow(
        &self,
        cached_head: &Cell<u64>,
        len: usize,
    ) -> Result<Option<Reservation>, Error> {
        let record = HEADER + round8(len);
        // Only the producer writes `tail`; Relaxed reads our own last store.
        let mut tail = self.tail.0.load(Ordering::Relaxed);
        let mut head = cached_head.get();
        let mut used = self.check_indices(head, tail).ok();
        for _ in 0..2 {
            let pos = (tail % CAP as u64) as usize;
            let to_end = CAP - pos;
            // Room for the record and the slack word after it, or for the padding
            // (which ends at the end of the array: no slack).
            let (needed, pad) = if record <= to_end {
                (record + slack(pos + record, CAP), false)
            } else {
                (to_end, true)
            };
            if used.is_none_or(|used| CAP - used < needed) {
                // Looks full (or the cache is stale): reload the consumer's index.
                // SYNC POINT with the Release store of `head` in `release`: the
                // consumer's reads of the space we are about to overwrite are done.
                head = self.head.0.load(Ordering::Acquire);
                cached_head.set(head);
                let now = self.check_indices(head, tail)?;
                used = Some(now);
                if CAP - now < needed {
                    return Ok(None);
                }
            }
            if !pad {
                return Ok(Some(Reservation { start: tail, len }));
            }
            // The record would cross the end: fill the rest with padding, publish it
            // alone, and try again at position 0.
            self.publish(tail, (to_end - HEADER) as u32, true);
            tail = tail.wrapping_add(to_end as u64);
            self.wake.0.data.notify_all();
            used = used.map(|u| u + to_end);
        }
        // After padding, `tail` is at position 0 and the record fits before the end,
        // so the loop returned in its second round.
        Err(Error::Corrupted)
    }

    /// The payload space of a reservation: calls `f` with it.
    #[inline]
    pub(crate) fn fill<R>(&self, r: &Reservation, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let offset = (r.start % CAP as u64) as usize + HEADER;
        self.with_slice_mut(offset, r.len, f)
    }

    /// Publishes a filled reservation and wakes the consumer.
    #[inline]
    pub(crate) fn commit(&self, r: Reservation) {
        self.publish(r.start, r.len as u32, false);
        self.wake.0.data.notify_all();
    }

    /// Publishes the record (or padding) of `len` at ring index `start`: zeroes the
    /// next record's header word, stores this one's (Release), then advances `tail`.
    #[inline]
    fn publish(&self, start: u64, len: u32, padding: bool) {
        let next = start.wrapping_add((HEADER + round8(len as usize)) as u64);
        let next_pos = (next % CAP as u64) as usize;
        if next_pos != 0 {
            // The word after the record is free (the slack): keep the invariant that
            // the header word at `tail` is zero. Relaxed: the Release below orders it.
            self.header(next_pos).store(0, Ordering::Relaxed);
        }
        // SYNC POINT with the Acquire load of the header in `peek`: the payload and
        // the zeroed word after it are written.
        self.header((start % CAP as u64) as usize)
            .store(header_word(start, len, padding), Ordering::Release);
        // SYNC POINT with the Acquire loads of `tail` in `indices` (a process that
        // adopts this end, `Debug`).
        self.tail.0.store(next, Ordering::Release);
    }

    /// For a process that adopts the producer's end of a dead owner: the owner may have
    /// published records (by their headers) but died before storing `tail`. Walks the
    /// published headers from `tail` and stores where they end. Call only as the sole
    /// producer.
    pub(crate) fn recover_tail(&self) {
        let mut tail = self.tail.0.load(Ordering::Acquire);
        let head = self.head.0.load(Ordering::Acquire);
        for _ in 0..CAP / HEADER {
            let Ok(used) = self.check_indices(head, tail) else {
                return;
            };
            let pos = (tail % CAP as u64) as usize;
            let word = self.header(pos).load(Ordering::Acquire);
            let len = word as u32;
            let extent = if word == header_word(tail, len, false) {
                HEADER + round8(len as usize)
            } else if word == header_word(tail, len, true) {
                HEADER + len as usize
            } else {
                break;
            };
            if extent > CAP - pos || used + extent > CAP {
                break;
            }
            tail = tail.wrapping_add(extent as u64);
        }
        self.tail.0.store(tail, Ordering::Release);
    }

    // ---- consumer side -------------------------------------------------------------

    /// Finds the next message without removing it. Padding on the way is consumed (and
    /// the producer woken). `Ok(None)`: empty.
    #[inline]
    pub(crate) fn peek(&self) -> Result<Option<Message>, Error> {
        // Only the consumer writes `head` (Relaxed reads our own last store).
        let head = self.head.0.load(Ordering::Relaxed);
        if head % HEADER as u64 != 0 {
            return Err(Error::Corrupted);
        }
        let pos = (head % CAP as u64) as usize;
        // SYNC POINT with the Release store of the header in `publish`: the payload is
        // written.
        let word = self.header(pos).load(Ordering::Acquire);
        if word == 0 {
            return Ok(None);
        }
        let len = word as u32;
        if word == header_word(head, len, false) {
            let len = len as usize;
            if len <= Self::MAX_MESSAGE && HEADER + round8(len) <= CAP - pos {
                return Ok(Some(Message {
                    offset: pos + HEADER,
                    len,
                    next_head: head.wrapping_add((HEADER + round8(len)) as u64),
                }));
            }
        }
        self.peek_slow()
    }

    /// [`peek`](Self::peek) for padding and corruption.
    #[cold]
    #[inline(never)]
    fn peek_slow(&self) -> Result<Option<Message>, Error> {
        // Only the consumer writes `head` (Relaxed reads our own last store).
        let mut head = self.head.0.load(Ordering::Relaxed);
        if head % HEADER as u64 != 0 {
            return Err(Error::Corrupted);
        }
        // A padding record is followed by a message at position 0: two rounds at most.
        for _ in 0..2 {
            let pos = (head % CAP as u64) as usize;
            // SYNC POINT with the Release store of the header in `publish`.
            let word = self.header(pos).load(Ordering::Acquire);
            if word == 0 || self.is_last_laps(pos, head, word) {
                return Ok(None);
            }
            let len = word as u32 as usize;
            let to_end = CAP - pos;
            if word == header_word(head, len as u32, false) {
                let record = HEADER + round8(len);
                if len > Self::MAX_MESSAGE || record > to_end {
                    return Err(Error::Corrupted);
                }
                return Ok(Some(Message {
                    offset: pos + HEADER,
                    len,
                    next_head: head.wrapping_add(record as u64),
                }));
            }
            if word != header_word(head, len as u32, true) || pos == 0 || len != to_end - HEADER {
                return Err(Error::Corrupted);
            }
            head = head.wrapping_add(to_end as u64);
            // SYNC POINT with the Acquire load of `head` in `try_reserve`.
            self.head.0.store(head, Ordering::Release);
            self.wake.0.space.notify_all();
        }
        Err(Error::Corrupted)
    }

    /// Is `word`, at `pos` where the consumer stands at `head`, the header the previous
    /// lap wrote there (so: nothing new yet)? Only at position 0, which starts every lap
    /// with a record and is not zeroed ahead (see the module docs).
    #[inline]
    fn is_last_laps(&self, pos: usize, head: u64, word: u64) -> bool {
        pos == 0 && word == header_word(head.wrapping_sub(CAP as u64), word as u32, false)
    }

    /// Calls `f` with a found message's payload.
    #[inline]
    pub(crate) fn read<R>(&self, m: &Message, f: impl FnOnce(&[u8]) -> R) -> R {
        self.with_slice(m.offset, m.len, f)
    }

    /// Removes a message found by `peek`; also skips a padding record right behind
    /// it if one is already published (so a producer waiting for the whole ring is
    /// not held up by padding until the next receive).
    #[inline]
    pub(crate) fn release(&self, m: Message) {
        let mut head = m.next_head;
        let pos = (head % CAP as u64) as usize;
        if pos != 0 {
            // SYNC POINT with the Release store of the header in `publish`.
            let word = self.header(pos).load(Ordering::Acquire);
            let to_end = CAP - pos;
            if word != 0 && word == header_word(head, (to_end - HEADER) as u32, true) {
                head = head.wrapping_add(to_end as u64);
            }
        }
        // SYNC POINT with the Acquire load of `head` in `try_reserve`: our reads of
        // the record are done before the producer may overwrite it.
        self.head.0.store(head, Ordering::Release);
        self.wake.0.space.notify_all();
    }

    // ---- batch hooks (used by `connection/batch.rs`) ---------------------------------

    /// Publishes a filled reservation without waking the consumer: a batch wakes once,
    /// with [`wake_consumer`](Self::wake_consumer), after its last record.
    #[inline]
    pub(crate) fn commit_quiet(&self, r: Reservation) {
        self.publish(r.start, r.len as u32, false);
    }

    /// Wakes a sleeping consumer (after [`commit_quiet`](Self::commit_quiet)).
    #[inline]
    pub(crate) fn wake_consumer(&self) {
        self.wake.0.data.notify_all();
    }

    /// The consumer's fast check for a message at `head`, a position the consumer has
    /// read up to but not yet published (a batch publishes `head` once, at its end).
    /// `None`: nothing there that the fast path handles (empty, padding or corrupt):
    /// end the batch with [`release`](Self::release) of its last message (which
    /// publishes `head`), then [`peek`](Self::peek) handles all three.
    #[inline]
    pub(crate) fn peek_at(&self, head: u64) -> Option<Message> {
        if head % HEADER as u64 != 0 {
            return None;
        }
        let pos = (head % CAP as u64) as usize;
        // SYNC POINT with the Release store of the header in `publish`: the payload is
        // written.
        let word = self.header(pos).load(Ordering::Acquire);
        let len = word as u32;
        if word == 0 || word != header_word(head, len, false) {
            return None;
        }
        let len = len as usize;
        (len <= Self::MAX_MESSAGE && HEADER + round8(len) <= CAP - pos).then(|| Message {
            offset: pos + HEADER,
            len,
            next_head: head.wrapping_add((HEADER + round8(len)) as u64),
        })
    }

    /// Current `(head, tail)`, for `Debug` and for handles binding to the ring.
    pub(crate) fn indices(&self) -> (u64, u64) {
        (
            self.head.0.load(Ordering::Acquire),
            self.tail.0.load(Ordering::Acquire),
        )
    }

    /// Checks an index pair; returns the bytes in use.
    #[inline]
    fn check_indices(&self, head: u64, tail: u64) -> Result<usize, Error> {
        let used = tail.wrapping_sub(head);
        if used > CAP as u64 || head % HEADER as u64 != 0 || tail % HEADER as u64 != 0 {
            return Err(Error::Corrupted);
        }
        Ok(used as usize)
    }

    // ---- raw byte access -------------------------------------------------------------
    //
    // Outside loom: plain memory operations on the array. Under loom: one tracked
    // access per byte, so the model checker sees every race on the data.

    #[cfg(not(shmkit_loom))]
    #[inline]
    fn base(&self) -> *mut u8 {
        // Every byte is inside an `UnsafeCell`, so writing through a pointer derived
        // from the shared reference to the whole array is allowed.
        self.bytes.as_ptr().cast::<u8>().cast_mut()
    }

    /// The header word at `pos`, an atomic view of the bytes `pos..pos + 8`.
    ///
    /// The bytes sit in `UnsafeCell`s, so shared mutation through them is allowed. While
    /// they hold a header every access to them is atomic. The non-atomic payload
    /// accesses of other laps are ordered with these by the `head`/`tail` protocol.
    #[inline]
    fn header(&self, pos: usize) -> &AtomicU64 {
        // Checked on every call: the pointer cast below relies on it.
        assert!(pos % HEADER == 0 && pos <= CAP - HEADER);
        #[cfg(not(shmkit_loom))]
        {
            // SAFETY: in bounds (asserted) and 8-aligned in the 128-byte aligned array;
            // the facade's `AtomicU64` is `repr(transparent)` over core's (`u64` layout).
            unsafe { &*self.base().add(pos).cast::<AtomicU64>() }
        }
        #[cfg(shmkit_loom)]
        {
            &self.headers[pos / HEADER]
        }
    }

    #[inline]
    fn with_slice<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        assert!(offset <= CAP && len <= CAP - offset);
        #[cfg(not(shmkit_loom))]
        {
            // SAFETY: in bounds (asserted); the consumer owns [head, tail): the
            // producer does not write these bytes until `release` publishes `head`,
            // which happens after `f` returns.
            let slice = unsafe { core::slice::from_raw_parts(self.base().add(offset), len) };
            f(slice)
        }
        #[cfg(shmkit_loom)]
        {
            let copy: std::vec::Vec<u8> = (offset..offset + len)
                // SAFETY: loom tracks the access; the protocol makes it exclusive.
                .map(|i| self.bytes[i].with(|p| unsafe { *p }))
                .collect();
            f(&copy)
        }
    }

    #[inline]
    fn with_slice_mut<R>(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        assert!(offset <= CAP && len <= CAP - offset);
        #[cfg(not(shmkit_loom))]
        {
            // SAFETY: in bounds (asserted); the producer owns [tail, head + CAP): the
            // consumer does not read these bytes until `commit` publishes `tail`.
            let slice = unsafe { core::slice::from_raw_parts_mut(self.base().add(offset), len) };
            f(slice)
        }
        #[cfg(shmkit_loom)]
        {
            let mut copy = std::vec![0u8; len];
            let r = f(&mut copy);
            for (i, b) in copy.into_iter().enumerate() {
                // SAFETY: loom tracks the access; the protocol makes it exclusive.
                self.bytes[offset + i].with_mut(|p| unsafe { *p = b });
            }
            r
        }
    }

    /// Test and fuzz access: overwrites the shared bytes of the ring (indices, notifier
    /// words and data) from `offset`, as a scribbling peer would. Only for code that
    /// owns the ring exclusively or deliberately races with it.
    #[cfg(not(shmkit_loom))]
    pub(crate) fn scribble(&self, offset: usize, bytes: &[u8]) {
        let size = core::mem::size_of::<Self>();
        let start = offset.min(size);
        let n = bytes.len().min(size - start);
        let base = core::ptr::from_ref(self).cast::<u8>().cast_mut();
        for (i, &b) in bytes[..n].iter().enumerate() {
            let at = start + i;
            // Skip the padding between the lines: it is no field's memory.
            let in_field = at < 8
                || (128..136).contains(&at)
                || (256..272).contains(&at)
                || at >= core::mem::offset_of!(Self, bytes);
            if in_field {
                // SAFETY: `at < size_of::<Self>()`, and every field byte is inside an
                // atomic or an `UnsafeCell`, so a write through a pointer derived from
                // `&self` is allowed; a racing write is what this function models.
                unsafe { base.add(at).write_volatile(b) };
            }
        }
    }
}

/// The all-zero data array.
#[cfg(not(shmkit_loom))]
const fn new_bytes<const CAP: usize>() -> [UnsafeCell<u8>; CAP] {
    [const { UnsafeCell::new(0) }; CAP]
}

/// The all-zero data array (loom's cells are not `const`).
#[cfg(shmkit_loom)]
fn new_bytes<const CAP: usize>() -> [UnsafeCell<u8>; CAP] {
    core::array::from_fn(|_| UnsafeCell::new(0))
}

impl<const CAP: usize> core::fmt::Debug for Ring<CAP> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (head, tail) = self.indices();
        f.debug_struct("Ring")
            .field("head", &head)
            .field("tail", &tail)
            .finish()
    }
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;
    extern crate std;
    use std::boxed::Box;
    use std::vec::Vec;

    fn send(r: &Ring<64>, cache: &Cell<u64>, msg: &[u8]) -> Result<bool, Error> {
        match r.try_reserve(cache, msg.len())? {
            Some(res) => {
                r.fill(&res, |b| b.copy_from_slice(msg));
                r.commit(res);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn recv(r: &Ring<64>) -> Result<Option<Vec<u8>>, Error> {
        match r.peek()? {
            Some(m) => {
                let v = r.read(&m, |b| b.to_vec());
                r.release(m);
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }

    #[test]
    fn miri_ring_roundtrip_and_wrap() {
        let r = Box::new(Ring::<64>::new());
        let ph = Cell::new(0);
        for round in 0..20u8 {
            let msg: Vec<u8> = (0..(round % 13) as usize)
                .map(|i| i as u8 ^ round)
                .collect();
            assert!(send(&r, &ph, &msg).unwrap());
            assert_eq!(recv(&r).unwrap().as_deref(), Some(&msg[..]));
        }
        assert_eq!(recv(&r).unwrap(), None);
    }

    #[test]
    fn miri_ring_full_message_after_padding() {
        let r = Box::new(Ring::<64>::new());
        let ph = Cell::new(0);
        assert!(send(&r, &ph, &[1; 3]).unwrap());
        // 56 bytes need the whole ring: padding is published, the record must wait.
        assert!(!send(&r, &ph, &[9; 56]).unwrap());
        assert_eq!(recv(&r).unwrap(), Some(std::vec![1; 3]));
        assert_eq!(recv(&r).unwrap(), None);
        assert!(send(&r, &ph, &[9; 56]).unwrap());
        assert!(!send(&r, &ph, &[]).unwrap());
        assert_eq!(recv(&r).unwrap(), Some(std::vec![9; 56]));
        // The consumer is at position 0 of the next lap, where the word is the header
        // of the record it just read: nothing new, not corruption.
        assert_eq!(recv(&r).unwrap(), None);
        assert!(send(&r, &ph, &[7; 5]).unwrap());
        assert_eq!(recv(&r).unwrap(), Some(std::vec![7; 5]));
    }

    #[test]
    fn miri_ring_corruption_is_reported() {
        let r = Box::new(Ring::<64>::new());
        let ph = Cell::new(0);
        assert!(send(&r, &ph, &[5; 8]).unwrap());
        // A length the seal does not match.
        r.scribble(384, &40u32.to_le_bytes());
        assert_eq!(recv(&r), Err(Error::Corrupted));
        // An unknown seal.
        r.scribble(384, &8u32.to_le_bytes());
        r.scribble(388, b"XXXX");
        assert_eq!(recv(&r), Err(Error::Corrupted));
        // A misaligned head.
        r.scribble(128, &3u64.to_le_bytes());
        assert_eq!(recv(&r), Err(Error::Corrupted));
        // tail - head > CAP.
        r.scribble(128, &0u64.to_le_bytes());
        r.scribble(0, &1000u64.to_le_bytes());
        assert_eq!(r.try_reserve(&ph, 1), Err(Error::Corrupted));
    }

    #[test]
    fn miri_ring_stale_header_is_not_a_record() {
        let r = Box::new(Ring::<64>::new());
        let ph = Cell::new(0);
        assert!(send(&r, &ph, &[5; 8]).unwrap());
        let mut word = [0u8; 8];
        r.with_slice(0, 8, |b| word.copy_from_slice(b));
        assert_eq!(recv(&r).unwrap(), Some(std::vec![5; 8]));
        // The same header bytes one record further on (as a stale header of an
        // earlier lap, or a payload that looks like one, would be): the seal ties a
        // header to its index, so this is corruption, not a message.
        r.scribble(384 + 16, &word);
        assert_eq!(recv(&r), Err(Error::Corrupted));
    }

    #[test]
    fn miri_ring_adopting_producer_recovers_tail() {
        let r = Box::new(Ring::<64>::new());
        let ph = Cell::new(0);
        r.recover_tail();
        assert_eq!(r.indices(), (0, 0));
        assert!(send(&r, &ph, &[1; 8]).unwrap());
        assert!(send(&r, &ph, &[2; 3]).unwrap());
        // A producer that died after publishing both records but before storing
        // `tail` for them.
        r.scribble(0, &0u64.to_le_bytes());
        r.recover_tail();
        assert_eq!(r.indices(), (0, 32));
        assert!(send(&r, &ph, &[3; 1]).unwrap());
        for expect in [std::vec![1; 8], std::vec![2; 3], std::vec![3; 1]] {
            assert_eq!(recv(&r).unwrap(), Some(expect));
        }
        assert_eq!(recv(&r).unwrap(), None);
    }
}

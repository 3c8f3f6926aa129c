//! The SPSC byte ring: variable-length records in a fixed array of `CAP` bytes.
//!
//! One producer appends records at `tail`, one consumer removes them at `head`; both
//! indices are 64-bit byte counts that only grow (they never wrap in practice: 2^64
//! bytes is centuries at any bus speed), and `index % CAP` is the position in the
//! data array. The ordering rules are those of the Linux kernel's
//! `Documentation/core-api/circular-buffers.rst`: the producer writes a record, then
//! publishes it with a Release store of `tail`; the consumer Acquire-loads `tail`,
//! reads the record, then frees it with a Release store of `head`, which the producer
//! Acquire-loads before it overwrites the space.
//!
//! ## Layout (`#[repr(C)]`, `CAP` a power of two, 64 ≤ `CAP` ≤ 2^31)
//!
//! ```text
//! offset      size  field   written by
//!      0         8  tail    producer (Release after a record is complete)
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
//! +4  u32 kind   DATA = "DATA", PADDING = "PADD" (anything else: corrupted)
//! +8  payload    len bytes, then zero to seven bytes to the next multiple of 8
//! ```
//!
//! Records start at multiples of 8, so every payload is 8-byte aligned (the data array
//! is 128-byte aligned) and `recv_with` hands out aligned slices. A record is always
//! contiguous: when the next one does not fit before the end of the array, the
//! producer first fills the rest with one PADDING record (as Aeron does) and starts
//! again at position 0. The padding is published on its own, even if the record itself
//! must still wait for room: so a record of the largest size, `CAP - 8` bytes, always
//! fits once the consumer has caught up, wherever `tail` stood.
//!
//! ## Caches
//!
//! Each side keeps, in its process-local handle, the last value it read of the *other*
//! side's index (as rtrb does), and reloads the shared one only when the ring looks
//! full (producer) or empty (consumer): in a steady stream, each side touches the
//! other's line once per wrap, not once per message.
//!
//! ## Validation
//!
//! Everything read from the shared array or indices is checked before it is used:
//! `head` and `tail` must be multiples of 8 with `0 ≤ tail - head ≤ CAP`; a record
//! header must have a known kind, and its whole extent must lie inside both
//! `[head, tail)` and the array without crossing its end; a padding record must end
//! exactly at the end of the array and never start at position 0. A header is read
//! once into locals, so a concurrent scribbler cannot change it between the check and
//! the use. A failure is [`Error::Corrupted`]; no loop here runs more than twice.

use core::cell::Cell;

use crate::error::Error;
use crate::primitive::{AtomicU64, Ordering, UnsafeCell};
use crate::sync::notifier::Notifier;

/// A record header's size, and the alignment of every record.
pub(crate) const HEADER: usize = 8;
/// `kind` of a message record: "DATA" in ASCII.
pub(crate) const KIND_DATA: u32 = u32::from_le_bytes(*b"DATA");
/// `kind` of a padding record: "PADD" in ASCII.
pub(crate) const KIND_PADDING: u32 = u32::from_le_bytes(*b"PADD");

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
        // cached `head` already shows room (no shared load at all).
        let record = HEADER + round8(len);
        // Only the producer writes `tail`; Relaxed reads our own last store.
        let tail = self.tail.0.load(Ordering::Relaxed);
        let pos = (tail % CAP as u64) as usize;
        if let Ok(used) = self.check_indices(cached_head.get(), tail) {
            if record <= CAP - pos && record <= CAP - used {
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
            let (needed, pad) = if record <= to_end {
                (record, false)
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
            self.write_u32(pos, (to_end - HEADER) as u32);
            self.write_u32(pos + 4, KIND_PADDING);
            tail = tail.wrapping_add(to_end as u64);
            // SYNC POINT with the Acquire load of `tail` in `peek`.
            self.tail.0.store(tail, Ordering::Release);
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

    /// Writes the header and publishes the record.
    #[inline]
    pub(crate) fn commit(&self, r: Reservation) {
        let pos = (r.start % CAP as u64) as usize;
        self.write_u32(pos, r.len as u32);
        self.write_u32(pos + 4, KIND_DATA);
        // SYNC POINT with the Acquire load of `tail` in `peek`: the record is complete.
        self.tail.0.store(
            r.start.wrapping_add((HEADER + round8(r.len)) as u64),
            Ordering::Release,
        );
        self.wake.0.data.notify_all();
    }

    // ---- consumer side -------------------------------------------------------------

    /// Finds the next message without removing it. `cached_tail` is the consumer's
    /// cache of `tail`. Padding on the way is consumed (and the producer woken).
    /// `Ok(None)`: empty.
    #[inline]
    pub(crate) fn peek(&self, cached_tail: &Cell<u64>) -> Result<Option<Message>, Error> {
        // The common case, inline: a message record (not padding) at `head`, and the
        // indices valid. Everything else goes to `peek_slow`, which checks it all again.
        // Only the consumer writes `head` (Relaxed reads our own last store).
        let head = self.head.0.load(Ordering::Relaxed);
        let mut tail = cached_tail.get();
        if tail == head {
            // SYNC POINT with the Release stores of `tail` in `commit` and
            // `try_reserve`: every byte of the records before it is written.
            tail = self.tail.0.load(Ordering::Acquire);
            cached_tail.set(tail);
            if tail == head {
                return Ok(None);
            }
        }
        if let Ok(avail) = self.check_indices(head, tail) {
            let pos = (head % CAP as u64) as usize;
            let len = self.read_u32(pos) as usize;
            let kind = self.read_u32(pos + 4);
            if kind == KIND_DATA && len <= Self::MAX_MESSAGE {
                let record = HEADER + round8(len);
                if record <= CAP - pos && record <= avail {
                    return Ok(Some(Message {
                        offset: pos + HEADER,
                        len,
                        next_head: head.wrapping_add(record as u64),
                    }));
                }
            }
        }
        self.peek_slow(cached_tail)
    }

    /// [`peek`](Self::peek) for padding, stale caches and corruption.
    #[cold]
    #[inline(never)]
    fn peek_slow(&self, cached_tail: &Cell<u64>) -> Result<Option<Message>, Error> {
        // Only the consumer writes `head` (Relaxed reads our own last store).
        let mut head = self.head.0.load(Ordering::Relaxed);
        let mut tail = cached_tail.get();
        // A padding record is followed by a message at position 0: two rounds at most.
        for _ in 0..2 {
            if tail == head || self.check_indices(head, tail).is_err() {
                // SYNC POINT with the Release stores of `tail` in `commit` and
                // `try_reserve`: every byte of the records before it is written.
                tail = self.tail.0.load(Ordering::Acquire);
                cached_tail.set(tail);
            }
            let avail = self.check_indices(head, tail)?;
            if avail == 0 {
                return Ok(None);
            }
            let pos = (head % CAP as u64) as usize;
            let len = self.read_u32(pos) as usize;
            let kind = self.read_u32(pos + 4);
            let to_end = CAP - pos;
            if kind == KIND_DATA {
                let record = HEADER + round8(len);
                if len > Self::MAX_MESSAGE || record > to_end || record > avail {
                    return Err(Error::Corrupted);
                }
                return Ok(Some(Message {
                    offset: pos + HEADER,
                    len,
                    next_head: head.wrapping_add(record as u64),
                }));
            }
            if kind != KIND_PADDING || pos == 0 || len != to_end - HEADER || to_end > avail {
                return Err(Error::Corrupted);
            }
            head = head.wrapping_add(to_end as u64);
            // SYNC POINT with the Acquire load of `head` in `try_reserve`.
            self.head.0.store(head, Ordering::Release);
            self.wake.0.space.notify_all();
        }
        Err(Error::Corrupted)
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
    pub(crate) fn release(&self, m: Message, cached_tail: &Cell<u64>) {
        let mut head = m.next_head;
        let pos = (head % CAP as u64) as usize;
        if pos != 0 && cached_tail.get().wrapping_sub(head) >= (CAP - pos) as u64 {
            let to_end = CAP - pos;
            let is_padding = self.check_indices(head, cached_tail.get()).is_ok()
                && self.read_u32(pos + 4) == KIND_PADDING
                && self.read_u32(pos) as usize == to_end - HEADER;
            if is_padding {
                head = head.wrapping_add(to_end as u64);
            }
        }
        // SYNC POINT with the Acquire load of `head` in `try_reserve`: our reads of
        // the record are done before the producer may overwrite it.
        self.head.0.store(head, Ordering::Release);
        self.wake.0.space.notify_all();
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

    #[inline]
    fn read_u32(&self, pos: usize) -> u32 {
        debug_assert!(pos + 4 <= CAP);
        #[cfg(not(shmkit_loom))]
        {
            // SAFETY: `pos + 4 <= CAP` (callers pass positions of 8-aligned records
            // below CAP); the bytes are plain data that only this side reads now.
            unsafe { self.base().add(pos).cast::<u32>().read_unaligned() }
        }
        #[cfg(shmkit_loom)]
        {
            let mut b = [0u8; 4];
            for (i, out) in b.iter_mut().enumerate() {
                // SAFETY: loom tracks the access; the protocol makes it exclusive.
                *out = self.bytes[pos + i].with(|p| unsafe { *p });
            }
            u32::from_ne_bytes(b)
        }
    }

    #[inline]
    fn write_u32(&self, pos: usize, value: u32) {
        debug_assert!(pos + 4 <= CAP);
        #[cfg(not(shmkit_loom))]
        {
            // SAFETY: `pos + 4 <= CAP`; the producer owns [tail, head + CAP) until it
            // publishes, so nobody else touches these bytes.
            unsafe { self.base().add(pos).cast::<u32>().write_unaligned(value) }
        }
        #[cfg(shmkit_loom)]
        {
            for (i, b) in value.to_ne_bytes().into_iter().enumerate() {
                // SAFETY: loom tracks the access; the protocol makes it exclusive.
                self.bytes[pos + i].with_mut(|p| unsafe { *p = b });
            }
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

    fn recv(r: &Ring<64>, cache: &Cell<u64>) -> Result<Option<Vec<u8>>, Error> {
        match r.peek(cache)? {
            Some(m) => {
                let v = r.read(&m, |b| b.to_vec());
                r.release(m, cache);
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }

    #[test]
    fn miri_ring_roundtrip_and_wrap() {
        let r = Box::new(Ring::<64>::new());
        let (ph, ct) = (Cell::new(0), Cell::new(0));
        for round in 0..20u8 {
            let msg: Vec<u8> = (0..(round % 13) as usize)
                .map(|i| i as u8 ^ round)
                .collect();
            assert!(send(&r, &ph, &msg).unwrap());
            assert_eq!(recv(&r, &ct).unwrap().as_deref(), Some(&msg[..]));
        }
        assert_eq!(recv(&r, &ct).unwrap(), None);
    }

    #[test]
    fn miri_ring_full_message_after_padding() {
        let r = Box::new(Ring::<64>::new());
        let (ph, ct) = (Cell::new(0), Cell::new(0));
        assert!(send(&r, &ph, &[1; 3]).unwrap());
        // 56 bytes need the whole ring: padding is published, the record must wait.
        assert!(!send(&r, &ph, &[9; 56]).unwrap());
        assert_eq!(recv(&r, &ct).unwrap(), Some(std::vec![1; 3]));
        assert_eq!(recv(&r, &ct).unwrap(), None);
        assert!(send(&r, &ph, &[9; 56]).unwrap());
        assert!(!send(&r, &ph, &[]).unwrap());
        assert_eq!(recv(&r, &ct).unwrap(), Some(std::vec![9; 56]));
    }

    #[test]
    fn miri_ring_corruption_is_reported() {
        let r = Box::new(Ring::<64>::new());
        let (ph, ct) = (Cell::new(0), Cell::new(0));
        assert!(send(&r, &ph, &[5; 8]).unwrap());
        // A length that runs past the published tail.
        r.scribble(384, &40u32.to_le_bytes());
        assert_eq!(recv(&r, &ct), Err(Error::Corrupted));
        // An unknown kind.
        r.scribble(384, &8u32.to_le_bytes());
        r.scribble(388, b"XXXX");
        assert_eq!(recv(&r, &ct), Err(Error::Corrupted));
        // tail - head > CAP.
        r.scribble(0, &1000u64.to_le_bytes());
        assert_eq!(recv(&r, &ct), Err(Error::Corrupted));
        assert_eq!(r.try_reserve(&ph, 1), Err(Error::Corrupted));
    }
}

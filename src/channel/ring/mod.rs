//! The SPSC byte ring: variable-length records in a fixed array of `CAP` bytes.
//!
//! One producer appends records at `tail`, one consumer removes them at `head`; both
//! indices are 64-bit byte counts that only grow (they never wrap in practice: 2^64
//! bytes is centuries at any bus speed), and `index % CAP` is the position in the
//! data array. The files of this module follow its seams:
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the layout, the record format and the rules below; index checks |
//! | `data.rs` | the data array: header words (atomic) and payload bytes (plain) over the same bytes |
//! | `producer.rs` | reserve, fill, publish (`commit`), and `recover_tail` for an adopter |
//! | `consumer.rs` | peek, read, release |
//!
//! A send is `try_reserve` → `fill` → `commit`; a receive is `peek` → `read` →
//! `release`. A batch of sends (or receives) is the same steps repeated: every record
//! is published (or released) on its own, and only the wake-ups could be shared.
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
//! header), which must therefore be free space: the *slack* (see "Room" below).
//! Position 0 is never zeroed ahead (it may hold the unread first record of the lap):
//! every lap starts with a record there, so the word at 0 is either the new header or
//! the header the previous lap wrote at 0, which the consumer recognises by its seal
//! (sealed for the index one lap back) and treats as "nothing yet". The consumer frees
//! space with a Release store of `head`, which the producer Acquire-loads before it
//! overwrites the space.
//!
//! ## Room: a receive frees what it received
//!
//! A message of `n` bytes takes a record of `8 + round8(n)` bytes. A record is written
//! only when the free space (`CAP - (tail - head)`) holds **the record plus 8 bytes**
//! (the slack, one header word), wherever the record ends — except a record of the
//! largest size, `CAP` bytes, which needs the whole ring empty. A record that would
//! cross the end of the array is preceded by a padding record that fills the rest of
//! the array, and padding needs room by the same rule (its size plus 8).
//!
//! So the ring never fills its last 8 bytes except with one whole-ring record, and:
//! **after a receive of a message of `n` bytes, a send of at most `n` bytes that needs
//! no padding finds room** (a sender blocked on it is woken and succeeds). A stream of
//! messages whose records tile the array (`8 + round8(n)` divides `CAP`, e.g. 8-byte
//! messages: 16-byte records) never pads, so there one receive always makes room for
//! one send of the same size. Where a send must pad, it needs the rest of the array
//! too, which the receive that frees it may not have reached yet.
//!
//! (An earlier rule, "8 bytes of slack unless the record ends at the end of the
//! array", broke this: the last record of a lap took no slack, the first of the next
//! lap needed 8 more than its receive had freed.)
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
//! must still wait for room: so a record of the largest size always fits once the
//! consumer has caught up, wherever `tail` stood.
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
//! producer uses them); a header must carry the seal for its index, its length must
//! be at most the largest message, and its whole extent must lie inside the array
//! without crossing its end; a padding record must end exactly at the end of the
//! array and never start at position 0. A header is read once into a local, so a
//! concurrent scribbler cannot change it between the check and the use. A failure is
//! [`Error::Corrupted`]; nothing here panics on a value read from shared memory (the
//! data array masks every position into bounds, and its slice accessors check their
//! ranges and answer `Corrupted`), and no loop runs more than twice, except the
//! adopting producer's walk over published records, bounded by `CAP / 8` steps.

mod consumer;
mod data;
pub(crate) mod failpoint;
mod producer;
#[cfg(all(test, not(shmkit_loom)))]
mod tests;

pub(crate) use consumer::Message;
pub(crate) use producer::Reservation;

use failpoint::failpoint;

use crate::error::Error;
use crate::primitive::{AtomicU64, Ordering};
use crate::sync::notifier::Notifier;
use data::Data;

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

/// Rounds up to the record alignment. `n` must be at most `usize::MAX - 7` (callers
/// pass lengths bounded by the largest message).
#[inline]
const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// The size of the record of an `n`-byte payload (`n` at most the largest message).
#[inline]
const fn record_len(n: usize) -> usize {
    HEADER + round8(n)
}

/// The free space a record (or padding) of `record` bytes needs in a ring of `cap`:
/// itself plus the slack word, except a record that fills the whole array, which
/// needs the ring empty. See "Room" in the module docs.
#[inline]
const fn room_needed(record: usize, cap: usize) -> usize {
    if record == cap { cap } else { record + HEADER }
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
    data: Data<CAP>,
}

#[cfg(not(shmkit_loom))]
const _: () = {
    assert!(core::mem::offset_of!(Ring<64>, tail) == 0);
    assert!(core::mem::offset_of!(Ring<64>, head) == 128);
    assert!(core::mem::offset_of!(Ring<64>, wake) == 256);
    assert!(core::mem::offset_of!(Ring<64>, data) == 384);
    assert!(core::mem::size_of::<Ring<64>>() == 512);
    assert!(core::mem::size_of::<Ring<4096>>() == 384 + 4096);
    assert!(core::mem::align_of::<Ring<64>>() == 128);
};

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
                data: Data::new(),
            }
        }
    }

    /// The position of ring index `index` in the data array.
    #[inline]
    const fn pos(index: u64) -> usize {
        (index % CAP as u64) as usize
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

    /// Overwrites the shared bytes of the ring (indices, notifier words and data) from
    /// `offset`, as a scribbling peer would; bytes past the ring are ignored.
    ///
    /// # Safety
    ///
    /// No other thread or process may access the ring while this runs: the writes are
    /// plain (non-atomic) ones, and racing them with any other access is a data race.
    #[cfg(not(shmkit_loom))]
    pub(crate) unsafe fn scribble(&self, offset: usize, bytes: &[u8]) {
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
                || at >= core::mem::offset_of!(Self, data);
            if in_field {
                // SAFETY: `at < size_of::<Self>()`, and every field byte is inside an
                // atomic or an `UnsafeCell`, so a write through a pointer derived from
                // `&self` is allowed; no access races with it (the caller's contract).
                unsafe { base.add(at).write_volatile(b) };
            }
        }
    }
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

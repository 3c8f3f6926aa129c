//! The shared state of one ring (`Ring`), the record format's helpers and the index
//! checks; the protocol is described in the module docs of `ring`.

use super::data::{self, Data};
use crate::error::Error;
use crate::primitive::{AtomicU64, Ordering};
use crate::sync::notifier::Notifier;

/// A record header's size, the alignment of every record, and the producer's slack.
pub(super) const HEADER: usize = data::WORD;
/// Set in every seal: a published header is never zero.
const SEAL_SET: u32 = 1 << 31;
/// Set in the seal of a padding record.
const SEAL_PADDING: u32 = 1 << 30;

/// The header word of a record of payload length `len` (or, for padding, the bytes it
/// skips after its header) that starts at ring index `start`.
#[inline]
pub(super) fn header_word(start: u64, len: u32, padding: bool) -> u64 {
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
pub(super) const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// The size of the record of an `n`-byte payload (`n` at most the largest message).
#[inline]
pub(super) const fn record_len(n: usize) -> usize {
    HEADER + round8(n)
}

/// The free space a record (or padding) of `record` bytes needs in a ring of `cap`:
/// itself plus the slack word, except a record that fills the whole array, which
/// needs the ring empty. See "Room" in the module docs.
#[inline]
pub(super) const fn room_needed(record: usize, cap: usize) -> usize {
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
    pub(crate) tail: Line<AtomicU64>,
    /// Bytes ever consumed. Written by the consumer only.
    pub(crate) head: Line<AtomicU64>,
    /// The notifiers.
    pub(crate) wake: Line<Wakers>,
    /// The records.
    pub(super) data: Data<CAP>,
}

/// Where a ring's record array starts (for tools that read a ring from outside).
#[cfg(all(feature = "std", not(shmkit_loom)))]
pub(crate) const DATA_OFFSET: usize = core::mem::offset_of!(Ring<64>, data);

crate::layout::pin_layout!(Line<AtomicU64> { 0: 0 }, size 128, align 128);
crate::layout::pin_layout!(Wakers { data: 0, space: 8 }, size 16);
crate::layout::pin_layout!(Ring<64> { tail: 0, head: 128, wake: 256, data: 384 }, size 512, align 128);
#[cfg(not(shmkit_loom))]
const _: () = assert!(core::mem::size_of::<Ring<4096>>() == 384 + 4096);

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
    pub(super) const fn pos(index: u64) -> usize {
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
    pub(super) fn check_indices(&self, head: u64, tail: u64) -> Result<usize, Error> {
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
        // Skip the padding between the lines: it is no field's memory.
        let data = core::mem::offset_of!(Self, data);
        let in_field = |at: usize| {
            at < 8 || (128..136).contains(&at) || (256..272).contains(&at) || at >= data
        };
        // SAFETY: every field byte is inside an atomic or an `UnsafeCell`; no access
        // races with the writes (our caller's contract).
        unsafe { crate::channel::scribble_fields(self, offset, bytes, in_field) }
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

//! The data array of a ring: `CAP` bytes that are header words where a record starts
//! and payload bytes inside a record — the same bytes, lap after lap.
//!
//! Header words are accessed atomically ([`Data::header`]); payload bytes plainly
//! ([`Data::read`], [`Data::write`]), which the ring protocol keeps exclusive (the
//! producer owns `[tail, head + CAP)`, the consumer `[head, tail)`). A word that is a
//! header in one lap may be payload in the next, and the zero-ahead rule (see the
//! module docs of `ring`) is about exactly that overlap.
//!
//! Under loom the array is `CAP / 8` loom atomics, one per 8-byte word, so that
//! header accesses and payload accesses hit *the same* modelled memory, as they do in
//! the real layout. Payload reads are loom's `unsync_load` (a race with any store to
//! the word is reported), payload writes are stores that also take the word's loom
//! `UnsafeCell<()>` mutably, and header loads take it shared (so a payload write
//! racing a header load is reported too).

use crate::error::Error;
#[cfg(not(shmkit_loom))]
use crate::primitive::UnsafeCell;
use crate::primitive::{AtomicU64, Ordering};

/// The size of a header word, and the alignment of every record.
pub(super) const WORD: usize = 8;
use WORD as HEADER;

/// The bytes of a ring, 128-byte aligned (the ring is).
#[cfg(not(shmkit_loom))]
#[repr(transparent)]
pub(super) struct Data<const CAP: usize> {
    bytes: [UnsafeCell<u8>; CAP],
}

/// The bytes of a ring under loom: one atomic per 8-byte word (little-endian), and
/// one race tracker per word for plain payload writes.
#[cfg(shmkit_loom)]
pub(super) struct Data<const CAP: usize> {
    words: std::vec::Vec<AtomicU64>,
    plain: std::vec::Vec<loom::cell::UnsafeCell<()>>,
}

/// The header word at one position: an atomic view of 8 bytes of the array.
pub(super) struct HeaderWord<'a> {
    word: &'a AtomicU64,
    #[cfg(shmkit_loom)]
    plain: &'a loom::cell::UnsafeCell<()>,
}

impl HeaderWord<'_> {
    /// Loads the word atomically.
    #[inline]
    pub(super) fn load(&self, order: Ordering) -> u64 {
        // A plain payload write racing this load is a data race: loom reports it.
        #[cfg(shmkit_loom)]
        self.plain.with(|_| ());
        self.word.load(order)
    }

    /// Stores the word atomically.
    #[inline]
    pub(super) fn store(&self, value: u64, order: Ordering) {
        self.word.store(value, order);
    }
}

impl<const CAP: usize> Data<CAP> {
    /// All zero.
    #[cfg(not(shmkit_loom))]
    pub(super) const fn new() -> Self {
        Data {
            bytes: [const { UnsafeCell::new(0) }; CAP],
        }
    }

    /// All zero.
    #[cfg(shmkit_loom)]
    pub(super) fn new() -> Self {
        Data {
            words: (0..CAP / HEADER).map(|_| AtomicU64::new(0)).collect(),
            plain: (0..CAP / HEADER)
                .map(|_| loom::cell::UnsafeCell::new(()))
                .collect(),
        }
    }

    /// The header word at `pos`. `pos` must be a multiple of 8 below `CAP`; any other
    /// value is masked into that range (never out of bounds, never a panic), which
    /// callers never rely on: they validate their indices first.
    #[inline]
    pub(super) fn header(&self, pos: usize) -> HeaderWord<'_> {
        debug_assert!(pos % HEADER == 0 && pos < CAP);
        // CAP is a power of two, at least 64.
        let pos = pos & (CAP - 1) & !(HEADER - 1);
        #[cfg(not(shmkit_loom))]
        {
            let base = self.bytes.as_ptr().cast::<u8>();
            // SAFETY: `pos + 8 <= CAP` (masked above) and `pos` is 8-aligned in the
            // 128-byte aligned array, so this is an aligned 8-byte range inside it. The
            // bytes sit in `UnsafeCell`s, so shared mutation through them is allowed;
            // while they hold a header every access to them is atomic, and the plain
            // payload accesses of other laps are ordered with these by the `head`/`tail`
            // protocol. The facade's `AtomicU64` is `repr(transparent)` over core's
            // (`u64` layout).
            let word = unsafe { &*base.add(pos).cast::<AtomicU64>() };
            HeaderWord { word }
        }
        #[cfg(shmkit_loom)]
        {
            HeaderWord {
                word: &self.words[pos / HEADER],
                plain: &self.plain[pos / HEADER],
            }
        }
    }

    /// Calls `f` with the `len` payload bytes at `offset`. `Corrupted` if the range
    /// is not inside the array (callers pass validated ranges).
    #[inline]
    pub(super) fn read<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        if offset > CAP || len > CAP - offset {
            return Err(Error::Corrupted);
        }
        #[cfg(not(shmkit_loom))]
        {
            let base = self.bytes.as_ptr().cast::<u8>();
            // SAFETY: in bounds (checked above); the bytes are in `UnsafeCell`s. The
            // consumer owns [head, tail): the producer does not write these bytes until
            // `release` publishes `head`, which happens after `f` returns.
            let slice = unsafe { core::slice::from_raw_parts(base.add(offset), len) };
            Ok(f(slice))
        }
        #[cfg(shmkit_loom)]
        {
            let copy: std::vec::Vec<u8> = (offset..offset + len)
                .map(|i| {
                    // SAFETY: a plain read; loom reports it if any store races it.
                    let word = unsafe { self.words[i / HEADER].unsync_load() };
                    (word >> (8 * (i % HEADER))) as u8
                })
                .collect();
            Ok(f(&copy))
        }
    }

    /// Calls `f` with the `len` payload bytes at `offset`, to write them.
    /// `Corrupted` if the range is not inside the array (callers pass validated
    /// ranges).
    #[inline]
    pub(super) fn write<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        if offset > CAP || len > CAP - offset {
            return Err(Error::Corrupted);
        }
        #[cfg(not(shmkit_loom))]
        {
            let base = self.bytes.as_ptr().cast::<u8>().cast_mut();
            // SAFETY: in bounds (checked above); every byte is inside an `UnsafeCell`,
            // so writing through a pointer derived from the shared reference is
            // allowed. The producer owns [tail, head + CAP): the consumer does not read
            // these bytes until `commit` publishes their record.
            let slice = unsafe { core::slice::from_raw_parts_mut(base.add(offset), len) };
            Ok(f(slice))
        }
        #[cfg(shmkit_loom)]
        {
            let mut copy = std::vec![0u8; len];
            let r = f(&mut copy);
            let mut i = 0;
            while i < len {
                let at = offset + i;
                let w = at / HEADER;
                // SAFETY: a plain read of a word only the producer writes.
                let mut word = unsafe { self.words[w].unsync_load() };
                while i < len && (offset + i) / HEADER == w {
                    let shift = 8 * ((offset + i) % HEADER);
                    word = (word & !(0xff << shift)) | (u64::from(copy[i]) << shift);
                    i += 1;
                }
                // A plain write: conflicts with a racing header load (the tracker)
                // and with a racing payload read (`unsync_load` against a store).
                self.plain[w].with_mut(|_| ());
                self.words[w].store(word, Ordering::Relaxed);
            }
            Ok(r)
        }
    }
}

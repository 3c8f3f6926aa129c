//! A bounded, read-only window on a segment's bytes, read one word at a time.
// Allowed: a tool's reads of another process's memory, not an algorithm under loom.
// The words are read as `core` atomics over the mapping (a Relaxed atomic load is
// sound on read-only memory for types no wider than a pointer).
#![allow(clippy::disallowed_types)]

use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use std::string::String;

/// Why a segment's live state could not be decoded: a value read from it is one that
/// no correct run of the kit writes (a scribbled or truncated segment, or a bug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupted(pub String);

impl fmt::Display for Corrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupted: {}", self.0)
    }
}

impl core::error::Error for Corrupted {}

/// Returns `Err(Corrupted(format!(...)))`.
macro_rules! corrupt {
    ($($arg:tt)*) => {
        return Err($crate::inspect::Corrupted(std::format!($($arg)*)))
    };
}
pub(crate) use corrupt;

/// `len` bytes at `base`, readable for `'a`, whose contents other processes may change
/// at any time. Every read is bounds- and alignment-checked and returns `Corrupted`
/// instead of reading outside.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    base: NonNull<u8>,
    len: usize,
    _mapping: PhantomData<&'a [u8]>,
}

impl<'a> View<'a> {
    /// # Safety
    ///
    /// `base..base + len` stays mapped and readable for `'a`, and is only ever
    /// written through atomics or by other processes (never through a `&mut` of
    /// this process).
    pub(crate) unsafe fn new(base: NonNull<u8>, len: usize) -> View<'a> {
        View {
            base,
            len,
            _mapping: PhantomData,
        }
    }

    /// The window's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Checks that the window holds exactly `size` bytes, the size of `what` (named
    /// with its article, "an Event").
    pub(crate) fn expect_len(&self, what: &str, size: usize) -> Result<(), Corrupted> {
        if self.len != size {
            corrupt!("{what} of {} bytes (it has {size})", self.len);
        }
        Ok(())
    }

    /// The address of byte `offset` if `size` bytes from there lie inside and are
    /// aligned to `size`.
    fn at(&self, offset: usize, size: usize) -> Result<*const u8, Corrupted> {
        let end = offset.checked_add(size);
        if end.is_none_or(|end| end > self.len) {
            corrupt!(
                "a {size}-byte field at offset {offset} lies past the end ({} bytes)",
                self.len
            );
        }
        // SAFETY: `offset + size <= len`: inside the window.
        let ptr = unsafe { self.base.as_ptr().add(offset) };
        if (ptr as usize) % size != 0 {
            corrupt!("a {size}-byte field at offset {offset} is misaligned");
        }
        Ok(ptr)
    }

    /// The `u32` at `offset` (a Relaxed atomic load: a snapshot, validated by the
    /// caller; nothing else is read on the strength of it).
    pub(crate) fn u32(&self, offset: usize) -> Result<u32, Corrupted> {
        let ptr = self.at(offset, 4)?;
        // SAFETY: in bounds and aligned (checked); the window's contract says the
        // memory stays mapped and is written only atomically or by other processes.
        Ok(unsafe { &*ptr.cast::<AtomicU32>() }.load(Ordering::Relaxed))
    }

    /// The `u64` at `offset` (as for [`u32`](Self::u32)).
    pub(crate) fn u64(&self, offset: usize) -> Result<u64, Corrupted> {
        let ptr = self.at(offset, 8)?;
        // SAFETY: as in `u32`.
        Ok(unsafe { &*ptr.cast::<AtomicU64>() }.load(Ordering::Relaxed))
    }

    /// Copies `out.len()` bytes from `offset`, one byte at a time.
    pub(crate) fn bytes(&self, offset: usize, out: &mut [u8]) -> Result<(), Corrupted> {
        if out.is_empty() {
            return Ok(());
        }
        let ptr = self.at(offset, 1)?;
        if offset
            .checked_add(out.len())
            .is_none_or(|end| end > self.len)
        {
            corrupt!(
                "{} bytes at offset {offset} run past the end ({} bytes)",
                out.len(),
                self.len
            );
        }
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: `offset + i < len` (checked above); as in `u32`.
            *b = unsafe { &*ptr.add(i).cast::<AtomicU8>() }.load(Ordering::Relaxed);
        }
        Ok(())
    }

    /// The window of `len` bytes at `offset`.
    pub(crate) fn sub(&self, offset: usize, len: usize) -> Result<View<'a>, Corrupted> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            corrupt!(
                "{len} bytes at offset {offset} run past the end ({} bytes)",
                self.len
            );
        }
        Ok(View {
            // SAFETY: `offset <= len`: inside the window (or one past its end).
            base: unsafe { self.base.add(offset) },
            len,
            _mapping: PhantomData,
        })
    }
}

//! The header in front of every segment.
//!
//! ```text
//! offset size field         written by
//!      0    8 magic         creator, before `state` = READY
//!      8    4 version       creator, before READY
//!     12    4 state         creator: 0 (fresh zeroed memory) -> 1 = initialising -> 2 = ready
//!     16    8 fingerprint   creator, before READY (type_name, size and align of T)
//!     24    8 size          creator, before READY (whole mapping, bytes)
//!     32    8 value_offset  creator, before READY
//!     40    8 value_size    creator, before READY
//!     48    4 creator_pid   creator, before READY
//!     52   12 reserved      zero
//! ```
//! The value `T` starts at `value_offset` (64, or `T`'s alignment if larger). Openers
//! read nothing but `state` until it is READY (Acquire, pairing with the creator's
//! Release store), then validate every field before they hand out a `&T`.
// Allowed: the header is process-level plumbing validated before use, not an algorithm under loom: it names `core` atomics so its layout is fixed in every build.
#![allow(clippy::disallowed_types)]

use core::sync::atomic::AtomicU32;

/// "SHMKIT\0\x01" little-endian: the first eight bytes of every segment.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMKIT\0\x01");
/// The segment layout version this build writes and reads.
pub(crate) const LAYOUT_VERSION: u32 = 1;

/// `state`: the creator is writing the header and the value.
pub(crate) const STATE_INITIALIZING: u32 = 1;
/// `state`: the value is ready for use.
pub(crate) const STATE_READY: u32 = 2;

/// The header; see the module docs for who writes what.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) state: AtomicU32,
    pub(crate) fingerprint: u64,
    pub(crate) size: u64,
    pub(crate) value_offset: u64,
    pub(crate) value_size: u64,
    pub(crate) creator_pid: i32,
    pub(crate) reserved: [u32; 3],
}

const _: () = {
    assert!(core::mem::size_of::<Header>() == 64);
    assert!(core::mem::align_of::<Header>() == 8);
    assert!(core::mem::offset_of!(Header, state) == 12);
    assert!(core::mem::offset_of!(Header, fingerprint) == 16);
    assert!(core::mem::offset_of!(Header, creator_pid) == 48);
};

/// Where `T` sits in a segment, and how large the whole segment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) value_offset: usize,
    pub(crate) size: usize,
}

impl Layout {
    /// The layout for `T`: header, padding to `T`'s alignment, `T`, rounded up to
    /// whole pages.
    pub(crate) fn of<T>(page: usize) -> Layout {
        let align = core::mem::align_of::<T>().max(64);
        let value_offset = core::mem::size_of::<Header>().next_multiple_of(align);
        let end = value_offset + core::mem::size_of::<T>();
        Layout {
            value_offset,
            size: end.next_multiple_of(page).max(page),
        }
    }
}

/// A 64-bit FNV-1a fingerprint of `T`: its type name, size and alignment. Processes
/// built from the same source with the same compiler agree on it; a different type,
/// or the same name with another layout, gives another fingerprint.
pub(crate) fn fingerprint<T>() -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(core::any::type_name::<T>().as_bytes());
    eat(&(core::mem::size_of::<T>() as u64).to_le_bytes());
    eat(&(core::mem::align_of::<T>() as u64).to_le_bytes());
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miri_layout_puts_value_after_header_and_rounds_to_pages() {
        let l = Layout::of::<u64>(4096);
        assert_eq!(
            l,
            Layout {
                value_offset: 64,
                size: 4096
            }
        );
        #[repr(C, align(256))]
        struct Big([u8; 5000]);
        let l = Layout::of::<Big>(4096);
        assert_eq!(l.value_offset, 256);
        assert_eq!(l.size, 8192);
    }

    #[test]
    fn miri_fingerprints_tell_types_apart() {
        assert_eq!(fingerprint::<u32>(), fingerprint::<u32>());
        assert_ne!(fingerprint::<u32>(), fingerprint::<i32>());
        assert_ne!(fingerprint::<[u8; 4]>(), fingerprint::<[u8; 8]>());
    }
}

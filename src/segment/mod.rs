//! The layout layer: what may live in shared memory, and the segments that hold it.
//!
//! - [`ShmSafe`]: the marker for types with a fixed, pointer-free layout, and the
//!   identity (kind, [`TypeName`], layout digest) a segment's header records for it.
//!   Derive it with `#[derive(ShmSafe)]`.
//! - [`Shared<T>`]: one `T` in its own mapping, anonymous (a sealed memfd, shared with
//!   forked children) or named (`/dev/shm/NAME`, opened by unrelated processes),
//!   behind a validated header.
//!
//! The header's layout (offsets, who writes what, and when) is documented for tools
//! that read segments from outside, such as `shmkit ls`: see the source of
//! `src/segment/header.rs`, reproduced here.
//!
//! ```text
//! offset size field           written by the creator            meaning
//!      0    8 magic           atomic, before READY              b"SHMKIT\0\x01" (u64 LE)
//!      8    4 version         before READY                      header layout version: 2
//!     12    4 state           atomic: 0 -> 1 -> 2               0 fresh, 1 initialising, 2 READY
//!     16    8 size            before READY                      the whole mapping, bytes
//!     24    8 value_offset    before READY                      where T starts
//!     32    8 value_size      before READY                      size_of::<T>()
//!     40    4 kind            before READY                      Kind as u32
//!     44    4 kit_version     before READY                      shmkit major << 16 | minor
//!     48    8 type_hash       before READY                      FNV-1a 64 of T's full type name
//!     56    8 layout_hash     before READY                      T's layout digest (ShmSafe::layout)
//!     64    4 creator_id      atomic, FIRST (before state = 1)  creator's participant id
//!     68    4 creator_pid     before READY                      creator's pid, for display only
//!     72    8 created_ns      before READY                      CLOCK_REALTIME ns since the epoch
//!     80    2 type_name_len   before READY                      bytes used in type_name (<= 160)
//!     82    2 flags           before READY                      bit 0: name truncated; bit 1: sealed memfd
//!     84    4 item_stride     before READY                      bytes from one item to the next (a Queue's slots); 0 = none
//!     88    8 registry        before READY                      the creator's participant registry's nonce
//!     96  160 type_name       before READY                      UTF-8
//! ```
//!
//! A reader outside the kit reads `state` (Acquire) and, only once it is 2, the rest;
//! it never trusts a field without checking it (a peer can write anything). Only the
//! creator writes the header, and never after READY. [`inspect`] does exactly that,
//! through a read-only mapping.
//!
//! Replacing a segment whose creator died ([`Shared::open_or_create`]; a cleaning tool
//! should do the same): open the object, check that its magic and header version are
//! ours and that `id_liveness(creator_id)` is `Dead` (never on `Alive` or `Unknown`),
//! take `flock(LOCK_EX | LOCK_NB)` on that open object, and unlink the name only if it
//! still names the same object (same `st_dev`/`st_ino` on a fresh open). Two replacers
//! then never unlink each other's new segment.

// `SegmentError` is about 630 bytes by design: it carries the segment's name and both
// type names without allocating (no_std), and only the constructors of segments, cold
// paths, return it. The data path's `Error` stays at 32 bytes.
#![allow(clippy::result_large_err)]

/// The identity items of a kit type's `ShmSafe` impl: its [`Kind`], its `LAYOUT`
/// version, and a type name and layout built from its generic parameters, each
/// `shm T` (a `ShmSafe` type), `pod T` (a `Pod` item type) or `const N`.
///
/// ```ignore
/// unsafe impl<T: ShmSafe> ShmSafe for Mutex<T> {
///     crate::segment::kit_identity!(Mutex, 1, "shmkit::Mutex", shm T);
/// }
/// ```
macro_rules! kit_identity {
    ($kind:ident, $layout:literal, $name:literal $(, $pk:tt $p:ident)* $(,)?) => {
        const KIND: $crate::segment::Kind = $crate::segment::Kind::$kind;
        const LAYOUT: u32 = $layout;

        fn type_name(name: &mut $crate::segment::TypeName) {
            name.push_str($name);
            #[allow(unused_mut, unused_variables)]
            let mut first = true;
            $(
                name.push_str(if first { "<" } else { ", " });
                first = false;
                $crate::segment::kit_identity!(@name name $pk $p);
            )*
            if !first {
                name.push_str(">");
            }
        }

        fn layout(layout: &mut $crate::segment::LayoutHasher) {
            layout.shape::<Self>();
            $( $crate::segment::kit_identity!(@layout layout $pk $p); )*
        }
    };
    (@name $n:ident shm $p:ident) => { $n.push_type::<$p>() };
    (@name $n:ident pod $p:ident) => { $n.push_pod::<$p>() };
    (@name $n:ident const $p:ident) => { $n.push_u64($p as u64) };
    (@layout $l:ident shm $p:ident) => { $l.field::<$p>(0) };
    (@layout $l:ident pod $p:ident) => { $l.pod::<$p>() };
    (@layout $l:ident const $p:ident) => { $l.write_u64($p as u64) };
}
pub(crate) use kit_identity;

pub(crate) mod header;
mod identity;
mod info;
mod shared;
mod shm_safe;

pub use identity::{Kind, LayoutHasher, TYPE_NAME_MAX, TypeName};
pub use info::{SegmentInfo, inspect};
pub use shared::Shared;
#[cfg(shmkit_loom)]
pub(crate) use shared::model as loom_model;
pub use shm_safe::ShmSafe;

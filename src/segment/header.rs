//! The header in front of every segment (layout version 2).
//!
//! Every segment, anonymous (memfd) or named (`/dev/shm/NAME`), starts with this
//! 256-byte header; the value `T` follows at `value_offset` (256, or `T`'s alignment if
//! larger). All integers are little-endian (x86-64 and aarch64 Linux both are), at
//! fixed offsets:
//!
//! ```text
//! offset size field           written by the creator            meaning
//!      0    8 magic           atomic, before READY              b"SHMKIT\0\x01" (u64 LE)
//!      8    4 version         before READY                      header layout version: 2
//!     12    4 state           atomic: 0 -> 1 -> 2               0 fresh, 1 initialising, 2 READY
//!     16    8 size            before READY                      the whole mapping, bytes
//!     24    8 value_offset    before READY                      where T starts
//!     32    8 value_size      before READY                      size_of::<T>()
//!     40    4 kind            before READY                      shmkit::Kind as u32
//!     44    4 kit_version     before READY                      shmkit major << 16 | minor
//!     48    8 type_hash       before READY                      FNV-1a 64 of T's full type name
//!     56    8 layout_hash     before READY                      T's layout digest (ShmSafe::layout)
//!     64    4 creator_id      atomic, FIRST (before state = 1)  creator's participant id
//!     68    4 creator_pid     before READY                      creator's pid, for display only
//!     72    8 created_ns      before READY                      CLOCK_REALTIME ns since the epoch, display only
//!     80    2 type_name_len   before READY                      bytes used in type_name (<= 160)
//!     82    2 flags           before READY                      bit 0: type name truncated; bit 1: sealed memfd
//!     84    4 item_stride     before READY                      bytes from one item to the next in a value that is an array of items (a Queue's slots), for tools; 0 = none
//!     88    8 registry        before READY                      the creator's participant registry's nonce
//!     96  160 type_name       before READY                      UTF-8, the first type_name_len bytes
//! ```
//!
//! Protocol:
//!
//! - The creator owns a fresh, zero-filled object. It stores `creator_id` (Relaxed),
//!   then `state = 1` (Release), writes every other field and the value, then
//!   `state = 2` (READY, Release) and wakes futex waiters on `state`.
//! - Nothing is ever written to the header after READY (by the kit).
//! - An opener reads nothing but the atomics `state`, `creator_id` and (to tell a
//!   foreign object from a slow creator) `magic` until it has
//!   loaded `state == READY` with Acquire. Then it copies the plain fields out with
//!   volatile reads through raw pointers (never a `&Header`: a hostile peer may still
//!   write them) and validates every one before it hands out a `&T`.
//! - `creator_id` is the participant id (see `crate::primitive`): whether the creator
//!   is alive is `id_liveness(creator_id)`, never a pid check. `creator_pid` and
//!   `created_ns` are for people reading `shmkit ls`.
//! - `registry` names the participant registry the creator's ids belong to: an opener
//!   under another registry would read every participant id in the segment against the
//!   wrong table (and could call a live holder dead), so it is refused.
//!
//! A reader that finds `magic` right but `version` different must not interpret any
//! other field: the layout of everything past offset 16 belongs to the version.
//!
//! The words come from the facade (`crate::primitive`): outside loom its atomics and
//! `UnsafeCell` are `#[repr(transparent)]` over `core`'s, so the layout below is the
//! one asserted at offsets; under `--cfg shmkit_loom` they are loom's, so that the
//! READY handshake ([`HeaderPtr::publish`], `Shared::wait_ready`, [`HeaderPtr::snapshot`])
//! runs in `tests/loom_segment.rs` with every plain field a cell whose accesses loom
//! checks for races (the header then has loom's layout and lives in a model value,
//! never in a mapping).

use core::ptr::{self, NonNull};

use super::identity::{Kind, LayoutHasher};
use crate::ShmSafe;
use crate::fingerprint::{KIT_VERSION, TYPE_NAME_MAX, TypeName};
use crate::primitive::{AtomicU32, AtomicU64, Ordering, UnsafeCell, die_point, futex_wake};

/// "SHMKIT\0\x01" little-endian: the first eight bytes of every segment.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMKIT\0\x01");
/// The header layout version this build writes and reads.
pub(crate) const LAYOUT_VERSION: u32 = 2;

/// `state`: the creator is writing the header and the value.
pub(crate) const STATE_INITIALIZING: u32 = 1;
/// `state`: the value is ready for use.
pub(crate) const STATE_READY: u32 = 2;

/// `flags` bit 0: the stored type name was cut at [`TYPE_NAME_MAX`] bytes.
pub(crate) const FLAG_NAME_TRUNCATED: u16 = 1;
/// `flags` bit 1: the segment is a memfd sealed against shrinking and growing.
pub(crate) const FLAG_SEALED: u16 = 2;

/// The header; see the module docs for who writes what, and when.
#[repr(C)]
pub(crate) struct Header {
    /// Atomic (Relaxed), so that an opener that gives up waiting for READY may look
    /// at it while a slow creator writes it.
    pub(crate) magic: AtomicU64,
    pub(crate) version: UnsafeCell<u32>,
    pub(crate) state: AtomicU32,
    pub(crate) size: UnsafeCell<u64>,
    pub(crate) value_offset: UnsafeCell<u64>,
    pub(crate) value_size: UnsafeCell<u64>,
    pub(crate) kind: UnsafeCell<u32>,
    pub(crate) kit_version: UnsafeCell<u32>,
    pub(crate) type_hash: UnsafeCell<u64>,
    pub(crate) layout_hash: UnsafeCell<u64>,
    pub(crate) creator_id: AtomicU32,
    pub(crate) creator_pid: UnsafeCell<i32>,
    pub(crate) created_ns: UnsafeCell<u64>,
    pub(crate) type_name_len: UnsafeCell<u16>,
    pub(crate) flags: UnsafeCell<u16>,
    pub(crate) item_stride: UnsafeCell<u32>,
    pub(crate) registry: UnsafeCell<u64>,
    pub(crate) type_name: UnsafeCell<[u8; TYPE_NAME_MAX]>,
}

/// The header's size: the value never starts before it.
pub(crate) const HEADER_SIZE: usize = 256;

// (Under loom the facade's types are loom's, of another size: the model never maps
// a header, so only the real layout is asserted.)
crate::layout::pin_layout!(
    Header {
        magic: 0, version: 8, state: 12, size: 16, value_offset: 24, value_size: 32,
        kind: 40, kit_version: 44, type_hash: 48, layout_hash: 56, creator_id: 64,
        creator_pid: 68, created_ns: 72, type_name_len: 80, flags: 82, item_stride: 84,
        registry: 88, type_name: 96,
    },
    size HEADER_SIZE,
    align 8,
);

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
        let value_offset = HEADER_SIZE.next_multiple_of(align);
        let end = value_offset + core::mem::size_of::<T>();
        Layout {
            value_offset,
            size: end.next_multiple_of(page).max(page),
        }
    }
}

/// What a header says about the type it holds: the part `open` compares.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) kind: u32,
    pub(crate) kit_version: u32,
    pub(crate) type_name: TypeName,
    pub(crate) layout_hash: u64,
}

impl Identity {
    /// The identity this build gives `T`.
    pub(crate) fn of<T: ShmSafe>() -> Identity {
        Identity {
            kind: T::KIND as u32,
            kit_version: KIT_VERSION,
            type_name: TypeName::of::<T>(),
            layout_hash: LayoutHasher::of::<T>(),
        }
    }
}

/// A copy of a READY header's plain fields, read with volatile loads.
#[derive(Clone, Copy)]
pub(crate) struct Snapshot {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) size: u64,
    pub(crate) value_offset: u64,
    pub(crate) value_size: u64,
    pub(crate) identity: Identity,
    pub(crate) creator_id: u32,
    pub(crate) creator_pid: i32,
    pub(crate) created_ns: u64,
    pub(crate) flags: u16,
    pub(crate) registry: u64,
    pub(crate) item_stride: u32,
}

impl Snapshot {
    /// The kind, if this build knows its number.
    pub(crate) fn kind(&self) -> Option<Kind> {
        Kind::from_u32(self.identity.kind)
    }
}

/// A header in a mapping, touched only through raw pointers.
#[derive(Clone, Copy)]
pub(crate) struct HeaderPtr(NonNull<Header>);

/// Reads a plain field: a volatile read through the cell's raw pointer.
///
/// # Safety
///
/// `cell` points at a field of a live header.
unsafe fn read<V: Copy>(cell: *const UnsafeCell<V>) -> V {
    // SAFETY: per the contract the cell is live; the reference is to the cell (whose
    // contents may change under it), and the value is read through its raw pointer.
    unsafe { (*cell).with(|p| ptr::read_volatile(p)) }
}

/// Writes a plain field through the cell's raw pointer.
///
/// # Safety
///
/// `cell` points at a field of a live header that nobody else accesses meanwhile.
unsafe fn write<V>(cell: *const UnsafeCell<V>, value: V) {
    // SAFETY: per the contract the cell is live and ours alone.
    unsafe { (*cell).with_mut(|p| p.write(value)) }
}

impl HeaderPtr {
    /// # Safety
    ///
    /// `base` is the start of a live, page-aligned mapping of at least
    /// [`HEADER_SIZE`] bytes (under loom: of a `Header` value), which stays mapped
    /// while this value is used.
    pub(crate) unsafe fn new(base: NonNull<u8>) -> HeaderPtr {
        HeaderPtr(base.cast())
    }

    /// The `state` word.
    pub(crate) fn state(&self) -> &AtomicU32 {
        // SAFETY: in bounds and aligned (the constructor's contract); an atomic may be
        // shared with other processes' writes, so a reference to it is sound.
        unsafe { &*ptr::addr_of!((*self.0.as_ptr()).state) }
    }

    /// The `creator_id` word.
    pub(crate) fn creator_id(&self) -> &AtomicU32 {
        // SAFETY: as for `state`.
        unsafe { &*ptr::addr_of!((*self.0.as_ptr()).creator_id) }
    }

    /// The first eight bytes, read without any ordering (for a "not ours" diagnosis
    /// of a header that never became READY).
    pub(crate) fn magic_relaxed(&self) -> u64 {
        // SAFETY: as for `state`.
        let magic = unsafe { &*ptr::addr_of!((*self.0.as_ptr()).magic) };
        magic.load(Ordering::Relaxed)
    }

    /// Copies the plain fields out. Call only after an Acquire load of
    /// `state == READY`; each field can still be anything (a hostile peer), so the
    /// caller validates.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let h = self.0.as_ptr();
        // SAFETY: every field is in bounds and aligned (the constructor's contract);
        // volatile reads through raw pointers, no reference to non-atomic shared data
        // (only to the cells around it).
        unsafe {
            let name_len = read(ptr::addr_of!((*h).type_name_len));
            let flags = read(ptr::addr_of!((*h).flags));
            let mut name = [0u8; TYPE_NAME_MAX];
            (*ptr::addr_of!((*h).type_name)).with(|stored| {
                let stored = stored.cast::<u8>();
                for (i, byte) in name.iter_mut().enumerate() {
                    *byte = ptr::read_volatile(stored.add(i));
                }
            });
            let name_len = (name_len as usize).min(TYPE_NAME_MAX);
            Snapshot {
                magic: self.magic_relaxed(),
                version: read(ptr::addr_of!((*h).version)),
                size: read(ptr::addr_of!((*h).size)),
                value_offset: read(ptr::addr_of!((*h).value_offset)),
                value_size: read(ptr::addr_of!((*h).value_size)),
                identity: Identity {
                    kind: read(ptr::addr_of!((*h).kind)),
                    kit_version: read(ptr::addr_of!((*h).kit_version)),
                    type_name: TypeName::from_stored(
                        &name[..name_len],
                        flags & FLAG_NAME_TRUNCATED != 0,
                        read(ptr::addr_of!((*h).type_hash)),
                    ),
                    layout_hash: read(ptr::addr_of!((*h).layout_hash)),
                },
                creator_id: self.creator_id().load(Ordering::Relaxed),
                creator_pid: read(ptr::addr_of!((*h).creator_pid)),
                created_ns: read(ptr::addr_of!((*h).created_ns)),
                flags,
                registry: read(ptr::addr_of!((*h).registry)),
                item_stride: read(ptr::addr_of!((*h).item_stride)),
            }
        }
    }

    /// Writes every plain field (the creator, between `state = 1` and READY).
    ///
    /// # Safety
    ///
    /// Only the creator calls it, on a header nobody else writes yet.
    pub(crate) unsafe fn write(&self, fields: &Fields) {
        let h = self.0.as_ptr();
        let name = fields.identity.type_name.stored();
        let mut flags = fields.flags;
        if fields.identity.type_name.is_truncated() {
            flags |= FLAG_NAME_TRUNCATED;
        }
        // SAFETY: as for `state`.
        unsafe { &*ptr::addr_of!((*h).magic) }.store(MAGIC, Ordering::Relaxed);
        // SAFETY: per this function's contract, the creator is the only writer, and
        // openers read nothing but the atomics until READY.
        unsafe {
            write(ptr::addr_of!((*h).version), LAYOUT_VERSION);
            write(ptr::addr_of!((*h).size), fields.size);
            write(ptr::addr_of!((*h).value_offset), fields.value_offset);
            write(ptr::addr_of!((*h).value_size), fields.value_size);
            write(ptr::addr_of!((*h).kind), fields.identity.kind);
            write(ptr::addr_of!((*h).kit_version), fields.identity.kit_version);
            write(
                ptr::addr_of!((*h).type_hash),
                fields.identity.type_name.digest(),
            );
            write(ptr::addr_of!((*h).layout_hash), fields.identity.layout_hash);
            write(ptr::addr_of!((*h).creator_pid), fields.creator_pid);
            write(ptr::addr_of!((*h).created_ns), fields.created_ns);
            write(ptr::addr_of!((*h).type_name_len), name.len() as u16);
            write(ptr::addr_of!((*h).flags), flags);
            write(ptr::addr_of!((*h).item_stride), fields.item_stride);
            write(ptr::addr_of!((*h).registry), fields.registry);
            (*ptr::addr_of!((*h).type_name)).with_mut(|dst| {
                let dst = dst.cast::<u8>();
                ptr::copy_nonoverlapping(name.as_ptr(), dst, name.len());
                ptr::write_bytes(dst.add(name.len()), 0, TYPE_NAME_MAX - name.len());
            });
        }
    }

    /// The creator's half of the READY handshake: stores `creator_id` (`me`), then
    /// `state = INITIALIZING`, writes every plain field, runs `init` (which builds the
    /// value), publishes `state = READY` and, with `wake`, wakes the openers asleep on
    /// `state`. Openers meet it in `Shared::wait_ready`.
    ///
    /// # Safety
    ///
    /// The header is fresh (all zero) and nobody else writes it.
    pub(crate) unsafe fn publish(&self, me: u32, fields: &Fields, init: impl FnOnce(), wake: bool) {
        // The creator id goes first, so that an opener that finds the segment still
        // initialising can tell whether its creator is alive.
        self.creator_id().store(me, Ordering::Relaxed);
        // SYNC POINT with the Acquire loads of `state` in `wait_ready`: an opener that
        // sees INITIALIZING also sees `creator_id`.
        self.state().store(STATE_INITIALIZING, Ordering::Release);
        // SAFETY: we are the creator (this function's contract).
        unsafe { self.write(fields) };
        // A creator killed here leaves a segment that never becomes READY.
        die_point("segment.initialising");
        init();
        // SYNC POINT with the Acquire load of `state` in `wait_ready`: publishes the
        // header and the value.
        self.state().store(STATE_READY, Ordering::Release);
        if wake {
            futex_wake(self.state(), u32::MAX);
        }
    }
}

/// What the creator writes into a header.
pub(crate) struct Fields {
    pub(crate) size: u64,
    pub(crate) value_offset: u64,
    pub(crate) value_size: u64,
    pub(crate) identity: Identity,
    pub(crate) creator_pid: i32,
    pub(crate) created_ns: u64,
    pub(crate) flags: u16,
    /// The creator's participant registry's nonce.
    pub(crate) registry: u64,
    /// `ShmSafe::ITEM_STRIDE` of the value's type.
    pub(crate) item_stride: u32,
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
                value_offset: 256,
                size: 4096
            }
        );
        #[repr(C, align(512))]
        struct Big([u8; 5000]);
        let l = Layout::of::<Big>(4096);
        assert_eq!(l.value_offset, 512);
        assert_eq!(l.size, 8192);
    }

    #[test]
    fn miri_identities_tell_types_apart() {
        assert!(Identity::of::<u32>() == Identity::of::<u32>());
        assert!(Identity::of::<u32>() != Identity::of::<i32>());
        assert!(Identity::of::<[u8; 4]>() != Identity::of::<[u8; 8]>());
        assert_eq!(Identity::of::<[u8; 4]>().type_name.as_str(), "[u8; 4]");
    }

    #[test]
    fn miri_header_round_trips_through_raw_pointers() {
        #[repr(C, align(4096))]
        struct Page([u8; 4096]);
        let mut page = Page([0; 4096]);
        let base = NonNull::new(page.0.as_mut_ptr()).unwrap();
        // SAFETY: a page-aligned, 4096-byte buffer that outlives `h`.
        let h = unsafe { HeaderPtr::new(base) };
        let fields = Fields {
            size: 4096,
            value_offset: 256,
            value_size: 8,
            identity: Identity::of::<u64>(),
            creator_pid: 77,
            created_ns: 123,
            flags: FLAG_SEALED,
            registry: 9,
            item_stride: 24,
        };
        // SAFETY: we are the only writer.
        unsafe { h.write(&fields) };
        h.creator_id().store(5, Ordering::Relaxed);
        let s = h.snapshot();
        assert_eq!(s.magic, MAGIC);
        assert_eq!(s.version, LAYOUT_VERSION);
        assert!(s.identity == Identity::of::<u64>());
        assert_eq!(s.identity.type_name.as_str(), "u64");
        assert_eq!((s.creator_id, s.creator_pid, s.created_ns), (5, 77, 123));
        assert_eq!(s.flags, FLAG_SEALED);
        assert_eq!((s.registry, s.item_stride), (9, 24));
        assert_eq!(s.kind(), Some(Kind::Plain));
        // The documented offsets, byte for byte.
        assert_eq!(&page.0[0..8], b"SHMKIT\0\x01");
        assert_eq!(page.0[8], 2);
        assert_eq!(page.0[40], Kind::Plain as u8);
        assert_eq!(page.0[64], 5);
        assert_eq!(page.0[68], 77);
        assert_eq!(page.0[80], 3);
        assert_eq!(page.0[84], 24);
        assert_eq!(&page.0[96..99], b"u64");
    }
}

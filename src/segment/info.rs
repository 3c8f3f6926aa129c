//! Reading a segment's header from outside, without knowing its type and without
//! writing a byte: what `shmkit ls` shows.

use core::sync::atomic::Ordering;

use rustix::io::Errno;

use super::header::{
    FLAG_SEALED, HEADER_SIZE, HeaderPtr, LAYOUT_VERSION, MAGIC, STATE_READY, Snapshot,
};
use super::identity::{Kind, TypeName};
use crate::error::{SegmentError, SegmentErrorKind};
use crate::primitive::{Liveness, id_liveness};
use crate::sys;

/// What a segment's header says about it; see [`inspect`].
#[derive(Debug, Clone, Copy)]
pub struct SegmentInfo {
    /// The kind of the top-level value, `None` for a number this build does not know.
    pub kind: Option<Kind>,
    /// The kind as recorded.
    pub raw_kind: u32,
    /// The type's name as recorded (at most [`TYPE_NAME_MAX`](super::TYPE_NAME_MAX)
    /// bytes).
    pub type_name: TypeName,
    /// The object's size in bytes.
    pub size: u64,
    /// The size of the value.
    pub value_size: u64,
    /// The creator's participant id (0: not recorded).
    pub creator_id: u32,
    /// The creator's pid, for display only: pids are reused and mean nothing across
    /// PID namespaces, so never use it to decide anything.
    pub creator_pid: i32,
    /// When the segment was created: nanoseconds since the Unix epoch (`CLOCK_REALTIME`
    /// of the creator, for display only).
    pub created_ns: u64,
    /// `(major, minor)` of the shmkit that made it.
    pub kit_version: (u16, u16),
    /// Is it a sealed memfd? (Never for a named segment.)
    pub sealed: bool,
    /// Where the value starts, in bytes from the segment's start.
    pub value_offset: u64,
    /// For a value that is an array of items (a `Queue`'s slots): the bytes from one
    /// item to the next; 0 when the type states none.
    pub item_stride: u32,
    /// The nonce of the participant registry the creator's ids belong to (0: not
    /// recorded). Ids read from the segment mean something only under that registry.
    pub registry: u64,
}

impl SegmentInfo {
    /// Is the creator alive? `Some(false)` only when it is certainly dead;
    /// `None` when that cannot be told (treat it as alive): no id recorded, no
    /// participant registry on this machine, or a segment made under another registry
    /// (another user, another `SHMKIT_REGISTRY`), whose ids our registry cannot judge.
    pub fn creator_alive(&self) -> Option<bool> {
        if self.creator_id == 0 || !self.registry_is_ours()? {
            return None;
        }
        match id_liveness(self.creator_id) {
            Liveness::Alive => Some(true),
            Liveness::Dead => Some(false),
            Liveness::Unknown => None,
        }
    }
}

impl SegmentInfo {
    /// Do the participant ids in this segment belong to this process's registry?
    /// `None` if there is no registry here (none is created to find out).
    pub fn registry_is_ours(&self) -> Option<bool> {
        let ours = crate::sys::registry::nonce_if_exists()?;
        Some(self.registry == 0 || self.registry == ours)
    }

    /// From a READY header's snapshot and the object's size.
    pub(crate) fn from_snapshot(h: &Snapshot, size: u64) -> SegmentInfo {
        SegmentInfo {
            kind: h.kind(),
            raw_kind: h.identity.kind,
            type_name: h.identity.type_name,
            size,
            value_size: h.value_size,
            creator_id: h.creator_id,
            creator_pid: h.creator_pid,
            created_ns: h.created_ns,
            kit_version: (
                (h.identity.kit_version >> 16) as u16,
                h.identity.kit_version as u16,
            ),
            sealed: h.flags & FLAG_SEALED != 0,
            value_offset: h.value_offset,
            item_stride: h.item_stride,
            registry: h.registry,
        }
    }
}

/// Reads the header of the named segment `name` through a read-only mapping: no lock
/// is taken and no byte written. Validates the magic and the header version, not the
/// type.
///
/// # Errors
///
/// A [`SegmentError`] of kind [`NotFound`](SegmentErrorKind::NotFound),
/// [`InvalidName`](SegmentErrorKind::InvalidName),
/// [`PermissionDenied`](SegmentErrorKind::PermissionDenied),
/// [`WrongSize`](SegmentErrorKind::WrongSize) (too small for a header),
/// [`BadMagic`](SegmentErrorKind::BadMagic),
/// [`VersionMismatch`](SegmentErrorKind::VersionMismatch) (another header layout),
/// [`NotReady`](SegmentErrorKind::NotReady) (still being created, or its creator died
/// doing so) or [`Os`](SegmentErrorKind::Os).
///
/// # Examples
///
/// ```
/// use shmkit::segment::{Kind, inspect};
/// use shmkit::{Queue, Shared};
///
/// let name = format!("shmkit-doc-inspect-{}", std::process::id());
/// let q = Shared::<Queue<u64, 8>>::create_zeroed(&name)?;
/// let info = inspect(&name)?;
/// assert_eq!(info.kind, Some(Kind::Queue));
/// assert_eq!(info.type_name.as_str(), "shmkit::Queue<u64, 8>");
/// assert_eq!(info.creator_alive(), Some(true));
/// # drop(q);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn inspect(name: &str) -> Result<SegmentInfo, SegmentError> {
    let fail = |kind| SegmentError::new(kind, name);
    let os = |e: Errno| SegmentError::os(e, name);
    if name.is_empty() || name.len() > crate::error::MAX_NAME || name.contains(['/', '\0']) {
        return Err(fail(SegmentErrorKind::InvalidName));
    }
    let mut path = [0u8; crate::error::MAX_NAME + 2];
    path[0] = b'/';
    path[1..=name.len()].copy_from_slice(name.as_bytes());
    let path = core::ffi::CStr::from_bytes_until_nul(&path)
        .map_err(|_| fail(SegmentErrorKind::InvalidName))?;
    let fd = sys::mem::shm_open_readonly(path).map_err(os)?;
    let size = sys::mem::fd_stat(&fd).map_err(os)?.size;
    if size < HEADER_SIZE as u64 {
        return Err(fail(SegmentErrorKind::WrongSize).with_numbers(HEADER_SIZE as u64, size));
    }
    let base = sys::mem::map_fd_readonly(&fd, HEADER_SIZE).map_err(os)?;
    // SAFETY: a fresh read-only mapping of HEADER_SIZE bytes, unmapped below; the
    // header is only read.
    let header = unsafe { HeaderPtr::new(base) };
    // SYNC POINT with the Release store of READY in `Shared::initialise`.
    let ready = header.state().load(Ordering::Acquire) == STATE_READY;
    let magic = header.magic_relaxed();
    let creator = header.creator_id().load(Ordering::Relaxed);
    let snapshot = ready.then(|| header.snapshot());
    // SAFETY: nothing refers into the mapping any more.
    unsafe { sys::mem::unmap(base, HEADER_SIZE) };
    if magic != MAGIC {
        return Err(fail(SegmentErrorKind::BadMagic).with_numbers(0, magic));
    }
    let Some(h) = snapshot else {
        return Err(fail(SegmentErrorKind::NotReady).creator(creator));
    };
    if h.version != LAYOUT_VERSION {
        return Err(fail(SegmentErrorKind::VersionMismatch)
            .with_numbers(u64::from(LAYOUT_VERSION) << 32, u64::from(h.version) << 32));
    }
    Ok(SegmentInfo::from_snapshot(&h, size))
}

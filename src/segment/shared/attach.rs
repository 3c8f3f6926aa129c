//! Mapping an existing segment and validating its header.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::time::Duration;

use rustix::fd::OwnedFd;
use rustix::io::Errno;

use crate::error::{SegmentError, SegmentErrorKind};
use crate::fingerprint::KIT_VERSION;
use crate::primitive::{Deadline, Liveness, Ordering, futex_wait, id_liveness};
use crate::segment::ShmSafe;
use crate::segment::header::{
    HEADER_SIZE, HeaderPtr, Identity, LAYOUT_VERSION, Layout, MAGIC, STATE_INITIALIZING,
    STATE_READY, Snapshot,
};
use crate::sys;

use super::{Name, Shared};

/// How an attempt to map and validate an existing segment ended, short of success.
#[allow(clippy::large_enum_variant)] // a cold path; see `segment/mod.rs`
pub(super) enum AttachError {
    /// A plain error, to be returned.
    Failed(SegmentError),
    /// The segment never became READY and its creator is dead (only when asked to
    /// watch the creator).
    CreatorDead,
}

impl From<SegmentError> for AttachError {
    fn from(e: SegmentError) -> Self {
        AttachError::Failed(e)
    }
}

/// What `attach` maps, once validated.
pub(super) struct Attached {
    pub(super) base: NonNull<u8>,
    pub(super) len: usize,
    pub(super) value_offset: usize,
    pub(super) creator_id: u32,
}

impl<T: ShmSafe> Shared<T> {
    /// Maps the object behind `fd`, waits for READY until `deadline`, and validates the
    /// header against `T`. With `watch_creator`, a segment that is not READY and whose
    /// creator is dead ends the wait early with [`AttachError::CreatorDead`].
    pub(super) fn attach(
        fd: &OwnedFd,
        name: &str,
        deadline: Deadline,
        watch_creator: bool,
    ) -> Result<Attached, AttachError> {
        let layout = Layout::of::<T>(sys::mem::page_size());
        let err = |e: Errno| SegmentError::os(e, name);
        // The creator sizes the object right after creating it: wait for that.
        let size = loop {
            let size = sys::mem::fd_stat(fd).map_err(err)?.size;
            if size != 0 {
                break size;
            }
            if deadline.expired() {
                return Err(SegmentError::new(SegmentErrorKind::NotReady, name).into());
            }
            sys::time::sleep_ns(200_000);
        };
        if size < HEADER_SIZE as u64 || size > isize::MAX as u64 {
            return Err(SegmentError::new(SegmentErrorKind::WrongSize, name)
                .with_numbers(layout.size as u64, size)
                .into());
        }
        let len = size as usize;
        let base = sys::mem::map_fd(fd, len).map_err(err)?;
        let unmap = || {
            // SAFETY: our fresh mapping; nothing refers into it on the error paths.
            unsafe { sys::mem::unmap(base, len) }
        };
        // SAFETY: the mapping is page-aligned and at least HEADER_SIZE long, and stays
        // mapped while `header` is used (it is unmapped only on the error path below,
        // after the last use).
        let header = unsafe { HeaderPtr::new(base) };
        let registry = sys::registry::nonce();
        match Self::ready_and_valid(
            &header,
            &layout,
            size,
            name,
            deadline,
            watch_creator,
            registry,
        ) {
            Ok((value_offset, creator_id)) => Ok(Attached {
                base,
                len,
                value_offset,
                creator_id,
            }),
            Err(e) => {
                unmap();
                Err(e)
            }
        }
    }

    /// The opener's half of the READY handshake: waits for READY ([`Self::wait_ready`]),
    /// only then copies the header's plain fields out, and validates them against `T`
    /// (a file of `size` bytes, this process's participant `registry`). Returns where
    /// the value starts and the creator's participant id.
    pub(super) fn ready_and_valid(
        header: &HeaderPtr,
        layout: &Layout,
        size: u64,
        name: &str,
        deadline: Deadline,
        watch_creator: bool,
        registry: u64,
    ) -> Result<(usize, u32), AttachError> {
        Self::wait_ready(header, name, deadline, watch_creator)?;
        let snapshot = header.snapshot();
        match Self::validate(&snapshot, layout, size, name, registry) {
            Ok(value_offset) => Ok((value_offset, snapshot.creator_id)),
            Err(e) => Err(e.creator(snapshot.creator_id).into()),
        }
    }

    /// Waits for `state == READY` (Acquire), touching nothing else in the header but
    /// the atomics `state`, `creator_id` and (once `deadline` has passed) `magic`.
    pub(super) fn wait_ready(
        header: &HeaderPtr,
        name: &str,
        deadline: Deadline,
        watch_creator: bool,
    ) -> Result<(), AttachError> {
        loop {
            // SYNC POINT with the Release stores of INITIALIZING and READY in
            // `HeaderPtr::publish`.
            let state = header.state().load(Ordering::Acquire);
            if state == STATE_READY {
                return Ok(());
            }
            let creator = header.creator_id().load(Ordering::Relaxed);
            if watch_creator
                && state == STATE_INITIALIZING
                && creator != 0
                && id_liveness(creator) == Liveness::Dead
            {
                return Err(AttachError::CreatorDead);
            }
            if deadline.expired() {
                // A header that is not ours at all is a clearer error than "not ready".
                let magic = header.magic_relaxed();
                if magic != MAGIC && magic != 0 {
                    return Err(SegmentError::new(SegmentErrorKind::BadMagic, name)
                        .with_numbers(0, magic)
                        .into());
                }
                return Err(SegmentError::new(SegmentErrorKind::NotReady, name)
                    .creator(creator)
                    .into());
            }
            // The creator wakes us; wake up now and then regardless.
            let slice = Deadline::after(Duration::from_millis(10));
            futex_wait(header.state(), state, deadline.earlier(slice));
        }
    }

    /// Checks a READY header against what this process expects for `T`, created under
    /// the participant registry `registry` (0: unknown, not compared).
    pub(super) fn validate(
        h: &Snapshot,
        layout: &Layout,
        file_size: u64,
        name: &str,
        registry: u64,
    ) -> Result<usize, SegmentError> {
        let fail = |kind| SegmentError::new(kind, name);
        if h.magic != MAGIC {
            return Err(fail(SegmentErrorKind::BadMagic).with_numbers(0, h.magic));
        }
        if h.version != LAYOUT_VERSION {
            return Err(fail(SegmentErrorKind::VersionMismatch).with_numbers(
                (u64::from(LAYOUT_VERSION) << 32) | u64::from(KIT_VERSION),
                u64::from(h.version) << 32,
            ));
        }
        if h.identity.kit_version != KIT_VERSION {
            return Err(fail(SegmentErrorKind::VersionMismatch).with_numbers(
                (u64::from(LAYOUT_VERSION) << 32) | u64::from(KIT_VERSION),
                (u64::from(h.version) << 32) | u64::from(h.identity.kit_version),
            ));
        }
        if h.registry != registry && h.registry != 0 && registry != 0 {
            return Err(fail(SegmentErrorKind::ForeignRegistry).with_numbers(registry, h.registry));
        }
        let expected = Identity::of::<T>();
        if h.identity != expected {
            return Err(
                fail(SegmentErrorKind::WrongType).types(expected.type_name, h.identity.type_name)
            );
        }
        let expected_size = layout.size as u64;
        for found in [file_size, h.size] {
            if found != expected_size {
                return Err(fail(SegmentErrorKind::WrongSize).with_numbers(expected_size, found));
            }
        }
        if h.value_offset != layout.value_offset as u64
            || h.value_size != core::mem::size_of::<T>() as u64
        {
            return Err(fail(SegmentErrorKind::Corrupted));
        }
        Ok(layout.value_offset)
    }

    pub(super) fn from_attached(a: Attached, name: Option<Name>, fd: Option<OwnedFd>) -> Self {
        // SAFETY: validated: the value lies inside the mapping at T's offset.
        let value = unsafe { a.base.add(a.value_offset) }.cast::<T>();
        Shared {
            base: a.base,
            len: a.len,
            value,
            name,
            creator: 0,
            object: None,
            fd,
            _value: PhantomData,
        }
    }
}

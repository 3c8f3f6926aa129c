//! Anonymous segments: sealed memfds (or plain shared memory), and memfds received
//! from a peer.

use core::mem::MaybeUninit;
use core::time::Duration;

use bytemuck::Zeroable;
use rustix::fd::{BorrowedFd, OwnedFd};

use crate::error::{SegmentError, SegmentErrorKind};
use crate::primitive::Deadline;
use crate::segment::ShmSafe;
use crate::segment::header::{FLAG_SEALED, Layout};
use crate::sys;

use super::{AttachError, Fresh, Shared, copy_from};

impl<T: ShmSafe> Shared<T> {
    /// Puts `value` into a fresh anonymous segment, inherited by processes forked
    /// later.
    ///
    /// `value` is built by the caller, on its stack, then copied once into the
    /// segment: for the kit's larger types (queues, pipes, arrays) use
    /// [`Shared::new_zeroed`], which never builds the value at all.
    ///
    /// # Errors
    ///
    /// A [`SegmentError`] of kind [`NoSpace`](SegmentErrorKind::NoSpace) or
    /// [`Os`](SegmentErrorKind::Os) if the kernel refuses the memory.
    pub fn new(value: T) -> Result<Self, SegmentError> {
        if core::mem::needs_drop::<T>() {
            // SAFETY: the closure fully initialises the slot.
            return unsafe { Self::new_with(|slot| _ = slot.write(value)) };
        }
        // SAFETY: `value` lives until the call returns; T has no drop glue, so the
        // copy in the segment is a move and the original simply goes out of scope.
        unsafe { Self::new_with(copy_from(&value)) }
    }

    /// A fresh (all-zero) `T` in a fresh anonymous segment, in O(1): the kernel hands
    /// out zeroed pages, so nothing is built, copied or even touched. The way to make
    /// any kit type with a parameter-free fresh state, and the only sensible one for a
    /// queue of a million slots.
    ///
    /// # Errors
    ///
    /// As [`Shared::new`].
    pub fn new_zeroed() -> Result<Self, SegmentError>
    where
        T: Zeroable,
    {
        // SAFETY: fresh pages are zero, and all-zero is a valid `T`.
        unsafe { Self::new_with(|_| {}) }
    }

    /// Initialises `T` in place in a fresh anonymous segment: `init` receives the
    /// (zero-filled) slot.
    ///
    /// # Safety
    ///
    /// When `init` returns, the slot must hold a valid `T` (zero bytes count as
    /// written: the slot starts zero-filled).
    ///
    /// # Errors
    ///
    /// As [`Shared::new`].
    pub unsafe fn new_with<F: FnOnce(&mut MaybeUninit<T>)>(init: F) -> Result<Self, SegmentError> {
        // SAFETY: forwarded contract.
        unsafe { Self::anonymous(false, init) }
    }

    /// As [`Shared::new_with`], keeping the segment's memfd in the handle (see
    /// [`Shared::fd`]) so that it can be passed to another process (`SCM_RIGHTS`).
    /// Fails with [`NotSealed`](SegmentErrorKind::NotSealed) where the kernel gives no
    /// sealed memfd, instead of falling back to descriptor-less memory.
    ///
    /// # Safety
    ///
    /// As [`Shared::new_with`].
    #[allow(dead_code)] // for the manager's local fast path
    pub(crate) unsafe fn new_with_fd<F: FnOnce(&mut MaybeUninit<T>)>(
        init: F,
    ) -> Result<Self, SegmentError> {
        // SAFETY: forwarded contract.
        unsafe { Self::anonymous(true, init) }
    }

    /// # Safety
    ///
    /// As [`Shared::new_with`].
    pub(super) unsafe fn anonymous<F: FnOnce(&mut MaybeUninit<T>)>(
        keep_fd: bool,
        init: F,
    ) -> Result<Self, SegmentError> {
        let () = Self::ALIGN_FITS_PAGE;
        let layout = Layout::of::<T>(sys::mem::page_size());
        let fresh = match sys::mem::memfd_sealed(c"shmkit", layout.size as u64) {
            Ok(fd) => {
                let base =
                    sys::mem::map_fd(&fd, layout.size).map_err(|e| SegmentError::os(e, ""))?;
                Fresh {
                    base,
                    layout,
                    name: None,
                    object: None,
                    fd: keep_fd.then_some(fd),
                    flags: FLAG_SEALED,
                }
            }
            // No sealed memfd here (an old kernel, a seccomp filter, no descriptors
            // left): anonymous shared memory has no descriptor anybody could truncate.
            Err(e) if keep_fd => {
                return Err(SegmentError::os(e, "").with_kind(SegmentErrorKind::NotSealed));
            }
            Err(_) => Fresh {
                base: sys::mem::map_anonymous(layout.size).map_err(|e| SegmentError::os(e, ""))?,
                layout,
                name: None,
                object: None,
                fd: None,
                flags: 0,
            },
        };
        // SAFETY: the mapping is fresh, zeroed, page-aligned, `layout.size` long, and
        // only this thread can see it; the caller's `init` contract makes T valid.
        unsafe { Self::initialise(fresh, init) }
    }

    /// The segment's memfd, if this handle kept it ([`Shared::new_with_fd`]).
    #[allow(dead_code)] // for the manager's local fast path
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        use rustix::fd::AsFd;
        self.fd.as_ref().map(|fd| fd.as_fd())
    }

    /// Maps a memfd received from another process (`SCM_RIGHTS`) as a `Shared<T>`,
    /// after the checks `open` makes, waiting up to `timeout` for READY. The memfd
    /// must carry `F_SEAL_SHRINK` (so its sender cannot truncate it under us) and must
    /// not be sealed against writing.
    ///
    /// # Errors
    ///
    /// [`NotSealed`](SegmentErrorKind::NotSealed) for a descriptor that is not a memfd
    /// sealed against shrinking, and every error of [`Shared::open`].
    #[allow(dead_code)] // for the manager's local fast path
    pub(crate) fn from_memfd(fd: OwnedFd, timeout: Duration) -> Result<Self, SegmentError> {
        let () = Self::ALIGN_FITS_PAGE;
        let seals = sys::mem::seals(&fd)
            .map_err(|e| SegmentError::os(e, "").with_kind(SegmentErrorKind::NotSealed))?;
        if !seals.contains(rustix::fs::SealFlags::SHRINK) {
            return Err(SegmentError::new(SegmentErrorKind::NotSealed, ""));
        }
        let deadline = Deadline::after(timeout);
        let attached = match Self::attach(&fd, "", deadline, false) {
            Ok(a) => a,
            Err(AttachError::Failed(e)) => return Err(e),
            Err(AttachError::CreatorDead) => {
                return Err(SegmentError::new(SegmentErrorKind::NotReady, ""));
            }
        };
        Ok(Self::from_attached(attached, None, Some(fd)))
    }
}

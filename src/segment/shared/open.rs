//! Opening named segments, waiting for them, and taking over a dead creator's.

use core::mem::MaybeUninit;
use core::sync::atomic::Ordering;
use core::time::Duration;

use bytemuck::Zeroable;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

use crate::error::{SegmentError, SegmentErrorKind};
use crate::primitive::{Deadline, Liveness, id_liveness};
use crate::segment::ShmSafe;
use crate::segment::header::{HEADER_SIZE, HeaderPtr, LAYOUT_VERSION, MAGIC, STATE_READY};
use crate::sys;
use crate::sys::mem::FileId;

use super::{APPEAR_POLL_MAX_NS, AttachError, DEFAULT_OPEN_TIMEOUT, Name, Shared, copy_from};

impl<T: ShmSafe> Shared<T> {
    /// Opens the named segment `name`, waiting up to one second for its creator to
    /// finish initialising it. A segment that does not exist is
    /// [`NotFound`](SegmentErrorKind::NotFound) at once: to wait for it to appear, use
    /// [`Shared::open_timeout`].
    ///
    /// # Errors
    ///
    /// A [`SegmentError`] of kind [`NotFound`](SegmentErrorKind::NotFound),
    /// [`InvalidName`](SegmentErrorKind::InvalidName),
    /// [`PermissionDenied`](SegmentErrorKind::PermissionDenied),
    /// [`BadMagic`](SegmentErrorKind::BadMagic) (not a shmkit segment),
    /// [`VersionMismatch`](SegmentErrorKind::VersionMismatch) (made by another
    /// shmkit major.minor, or another header layout),
    /// [`WrongType`](SegmentErrorKind::WrongType) (another type, or another layout of
    /// the type: the error names both),
    /// [`WrongSize`](SegmentErrorKind::WrongSize),
    /// [`Corrupted`](SegmentErrorKind::Corrupted),
    /// [`NotReady`](SegmentErrorKind::NotReady) or [`Os`](SegmentErrorKind::Os).
    pub fn open(name: &str) -> Result<Self, SegmentError> {
        let name = Name::new(name)?;
        let deadline = Deadline::after(DEFAULT_OPEN_TIMEOUT);
        Self::open_until(name, deadline, false)
    }

    /// Opens the named segment `name`, waiting up to `timeout` for it to appear and
    /// for its creator to finish initialising it: start the readers first, the
    /// creator later, in any order.
    ///
    /// # Errors
    ///
    /// As [`Shared::open`]; [`NotFound`](SegmentErrorKind::NotFound) only once
    /// `timeout` has passed without the segment appearing.
    pub fn open_timeout(name: &str, timeout: Duration) -> Result<Self, SegmentError> {
        let name = Name::new(name)?;
        let deadline = Deadline::after(timeout);
        Self::open_until(name, deadline, true)
    }

    pub(super) fn open_until(
        name: Name,
        deadline: Deadline,
        wait_to_appear: bool,
    ) -> Result<Self, SegmentError> {
        let mut poll_ns = 500_000;
        let fd = loop {
            match sys::mem::shm_open(name.c_str()) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if wait_to_appear && !deadline.expired() => {
                    sys::time::sleep_ns(poll_ns);
                    poll_ns = (poll_ns * 2).min(APPEAR_POLL_MAX_NS);
                }
                Err(e) => return Err(SegmentError::os(e, name.as_str())),
            }
        };
        match Self::attach(&fd, name.as_str(), deadline, false) {
            Ok(attached) => Ok(Self::from_attached(attached, Some(name), None)),
            Err(AttachError::Failed(e)) => Err(e),
            Err(AttachError::CreatorDead) => {
                Err(SegmentError::new(SegmentErrorKind::NotReady, name.as_str()))
            }
        }
    }

    /// Opens the named segment `name`, or creates it holding `value` if it does not
    /// exist, or replaces it if its creator has died: the way for a service to come
    /// back after a crash. [`Shared::is_creator`] tells which happened.
    ///
    /// "Died" is decided on the header's creator participant id (see the crate docs on
    /// identity): a creator that is alive, or whose liveness cannot be told, is never
    /// displaced. A segment whose creator died is replaced whatever it holds (a
    /// restarted program may have changed the type), but only if it is a shmkit
    /// segment of this header layout: anything else is an error, never removed.
    /// Replacing unlinks the old name and creates a new object: processes that still
    /// map the old one keep it, and meet the new one only when they open the name
    /// again. Two processes that race to replace the same dead creator's segment end up
    /// on the same new segment (the old object is locked with `flock` while it is
    /// replaced).
    ///
    /// Waits up to one second for a live creator to finish initialising.
    ///
    /// # Errors
    ///
    /// As [`Shared::create`] and [`Shared::open`]; the name is in every error.
    pub fn open_or_create(name: &str, value: T) -> Result<Self, SegmentError> {
        if core::mem::needs_drop::<T>() {
            // SAFETY: the closure fully initialises the slot.
            return unsafe { Self::open_or_create_with(name, |slot| _ = slot.write(value)) };
        }
        // SAFETY: as in `new`.
        unsafe { Self::open_or_create_with(name, copy_from(&value)) }
    }

    /// As [`Shared::open_or_create`], creating a fresh (all-zero) `T` in O(1).
    ///
    /// # Errors
    ///
    /// As [`Shared::open_or_create`].
    pub fn open_or_create_zeroed(name: &str) -> Result<Self, SegmentError>
    where
        T: Zeroable,
    {
        // SAFETY: a fresh object reads as zeros; all-zero is a valid T.
        unsafe { Self::open_or_create_with(name, |_| {}) }
    }

    /// As [`Shared::open_or_create`], initialising `T` in place if it creates.
    ///
    /// # Safety
    ///
    /// As [`Shared::new_with`].
    ///
    /// # Errors
    ///
    /// As [`Shared::open_or_create`].
    pub unsafe fn open_or_create_with<F: FnOnce(&mut MaybeUninit<T>)>(
        name: &str,
        init: F,
    ) -> Result<Self, SegmentError> {
        let name = Name::new(name)?;
        let deadline = Deadline::after(DEFAULT_OPEN_TIMEOUT);
        let mut init = Some(init);
        loop {
            // SAFETY: forwarded contract.
            match unsafe { Self::try_create(name, &mut init) } {
                Err(e) if e.kind() == SegmentErrorKind::AlreadyExists => {}
                other => return other,
            }
            let fd = match sys::mem::shm_open(name.c_str()) {
                Ok(fd) => fd,
                // Unlinked between our create and our open: create again.
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(SegmentError::os(e, name.as_str())),
            };
            let object = sys::mem::fd_stat(&fd).map_err(|e| SegmentError::os(e, name.as_str()))?;
            let failure = match Self::attach(&fd, name.as_str(), deadline, true) {
                Ok(attached) => {
                    if id_liveness(attached.creator_id) != Liveness::Dead {
                        return Ok(Self::from_attached(attached, Some(name), None));
                    }
                    // SAFETY: nothing refers into the mapping we just made.
                    unsafe { sys::mem::unmap(attached.base, attached.len) };
                    None
                }
                Err(AttachError::CreatorDead) => None,
                Err(AttachError::Failed(e)) => Some(e),
            };
            if let Some(e) = failure {
                // A shmkit segment of this header layout that we cannot use: replace it
                // only if its creator is certainly dead.
                let replaceable = matches!(
                    e.kind(),
                    SegmentErrorKind::WrongType
                        | SegmentErrorKind::WrongSize
                        | SegmentErrorKind::VersionMismatch
                        | SegmentErrorKind::Corrupted
                ) && Self::creator_dead(&fd, &e);
                if !replaceable {
                    return Err(e);
                }
            }
            Self::replace(&fd, &object, &name)?;
            if deadline.expired() {
                return Err(SegmentError::new(SegmentErrorKind::NotReady, name.as_str()));
            }
        }
    }

    /// Is the creator recorded in the segment behind `fd` certainly dead? Reads the
    /// header only if its magic and header version are ours (a header of another
    /// version keeps `creator_id` elsewhere, or nowhere).
    pub(super) fn creator_dead(fd: &OwnedFd, e: &SegmentError) -> bool {
        if e.kind() == SegmentErrorKind::VersionMismatch
            && (e.numbers().1 >> 32) as u32 != LAYOUT_VERSION
        {
            return false;
        }
        let Ok(stat) = sys::mem::fd_stat(fd) else {
            return false;
        };
        if stat.size < HEADER_SIZE as u64 {
            return false;
        }
        let Ok(base) = sys::mem::map_fd(fd, HEADER_SIZE) else {
            return false;
        };
        // SAFETY: a fresh mapping of HEADER_SIZE bytes, unmapped below.
        let header = unsafe { HeaderPtr::new(base) };
        let ours = header.magic_relaxed() == MAGIC && {
            // SYNC POINT with the Release store of READY in `HeaderPtr::publish`.
            header.state().load(Ordering::Acquire) == STATE_READY
                && header.snapshot().version == LAYOUT_VERSION
        };
        let creator = header.creator_id().load(Ordering::Relaxed);
        // SAFETY: nothing refers into the mapping any more.
        unsafe { sys::mem::unmap(base, HEADER_SIZE) };
        ours && creator != 0 && id_liveness(creator) == Liveness::Dead
    }

    /// Unlinks `name` if it still names `object`, holding `flock` on the object so
    /// that two replacers never unlink each other's new segment.
    pub(super) fn replace(fd: &OwnedFd, object: &FileId, name: &Name) -> Result<(), SegmentError> {
        let err = |e: Errno| SegmentError::os(e, name.as_str());
        if !sys::mem::try_lock_exclusive(fd).map_err(err)? {
            // Another process is replacing it right now: look again shortly.
            sys::time::sleep_ns(1_000_000);
            return Ok(());
        }
        match sys::mem::shm_open(name.c_str()) {
            Ok(now) => {
                let now = sys::mem::fd_stat(&now).map_err(err)?;
                if now.same_object(object) {
                    match sys::mem::shm_unlink(name.c_str()) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(e) => return Err(err(e)),
                    }
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(err(e)),
        }
        // The lock goes with the caller's descriptor.
        Ok(())
    }
}

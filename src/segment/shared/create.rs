//! Creating named segments, and writing a fresh segment's header and value.

use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use bytemuck::Zeroable;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

use crate::error::{SegmentError, SegmentErrorKind};
use crate::primitive::my_process_id;
use crate::segment::ShmSafe;
use crate::segment::header::{Fields, HeaderPtr, Identity, Layout};
use crate::sys;
use crate::sys::mem::FileId;

use super::{Name, Shared};

/// Unmaps (and unlinks, if named) a half-built segment if initialisation panics.
pub(super) struct BuildGuard<'a> {
    pub(super) base: NonNull<u8>,
    pub(super) len: usize,
    pub(super) name: Option<&'a Name>,
}

impl Drop for BuildGuard<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name {
            let _ = sys::mem::shm_unlink(name.c_str());
        }
        // SAFETY: the guard owns the fresh mapping, and no reference into it escaped.
        unsafe { sys::mem::unmap(self.base, self.len) };
    }
}

/// A fresh mapping for `initialise`.
pub(super) struct Fresh {
    pub(super) base: NonNull<u8>,
    pub(super) layout: Layout,
    pub(super) name: Option<Name>,
    pub(super) object: Option<FileId>,
    pub(super) fd: Option<OwnedFd>,
    pub(super) flags: u16,
}

/// An initialiser that copies `*src` into the slot: how `new(value)`, `create` and
/// `open_or_create` move a value into a segment without passing it (by value) through
/// every frame between them and the slot, which in a debug build costs a copy per
/// frame: a megabyte queue then overflowed an 8 MiB stack.
///
/// # Safety
///
/// `src` points at a valid `T` that outlives the closure, and the caller treats its
/// bytes as moved if the closure ran: `T` has no drop glue (checked by the callers), so
/// the original may simply go out of scope.
pub(super) unsafe fn copy_from<T>(src: *const T) -> impl FnOnce(&mut MaybeUninit<T>) {
    move |slot| {
        // SAFETY: per this function's contract `src` is a valid `T`; `slot` is valid
        // for one `T` and does not overlap it.
        unsafe { core::ptr::copy_nonoverlapping(src, slot.as_mut_ptr(), 1) }
    }
}

impl<T: ShmSafe> Shared<T> {
    /// Creates the named segment `name` (`O_CREAT|O_EXCL`, mode 0600) holding `value`.
    ///
    /// # Errors
    ///
    /// A [`SegmentError`] of kind [`AlreadyExists`](SegmentErrorKind::AlreadyExists),
    /// [`InvalidName`](SegmentErrorKind::InvalidName) (1 to 250 bytes, no `/`, no NUL),
    /// [`PermissionDenied`](SegmentErrorKind::PermissionDenied),
    /// [`NoSpace`](SegmentErrorKind::NoSpace) (`/dev/shm` is full) or
    /// [`Os`](SegmentErrorKind::Os).
    pub fn create(name: &str, value: T) -> Result<Self, SegmentError> {
        if core::mem::needs_drop::<T>() {
            // SAFETY: the closure fully initialises the slot.
            return unsafe { Self::create_with(name, |slot| _ = slot.write(value)) };
        }
        // SAFETY: as in `new`.
        unsafe { Self::create_with(name, copy_from(&value)) }
    }

    /// Creates the named segment `name` with a fresh (all-zero) `T`, in O(1).
    ///
    /// # Errors
    ///
    /// As [`Shared::create`].
    pub fn create_zeroed(name: &str) -> Result<Self, SegmentError>
    where
        T: Zeroable,
    {
        // SAFETY: a fresh shared-memory object reads as zeros; all-zero is a valid T.
        unsafe { Self::create_with(name, |_| {}) }
    }

    /// Creates the named segment `name`, initialising `T` in place. Openers wait until
    /// `init` has returned.
    ///
    /// # Safety
    ///
    /// As [`Shared::new_with`].
    ///
    /// # Errors
    ///
    /// As [`Shared::create`].
    pub unsafe fn create_with<F: FnOnce(&mut MaybeUninit<T>)>(
        name: &str,
        init: F,
    ) -> Result<Self, SegmentError> {
        let name = Name::new(name)?;
        let mut init = Some(init);
        // SAFETY: forwarded contract.
        unsafe { Self::try_create(name, &mut init) }
    }

    /// Creates `name`, taking `init` out of its option only once the object exists
    /// (so that a caller may retry after `AlreadyExists` with the same `init`).
    ///
    /// # Safety
    ///
    /// As [`Shared::new_with`].
    pub(super) unsafe fn try_create<F: FnOnce(&mut MaybeUninit<T>)>(
        name: Name,
        init: &mut Option<F>,
    ) -> Result<Self, SegmentError> {
        let () = Self::ALIGN_FITS_PAGE;
        let layout = Layout::of::<T>(sys::mem::page_size());
        let err = |e: Errno| SegmentError::os(e, name.as_str());
        let fd = sys::mem::shm_create(name.c_str(), layout.size as u64).map_err(err)?;
        let setup = sys::mem::fd_stat(&fd).and_then(|id| {
            let base = sys::mem::map_fd(&fd, layout.size)?;
            Ok((id, base))
        });
        let (object, base) = match setup {
            Ok(ok) => ok,
            Err(e) => {
                let _ = sys::mem::shm_unlink(name.c_str());
                return Err(err(e));
            }
        };
        drop(fd); // the mapping keeps the object alive
        let Some(init) = init.take() else {
            // Not reachable: `init` is taken only here, once per successful create.
            let _ = sys::mem::shm_unlink(name.c_str());
            // SAFETY: our fresh mapping; nothing refers into it.
            unsafe { sys::mem::unmap(base, layout.size) };
            return Err(SegmentError::new(
                SegmentErrorKind::Corrupted,
                name.as_str(),
            ));
        };
        let fresh = Fresh {
            base,
            layout,
            name: Some(name),
            object: Some(object),
            fd: None,
            flags: 0,
        };
        // SAFETY: the object is new (O_EXCL), sized and zero-filled; we mapped all of
        // it. Openers touch nothing but `state` and `creator_id` until it is READY.
        unsafe { Self::initialise(fresh, init) }
    }

    /// Writes the creator id, the header, runs `init`, publishes READY (the creator's
    /// half of the handshake: [`HeaderPtr::publish`]).
    ///
    /// # Safety
    ///
    /// `fresh.base` is a fresh zeroed mapping of `fresh.layout.size` bytes that nobody
    /// else writes yet; `init` leaves a valid `T`.
    pub(super) unsafe fn initialise<F: FnOnce(&mut MaybeUninit<T>)>(
        fresh: Fresh,
        init: F,
    ) -> Result<Self, SegmentError> {
        let Fresh {
            base,
            layout,
            name,
            object,
            fd,
            flags,
        } = fresh;
        let guard = BuildGuard {
            base,
            len: layout.size,
            name: name.as_ref(),
        };
        // SAFETY: the mapping is page-aligned and at least one page long.
        let header = unsafe { HeaderPtr::new(base) };
        let me = my_process_id();
        let fields = Fields {
            size: layout.size as u64,
            value_offset: layout.value_offset as u64,
            value_size: core::mem::size_of::<T>() as u64,
            identity: Identity::of::<T>(),
            creator_pid: sys::ids::pid(),
            created_ns: sys::time::realtime_ns(),
            flags,
            registry: sys::registry::nonce(),
            item_stride: T::ITEM_STRIDE,
        };
        // SAFETY: value_offset is within the mapping and aligned for T (Layout::of).
        let value = unsafe { base.add(layout.value_offset) }.cast::<T>();
        let build = || {
            // SAFETY: the slot is ours alone until READY; MaybeUninit<T> has T's layout.
            init(unsafe { value.cast::<MaybeUninit<T>>().as_mut() });
        };
        // Only a named segment or a kept memfd can have openers asleep on `state`.
        let wake = name.is_some() || fd.is_some();
        // SAFETY: the mapping is fresh and zero-filled (this function's contract), and
        // we are its only writer.
        unsafe { header.publish(me, &fields, build, wake) };
        core::mem::forget(guard);
        let named = name.is_some();
        Ok(Shared {
            base,
            len: layout.size,
            value,
            name,
            creator: if named { me } else { 0 },
            object,
            fd,
            _value: PhantomData,
        })
    }
}

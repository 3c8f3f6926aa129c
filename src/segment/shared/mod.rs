//! `Shared<T>`: one `T` in its own shared mapping, anonymous or named.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;
use core::time::Duration;

use rustix::fd::OwnedFd;

use super::ShmSafe;
use super::header::{FLAG_SEALED, HeaderPtr};
use crate::error::SegmentError;
use crate::primitive::my_process_id;
use crate::sys;
use crate::sys::mem::FileId;

mod anonymous;
mod attach;
mod create;
#[cfg(shmkit_loom)]
pub(crate) mod model;
mod name;
mod open;
#[cfg(test)]
mod tests;

use attach::AttachError;
use create::{Fresh, copy_from};
use name::Name;

/// How long [`Shared::open`] and [`Shared::open_or_create`] wait for a creator to
/// finish initialising.
pub(super) const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest sleep between two looks for a segment that does not exist yet.
pub(super) const APPEAR_POLL_MAX_NS: u64 = 10_000_000;

/// One `T` in a shared-memory mapping of its own.
///
/// # Anonymous and named segments
///
/// [`Shared::new_zeroed`] (and [`Shared::new`]) make an **anonymous** segment: a process
/// forked afterwards shares the very same `T` (writes are seen both ways). It is a
/// `memfd` sealed with `F_SEAL_SHRINK | F_SEAL_GROW`, so nobody can truncate it under
/// us; where the kernel refuses memfds or seals, plain `MAP_SHARED | MAP_ANONYMOUS`
/// memory, which has no descriptor to truncate at all.
///
/// [`Shared::create`], [`Shared::open`] and [`Shared::open_or_create`] use a **named**
/// POSIX shared-memory object (`/dev/shm/NAME`, mode 0600), so unrelated processes
/// can meet. POSIX objects cannot be sealed: any process of the same user can still
/// `ftruncate` one, and then our next access past the new end gets `SIGBUS`.
/// `open` checks the size it maps, but it cannot stop a later truncation. Name
/// segments only where every process of that user is trusted that far.
///
/// Either way the value sits behind a header (magic, layout version, the type's kind,
/// name and layout digest, shmkit's version, the creator) that `open` validates before
/// it hands out a `&T`: see [`TypeName`](crate::segment::TypeName) for how two
/// programs agree on a type.
///
/// # Building large values
///
/// Prefer [`Shared::new_zeroed`] and [`Shared::create_zeroed`]: every kit type that
/// has a parameter-free fresh state (queues, pipes, locks, cells) is all-zero when
/// fresh, and these constructors never build the value anywhere: the kernel's zeroed
/// pages *are* the value, so a queue of a million slots costs no stack and no copy,
/// even in a debug build. [`Shared::new`] moves its argument through the stack, which
/// suits small values (`AtomicU64::new(5)`, `Barrier::new(4)`).
///
/// `Shared` gives `&T` only; `T` synchronises its own mutation (atomics, [`Mutex`],
/// queues). The value is never dropped in place: other processes may still use it.
/// Only the process that created a named segment unlinks it, when its handle drops;
/// a forked child that inherited the handle never does.
///
/// [`Mutex`]: crate::sync::Mutex
///
/// # Examples
///
/// ```
/// use core::sync::atomic::{AtomicU64, Ordering};
/// use shmkit::{Process, Shared};
///
/// let counter = Shared::<AtomicU64>::new_zeroed()?;
/// let mut child = Process::spawn(|| {
///     counter.fetch_add(1, Ordering::SeqCst);
///     0
/// })?;
/// assert!(child.join()?.success());
/// assert_eq!(counter.load(Ordering::SeqCst), 1);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct Shared<T: ShmSafe> {
    /// Start of the mapping (the header).
    base: NonNull<u8>,
    /// Length of the mapping.
    len: usize,
    /// The value, inside the mapping.
    value: NonNull<T>,
    /// The segment's name, if named.
    name: Option<Name>,
    /// The participant id of the process that created the named segment through this
    /// handle; 0 otherwise.
    creator: u32,
    /// The named object this handle created (to unlink only that one on drop).
    object: Option<FileId>,
    /// The memfd, for handles that keep it (see [`Shared::fd`]).
    fd: Option<OwnedFd>,
    _value: PhantomData<T>,
}

// SAFETY: `Shared` is a handle to a mapping that every thread of this process sees at
// the same address; `T: ShmSafe` is `Send + Sync`, so sharing or sending `&T` is fine.
unsafe impl<T: ShmSafe> Send for Shared<T> {}
// SAFETY: as above; `Shared` itself has no interior mutability.
unsafe impl<T: ShmSafe> Sync for Shared<T> {}

impl<T: ShmSafe> Shared<T> {
    const ALIGN_FITS_PAGE: () = assert!(
        core::mem::align_of::<T>() <= 4096,
        "Shared<T> needs align_of::<T>() <= 4096"
    );

    /// Removes the named segment `name`. Mappings that exist stay valid; new `open`s
    /// fail with [`NotFound`](crate::error::SegmentErrorKind::NotFound).
    ///
    /// # Errors
    ///
    /// A [`SegmentError`] of kind [`NotFound`](crate::error::SegmentErrorKind::NotFound),
    /// [`InvalidName`](crate::error::SegmentErrorKind::InvalidName),
    /// [`PermissionDenied`](crate::error::SegmentErrorKind::PermissionDenied) or
    /// [`Os`](crate::error::SegmentErrorKind::Os).
    pub fn unlink(name: &str) -> Result<(), SegmentError> {
        let name = Name::new(name)?;
        sys::mem::shm_unlink(name.c_str()).map_err(|e| SegmentError::os(e, name.as_str()))
    }

    /// The segment's name, `None` if anonymous.
    pub fn name(&self) -> Option<&str> {
        self.name.as_ref().map(Name::as_str)
    }

    /// Did this process create the segment through this handle (and so unlinks it
    /// on drop)? False in a forked child, and for anonymous or opened segments.
    pub fn is_creator(&self) -> bool {
        self.name.is_some() && self.creator != 0 && self.creator == my_process_id()
    }

    /// Is this segment a memfd sealed against shrinking and growing? True for
    /// anonymous segments wherever the kernel allows it; never for named ones.
    pub fn is_sealed(&self) -> bool {
        // SAFETY: our mapping is live and at least a header long.
        let header = unsafe { HeaderPtr::new(self.base) };
        header.snapshot().flags & FLAG_SEALED != 0
    }
}

impl<T: ShmSafe> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `value` points at an initialised `T` inside a mapping that lives as
        // long as `self`; `T: Sync` synchronises any mutation through `&T`.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ShmSafe> AsRef<T> for Shared<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ShmSafe> Drop for Shared<T> {
    fn drop(&mut self) {
        if self.is_creator() {
            if let (Some(name), Some(object)) = (&self.name, &self.object) {
                // Unlink the name only if it still names our object (it may have been
                // removed and made anew by someone else meanwhile).
                if let Ok(fd) = sys::mem::shm_open(name.c_str()) {
                    if sys::mem::fd_stat(&fd).is_ok_and(|now| now.same_object(object)) {
                        let _ = sys::mem::shm_unlink(name.c_str());
                    }
                }
            }
        }
        // SAFETY: `base`/`len` are exactly our mapping, and with `self` gone no
        // reference into it remains.
        unsafe { sys::mem::unmap(self.base, self.len) };
    }
}

impl<T: ShmSafe> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("type", &super::TypeName::of::<T>())
            .field("kind", &T::KIND)
            .field("name", &self.name())
            .field("len", &self.len)
            .field("is_creator", &self.is_creator())
            .finish()
    }
}

impl<T: ShmSafe + fmt::Display> fmt::Display for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

//! `Shared<T>`: one `T` in its own shared mapping, anonymous or named.

use core::ffi::CStr;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ops::Deref;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use core::time::Duration;

use bytemuck::Zeroable;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno;

use super::ShmSafe;
use super::header::{
    FLAG_SEALED, Fields, HEADER_SIZE, HeaderPtr, Identity, LAYOUT_VERSION, Layout, MAGIC,
    STATE_INITIALIZING, STATE_READY, Snapshot,
};
use super::identity::KIT_VERSION;
use crate::error::{MAX_NAME, SegmentError, SegmentErrorKind};
use crate::primitive::{Liveness, id_liveness, my_process_id};
use crate::sys;
use crate::sys::mem::FileId;

/// How long [`Shared::open`] and [`Shared::open_or_create`] wait for a creator to
/// finish initialising.
const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest sleep between two looks for a segment that does not exist yet.
const APPEAR_POLL_MAX_NS: u64 = 10_000_000;

/// A segment name as the kernel wants it: `/`, the name, NUL.
#[derive(Clone, Copy)]
struct Name {
    buf: [u8; MAX_NAME + 2],
    len: u8,
}

impl Name {
    fn new(name: &str) -> Result<Name, SegmentError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_NAME || bytes.iter().any(|&b| b == b'/' || b == 0)
        {
            return Err(SegmentError::new(SegmentErrorKind::InvalidName, name));
        }
        let mut buf = [0u8; MAX_NAME + 2];
        buf[0] = b'/';
        buf[1..=bytes.len()].copy_from_slice(bytes);
        Ok(Name {
            buf,
            len: bytes.len() as u8,
        })
    }

    /// `/name` with its NUL.
    fn c_str(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.buf[..self.len as usize + 2])
            .expect("validated: one NUL, at the end")
    }

    /// The name as the user gave it.
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[1..=self.len as usize]).expect("built from a &str")
    }
}

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

/// Unmaps (and unlinks, if named) a half-built segment if initialisation panics.
struct BuildGuard<'a> {
    base: NonNull<u8>,
    len: usize,
    name: Option<&'a Name>,
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
struct Fresh {
    base: NonNull<u8>,
    layout: Layout,
    name: Option<Name>,
    object: Option<FileId>,
    fd: Option<OwnedFd>,
    flags: u16,
}

/// How an attempt to map and validate an existing segment ended, short of success.
#[allow(clippy::large_enum_variant)] // a cold path; see `segment/mod.rs`
enum AttachError {
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
struct Attached {
    base: NonNull<u8>,
    len: usize,
    value_offset: usize,
    creator_id: u32,
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
unsafe fn copy_from<T>(src: *const T) -> impl FnOnce(&mut MaybeUninit<T>) {
    move |slot| {
        // SAFETY: per this function's contract `src` is a valid `T`; `slot` is valid
        // for one `T` and does not overlap it.
        unsafe { core::ptr::copy_nonoverlapping(src, slot.as_mut_ptr(), 1) }
    }
}

impl<T: ShmSafe> Shared<T> {
    const ALIGN_FITS_PAGE: () = assert!(
        core::mem::align_of::<T>() <= 4096,
        "Shared<T> needs align_of::<T>() <= 4096"
    );

    // ---- anonymous -------------------------------------------------------------

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
    unsafe fn anonymous<F: FnOnce(&mut MaybeUninit<T>)>(
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
        let deadline = sys::time::deadline_after(timeout);
        let attached = match Self::attach(&fd, "", deadline, false) {
            Ok(a) => a,
            Err(AttachError::Failed(e)) => return Err(e),
            Err(AttachError::CreatorDead) => {
                return Err(SegmentError::new(SegmentErrorKind::NotReady, ""));
            }
        };
        Ok(Self::from_attached(attached, None, Some(fd)))
    }

    // ---- named: create -----------------------------------------------------------

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
    unsafe fn try_create<F: FnOnce(&mut MaybeUninit<T>)>(
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

    /// Writes the creator id, the header, runs `init`, publishes READY.
    ///
    /// # Safety
    ///
    /// `fresh.base` is a fresh zeroed mapping of `fresh.layout.size` bytes that nobody
    /// else writes yet; `init` leaves a valid `T`.
    unsafe fn initialise<F: FnOnce(&mut MaybeUninit<T>)>(
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
        // The creator id goes first, so that an opener that finds the segment still
        // initialising can tell whether its creator is alive.
        header.creator_id().store(me, Ordering::Relaxed);
        // SYNC POINT with the Acquire loads of `state` in `wait_ready`: an opener that
        // sees INITIALIZING also sees `creator_id`.
        header.state().store(STATE_INITIALIZING, Ordering::Release);
        let fields = Fields {
            size: layout.size as u64,
            value_offset: layout.value_offset as u64,
            value_size: core::mem::size_of::<T>() as u64,
            identity: Identity::of::<T>(),
            creator_pid: sys::ids::pid(),
            created_ns: sys::time::realtime_ns(),
            flags,
        };
        // SAFETY: we are the creator; nobody else writes the header.
        unsafe { header.write(&fields) };
        // SAFETY: value_offset is within the mapping and aligned for T (Layout::of).
        let value = unsafe { base.add(layout.value_offset) }.cast::<T>();
        // SAFETY: the slot is ours alone until READY; MaybeUninit<T> has T's layout.
        init(unsafe { value.cast::<MaybeUninit<T>>().as_mut() });
        core::mem::forget(guard);
        // SYNC POINT with the Acquire load of `state` in `wait_ready`: publishes the
        // header and the value.
        header.state().store(STATE_READY, Ordering::Release);
        if name.is_some() || fd.is_some() {
            sys::futex::wake(header.state(), u32::MAX);
        }
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

    // ---- named: open -------------------------------------------------------------

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
        let deadline = sys::time::deadline_after(DEFAULT_OPEN_TIMEOUT);
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
        let deadline = sys::time::deadline_after(timeout);
        Self::open_until(name, deadline, true)
    }

    fn open_until(name: Name, deadline: u64, wait_to_appear: bool) -> Result<Self, SegmentError> {
        let mut poll_ns = 500_000;
        let fd = loop {
            match sys::mem::shm_open(name.c_str()) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if wait_to_appear && sys::time::monotonic_ns() < deadline => {
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
        let deadline = sys::time::deadline_after(DEFAULT_OPEN_TIMEOUT);
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
            if sys::time::monotonic_ns() >= deadline {
                return Err(SegmentError::new(SegmentErrorKind::NotReady, name.as_str()));
            }
        }
    }

    /// Is the creator recorded in the segment behind `fd` certainly dead? Reads the
    /// header only if its magic and header version are ours (a header of another
    /// version keeps `creator_id` elsewhere, or nowhere).
    fn creator_dead(fd: &OwnedFd, e: &SegmentError) -> bool {
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
            // SYNC POINT with the Release store of READY in `initialise`.
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
    fn replace(fd: &OwnedFd, object: &FileId, name: &Name) -> Result<(), SegmentError> {
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

    // ---- validation --------------------------------------------------------------

    /// Maps the object behind `fd`, waits for READY until `deadline`, and validates the
    /// header against `T`. With `watch_creator`, a segment that is not READY and whose
    /// creator is dead ends the wait early with [`AttachError::CreatorDead`].
    fn attach(
        fd: &OwnedFd,
        name: &str,
        deadline: u64,
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
            if sys::time::monotonic_ns() >= deadline {
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
        // mapped while `header` is used (it is unmapped only on the error paths below,
        // after the last use).
        let header = unsafe { HeaderPtr::new(base) };
        if let Err(e) = Self::wait_ready(&header, name, deadline, watch_creator) {
            unmap();
            return Err(e);
        }
        let snapshot = header.snapshot();
        match Self::validate(&snapshot, &layout, size, name) {
            Ok(value_offset) => Ok(Attached {
                base,
                len,
                value_offset,
                creator_id: snapshot.creator_id,
            }),
            Err(e) => {
                unmap();
                Err(e.creator(snapshot.creator_id).into())
            }
        }
    }

    /// Waits for `state == READY` (Acquire), touching nothing else in the header but
    /// the atomics `state` and `creator_id`.
    fn wait_ready(
        header: &HeaderPtr,
        name: &str,
        deadline: u64,
        watch_creator: bool,
    ) -> Result<(), AttachError> {
        loop {
            // SYNC POINT with the Release stores of INITIALIZING and READY in
            // `initialise`.
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
            let now = sys::time::monotonic_ns();
            if now >= deadline {
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
            sys::futex::wait(header.state(), state, Some(deadline.min(now + 10_000_000)));
        }
    }

    /// Checks a READY header against what this process expects for `T`.
    fn validate(
        h: &Snapshot,
        layout: &Layout,
        file_size: u64,
        name: &str,
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

    fn from_attached(a: Attached, name: Option<Name>, fd: Option<OwnedFd>) -> Self {
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

    // ---- the rest ----------------------------------------------------------------

    /// Removes the named segment `name`. Mappings that exist stay valid; new `open`s
    /// fail with [`NotFound`](SegmentErrorKind::NotFound).
    ///
    /// # Errors
    ///
    /// A [`SegmentError`] of kind [`NotFound`](SegmentErrorKind::NotFound),
    /// [`InvalidName`](SegmentErrorKind::InvalidName),
    /// [`PermissionDenied`](SegmentErrorKind::PermissionDenied) or
    /// [`Os`](SegmentErrorKind::Os).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miri_names_are_validated() {
        assert!(Name::new("").is_err());
        assert!(Name::new("a/b").is_err());
        assert!(Name::new("a\0b").is_err());
        assert!(Name::new(&"x".repeat(251)).is_err());
        let n = Name::new(&"x".repeat(250)).unwrap();
        assert_eq!(n.as_str().len(), 250);
        assert_eq!(n.c_str().to_bytes().len(), 251);
    }

    #[test]
    fn a_kept_memfd_cannot_be_resized_and_maps_again_as_the_same_value() {
        #![allow(clippy::disallowed_types)]
        use core::sync::atomic::AtomicU64;
        use rustix::fd::AsFd;
        // SAFETY: zero is a valid AtomicU64.
        let a = unsafe { Shared::<AtomicU64>::new_with_fd(|_| {}) }.unwrap();
        a.store(5, Ordering::SeqCst);
        let fd = a.fd().unwrap();
        // The seals hold: neither shrinking nor growing.
        assert_eq!(rustix::fs::ftruncate(fd, 0), Err(Errno::PERM));
        assert_eq!(rustix::fs::ftruncate(fd, 1 << 20), Err(Errno::PERM));
        // What a receiver of the descriptor (SCM_RIGHTS) does.
        let received = rustix::io::dup(fd.as_fd()).unwrap();
        let b = Shared::<AtomicU64>::from_memfd(received, Duration::from_secs(1)).unwrap();
        b.fetch_add(1, Ordering::SeqCst);
        assert_eq!(a.load(Ordering::SeqCst), 6);
        // The wrong type is refused like on `open`.
        let again = rustix::io::dup(fd.as_fd()).unwrap();
        let err = Shared::<u32>::from_memfd(again, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.kind(), SegmentErrorKind::WrongType);
    }

    #[test]
    fn an_unsealed_memfd_is_refused() {
        let fd = rustix::fs::memfd_create(c"plain", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        let err = Shared::<u64>::from_memfd(fd, Duration::from_millis(10)).unwrap_err();
        assert_eq!(err.kind(), SegmentErrorKind::NotSealed);
        // Sealable but not sealed: refused too.
        let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
        let fd = rustix::fs::memfd_create(c"plain", flags).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        let err = Shared::<u64>::from_memfd(fd, Duration::from_millis(10)).unwrap_err();
        assert_eq!(err.kind(), SegmentErrorKind::NotSealed);
    }
}

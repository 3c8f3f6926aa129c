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

use super::ShmSafe;
use super::header::{
    Header, LAYOUT_VERSION, Layout, MAGIC, STATE_INITIALIZING, STATE_READY, fingerprint,
};
use crate::error::Error;
use crate::sys;

/// How long [`Shared::open`] waits for the creator to finish initialising.
const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest name, in bytes (the kit adds a leading `/`).
const MAX_NAME: usize = 250;

/// A segment name as the kernel wants it: `/`, the name, NUL.
struct Name {
    buf: [u8; MAX_NAME + 2],
    len: u8,
}

impl Name {
    fn new(name: &str) -> Result<Name, Error> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_NAME || bytes.iter().any(|&b| b == b'/' || b == 0)
        {
            return Err(Error::InvalidName);
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
/// [`Shared::new`] maps anonymous `MAP_SHARED` memory: a process forked afterwards
/// shares the very same `T` (writes are seen both ways). [`Shared::create`] and
/// [`Shared::open`] use a named POSIX shared-memory object (`/dev/shm/NAME`), so
/// unrelated processes can meet. Either way the value sits behind a header (magic,
/// layout version, type fingerprint, size, init state) that `open` validates before it
/// hands out a `&T`.
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
/// let counter = Shared::new(AtomicU64::new(0))?;
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
    /// The pid that created the named segment through this handle; 0 otherwise.
    creator_pid: i32,
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

impl<T: ShmSafe> Shared<T> {
    const ALIGN_FITS_PAGE: () = assert!(
        core::mem::align_of::<T>() <= 4096,
        "Shared<T> needs align_of::<T>() <= 4096"
    );

    /// Puts `value` into a fresh anonymous shared mapping, inherited by processes
    /// forked later.
    ///
    /// `value` is moved through the stack; for large values use
    /// [`Shared::new_zeroed`] or [`Shared::new_with`].
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if the kernel refuses the mapping (out of memory, `ulimit -v`).
    pub fn new(value: T) -> Result<Self, Error> {
        // SAFETY: the closure fully initialises the slot.
        unsafe {
            Self::new_with(|slot| {
                slot.write(value);
            })
        }
    }

    /// A zero-filled `T` in a fresh anonymous shared mapping, in O(1): the kernel hands
    /// out zeroed pages, so nothing is copied or even touched. The way to make a
    /// queue of a million slots.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if the kernel refuses the mapping.
    pub fn new_zeroed() -> Result<Self, Error>
    where
        T: Zeroable,
    {
        // SAFETY: fresh anonymous pages are zero, and all-zero is a valid `T`.
        unsafe { Self::new_with(|_| {}) }
    }

    /// Initialises `T` in place in a fresh anonymous mapping: `init` receives the
    /// (zero-filled) slot.
    ///
    /// # Safety
    ///
    /// When `init` returns, the slot must hold a valid `T` (zero bytes count as
    /// written: the slot starts zero-filled).
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if the kernel refuses the mapping.
    pub unsafe fn new_with<F: FnOnce(&mut MaybeUninit<T>)>(init: F) -> Result<Self, Error> {
        let () = Self::ALIGN_FITS_PAGE;
        let layout = Layout::of::<T>(sys::mem::page_size());
        let base = sys::mem::map_anonymous(layout.size)?;
        // SAFETY: the mapping is fresh, zeroed, page-aligned, `layout.size` long, and
        // only this thread can see it; the caller's `init` contract makes T valid.
        unsafe { Self::initialise(base, layout, None, 0, init) }
    }

    /// Creates the named segment `name` (`O_CREAT|O_EXCL`, mode 0600) holding `value`.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`], [`Error::InvalidName`] (1 to 250 bytes, no `/`, no
    /// NUL), or [`Error::Os`] (`ENOSPC` when `/dev/shm` is full).
    pub fn create(name: &str, value: T) -> Result<Self, Error> {
        // SAFETY: the closure fully initialises the slot.
        unsafe {
            Self::create_with(name, |slot| {
                slot.write(value);
            })
        }
    }

    /// Creates the named segment `name` with a zero-filled `T`, in O(1).
    ///
    /// # Errors
    ///
    /// As [`Shared::create`].
    pub fn create_zeroed(name: &str) -> Result<Self, Error>
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
    ) -> Result<Self, Error> {
        let () = Self::ALIGN_FITS_PAGE;
        let name = Name::new(name)?;
        let layout = Layout::of::<T>(sys::mem::page_size());
        let fd = sys::mem::shm_create(name.c_str(), layout.size as u64)?;
        let base = match sys::mem::map_fd(&fd, layout.size) {
            Ok(base) => base,
            Err(e) => {
                let _ = sys::mem::shm_unlink(name.c_str());
                return Err(e);
            }
        };
        drop(fd); // the mapping keeps the object alive
        let pid = sys::ids::pid();
        // SAFETY: the object is new (O_EXCL), sized and zero-filled; we mapped all of
        // it. Openers touch nothing but `state` until it is READY.
        unsafe { Self::initialise(base, layout, Some(name), pid, init) }
    }

    /// Writes the header, runs `init`, publishes READY.
    ///
    /// # Safety
    ///
    /// `base` is a fresh zeroed mapping of `layout.size` bytes that nobody else writes
    /// yet; `init` leaves a valid `T`.
    unsafe fn initialise<F: FnOnce(&mut MaybeUninit<T>)>(
        base: NonNull<u8>,
        layout: Layout,
        name: Option<Name>,
        creator_pid: i32,
        init: F,
    ) -> Result<Self, Error> {
        let guard = BuildGuard {
            base,
            len: layout.size,
            name: name.as_ref(),
        };
        let header = base.cast::<Header>();
        // SAFETY: the mapping is page-aligned and at least one page, so the header
        // fits and is aligned; no other process reads anything but `state` yet.
        unsafe {
            let h = header.as_ptr();
            (*h).state.store(STATE_INITIALIZING, Ordering::Relaxed);
            (*h).magic = MAGIC;
            (*h).version = LAYOUT_VERSION;
            (*h).fingerprint = fingerprint::<T>();
            (*h).size = layout.size as u64;
            (*h).value_offset = layout.value_offset as u64;
            (*h).value_size = core::mem::size_of::<T>() as u64;
            (*h).creator_pid = creator_pid;
        }
        // SAFETY: value_offset is within the mapping and aligned for T (Layout::of).
        let value = unsafe { base.add(layout.value_offset) }.cast::<T>();
        // SAFETY: the slot is ours alone until READY; MaybeUninit<T> has T's layout.
        init(unsafe { value.cast::<MaybeUninit<T>>().as_mut() });
        core::mem::forget(guard);
        // SAFETY: the header is initialised and stays mapped.
        let state = unsafe { &(*header.as_ptr()).state };
        // SYNC POINT with the Acquire load of `state` in `open_timeout`: publishes the
        // header and the value.
        state.store(STATE_READY, Ordering::Release);
        if name.is_some() {
            sys::futex::wake(state, u32::MAX);
        }
        Ok(Shared {
            base,
            len: layout.size,
            value,
            name,
            creator_pid,
            _value: PhantomData,
        })
    }

    /// Opens the named segment `name`, waiting up to one second for its creator to
    /// finish initialising it.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::InvalidName`], [`Error::BadMagic`],
    /// [`Error::VersionMismatch`], [`Error::WrongType`], [`Error::WrongSize`],
    /// [`Error::NotReady`], [`Error::Os`].
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_timeout(name, DEFAULT_OPEN_TIMEOUT)
    }

    /// As [`Shared::open`], waiting up to `timeout` for the creator.
    ///
    /// # Errors
    ///
    /// As [`Shared::open`].
    pub fn open_timeout(name: &str, timeout: Duration) -> Result<Self, Error> {
        let () = Self::ALIGN_FITS_PAGE;
        let name = Name::new(name)?;
        let deadline = sys::time::deadline_after(timeout);
        let layout = Layout::of::<T>(sys::mem::page_size());
        let fd = sys::mem::shm_open(name.c_str())?;
        // The creator sizes the object right after creating it: wait for that.
        let size = loop {
            let size = sys::mem::fd_size(&fd)?;
            if size != 0 {
                break size;
            }
            if sys::time::monotonic_ns() >= deadline {
                return Err(Error::NotReady);
            }
            sys::time::sleep_ns(200_000);
        };
        if size < core::mem::size_of::<Header>() as u64 || size > isize::MAX as u64 {
            return Err(Error::WrongSize {
                expected: layout.size as u64,
                found: size,
            });
        }
        let len = size as usize;
        let base = sys::mem::map_fd(&fd, len)?;
        drop(fd);
        let mut handle = Shared {
            base,
            len,
            value: base.cast::<T>(), // replaced below once validated
            name: Some(name),
            creator_pid: 0,
            _value: PhantomData,
        };
        // SAFETY: the mapping is at least a header long and page-aligned.
        let header = unsafe { &*base.cast::<Header>().as_ptr() };
        loop {
            // SYNC POINT with the Release store of READY in `initialise`.
            let state = header.state.load(Ordering::Acquire);
            if state == STATE_READY {
                break;
            }
            let now = sys::time::monotonic_ns();
            if now >= deadline {
                // A header that is not ours at all is a clearer error than "not ready".
                // SAFETY: in-bounds, aligned; volatile because a creator may write it.
                let magic = unsafe { core::ptr::read_volatile(&header.magic) };
                if magic != MAGIC && magic != 0 {
                    return Err(Error::BadMagic { found: magic });
                }
                return Err(Error::NotReady);
            }
            // The creator wakes us; wake up now and then regardless.
            sys::futex::wait(&header.state, state, Some(deadline.min(now + 10_000_000)));
        }
        let value_offset = Self::validate(header, &layout, size)?;
        // SAFETY: validated: the value lies inside the mapping at T's offset.
        let value = unsafe { base.add(value_offset) }.cast::<T>();
        handle.value = value;
        Ok(handle)
    }

    /// Checks a READY header against what this process expects for `T`.
    fn validate(header: &Header, layout: &Layout, file_size: u64) -> Result<usize, Error> {
        if header.magic != MAGIC {
            return Err(Error::BadMagic {
                found: header.magic,
            });
        }
        if header.version != LAYOUT_VERSION {
            return Err(Error::VersionMismatch {
                expected: LAYOUT_VERSION,
                found: header.version,
            });
        }
        let expected = fingerprint::<T>();
        if header.fingerprint != expected {
            return Err(Error::WrongType {
                expected,
                found: header.fingerprint,
            });
        }
        let expected_size = layout.size as u64;
        for found in [file_size, header.size] {
            if found != expected_size {
                return Err(Error::WrongSize {
                    expected: expected_size,
                    found,
                });
            }
        }
        if header.value_offset != layout.value_offset as u64
            || header.value_size != core::mem::size_of::<T>() as u64
        {
            return Err(Error::Corrupted);
        }
        Ok(layout.value_offset)
    }

    /// Removes the named segment `name`. Mappings that exist stay valid; new `open`s
    /// fail with [`Error::NotFound`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::InvalidName`], [`Error::Os`].
    pub fn unlink(name: &str) -> Result<(), Error> {
        sys::mem::shm_unlink(Name::new(name)?.c_str())
    }

    /// The segment's name, `None` if anonymous.
    pub fn name(&self) -> Option<&str> {
        self.name.as_ref().map(Name::as_str)
    }

    /// Did this process create the segment through this handle (and so unlinks it
    /// on drop)? False in a forked child, and for anonymous or opened segments.
    pub fn is_creator(&self) -> bool {
        self.name.is_some() && self.creator_pid != 0 && self.creator_pid == sys::ids::pid()
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
            if let Some(name) = &self.name {
                let _ = sys::mem::shm_unlink(name.c_str());
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
            .field("type", &core::any::type_name::<T>())
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
}

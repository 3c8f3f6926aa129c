//! Shared mappings: anonymous `MAP_SHARED` memory and POSIX shared-memory objects.

use core::ffi::{CStr, c_void};
use core::ptr::{self, NonNull};

use rustix::fd::OwnedFd;
use rustix::fs::{FallocateFlags, Mode};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm;

use crate::error::Error;

/// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)`: zeroed
/// memory that a later `fork` shares with the child instead of copying.
pub(crate) fn map_anonymous(len: usize) -> Result<NonNull<u8>, Error> {
    // SAFETY: a fresh mapping at an address the kernel chooses aliases nothing.
    let ptr = unsafe {
        rustix::mm::mmap_anonymous(
            ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
        )
    }
    .map_err(Error::from_errno)?;
    NonNull::new(ptr.cast()).ok_or(Error::Os(Errno::NOMEM.raw_os_error()))
}

/// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`.
pub(crate) fn map_fd(fd: &OwnedFd, len: usize) -> Result<NonNull<u8>, Error> {
    // SAFETY: a fresh mapping at an address the kernel chooses aliases nothing in
    // this process; the caller checked `len` against the object's size.
    let ptr = unsafe {
        rustix::mm::mmap(
            ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            fd,
            0,
        )
    }
    .map_err(Error::from_errno)?;
    NonNull::new(ptr.cast()).ok_or(Error::Os(Errno::NOMEM.raw_os_error()))
}

/// `munmap(ptr, len)`.
///
/// # Safety
///
/// `ptr`/`len` must be exactly a mapping returned by [`map_anonymous`] or [`map_fd`],
/// and nothing may use memory in it afterwards.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: per this function's contract.
    let _ = unsafe { rustix::mm::munmap(ptr.as_ptr().cast::<c_void>(), len) };
}

/// `shm_open(name, O_RDWR|O_CREAT|O_EXCL, 0600)`, `ftruncate(len)` and
/// `fallocate(0, len)`: the pages are reserved now, so a full `/dev/shm` is an error
/// here instead of a `SIGBUS` at first touch. On any failure the object is unlinked.
pub(crate) fn shm_create(name: &CStr, len: u64) -> Result<OwnedFd, Error> {
    let flags = shm::OFlags::RDWR | shm::OFlags::CREATE | shm::OFlags::EXCL;
    let fd = shm::open(name, flags, Mode::RUSR | Mode::WUSR).map_err(|e| match e {
        Errno::EXIST => Error::AlreadyExists,
        Errno::INVAL | Errno::NAMETOOLONG => Error::InvalidName,
        e => Error::from_errno(e),
    })?;
    let sized = rustix::fs::ftruncate(&fd, len).and_then(|()| {
        match rustix::fs::fallocate(&fd, FallocateFlags::empty(), 0, len) {
            // A file system without fallocate: the size is set, the pages are not
            // reserved; tmpfs (/dev/shm) supports it.
            Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => Ok(()),
            other => other,
        }
    });
    if let Err(e) = sized {
        let _ = shm::unlink(name);
        return Err(Error::from_errno(e));
    }
    Ok(fd)
}

/// `shm_open(name, O_RDWR, 0)`.
pub(crate) fn shm_open(name: &CStr) -> Result<OwnedFd, Error> {
    shm::open(name, shm::OFlags::RDWR, Mode::empty()).map_err(|e| match e {
        Errno::NOENT => Error::NotFound,
        Errno::INVAL | Errno::NAMETOOLONG => Error::InvalidName,
        e => Error::from_errno(e),
    })
}

/// `shm_unlink(name)`.
pub(crate) fn shm_unlink(name: &CStr) -> Result<(), Error> {
    shm::unlink(name).map_err(|e| match e {
        Errno::NOENT => Error::NotFound,
        Errno::INVAL | Errno::NAMETOOLONG => Error::InvalidName,
        e => Error::from_errno(e),
    })
}

/// `fstat(fd).st_size`.
pub(crate) fn fd_size(fd: &OwnedFd) -> Result<u64, Error> {
    let stat = rustix::fs::fstat(fd).map_err(Error::from_errno)?;
    Ok(stat.st_size as u64)
}

/// The system's page size.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

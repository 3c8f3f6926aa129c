//! Shared mappings: sealed memfds, anonymous `MAP_SHARED` memory and POSIX
//! shared-memory objects. Every function returns the raw [`Errno`]: the segment layer
//! turns it into an error that names the segment.

use core::ffi::{CStr, c_void};
use core::ptr::{self, NonNull};

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FallocateFlags, FlockOperation, MemfdFlags, Mode, SealFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm;

/// The seals that make a memfd's size final: nobody holding a descriptor can shrink
/// it (which would turn our accesses past the new end into `SIGBUS`) or grow it.
pub(crate) const SIZE_SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING [| MFD_NOEXEC_SEAL])`,
/// `ftruncate(len)`, then `fcntl(F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)`.
///
/// `MFD_NOEXEC_SEAL` (Linux 6.3) is asked for first, since `vm.memfd_noexec = 2`
/// refuses memfds without it; older kernels reject the flag and get a second call
/// without it. `Err` if any step fails: the caller falls back to anonymous memory.
pub(crate) fn memfd_sealed(name: &CStr, len: u64) -> Result<OwnedFd, Errno> {
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    let fd = match rustix::fs::memfd_create(name, flags | MemfdFlags::NOEXEC_SEAL) {
        Err(Errno::INVAL) => rustix::fs::memfd_create(name, flags)?,
        other => other?,
    };
    rustix::fs::ftruncate(&fd, len)?;
    rustix::fs::fcntl_add_seals(&fd, SIZE_SEALS)?;
    Ok(fd)
}

/// `fcntl(F_GET_SEALS)`: the seals on `fd` (`EINVAL` if it cannot be sealed at all).
pub(crate) fn seals(fd: &OwnedFd) -> Result<SealFlags, Errno> {
    rustix::fs::fcntl_get_seals(fd)
}

/// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)`: zeroed
/// memory that a later `fork` shares with the child instead of copying.
pub(crate) fn map_anonymous(len: usize) -> Result<NonNull<u8>, Errno> {
    // SAFETY: a fresh mapping at an address the kernel chooses aliases nothing.
    let ptr = unsafe {
        rustix::mm::mmap_anonymous(
            ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
        )
    }?;
    NonNull::new(ptr.cast()).ok_or(Errno::NOMEM)
}

/// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`.
pub(crate) fn map_fd(fd: &OwnedFd, len: usize) -> Result<NonNull<u8>, Errno> {
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
    }?;
    NonNull::new(ptr.cast()).ok_or(Errno::NOMEM)
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
pub(crate) fn shm_create(name: &CStr, len: u64) -> Result<OwnedFd, Errno> {
    let flags = shm::OFlags::RDWR | shm::OFlags::CREATE | shm::OFlags::EXCL;
    let fd = shm::open(name, flags, Mode::RUSR | Mode::WUSR)?;
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
        return Err(e);
    }
    Ok(fd)
}

/// `shm_open(name, O_RDWR, 0)`.
pub(crate) fn shm_open(name: &CStr) -> Result<OwnedFd, Errno> {
    shm::open(name, shm::OFlags::RDWR, Mode::empty())
}

/// `shm_unlink(name)`.
pub(crate) fn shm_unlink(name: &CStr) -> Result<(), Errno> {
    shm::unlink(name)
}

/// `fstat(fd)`: size, and the (device, inode) pair that names the object itself.
pub(crate) fn fd_stat(fd: &OwnedFd) -> Result<FileId, Errno> {
    let stat = rustix::fs::fstat(fd)?;
    Ok(FileId {
        size: stat.st_size as u64,
        dev: stat.st_dev,
        ino: stat.st_ino,
    })
}

/// What [`fd_stat`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) size: u64,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl FileId {
    /// The same object (not only the same name)?
    pub(crate) fn same_object(&self, other: &FileId) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// `flock(fd, LOCK_EX | LOCK_NB)`: `Ok(true)` if taken, `Ok(false)` if another open
/// file description holds it. The kernel drops it when the description is closed, so
/// a holder that dies releases it.
pub(crate) fn try_lock_exclusive(fd: &OwnedFd) -> Result<bool, Errno> {
    match rustix::fs::flock(fd.as_fd(), FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The system's page size.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// `shm_open(name, O_RDONLY, 0)`: for looking without touching.
pub(crate) fn shm_open_readonly(name: &CStr) -> Result<OwnedFd, Errno> {
    shm::open(name, shm::OFlags::RDONLY, Mode::empty())
}

/// `mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0)`: a view that cannot write.
pub(crate) fn map_fd_readonly(fd: &OwnedFd, len: usize) -> Result<NonNull<u8>, Errno> {
    // SAFETY: a fresh mapping at an address the kernel chooses aliases nothing in
    // this process; the caller checked `len` against the object's size.
    let ptr = unsafe {
        rustix::mm::mmap(
            ptr::null_mut(),
            len,
            ProtFlags::READ,
            MapFlags::SHARED,
            fd,
            0,
        )
    }?;
    NonNull::new(ptr.cast()).ok_or(Errno::NOMEM)
}

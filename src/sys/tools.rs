//! Looking at `/dev/shm` from outside, for tools (`shmkit ls`, `inspect`, `clean`):
//! opening an object without ever blocking, its identity, unlinking it, and the
//! kernel's word on whether anyone else holds it open or mapped (a write lease).
//!
//! A write lease (`fcntl(F_SETLEASE, F_WRLCK)`) is granted only when no other open
//! file description of the file exists anywhere on the machine — a mapping keeps its
//! file description alive, so a process that maps the object counts, whatever its
//! PID namespace. While the lease is held, another process's `open` of the file
//! blocks until the lease is released (the kernel "breaks" the lease, and notifies
//! the holder with `SIGIO` unless told otherwise). So "take a write lease, check the
//! name, unlink it, release" removes an object that nobody uses, with no window in
//! which a newcomer could open it unseen.

use rustix::fd::{AsRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// `open("/dev/shm/NAME", O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)`:
/// never blocks (not on a FIFO waiting for a writer, not on another process's lease)
/// and never follows a symbolic link. `name` has no `/`.
pub(crate) fn open_shm_readonly_nonblocking(name: &str) -> Result<OwnedFd, Errno> {
    let dir = std::path::Path::new("/dev/shm").join(name);
    rustix::fs::open(
        &dir,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
}

/// `lstat("/dev/shm/NAME")`: the `(dev, ino)` of what the name names now, without
/// opening it (an open would break our own lease).
pub(crate) fn shm_name_object(name: &str) -> Result<(u64, u64), Errno> {
    let st = rustix::fs::lstat(std::path::Path::new("/dev/shm").join(name))?;
    Ok((st.st_dev, st.st_ino))
}

/// What `fstat` says about an object opened with [`open_shm_readonly_nonblocking`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Object {
    /// Is it a regular file (a shared-memory object)?
    pub(crate) regular: bool,
    pub(crate) size: u64,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// `fstat(fd)`.
pub(crate) fn object(fd: &OwnedFd) -> Result<Object, Errno> {
    let st = rustix::fs::fstat(fd)?;
    Ok(Object {
        regular: rustix::fs::FileType::from_raw_mode(st.st_mode)
            == rustix::fs::FileType::RegularFile,
        size: st.st_size as u64,
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// `unlink("/dev/shm/NAME")` (what `shm_unlink` does).
pub(crate) fn unlink_shm(name: &str) -> Result<(), Errno> {
    rustix::fs::unlink(std::path::Path::new("/dev/shm").join(name))
}

/// The `(major, minor)` device numbers of `/dev/shm`'s file system.
pub(crate) fn shm_device() -> Result<(u32, u32), Errno> {
    let st = rustix::fs::stat("/dev/shm")?;
    Ok((rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev)))
}

/// `makedev(major, minor)`, as `st_dev` encodes it.
pub(crate) fn device(major: u32, minor: u32) -> u64 {
    rustix::fs::makedev(major, minor)
}

/// Is `SIGIO` ignored or handled in this process? A lease holder gets `SIGIO` when
/// another process opens the file, and its default action ends the process: leases
/// are taken only where it does not.
pub(crate) fn sigio_is_safe() -> bool {
    // SAFETY: `sigaction` with a null new action only reads the current disposition
    // into `old`, a valid, zero-initialised `sigaction` (plain data).
    unsafe {
        let mut old: libc::sigaction = core::mem::zeroed();
        if libc::sigaction(libc::SIGIO, core::ptr::null(), &mut old) != 0 {
            return false;
        }
        old.sa_sigaction != libc::SIG_DFL
    }
}

/// What [`try_write_lease`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lease {
    /// Granted: no other open file description of the file exists. Release it with
    /// [`release_lease`].
    Granted,
    /// Refused: another process (or another descriptor of ours) holds the file open
    /// or mapped.
    InUse,
    /// Leases cannot tell here (not supported, disabled by `fs.leases-enable`, or the
    /// file is not ours): the caller must find out another way.
    Unavailable(Errno),
}

/// `fcntl(fd, F_SETLEASE, F_WRLCK)`, then `F_SETOWN 0` so that a lease break sends no
/// signal at all. Call only where [`sigio_is_safe`] (a break in the instant between
/// the two calls still signals).
pub(crate) fn try_write_lease(fd: &OwnedFd) -> Lease {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) };
    if rc != 0 {
        return match Errno::from_raw_os_error(errno()) {
            Errno::AGAIN | Errno::BUSY => Lease::InUse,
            e => Lease::Unavailable(e),
        };
    }
    // SAFETY: as above. Owner 0: a break notifies nobody (the lease still breaks).
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETOWN, 0) };
    Lease::Granted
}

/// `fcntl(fd, F_SETLEASE, F_UNLCK)`: lets any opener waiting on the lease go on.
pub(crate) fn release_lease(fd: &OwnedFd) {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
}

fn errno() -> i32 {
    // SAFETY: reading this thread's errno right after a failed call.
    unsafe { *libc::__errno_location() }
}

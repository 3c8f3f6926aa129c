//! Byte-range locks on the registry file (`fcntl` `F_OFD_*`; rustix has none).

#![allow(clippy::disallowed_types)]

// ---- byte locks (fcntl F_OFD_*; rustix has no byte-range locks) ----------------------

pub(super) fn flock_at(kind: i16, at: i64) -> libc::flock {
    // SAFETY: `flock` is plain old data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { core::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = at;
    fl.l_len = 1;
    fl.l_pid = 0; // required by F_OFD_*
    fl
}

/// `F_OFD_SETLK` a write lock on byte `at` (or unlock with `lock == false`). `Ok(false)`:
/// another open file description holds it.
pub(super) fn set_lock(fd: i32, at: i64, lock: bool) -> Result<bool, rustix::io::Errno> {
    let mut fl = flock_at(if lock { libc::F_WRLCK } else { libc::F_UNLCK } as i16, at);
    loop {
        // SAFETY: `fl` is a valid flock for the duration of the call; `fd` is ours.
        let rc = unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &mut fl) };
        if rc == 0 {
            return Ok(true);
        }
        match errno() {
            libc::EAGAIN | libc::EACCES => return Ok(false),
            libc::EINTR => {}
            e => return Err(rustix::io::Errno::from_raw_os_error(e)),
        }
    }
}

pub(super) fn unlock(fd: i32, at: i64) -> Result<bool, rustix::io::Errno> {
    set_lock(fd, at, false)
}

/// Does an open file description other than ours hold byte `at`? `None`: the check
/// failed.
pub(super) fn held_by_other(fd: i32, at: i64) -> Option<bool> {
    let mut fl = flock_at(libc::F_WRLCK as i16, at);
    loop {
        // SAFETY: as in `set_lock`.
        let rc = unsafe { libc::fcntl(fd, libc::F_OFD_GETLK, &mut fl) };
        if rc == 0 {
            return Some(fl.l_type != libc::F_UNLCK as i16);
        }
        if errno() != libc::EINTR {
            return None;
        }
    }
}

pub(super) fn errno() -> i32 {
    // SAFETY: reading this thread's errno right after a failed call.
    unsafe { *libc::__errno_location() }
}

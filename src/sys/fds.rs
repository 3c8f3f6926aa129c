//! File descriptors for processes that fork on others' behalf (the pool's zygote): an
//! eventfd doorbell, `poll` over a preallocated set of descriptors, closing every
//! inherited descriptor, and an unbuffered write to stderr.
//!
//! Everything here is safe to call in a child forked from a multi-threaded process: no
//! lock, no allocation (a [`PollSet`] is allocated before the fork and only refilled
//! within its capacity after it).

use std::vec::Vec;

use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use rustix::io::Errno;

use crate::error::Error;

/// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`: a counter that polls readable once rung.
pub(crate) fn doorbell() -> Result<OwnedFd, Error> {
    eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(Error::from_errno)
}

/// Rings `bell` (`write` of 1 to the eventfd). A full counter (2^64 - 2 rings never
/// drained) is already readable, so `EAGAIN` is as good as success.
pub(crate) fn ring(bell: BorrowedFd<'_>) {
    loop {
        match rustix::io::write(bell, &1u64.to_ne_bytes()) {
            Err(Errno::INTR) => {}
            _ => return,
        }
    }
}

/// Resets a rung eventfd to zero (`read`); nothing happens if it was not rung.
pub(crate) fn drain(bell: BorrowedFd<'_>) {
    let mut buf = [0u8; 8];
    loop {
        match rustix::io::read(bell, &mut buf) {
            Err(Errno::INTR) => {}
            _ => return,
        }
    }
}

/// A set of descriptors to wait on for readability, preallocated so that refilling it
/// after a fork never allocates.
#[derive(Debug)]
pub(crate) struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// An empty set with room for `capacity` descriptors (allocates now, never later).
    pub(crate) fn with_capacity(capacity: usize) -> PollSet {
        PollSet {
            fds: Vec::with_capacity(capacity),
        }
    }

    /// Empties the set (keeps its allocation).
    pub(crate) fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds `fd`; returns its index, or `None` if the set is full (it never grows).
    pub(crate) fn add(&mut self, fd: BorrowedFd<'_>) -> Option<usize> {
        if self.fds.len() == self.fds.capacity() {
            return None;
        }
        self.fds.push(libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        Some(self.fds.len() - 1)
    }

    /// `poll(2)` for readability, up to `timeout_ns` (`None`: no limit). A signal ends
    /// the wait early (the caller re-checks its state anyway). Returns how many are ready.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if `poll` fails (other than `EINTR`).
    pub(crate) fn wait(&mut self, timeout_ns: Option<u64>) -> Result<usize, Error> {
        let ms = match timeout_ns {
            None => -1,
            // Round up: a wait for 0.5 ms must not become a busy poll.
            Some(ns) => i32::try_from(ns.div_ceil(1_000_000)).unwrap_or(i32::MAX),
        };
        // SAFETY: `fds` points at `len` initialised pollfd structs that live across the
        // call; `poll` only writes their `revents`.
        let rc = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if errno == libc::EINTR {
            Ok(0)
        } else {
            Err(Error::Os(errno))
        }
    }

    /// Did the descriptor at `index` poll readable (or hung up, or fail) last time?
    pub(crate) fn ready(&self, index: usize) -> bool {
        self.fds.get(index).is_some_and(|p| p.revents != 0)
    }
}

/// Closes every descriptor from 3 up, except those in `keep` and the kit's own (the
/// participant registry's, see `super::registry::descriptor`): `close_range(2)`, or a
/// `close` loop up to the descriptor limit on kernels older than 5.9.
pub(crate) fn close_all_but(keep: &[BorrowedFd<'_>]) {
    let registry = super::registry::descriptor().unwrap_or(-1);
    let mut first: u32 = 3;
    // `keep` is tiny; visit its descriptors in ascending order without sorting (which
    // would need a buffer): repeatedly take the smallest one not below `first`.
    loop {
        let next = keep
            .iter()
            .map(|fd| fd.as_raw_fd())
            .chain(core::iter::once(registry))
            .filter(|&fd| fd >= 0 && fd as u32 >= first)
            .min();
        match next {
            Some(fd) => {
                if fd as u32 > first {
                    close_range(first, fd as u32 - 1);
                }
                first = fd as u32 + 1;
            }
            None => {
                close_range(first, u32::MAX);
                return;
            }
        }
    }
}

/// Closes descriptors `first..=last`.
fn close_range(first: u32, last: u32) {
    // SAFETY: close_range only closes descriptors; the caller owns everything in the
    // range (it is about to lose the parent's descriptors on purpose).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if rc == 0 {
        return;
    }
    // ENOSYS (before Linux 5.9): close one by one, up to the descriptor limit.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(65_536)
        .min(1 << 20);
    let end = u64::from(last).min(limit.saturating_sub(1));
    let mut fd = u64::from(first);
    while fd <= end {
        // SAFETY: as above; closing a descriptor that is not open is a harmless EBADF.
        unsafe { libc::close(fd as RawFd) };
        fd += 1;
    }
}

/// Writes `bytes` to stderr (fd 2) with raw `write(2)` calls: no lock, no buffer, so it
/// works in a child forked while another thread held `std::io::stderr()`'s lock.
/// Errors are ignored (there is nowhere left to report them).
pub(crate) fn write_stderr(bytes: &[u8]) {
    // SAFETY: fd 2 is only borrowed for the calls below; if it is closed, `write`
    // fails with EBADF, which is ignored.
    let fd = unsafe { BorrowedFd::borrow_raw(2) };
    let mut rest = bytes;
    while !rest.is_empty() {
        match rustix::io::write(fd.as_fd(), rest) {
            Ok(0) => return,
            Ok(n) => rest = &rest[n.min(rest.len())..],
            Err(Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

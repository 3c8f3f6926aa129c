//! The process's signal dispositions, set once at start:
//!
//! - `SIGIO` ignored: `shmkit clean` holds a write lease while it unlinks, and the
//!   kernel signals a lease holder with `SIGIO` when another process opens the file
//!   (the library uses leases only where `SIGIO` cannot end the process).
//! - `SIGPIPE` to its default: `shmkit ls | head` ends quietly instead of failing to
//!   print.
//! - `SIGBUS` caught inside [`guarded`] reads only: a segment that another process
//!   truncates while we read it would otherwise kill us on the first access past its
//!   new end. The handler maps a page of zeros over the faulting page (of our own
//!   read-only mapping), notes the fault and returns; the read then sees zeros, and
//!   the caller reports "truncated while being read". A `SIGBUS` anywhere else takes
//!   its default action.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The address range whose faults are ours to absorb (0..0: none).
static LO: AtomicUsize = AtomicUsize::new(0);
static HI: AtomicUsize = AtomicUsize::new(0);
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static FAULTED: AtomicBool = AtomicBool::new(false);

/// Sets the dispositions (see the module docs).
pub fn install() {
    // SAFETY: sysconf has no memory arguments.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE.store(page as usize, Ordering::Relaxed);
    }
    // SAFETY: setting dispositions to SIG_IGN / SIG_DFL passes no memory.
    unsafe {
        libc::signal(libc::SIGIO, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // SAFETY: a zeroed sigaction is valid plain data; we fill in a handler of the
    // SA_SIGINFO signature and an empty mask before installing it.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

/// Runs `read` with faults inside `range` absorbed; returns its result and whether a
/// fault happened (the memory read as zeros from the faulting page on).
pub fn guarded<R>(range: Range<usize>, read: impl FnOnce() -> R) -> (R, bool) {
    FAULTED.store(false, Ordering::SeqCst);
    LO.store(range.start, Ordering::SeqCst);
    HI.store(range.end, Ordering::SeqCst);
    let out = read();
    HI.store(0, Ordering::SeqCst);
    LO.store(0, Ordering::SeqCst);
    (out, FAULTED.load(Ordering::SeqCst))
}

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler; for SIGBUS,
    // si_addr is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (lo, hi) = (LO.load(Ordering::SeqCst), HI.load(Ordering::SeqCst));
    if lo <= addr && addr < hi {
        let page = PAGE.load(Ordering::Relaxed);
        let at = addr & !(page - 1);
        // SAFETY: `at` is a page inside our own read-only mapping of the segment
        // (registered by `guarded`), which no Rust reference writes through; replacing
        // it with a private page of zeros only changes what our reads see. mmap is
        // async-signal-safe.
        let mapped = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped != libc::MAP_FAILED {
            FAULTED.store(true, Ordering::SeqCst);
            return;
        }
    }
    // Not ours: the default action, when the faulting access runs again.
    // SAFETY: signal() with SIG_DFL passes no memory; async-signal-safe.
    unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncation_under_a_guarded_read_is_absorbed() {
        install();
        let name = format!("shmkit-cli-sigbus-{}", std::process::id());
        let shared = shmkit::Shared::<[u64; 4096]>::create_zeroed(&name).unwrap();
        let seg = shmkit::inspect::Segment::open(&name).unwrap();
        let range = seg.mapped_range();
        let page = PAGE.load(Ordering::Relaxed);
        let at = range.start + 3 * page;
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/dev/shm/{name}"))
            .unwrap()
            .set_len(page as u64)
            .unwrap();
        // SAFETY: `at` lies inside the segment's live read-only mapping; past the new
        // end of the object, so the access faults and the guard maps zeros there.
        let (byte, faulted) = guarded(range.clone(), || unsafe {
            std::ptr::read_volatile(at as *const u8)
        });
        assert!(faulted);
        assert_eq!(byte, 0);
        // The next guarded read of the same page finds the zero page: no fault.
        // SAFETY: as above.
        let (_, again) = guarded(range, || unsafe {
            std::ptr::read_volatile(at as *const u8)
        });
        assert!(!again);
        // The segment itself reports the truncation before reading.
        assert!(seg.state().unwrap_err().0.contains("truncated"));
        drop(seg);
        drop(shared);
    }
}

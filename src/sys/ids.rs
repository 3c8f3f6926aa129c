//! The calling process's and thread's ids, cached.
//!
//! Lock words and pipe ends record who owns them, so the fast paths need the pid and
//! tid without a system call. `getpid`/`gettid` are real system calls on current
//! glibc and in rustix, so both are cached: the pid process-wide, the tid per thread
//! (with `std`; without it every call asks the kernel). A `pthread_atfork` child
//! handler clears both caches in the child, whose only thread is the one that forked,
//! so a forked child never acts under its parent's ids. (A raw `clone` system call
//! that bypasses libc's `fork` also bypasses the handler: don't use one.)

use core::sync::atomic::{AtomicI32, AtomicU8, Ordering};

/// The cached pid; 0 = not known yet (no process has pid 0).
static PID: AtomicI32 = AtomicI32::new(0);

/// `pthread_atfork` registration: 0 = not yet, 1 = in progress, 2 = done.
static ATFORK: AtomicU8 = AtomicU8::new(0);

#[cfg(feature = "std")]
std::thread_local! {
    /// This thread's tid; 0 = not known yet.
    static TID: core::cell::Cell<i32> = const { core::cell::Cell::new(0) };
}

/// Runs in the child right after `fork`, on the only thread the child has.
extern "C" fn clear_caches_in_child() {
    // Relaxed: the child is single-threaded at this point.
    PID.store(0, Ordering::Relaxed);
    super::membarrier::forget_in_child();
    #[cfg(feature = "std")]
    let _ = TID.try_with(|tid| tid.set(0));
}

/// Registers the fork handler once; returns only after it is registered.
pub(crate) fn ensure_atfork() {
    if ATFORK.load(Ordering::Acquire) == 2 {
        return;
    }
    if ATFORK
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        // SAFETY: `pthread_atfork` only records the function pointers; the child
        // handler is an `extern "C" fn` with no arguments that touches only atomics
        // and this thread's own thread-local.
        unsafe {
            libc::pthread_atfork(None, None, Some(clear_caches_in_child));
        }
        ATFORK.store(2, Ordering::Release);
    } else {
        while ATFORK.load(Ordering::Acquire) != 2 {
            core::hint::spin_loop();
        }
    }
}

/// The calling process's pid (`getpid`, cached).
#[inline]
pub(crate) fn pid() -> i32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    pid_slow()
}

#[cold]
fn pid_slow() -> i32 {
    ensure_atfork();
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    PID.store(pid, Ordering::Relaxed);
    pid
}

/// The calling thread's tid (`gettid`, cached per thread with `std`).
#[inline]
pub(crate) fn tid() -> i32 {
    #[cfg(feature = "std")]
    {
        let cached = TID.try_with(|tid| tid.get()).unwrap_or(0);
        if cached != 0 {
            return cached;
        }
        tid_slow()
    }
    #[cfg(not(feature = "std"))]
    {
        rustix::thread::gettid().as_raw_nonzero().get()
    }
}

#[cfg(feature = "std")]
#[cold]
fn tid_slow() -> i32 {
    ensure_atfork();
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    let _ = TID.try_with(|cell| cell.set(tid));
    tid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_kernel() {
        assert_eq!(pid(), rustix::process::getpid().as_raw_nonzero().get());
        assert_eq!(tid(), rustix::thread::gettid().as_raw_nonzero().get());
        assert_eq!(pid(), pid());
    }
}

// ---- participant ids ------------------------------------------------------------
//
// Interim implementation: a process's id is its pid and a thread's its tid (both below
// 2^22, so they fit `primitive::ID_MASK`). The participant registry replaces this.

/// The calling process's participant id.
#[inline]
pub(crate) fn process_id() -> u32 {
    pid() as u32
}

/// The calling thread's participant id.
#[inline]
pub(crate) fn thread_id() -> u32 {
    tid() as u32
}

/// Is participant `id` alive?
pub(crate) fn liveness(id: u32) -> super::proc::Liveness {
    super::proc::liveness(id as i32)
}

#[cfg(feature = "std")]
std::thread_local! {
    /// See [`handoff_target`]; 0 = none.
    static HANDOFF: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

/// The child a forking parent is handing its closure's values to (see
/// `primitive::handoff_target`).
#[cfg(feature = "std")]
#[inline]
pub(crate) fn handoff_target() -> Option<u32> {
    match HANDOFF.try_with(core::cell::Cell::get) {
        Ok(0) | Err(_) => None,
        Ok(id) => Some(id),
    }
}

/// Runs `f` (the parent's drop of a closure it forked with) with
/// [`handoff_target`] = `child`.
#[cfg(feature = "std")]
pub(crate) fn with_handoff<R>(child: u32, f: impl FnOnce() -> R) -> R {
    struct Reset(u32);
    impl Drop for Reset {
        fn drop(&mut self) {
            let _ = HANDOFF.try_with(|h| h.set(self.0));
        }
    }
    let previous = HANDOFF.try_with(|h| h.replace(child)).unwrap_or(0);
    let _reset = Reset(previous);
    f()
}

//! Shared (inter-process) futex wait and wake.
//!
//! `Flags::empty()` is the *shared* futex: the kernel keys the wait queue by the
//! physical page, so waiters and wakers in different processes that map the same
//! segment meet. `FUTEX_PRIVATE_FLAG` would key it by the address space and silently
//! never wake a waiter in another process.

use core::num::NonZeroU32;
use core::sync::atomic::AtomicU32;

use rustix::io::Errno;
use rustix::thread::futex;

/// How a futex wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FutexWait {
    /// Woken, interrupted, or the word no longer held the expected value. Callers
    /// re-check their condition: spurious returns are legal.
    Woken,
    /// The absolute deadline passed.
    TimedOut,
}

/// `FUTEX_WAIT_BITSET` with an absolute `CLOCK_MONOTONIC` deadline (nanoseconds since
/// the clock's epoch), or no deadline. Returns at once if `*word != expected`.
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline_ns: Option<u64>) -> FutexWait {
    let timespec = deadline_ns.map(super::time::timespec_from_ns);
    // FUTEX_BITSET_MATCH_ANY: match every waker, as plain FUTEX_WAIT does. Unlike
    // FUTEX_WAIT, the BITSET form takes an absolute timeout on CLOCK_MONOTONIC, so a
    // retried wait never stretches the caller's deadline.
    let any = NonZeroU32::MAX;
    match futex::wait_bitset(
        word,
        futex::Flags::empty(),
        expected,
        timespec.as_ref(),
        any,
    ) {
        Err(Errno::TIMEDOUT) => FutexWait::TimedOut,
        // Ok: woken; EAGAIN: the value changed; EINTR: a signal. All are "re-check".
        _ => FutexWait::Woken,
    }
}

/// `FUTEX_WAKE` for up to `count` waiters; returns how many were woken. (The caller
/// counts the call in `crate::stats`: this layer knows nothing above it.)
///
/// The count is capped at `i32::MAX`: the kernel reads it as a signed int, so
/// `u32::MAX` would mean -1 and wake only one waiter.
pub(crate) fn wake(word: &AtomicU32, count: u32) -> usize {
    #[cfg(all(test, feature = "std"))]
    WAKES.with(|w| w.set(w.get() + 1));
    let count = count.min(i32::MAX as u32);
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}

#[cfg(all(test, feature = "std"))]
std::thread_local! {
    /// `FUTEX_WAKE` calls made by this thread (unit tests only).
    static WAKES: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// How many `FUTEX_WAKE` system calls this thread has made (unit tests only: tests
/// that prove a path makes none).
#[cfg(all(test, feature = "std"))]
pub(crate) fn wakes_by_this_thread() -> u64 {
    WAKES.with(core::cell::Cell::get)
}

/// The kernel has no `futex_waitv` (Linux < 5.16): fall back to something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitvUnsupported;

/// `futex_waitv` on up to 128 shared 32-bit futexes `(word, expected)`, with an
/// absolute `CLOCK_MONOTONIC` deadline: returns when any word is woken (or no longer
/// holds its expected value), or at the deadline.
pub(crate) fn waitv(
    words: &[(&AtomicU32, u32)],
    deadline_ns: Option<u64>,
) -> Result<FutexWait, WaitvUnsupported> {
    const MAX: usize = 128;
    let mut waits = [futex::Wait::new(); MAX];
    let n = words.len().min(MAX);
    for (wait, (word, expected)) in waits.iter_mut().zip(&words[..n]) {
        wait.val = u64::from(*expected);
        wait.uaddr = futex::WaitPtr::new(word.as_ptr().cast());
        // Shared (no FUTEX2_PRIVATE): waiters and wakers are in different processes.
        wait.flags = futex::WaitFlags::SIZE_U32;
    }
    let timespec = deadline_ns.map(super::time::timespec_from_ns);
    match futex::waitv(
        &waits[..n],
        futex::WaitvFlags::empty(),
        timespec.as_ref(),
        rustix::time::ClockId::Monotonic,
    ) {
        Err(Errno::NOSYS) => Err(WaitvUnsupported),
        Err(Errno::TIMEDOUT) => Ok(FutexWait::TimedOut),
        // Ok(index): woken; EAGAIN: a word changed; EINTR: a signal. All "re-check".
        _ => Ok(FutexWait::Woken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_at_once_on_mismatch() {
        let word = AtomicU32::new(1);
        assert_eq!(wait(&word, 0, None), FutexWait::Woken);
    }

    #[test]
    fn wait_times_out_at_deadline() {
        let word = AtomicU32::new(0);
        let start = super::super::time::monotonic_ns();
        let deadline = start + 5_000_000;
        assert_eq!(wait(&word, 0, Some(deadline)), FutexWait::TimedOut);
        assert!(super::super::time::monotonic_ns() >= deadline);
    }

    #[test]
    fn waitv_returns_on_mismatch_and_times_out() {
        let (a, b) = (AtomicU32::new(0), AtomicU32::new(5));
        assert_eq!(waitv(&[(&a, 0), (&b, 4)], None), Ok(FutexWait::Woken));
        let deadline = super::super::time::monotonic_ns() + 2_000_000;
        assert_eq!(
            waitv(&[(&a, 0), (&b, 5)], Some(deadline)),
            Ok(FutexWait::TimedOut)
        );
        assert!(super::super::time::monotonic_ns() >= deadline);
    }

    #[test]
    fn wake_with_no_waiters_wakes_none() {
        let word = AtomicU32::new(0);
        assert_eq!(wake(&word, u32::MAX), 0);
    }
}

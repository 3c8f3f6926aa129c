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

/// `FUTEX_WAKE` for up to `count` waiters; returns how many were woken.
///
/// The count is capped at `i32::MAX`: the kernel reads it as a signed int, so
/// `u32::MAX` would mean -1 and wake only one waiter.
pub(crate) fn wake(word: &AtomicU32, count: u32) -> usize {
    let count = count.min(i32::MAX as u32);
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
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
    fn wake_with_no_waiters_wakes_none() {
        let word = AtomicU32::new(0);
        assert_eq!(wake(&word, u32::MAX), 0);
    }
}

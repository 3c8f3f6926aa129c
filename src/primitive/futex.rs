//! Sleeping and waking: the futex pair (`futex_wait`, `futex_waitv`, `futex_wake`) and
//! the two halves of the StoreLoad barrier that pair a waker with a sleeper
//! (`light_barrier`, `heavy_barrier`).
//!
//! Outside loom they are the shared futex and `membarrier` of [`crate::sys`]; under
//! loom, the futex model of `loom_futex` and a pair of `SeqCst` fences.

use super::{AtomicU32, Deadline};
#[cfg(shmkit_loom)]
use super::{Ordering, atomics::fence, loom_futex};
use crate::sys::futex::FutexWait;

/// How a [`futex_wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken, or spurious, or the word had changed: re-check the condition.
    Woken,
    /// The deadline passed.
    TimedOut,
}

impl From<FutexWait> for Wake {
    #[inline]
    fn from(wait: FutexWait) -> Wake {
        match wait {
            FutexWait::Woken => Wake::Woken,
            FutexWait::TimedOut => Wake::TimedOut,
        }
    }
}

/// Sleeps while `*word == expected`, until woken or `deadline`. May return spuriously.
#[inline]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, deadline: Deadline) -> Wake {
    #[cfg(not(shmkit_loom))]
    {
        if deadline.expired() {
            return Wake::TimedOut;
        }
        crate::sys::futex::wait(word, expected, deadline.as_ns()).into()
    }
    #[cfg(shmkit_loom)]
    {
        if deadline.expired() {
            // A waiter that loops on an expired deadline must let others run.
            loom::thread::yield_now();
            return Wake::TimedOut;
        }
        loom_futex::wait(word, expected, deadline).into()
    }
}

/// Sleeps while every `(word, expected)` holds, until one of the words is woken or
/// changes, or `deadline` (`futex_waitv`, Linux 5.16; where the kernel lacks it, on the
/// first word in 1 ms slices). May return spuriously. At most 128 words.
pub(crate) fn futex_waitv(words: &[(&AtomicU32, u32)], deadline: Deadline) -> Wake {
    #[cfg(not(shmkit_loom))]
    {
        if deadline.expired() {
            return Wake::TimedOut;
        }
        let Some(&(first, first_expected)) = words.first() else {
            return Wake::Woken;
        };
        // The kernel-visible words behind the facade's atomics (their `Deref` target).
        let mut pairs = [(&**first, 0u32); 128];
        let n = words.len().min(pairs.len());
        for (pair, (word, expected)) in pairs.iter_mut().zip(&words[..n]) {
            *pair = (&***word, *expected);
        }
        match crate::sys::futex::waitv(&pairs[..n], deadline.as_ns()) {
            Ok(wait) => wait.into(),
            Err(crate::sys::futex::WaitvUnsupported) => {
                let short = deadline.earlier(Deadline::after(core::time::Duration::from_millis(1)));
                futex_wait(first, first_expected, short)
            }
        }
    }
    #[cfg(shmkit_loom)]
    {
        loom_futex::waitv(words, deadline).into()
    }
}

/// Wakes up to `count` sleepers on `word` (`u32::MAX`: all). Returns how many woke.
#[inline]
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> usize {
    #[cfg(not(shmkit_loom))]
    {
        crate::stats::note_futex_wake();
        crate::sys::futex::wake(word, count)
    }
    #[cfg(shmkit_loom)]
    {
        loom_futex::wake(word, count)
    }
}

/// The waker's half of an asymmetric StoreLoad barrier (see `sys::membarrier`): a
/// compiler fence once this process is registered for `membarrier`, else a real
/// fence. Under loom, `fence(SeqCst)`: the model checks the Dekker argument with the
/// pair of fences that the system call stands for.
#[inline]
pub(crate) fn light_barrier() {
    #[cfg(not(shmkit_loom))]
    crate::sys::membarrier::light();
    #[cfg(shmkit_loom)]
    fence(Ordering::SeqCst);
}

/// The waiter's half (see [`light_barrier`]): a fence plus
/// `membarrier(GLOBAL_EXPEDITED)`. `false`: wakers may have skipped their barrier
/// unseen, so the caller must sleep only in short slices.
#[inline]
pub(crate) fn heavy_barrier() -> bool {
    #[cfg(not(shmkit_loom))]
    {
        crate::sys::membarrier::heavy()
    }
    #[cfg(shmkit_loom)]
    {
        fence(Ordering::SeqCst);
        true
    }
}

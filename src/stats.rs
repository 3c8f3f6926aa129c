//! Process-local counters of what the kit's slow paths did: for tests, benchmarks and
//! monitoring. Reading them costs a load; the counters sit on paths that already make
//! a system call, so keeping them costs nothing measurable.
//!
//! ```
//! let before = shmkit::stats::futex_wakes();
//! let s = shmkit::Semaphore::new(0);
//! s.release(); // nobody sleeps: no system call
//! assert_eq!(shmkit::stats::futex_wakes(), before);
//! ```
// Process-local counters, never in shared memory.
#![allow(clippy::disallowed_types)]

use core::sync::atomic::{AtomicU64, Ordering};

static FUTEX_WAKES: AtomicU64 = AtomicU64::new(0);
static SLICE_RESCUES: AtomicU64 = AtomicU64::new(0);

/// `FUTEX_WAKE` system calls this process has made (every thread, since it started or
/// was forked): a waker makes one only when someone is announced asleep, so in a
/// stream whose reader keeps up this stays flat.
pub fn futex_wakes() -> u64 {
    FUTEX_WAKES.load(Ordering::Relaxed)
}

/// Sleeps that ran out their time slice and then found the awaited state already
/// there: a change that landed just as the slice ended, a peer found dead by a liveness
/// check, or a lost wake-up (which the kit's protocol rules out: tests check this
/// stays near zero).
pub fn slice_rescues() -> u64 {
    SLICE_RESCUES.load(Ordering::Relaxed)
}

#[inline]
pub(crate) fn note_futex_wake() {
    FUTEX_WAKES.fetch_add(1, Ordering::Relaxed);
}

#[inline]
pub(crate) fn note_slice_rescue() {
    SLICE_RESCUES.fetch_add(1, Ordering::Relaxed);
}

/// In a forked child: the counts were the parent's.
pub(crate) fn forget_in_child() {
    FUTEX_WAKES.store(0, Ordering::Relaxed);
    SLICE_RESCUES.store(0, Ordering::Relaxed);
}

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

// Loom builds model the futex and count nothing.
#[cfg_attr(shmkit_loom, allow(dead_code))]
#[inline]
pub(crate) fn note_futex_wake() {
    ensure_forgotten_in_children();
    FUTEX_WAKES.fetch_add(1, Ordering::Relaxed);
}

#[inline]
pub(crate) fn note_slice_rescue() {
    ensure_forgotten_in_children();
    SLICE_RESCUES.fetch_add(1, Ordering::Relaxed);
}

/// Registers [`forget_in_child`] as a fork hook (once; a load afterwards).
#[inline]
fn ensure_forgotten_in_children() {
    static HOOKED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if !HOOKED.load(Ordering::Relaxed) {
        crate::sys::fork::on_child(forget_in_child);
        HOOKED.store(true, Ordering::Relaxed);
    }
}

/// In a forked child (a fork hook): the counts were the parent's.
fn forget_in_child() {
    FUTEX_WAKES.store(0, Ordering::Relaxed);
    SLICE_RESCUES.store(0, Ordering::Relaxed);
}

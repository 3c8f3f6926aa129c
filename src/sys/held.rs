//! How many lock guards each thread of this process holds: so that a fork can refuse
//! to copy one into a child, and so that a thread that leaked one keeps its identity.
//!
//! `Process::spawn` takes `Send` closures and guards are neither `Send` nor `Sync`, so
//! no guard can be moved or borrowed into a child. But a *reborrow* can: `let r = &mut
//! *guard;` is a `&mut T` (`Send` for any `T: Send`), and a closure holding it forks
//! fine; the parent then drops the guard (unlocking) while the child goes on writing
//! through its copy of `r` — a data race on the shared `T`. No type can tell that `&mut
//! T` from any other.
//!
//! What the types do say: a reference derived from a guard cannot outlive the guard,
//! and a closure's captures live at least as long as the call that forks with it. So
//! if at some instant during `spawn` no guard is alive anywhere in the process, the
//! closure holds no reference derived from one. This module counts live guards, per
//! thread, and `spawn` looks for such an instant: it refuses at once if the forking
//! thread itself holds a guard (it could not let go while waiting), and otherwise waits
//! a little for other threads to leave their critical sections.
//!
//! Cost on the lock path: a thread-local read and a plain store to a counter on a line
//! of the thread's own; no read-modify-write, no shared line.
//!
//! The counters live in a fixed table (one cache line each), claimed by threads on
//! their first guard and given back at thread exit unless a guard was leaked
//! (`mem::forget`, `Box::leak`): then the count stays, and this process refuses to fork
//! for good — which is right, since the leaked guard's references may still be used.
//!
//! For the same reason a thread that exits while the count says it holds a guard keeps
//! its participant id (see `super::ids`): a leaked guard holds its lock for good, as
//! `std`'s does, instead of the lock being taken over as a dead holder's while a
//! `&'static mut` to the data may live on in another thread.
//! Threads beyond the table share one overflow counter (read-modify-write).
// Process-local bookkeeping, never in shared memory: core atomics are fine here.
#![allow(clippy::disallowed_types)]

use core::sync::atomic::{AtomicU32, Ordering};

const SLOTS: usize = 128;

/// A counter alone on its cache line.
#[repr(align(64))]
struct Line<T>(T);

/// Each thread's count of live guards, alone on its line.
static COUNTS: [Line<AtomicU32>; SLOTS] = [const { Line(AtomicU32::new(0)) }; SLOTS];
/// Which slots are taken (by a live thread, or kept for a leaked guard).
static TAKEN: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];
/// Guards of threads that found no free slot.
static OVERFLOW: AtomicU32 = AtomicU32::new(0);

std::thread_local! {
    /// This thread's slot + 1 (0: none yet, or the thread uses `OVERFLOW`).
    static MINE: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
    /// Gives the slot back when the thread exits.
    static RELEASE: SlotRelease = const { SlotRelease(core::cell::Cell::new(0)) };
}

/// Frees a thread's slot at its exit (if it holds no guard).
struct SlotRelease(core::cell::Cell<u32>);

impl Drop for SlotRelease {
    fn drop(&mut self) {
        let slot = self.0.get();
        if slot == 0 {
            return;
        }
        let i = slot as usize - 1;
        if COUNTS[i].0.load(Ordering::Relaxed) == 0 {
            let _ = MINE.try_with(|m| m.set(0));
            TAKEN[i].store(0, Ordering::Release);
        }
        // Else a guard of this thread was leaked: the slot stays counted for good (and
        // `MINE` keeps pointing at it, for `mine` in later thread-local destructors).
    }
}

/// A guard was made on this thread.
#[inline]
pub(crate) fn made() {
    match MINE.try_with(core::cell::Cell::get) {
        Ok(slot) if slot != 0 => {
            let c = &COUNTS[slot as usize - 1].0;
            // Only this thread writes its counter: load + store, no RMW.
            c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        _ => made_slow(),
    }
}

#[cold]
fn made_slow() {
    for (i, taken) in TAKEN.iter().enumerate() {
        if taken
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let slot = i as u32 + 1;
            if MINE.try_with(|m| m.set(slot)).is_ok() && RELEASE.try_with(|r| r.0.set(slot)).is_ok()
            {
                COUNTS[i].0.store(1, Ordering::Relaxed);
                return;
            }
            // Thread-locals are being torn down: use the overflow counter.
            let _ = MINE.try_with(|m| m.set(0));
            TAKEN[i].store(0, Ordering::Release);
            break;
        }
    }
    OVERFLOW.fetch_add(1, Ordering::Relaxed);
}

/// A guard made on this thread was dropped.
#[inline]
pub(crate) fn dropped() {
    match MINE.try_with(core::cell::Cell::get) {
        Ok(slot) if slot != 0 => {
            let c = &COUNTS[slot as usize - 1].0;
            c.store(c.load(Ordering::Relaxed).wrapping_sub(1), Ordering::Relaxed);
        }
        _ => {
            OVERFLOW.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Guards alive on the calling thread (its overflow share not counted).
pub(crate) fn mine() -> u32 {
    match MINE.try_with(core::cell::Cell::get) {
        Ok(slot) if slot != 0 => COUNTS[slot as usize - 1].0.load(Ordering::Relaxed),
        _ => 0,
    }
}

/// Are guards alive anywhere in this process? (Each counter read once; see the module
/// docs for why reads at different instants suffice.)
fn any() -> bool {
    OVERFLOW.load(Ordering::Relaxed) != 0 || COUNTS.iter().any(|c| c.0.load(Ordering::Relaxed) != 0)
}

/// Waits until no guard is alive in this process (up to `timeout_ns`).
///
/// # Errors
///
/// [`Error::GuardHeld`](crate::Error::GuardHeld) if the calling thread holds a guard, or
/// guards stayed alive in other threads until the timeout.
pub(crate) fn wait_for_none(timeout_ns: u64) -> Result<(), crate::Error> {
    if mine() != 0 {
        return Err(crate::Error::GuardHeld);
    }
    let deadline = crate::sys::time::monotonic_ns().saturating_add(timeout_ns);
    let mut pause = 1_000;
    while any() {
        if crate::sys::time::monotonic_ns() >= deadline {
            return Err(crate::Error::GuardHeld);
        }
        crate::sys::time::sleep_ns(pause);
        pause = (pause * 2).min(1_000_000);
    }
    Ok(())
}

/// In a forked child, first thing: the guards counted were the parent's (its other
/// threads do not exist here, and the forking thread held none), and so were the
/// other threads' slots.
pub(crate) fn forget_in_child() {
    let mine = MINE.try_with(core::cell::Cell::get).unwrap_or(0);
    for (i, (c, taken)) in COUNTS.iter().zip(&TAKEN).enumerate() {
        c.0.store(0, Ordering::Relaxed);
        if i as u32 + 1 != mine {
            taken.store(0, Ordering::Relaxed);
        }
    }
    OVERFLOW.store(0, Ordering::Relaxed);
}

//! The model's clock, under loom: when finite deadlines pass.
//!
//! Two events let time pass. The clock tick (`tick`, from `loom_clock_tick`) passes
//! every finite deadline at once. A death (`count_death`) passes, for each thread, the
//! deadlines it made before it had seen that death: the first one it then looks at
//! expires, and the thread has seen the death. Ending the sleeps that these deadlines
//! bound is the futex model's part: `loom_futex::tick` sets the tick under its queue
//! lock; `loom_ids::die` counts the death, then calls `loom_futex::death`.
//!
//! Both words are read with Relaxed: looking at a deadline adds no happens-before edge
//! that the real clock would not give (the futex queue's lock orders a tick or a death
//! against a sleep).

use super::Ordering;

loom::lazy_static! {
    /// Has the model's clock ticked? Set under the futex queue's lock.
    static ref TICKED: loom::sync::atomic::AtomicBool = loom::sync::atomic::AtomicBool::new(false);
    /// How many model threads have died.
    static ref DEATHS: loom::sync::atomic::AtomicU64 = loom::sync::atomic::AtomicU64::new(0);
}

/// The mark of a finite deadline (`Deadline::at_ns`), beside the deaths its thread
/// had seen when it was made.
const FINITE: u64 = 1 << 62;

loom::thread_local! {
    /// How many deaths this thread's expired deadlines have accounted for.
    static SEEN: core::cell::Cell<u64> = core::cell::Cell::new(0);
}

/// Has the clock ticked (every finite deadline passed)?
pub(super) fn ticked() -> bool {
    TICKED.load(Ordering::Relaxed)
}

/// The clock ticks: every finite deadline passes. Called under the futex queue's lock.
pub(super) fn tick() {
    TICKED.store(true, Ordering::Relaxed);
}

/// A model thread died: the deadlines made before it was seen pass.
pub(super) fn count_death() {
    DEATHS.fetch_add(1, Ordering::Relaxed);
}

/// A finite deadline made now.
pub(super) fn finite_deadline() -> u64 {
    FINITE | SEEN.with(core::cell::Cell::get)
}

/// Has a finite deadline passed at a death? Once a death happened that its thread
/// had not seen when the deadline was made.
pub(super) fn deadline_expired(at_ns: u64) -> bool {
    let deaths = DEATHS.load(Ordering::Relaxed);
    if deaths > at_ns & !FINITE {
        SEEN.with(|seen| seen.set(seen.get().max(deaths)));
        true
    } else {
        false
    }
}

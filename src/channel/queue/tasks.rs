//! The unfinished-task count of a [`JoinableQueue`](crate::JoinableQueue), which the
//! queue's put and reclaim paths keep.

use crate::error::Error;
use crate::primitive::{AtomicU64, Deadline, Ordering};
use crate::sync::notifier::Notifier;

/// The unfinished-task count and the notifier `join` sleeps on.
///
/// ```text
/// offset size field       written by
///      0    8 unfinished  put (+1 before its claim, -1 if it fails), task_done (-1),
///                         a reclaimer of a dead producer's slot (-1)
///      8    8 done        Notifier: whoever brings `unfinished` to 0 wakes, join sleeps
/// ```
#[repr(C)]
pub(crate) struct JoinCtl {
    unfinished: AtomicU64,
    done: Notifier,
}

crate::layout::pin_layout!(JoinCtl { unfinished: 0, done: 8 }, size 16);

impl JoinCtl {
    /// Offsets of the count and of the notifier (for `crate::inspect`).
    #[cfg(all(feature = "std", not(shmkit_loom)))]
    pub(crate) const UNFINISHED: usize = core::mem::offset_of!(JoinCtl, unfinished);
    #[cfg(all(feature = "std", not(shmkit_loom)))]
    pub(crate) const DONE: usize = core::mem::offset_of!(JoinCtl, done);

    crate::primitive::loom_const_fn! {
        /// No unfinished task (all zero).
        pub(crate) const fn new() -> Self {
            JoinCtl { unfinished: AtomicU64::new(0), done: Notifier::new() }
        }
    }

    /// A put is starting.
    pub(crate) fn item_added(&self) {
        self.unfinished.fetch_add(1, Ordering::AcqRel);
    }

    /// A put failed, or its item was lost with its producer.
    pub(crate) fn item_gone(&self) {
        let _ = self.decrement();
    }

    /// Takes one off the count; `Err(Overflow)` if it is zero.
    pub(crate) fn decrement(&self) -> Result<(), Error> {
        let mut now = self.unfinished.load(Ordering::Acquire);
        loop {
            if now == 0 {
                return Err(Error::Overflow);
            }
            // SYNC POINT with the Acquire load in `all_done`: the work a consumer did
            // before `task_done` is visible to the joiner.
            match self.unfinished.compare_exchange_weak(
                now,
                now - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => now = actual,
            }
        }
        if now == 1 {
            self.done.notify_all();
        }
        Ok(())
    }

    /// How many tasks are unfinished.
    pub(crate) fn unfinished(&self) -> u64 {
        self.unfinished.load(Ordering::Acquire)
    }

    /// Waits until no task is unfinished, or `deadline`; returns whether none is.
    pub(crate) fn wait_all_done(&self, deadline: Deadline) -> bool {
        self.done
            .wait_until(deadline, || (self.unfinished() == 0).then_some(()))
            .is_some()
    }
}

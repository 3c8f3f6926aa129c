//! The pool-wide [`Hub`]: the one wake-up the parent's threads sleep on, and the
//! parent's standing order to its zygote.

use crate::primitive::{AtomicU32, AtomicU64, Deadline, Ordering};
use crate::segment::ShmSafe;
use crate::sync::notifier::Notifier;

/// `command`: fork and reap workers as asked.
pub(crate) const RUN: u32 = 0;
/// `command`: fork nothing more; wait (a grace period) for the workers, which were
/// told to exit, to leave; kill the rest; exit.
pub(crate) const JOIN: u32 = 1;
/// `command`: kill every worker, reap them, exit.
pub(crate) const KILL: u32 = 2;

/// The pool-wide wake-up: a counter of events the parent waits for (a chunk finished,
/// a worker was forked or died) and its notifier; and the parent's order to the zygote.
///
/// ```text
/// offset size field        written by
///      0    8 completions  workers: +1 (Release) after each DONE; the zygote after
///                          each fork, death or failure; the parent, to wake its own
///                          waiting threads (terminate)
///      8    8 done         Notifier: workers and zygote -> parent threads
///     16    4 command      parent: RUN -> JOIN or KILL (only ever raised)
///     20    4 ready        zygote: 1 once it is set up (its panic hook installed)
///     24   40 (padding to one line)
/// ```
#[repr(C)]
pub struct Hub {
    completions: AtomicU64,
    done: Notifier,
    command: AtomicU32,
    ready: AtomicU32,
    _pad: [u8; 40],
}

crate::layout::pin_layout!(Hub { completions: 0, done: 8, command: 16, ready: 20, _pad: 24 }, size 64);

// SAFETY: repr(C), atomics and a Notifier (two atomics), no pointers, every bit pattern
// valid (an unknown command reads as KILL), no Drop.
unsafe impl ShmSafe for Hub {
    // Layout 2: the zygote's command and ready words.
    crate::segment::kit_identity!(Internal, 2, "shmkit::pool::Hub");
}

impl Hub {
    /// A fresh hub (zero bytes are the same value), for the loom model.
    #[cfg(shmkit_loom)]
    pub(crate) fn new() -> Self {
        Hub {
            completions: AtomicU64::new(0),
            done: Notifier::new(),
            command: AtomicU32::new(RUN),
            ready: AtomicU32::new(0),
            _pad: [0; 40],
        }
    }

    /// The completion count, to compare against in [`Hub::wait_change`].
    pub(crate) fn completions(&self) -> u64 {
        // SYNC POINT with the Release increment in `bump`.
        self.completions.load(Ordering::Acquire)
    }

    /// Something finished (a chunk, a fork, a death, or the pool's state changed): wake
    /// every sleeper.
    pub(crate) fn bump(&self) {
        // SYNC POINT with the Acquire load in `completions`.
        self.completions.fetch_add(1, Ordering::Release);
        self.done.notify_all();
    }

    /// Sleeps until the completion count differs from `seen`, or `deadline`.
    pub(crate) fn wait_change(&self, seen: u64, deadline: Deadline) {
        let _ = self
            .done
            // Parked: the parent waits for CPU-bound work that needs every core.
            .wait_parked(deadline, || (self.completions() != seen).then_some(()));
    }

    /// Parent: raises the zygote's order to `command` (`JOIN` or `KILL`); it never goes
    /// back down. The caller then rings the zygote's doorbell.
    pub(crate) fn order(&self, command: u32) {
        // SYNC POINT with the Acquire load in `command`: what the parent wrote before
        // (EXIT in every mailbox, for JOIN) is visible to the zygote that sees it.
        self.command.fetch_max(command, Ordering::Release);
    }

    /// Zygote: it is set up and serving (then it bumps the hub).
    pub(crate) fn set_ready(&self) {
        self.ready.store(1, Ordering::Relaxed);
    }

    /// Parent: has the zygote set itself up? (Read after `completions` moved.)
    pub(crate) fn is_ready(&self) -> bool {
        // Relaxed: the bump that follows `set_ready` is the Release/Acquire pair; this
        // flag only tells the parent the zygote got past its start.
        self.ready.load(Ordering::Relaxed) != 0
    }

    /// Zygote: the parent's order (`RUN`, `JOIN` or `KILL`; anything else reads as
    /// `KILL`).
    pub(crate) fn command(&self) -> u32 {
        // SYNC POINT with the Release in `order`.
        match self.command.load(Ordering::Acquire) {
            c @ (RUN | JOIN) => c,
            _ => KILL,
        }
    }
}

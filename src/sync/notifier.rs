//! The shared sleep/wake protocol every blocking call in the kit goes through.
//!
//! A [`Notifier`] is 8 bytes of shared memory beside the state it guards:
//!
//! ```text
//! offset size field     written by
//!      0    4 seq       wakers: bumped (Release) before each FUTEX_WAKE; the futex word
//!      4    4 sleepers  waiters: +1 before sleeping, -1 after (SeqCst)
//! ```
//!
//! Waiters spin first (per the process's [`WaitStrategy`]), and only then announce
//! themselves in `sleepers` and sleep on `seq`. Wakers change the guarded state, then
//! issue `FUTEX_WAKE` only if `sleepers` is non-zero, so the common case (nobody
//! asleep) costs one load, with no fence and no system call.
//!
//! No lost wake-up, by a Dekker-style argument over two barriers:
//!
//! ```text
//! waiter                              waker
//! sleepers += 1                       change state
//! heavy barrier            (A)        light barrier            (B)
//! s = seq                             if sleepers > 0 {
//! if ready() { sleepers -= 1; done }      seq += 1 (Release)
//! futex_wait(seq, s)                      FUTEX_WAKE(seq)
//! sleepers -= 1                       }
//! ```
//!
//! Think of (A) and (B) as two SeqCst fences (loom checks exactly that model). In
//! their single total order, either (A) comes first — then the waker's load after (B)
//! sees `sleepers > 0`, bumps `seq`, and the waiter's `futex_wait(seq, s)` either
//! returns at once (seq changed) or is woken — or (B) comes first, and then the
//! waiter's `ready()` after (A) sees the changed state.
//!
//! The barriers are asymmetric (`sys::membarrier`): the waker, which runs on every
//! send, put and release, pays only a compiler fence; the waiter, which is about to
//! sleep anyway, pays a `membarrier(GLOBAL_EXPEDITED)` system call that forces a full
//! barrier on every CPU running a registered process. A real `fence(SeqCst)` per wake
//! stalled the waker until the message it had just written reached the peer's cache:
//! one cross-core transfer on every message of a stream.
//!
//! A waiter killed while asleep leaves `sleepers` too high: wakers then make a
//! needless system call on every wake, which costs time, never correctness. Where
//! the kit knows who alone can sleep on a notifier (a pipe end's owner), the party
//! that takes over from a dead one resets the count (`reset_sleepers`).

use super::strategy::{WaitStrategy, set_spin_budget, spin_budget, wait_strategy};
use crate::primitive::{
    AtomicU32, Deadline, Ordering, Wake, futex_wait, futex_wake, heavy_barrier, light_barrier,
    loom_const_fn, spin_loop,
};

/// The longest sleep between re-checks when the heavy barrier could not reach the
/// wakers (`membarrier` refused in this process): a wake-up lost for want of it
/// costs at most this long.
#[cfg(not(shmkit_loom))]
const UNSYNCED_SLICE: core::time::Duration = core::time::Duration::from_millis(1);

/// Under `Adaptive`, the spin budget (in `spin_loop` hints) adapts between these two:
/// it doubles after a wait that the spinning satisfied and halves after one that had
/// to yield or sleep anyway. When the peer answers within microseconds (it runs on
/// another CPU) the budget stays high; when it cannot run before we stop (it shares
/// our CPU, or it is busy for long), spinning only delays it, and the budget sinks.
#[cfg(not(shmkit_loom))]
pub(crate) const SPIN_HINTS_MAX: u32 = 256;
/// The fixed spin (in `spin_loop` hints) of the locks that wait on their own futex
/// word (`Mutex`, `Condvar`) under `Adaptive`: a lock is held for a short, bounded time.
#[cfg(not(shmkit_loom))]
pub(crate) const SPIN_HINTS: u32 = 64;
/// The floor of the adaptive budget: short enough to cost little, long enough to
/// notice a peer that answers fast again.
#[cfg(not(shmkit_loom))]
pub(crate) const SPIN_HINTS_MIN: u32 = 8;
/// Checks, each after a `sched_yield`, between spinning and sleeping under
/// `Adaptive`. A yield hands the CPU to a peer that shares it, which then answers at
/// once; where nobody else is runnable a yield costs one cheap system call.
#[cfg(not(shmkit_loom))]
pub(crate) const SPIN_YIELDS: u32 = 4;
// Under loom every spin is a scheduling point: one of each keeps both phases in the
// model without multiplying its state space.
#[cfg(shmkit_loom)]
pub(crate) const SPIN_HINTS_MAX: u32 = 1;
#[cfg(shmkit_loom)]
pub(crate) const SPIN_HINTS: u32 = 1;
#[cfg(shmkit_loom)]
pub(crate) const SPIN_HINTS_MIN: u32 = 1;
#[cfg(shmkit_loom)]
pub(crate) const SPIN_YIELDS: u32 = 1;

/// A futex word plus a sleeper count; see the module docs.
#[repr(C)]
pub struct Notifier {
    /// The futex word; its value only matters in that it changes on every wake.
    seq: AtomicU32,
    /// How many waiters are (about to be) asleep on `seq`.
    sleepers: AtomicU32,
}

#[cfg(not(shmkit_loom))]
const _: () = {
    assert!(core::mem::size_of::<Notifier>() == 8);
    assert!(core::mem::align_of::<Notifier>() == 4);
};

// Used by the sync and channel types built on it.
#[allow(dead_code)]
impl Notifier {
    loom_const_fn! {
        /// A notifier with nobody asleep (all-zero, so zeroed memory is a valid one).
        pub const fn new() -> Self {
            Notifier {
                seq: AtomicU32::new(0),
                sleepers: AtomicU32::new(0),
            }
        }
    }

    /// Blocks until `ready` returns `Some`, or `deadline` passes (then `ready` is asked
    /// one last time). `ready` must be cheap and side-effect free unless it returns
    /// `Some` (it is called many times).
    #[inline]
    pub fn wait_until<R>(
        &self,
        deadline: Deadline,
        mut ready: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        if let Some(r) = ready() {
            return Some(r);
        }
        self.wait_slow(deadline, &mut ready)
    }

    /// As [`wait_until`](Self::wait_until), but sleeping on the futex at once
    /// ([`WaitStrategy::Park`]) whatever the process-wide strategy: for waiters whose
    /// peers need the CPU more than the waiter needs a fast wake-up (a pool's parent and
    /// its idle workers, all competing for the same cores).
    #[inline]
    pub fn wait_parked<R>(
        &self,
        deadline: Deadline,
        mut ready: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        if let Some(r) = ready() {
            return Some(r);
        }
        self.wait_with(WaitStrategy::Park, deadline, &mut ready)
    }

    #[cold]
    fn wait_slow<R>(&self, deadline: Deadline, ready: &mut dyn FnMut() -> Option<R>) -> Option<R> {
        self.wait_with(wait_strategy(), deadline, ready)
    }

    fn wait_with<R>(
        &self,
        strategy: WaitStrategy,
        deadline: Deadline,
        ready: &mut dyn FnMut() -> Option<R>,
    ) -> Option<R> {
        if let Some(r) = self.spin(strategy, deadline, ready) {
            return Some(r);
        }
        self.park(strategy, deadline, ready)
    }

    /// The first phase of a wait, per `strategy`: spin, calling `ready` after each
    /// `spin_loop` hint, for the (adaptive) budget. Reads the clock only every 64 hints
    /// and only for a finite `deadline`, so a wait that spinning satisfies costs no
    /// system call and no clock read. `None`: not ready yet (or the deadline passed).
    pub(crate) fn spin<R>(
        &self,
        strategy: WaitStrategy,
        deadline: Deadline,
        ready: &mut dyn FnMut() -> Option<R>,
    ) -> Option<R> {
        let adaptive = strategy == WaitStrategy::Adaptive;
        let hints = match strategy {
            WaitStrategy::Spin => u32::MAX,
            WaitStrategy::Park => 0,
            _ => spin_budget(),
        };
        let mut i: u32 = 0;
        while i < hints {
            spin_loop();
            if let Some(r) = ready() {
                if adaptive {
                    set_spin_budget(hints.saturating_mul(2).min(SPIN_HINTS_MAX));
                }
                return Some(r);
            }
            // Look at the clock now and then only: it costs ~20 ns.
            if i % 64 == 63 && deadline.expired() {
                return None;
            }
            i = i.wrapping_add(1);
        }
        if adaptive {
            set_spin_budget((hints / 2).max(SPIN_HINTS_MIN));
        }
        None
    }

    /// The second phase of a wait: a few `sched_yield`s (under `Adaptive`), then sleep
    /// on the futex until `ready`, or `deadline` (then `ready` is asked one last time).
    pub(crate) fn park<R>(
        &self,
        strategy: WaitStrategy,
        deadline: Deadline,
        ready: &mut dyn FnMut() -> Option<R>,
    ) -> Option<R> {
        let yields = if strategy == WaitStrategy::Adaptive {
            SPIN_YIELDS
        } else {
            0
        };
        for _ in 0..yields {
            crate::primitive::yield_now();
            if let Some(r) = ready() {
                return Some(r);
            }
        }
        loop {
            if deadline.expired() {
                return ready();
            }
            let (seq, synced) = self.begin_sleep();
            if let Some(r) = ready() {
                self.end_sleep();
                return Some(r);
            }
            let outcome = futex_wait(&self.seq, seq, sleep_until(deadline, synced));
            self.end_sleep();
            if let Some(r) = ready() {
                if outcome == Wake::TimedOut {
                    note_rescue();
                }
                return Some(r);
            }
            if outcome == Wake::TimedOut && deadline.expired() {
                return None;
            }
        }
    }

    /// Wakes every sleeper. Call after the guarded state changed.
    #[inline]
    pub fn notify_all(&self) {
        self.wake(u32::MAX);
    }

    /// Wakes one sleeper. Call after the guarded state changed.
    #[inline]
    pub fn notify_one(&self) {
        self.wake(1);
    }

    #[inline]
    fn wake(&self, count: u32) {
        // SYNC POINT with the heavy barrier in `begin_sleep` (barrier B in the module
        // docs).
        light_barrier();
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake_slow(count);
        }
    }

    #[cold]
    fn wake_slow(&self, count: u32) {
        // SYNC POINT with the Acquire load of `seq` in `wait_slow`.
        self.seq.fetch_add(1, Ordering::Release);
        futex_wake(&self.seq, count);
    }

    /// The futex word, for waiting on several notifiers at once (`futex_waitv`).
    pub fn word(&self) -> &AtomicU32 {
        &self.seq
    }

    /// Announces a sleeper and returns the futex word's value to sleep on, and whether
    /// the barrier reached the wakers (`false`: sleep only in short slices; see
    /// `sys::membarrier`). The caller must then re-check its condition, sleep on
    /// [`word`](Self::word) only while it still holds that value, and call
    /// [`end_sleep`](Self::end_sleep) exactly once. For several notifiers at once,
    /// [`announce`](Self::announce) each, run one `primitive::heavy_barrier`, then read each
    /// [`sleep_value`](Self::sleep_value).
    pub fn begin_sleep(&self) -> (u32, bool) {
        self.announce();
        // SYNC POINT with the light barrier in `wake` (barrier A in the module docs).
        let synced = heavy_barrier();
        (self.sleep_value(), synced)
    }

    /// The first step of [`begin_sleep`](Self::begin_sleep): counts a sleeper.
    pub fn announce(&self) {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
    }

    /// The last step of [`begin_sleep`](Self::begin_sleep): the value to sleep on.
    pub fn sleep_value(&self) -> u32 {
        // SYNC POINT with the Release bump of `seq` in `wake_slow`.
        self.seq.load(Ordering::Acquire)
    }

    /// Withdraws the sleeper announced by [`begin_sleep`](Self::begin_sleep).
    pub fn end_sleep(&self) {
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }

    /// Is anyone (announced as) asleep?
    pub fn has_sleepers(&self) -> bool {
        self.sleepers.load(Ordering::Relaxed) != 0
    }

    /// Forgets every announced sleeper. Only for a caller that knows nobody can be
    /// asleep here but parties that died (a process adopting the end of a dead owner
    /// who was the only one to sleep on this notifier): it must run before the caller
    /// itself announces a sleep here. A killed sleeper never withdraws, and wakers
    /// would otherwise pay a `FUTEX_WAKE` for it on every wake, for good.
    pub(crate) fn reset_sleepers(&self) {
        // Relaxed: the dead announced nothing we must see; our own later
        // `announce` comes after this in program order (same location: coherence).
        self.sleepers.store(0, Ordering::Relaxed);
    }
}

/// Sleeps that ran out their time and then found the awaited state there: a change
/// that landed just as the time ran out, a peer found dead by a caller's liveness check
/// (`ready` may look), or a lost wake-up. Process-local; tests read it through
/// [`__slice_rescues`] to show that the last kind does not happen.
#[allow(clippy::disallowed_types)]
static RESCUES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

#[cold]
fn note_rescue() {
    RESCUES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

/// How many waits in this process ended a timed sleep to find their state already
/// there (see `RESCUES`). For tests; not part of the API.
#[doc(hidden)]
pub fn __slice_rescues() -> u64 {
    RESCUES.load(core::sync::atomic::Ordering::Relaxed)
}

/// Where a sleep that began with `begin_sleep` must end: at `deadline`, or within
/// [`UNSYNCED_SLICE`] if the barrier did not reach the wakers.
#[inline]
fn sleep_until(deadline: Deadline, synced: bool) -> Deadline {
    #[cfg(not(shmkit_loom))]
    if !synced {
        let slice = Deadline::after(UNSYNCED_SLICE);
        return match (deadline.as_ns(), slice.as_ns()) {
            (Some(d), Some(s)) if d <= s => deadline,
            _ => slice,
        };
    }
    let _ = synced;
    deadline
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new()
    }
}

impl core::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Notifier")
            .field("sleepers", &self.sleepers.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;

    #[test]
    fn unsynced_sleeps_are_capped_at_a_slice() {
        let now = crate::sys::time::monotonic_ns();
        // Synced: the caller's deadline stands, whatever it is.
        assert_eq!(sleep_until(Deadline::NEVER, true), Deadline::NEVER);
        // Unsynced: at most one slice, or the caller's deadline if that comes first.
        let capped = sleep_until(Deadline::NEVER, false).as_ns().unwrap();
        let slice = UNSYNCED_SLICE.as_nanos() as u64;
        assert!(capped >= now + slice && capped <= crate::sys::time::monotonic_ns() + slice);
        let soon = Deadline::after(core::time::Duration::from_micros(10));
        assert_eq!(sleep_until(soon, false), soon);
    }
}

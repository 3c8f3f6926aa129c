//! The shared sleep/wake protocol every blocking call in the kit goes through.
//!
//! A [`Notifier`] is 8 bytes of shared memory beside the state it guards:
//!
//! ```text
//! offset size field     written by
//!      0    4 seq       wakers: bumped (Release) before each FUTEX_WAKE; the futex word
//!      4    4 sleepers  waiters: count +1 before sleeping, -1 after (SeqCst); bits
//!                       0..=15 the count, bits 16..=31 the coarse time (seconds of
//!                       CLOCK_MONOTONIC, mod 2^16) of the latest announcement
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
//! ## Sleepers that die asleep
//!
//! A waiter killed while asleep never takes its count back. Left alone, every later
//! wake would then pay a `FUTEX_WAKE` system call forever. So announcements expire:
//! a sleeper sleeps at most [`REANNOUNCE`] at a time and announces itself afresh
//! after each such slice (which refreshes the stamp), and a waker that finds a
//! non-zero count under a stamp older than [`STALE_SECS`] knows that every sleeper
//! it counts is dead (a live one would have re-announced): it wakes once more anyway,
//! then clears the count (a CAS from exactly the word it read, so a fresh
//! announcement is never lost). The one live waiter this can miscount is one stalled
//! between its announcement and its sleep for longer than `STALE_SECS` (a `SIGSTOP`):
//! its own take-back then saturates at zero, and a wake-up aimed at it costs at most
//! one `REANNOUNCE` slice. Under loom time stands still and nothing expires.

use super::strategy::{
    Look, SPIN_HINTS_MAX, SPIN_HINTS_MIN, SPIN_YIELDS, WaitStrategy, set_spin_budget, spin_budget,
    spin_phase, wait_strategy,
};
use crate::primitive::{
    AtomicU32, Deadline, Ordering, Wake, futex_wait, futex_wake, heavy_barrier, light_barrier,
    loom_const_fn, spin_loop,
};

/// The longest sleep between re-checks when the heavy barrier could not reach the
/// wakers (`membarrier` refused in this process): a wake-up lost for want of it
/// costs at most this long.
#[cfg(not(shmkit_loom))]
const UNSYNCED_SLICE: core::time::Duration = core::time::Duration::from_millis(1);

/// Sleepers sleep at most this long at a time, then announce themselves again.
#[cfg(not(shmkit_loom))]
pub(crate) const REANNOUNCE: core::time::Duration = core::time::Duration::from_secs(1);
/// An announcement older than this (in whole seconds) belongs to a dead sleeper.
pub(crate) const STALE_SECS: u32 = 3;
pub(crate) const COUNT_MASK: u32 = 0xFFFF;
pub(crate) const STAMP_SHIFT: u32 = 16;

/// The coarse clock of announcements: seconds of `CLOCK_MONOTONIC`, mod 2^16 (0
/// under loom).
#[inline]
fn stamp_now() -> u32 {
    #[cfg(not(shmkit_loom))]
    {
        ((crate::sys::time::monotonic_ns() / 1_000_000_000) as u32) & COUNT_MASK
    }
    #[cfg(shmkit_loom)]
    {
        0
    }
}

/// A count of announced sleepers whose announcements expire (see the module docs):
/// bits 0..=15 the count, bits 16..=31 the coarse time of the latest announcement.
/// `Notifier` and `Condvar` keep one beside their futex word.
#[repr(transparent)]
pub(crate) struct Sleepers(AtomicU32);

impl Sleepers {
    loom_const_fn! {
        /// Nobody asleep.
        pub(crate) const fn new() -> Self {
            Sleepers(AtomicU32::new(0))
        }
    }

    /// Counts a sleeper and stamps the announcement (SeqCst: the waiter's half of the
    /// Dekker hand-shake with [`load`](Self::load) after the waker's barrier).
    pub(crate) fn announce(&self) {
        let stamp = stamp_now() << STAMP_SHIFT;
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let count = (cur & COUNT_MASK).saturating_add(1).min(COUNT_MASK);
            match self.0.compare_exchange_weak(
                cur,
                stamp | count,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Takes one sleeper back (never below zero: a waker may have cleared a stale
    /// count).
    pub(crate) fn withdraw(&self) {
        let mut cur = self.0.load(Ordering::Relaxed);
        while cur & COUNT_MASK != 0 {
            match self
                .0
                .compare_exchange_weak(cur, cur - 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// The raw word, for [`anyone`](Self::anyone) and [`expire`](Self::expire).
    #[inline]
    pub(crate) fn load(&self, order: Ordering) -> u32 {
        self.0.load(order)
    }

    /// Does `word` count anyone?
    #[inline]
    pub(crate) fn anyone(word: u32) -> bool {
        word & COUNT_MASK != 0
    }

    /// After a waker's `FUTEX_WAKE`: if `word` (as the waker read it) is stale, every
    /// sleeper it counts is dead: clear the count, unless it changed meanwhile.
    pub(crate) fn expire(&self, word: u32) {
        let age = stamp_now().wrapping_sub(word >> STAMP_SHIFT) & COUNT_MASK;
        if age > STALE_SECS {
            let _ = self.0.compare_exchange(
                word,
                word & !COUNT_MASK,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Forgets every sleeper.
    pub(crate) fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// How many are counted.
    pub(crate) fn count(&self) -> u32 {
        self.0.load(Ordering::Relaxed) & COUNT_MASK
    }
}

/// A futex word plus a sleeper count; see the module docs.
#[repr(C)]
pub struct Notifier {
    /// The futex word; its value only matters in that it changes on every wake.
    pub(crate) seq: AtomicU32,
    /// How many waiters are (about to be) asleep on `seq`.
    pub(crate) sleepers: Sleepers,
}

crate::layout::pin_layout!(Sleepers { 0: 0 }, size 4);
crate::layout::pin_layout!(Notifier { seq: 0, sleepers: 4 }, size 8, align 4);

// Used by the sync and channel types built on it.
impl Notifier {
    loom_const_fn! {
        /// A notifier with nobody asleep (all-zero, so zeroed memory is a valid one).
        pub const fn new() -> Self {
            Notifier {
                seq: AtomicU32::new(0),
                sleepers: Sleepers::new(),
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
        ready().or_else(|| self.wait_slow(deadline, &mut ready))
    }

    /// As [`wait_until`](Self::wait_until), but sleeping on the futex at once
    /// ([`WaitStrategy::Park`]) whatever the process-wide strategy: for waiters whose
    /// peers need the CPU more than the waiter needs a fast wake-up (a pool's parent and
    /// its idle workers, all competing for the same cores).
    #[cfg(feature = "std")]
    #[inline]
    pub fn wait_parked<R>(
        &self,
        deadline: Deadline,
        mut ready: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        ready().or_else(|| self.wait_with(WaitStrategy::Park, deadline, &mut ready))
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
    ///
    /// The hint loop of `strategy::spin_phase`, written out here on the round trip's
    /// path: routed through `spin_phase` (which compiles to the same loop), the 8-byte
    /// Pipe round trip measured 10-15% slower in alternating runs of `compare`.
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
        if let Some(r) = spin_phase(0, yields, deadline, |_| {
            ready().map_or(Look::NotYet, Look::Ready)
        }) {
            return Some(r);
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
        let sleepers = self.sleepers.load(Ordering::Relaxed);
        if Sleepers::anyone(sleepers) {
            self.wake_slow(count, sleepers);
        }
    }

    #[cold]
    fn wake_slow(&self, count: u32, sleepers: u32) {
        // SYNC POINT with the Acquire load of `seq` in `wait_slow`.
        self.seq.fetch_add(1, Ordering::Release);
        futex_wake(&self.seq, count);
        self.sleepers.expire(sleepers);
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

    /// The first step of [`begin_sleep`](Self::begin_sleep): counts a sleeper and
    /// stamps the announcement. A sleeper must announce itself again at least every
    /// [`REANNOUNCE`] (see the module docs).
    pub fn announce(&self) {
        self.sleepers.announce();
    }

    /// The last step of [`begin_sleep`](Self::begin_sleep): the value to sleep on.
    pub fn sleep_value(&self) -> u32 {
        // SYNC POINT with the Release bump of `seq` in `wake_slow`.
        self.seq.load(Ordering::Acquire)
    }

    /// Withdraws the sleeper announced by [`begin_sleep`](Self::begin_sleep).
    pub fn end_sleep(&self) {
        self.sleepers.withdraw();
    }

    /// Is anyone (announced as) asleep? (For tests and loom models.)
    #[cfg(any(test, shmkit_loom))]
    pub fn has_sleepers(&self) -> bool {
        self.sleepers.count() != 0
    }

    /// Forgets every announced sleeper: for the sole possible sleeper on this notifier
    /// (the owner of an SPSC end it adopted from a dead process), whose predecessor may
    /// have died asleep.
    pub(crate) fn reset_sleepers(&self) {
        self.sleepers.reset();
    }
}

#[cold]
fn note_rescue() {
    crate::stats::note_slice_rescue();
}

/// Where a sleep that began with `begin_sleep` must end: at `deadline`, or within
/// [`UNSYNCED_SLICE`] if the barrier did not reach the wakers.
#[inline]
fn sleep_until(deadline: Deadline, synced: bool) -> Deadline {
    #[cfg(not(shmkit_loom))]
    {
        let slice = Deadline::after(if synced { REANNOUNCE } else { UNSYNCED_SLICE });
        match (deadline.as_ns(), slice.as_ns()) {
            (Some(d), Some(s)) if d <= s => deadline,
            _ => slice,
        }
    }
    #[cfg(shmkit_loom)]
    {
        let _ = synced;
        deadline
    }
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new()
    }
}

impl core::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Notifier")
            .field("sleepers", &self.sleepers.count())
            .finish()
    }
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;

    #[test]
    fn unsynced_sleeps_are_capped_at_a_slice() {
        let now = crate::sys::time::monotonic_ns();
        // Synced: the caller's deadline, or one REANNOUNCE slice if that is sooner.
        let later = sleep_until(Deadline::NEVER, true).as_ns().unwrap();
        let reannounce = REANNOUNCE.as_nanos() as u64;
        assert!(
            later >= now + reannounce && later <= crate::sys::time::monotonic_ns() + reannounce
        );
        let soon = Deadline::after(core::time::Duration::from_millis(10));
        assert_eq!(sleep_until(soon, true), soon);
        // Unsynced: at most one slice, or the caller's deadline if that comes first.
        let capped = sleep_until(Deadline::NEVER, false).as_ns().unwrap();
        let slice = UNSYNCED_SLICE.as_nanos() as u64;
        assert!(capped >= now + slice && capped <= crate::sys::time::monotonic_ns() + slice);
        let soon = Deadline::after(core::time::Duration::from_micros(10));
        assert_eq!(sleep_until(soon, false), soon);
    }
}

//! The process-wide wait strategy: how blocking calls wait.

// Allowed: the strategy is process-local configuration, never shared memory, and is
// read the same way inside and outside loom.
#![allow(clippy::disallowed_types)]

use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};

/// How blocking operations wait for another process.
///
/// A sleep costs about 15 µs here (the hypervisor must wake an idle vCPU), while a
/// peer that answers within a microsecond is caught by spinning; the strategy picks
/// the trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Spin briefly (with `spin_loop` hints and a few `sched_yield`s), then sleep on
    /// the futex. Low latency when the peer answers soon, no CPU burnt when it doesn't.
    #[default]
    Adaptive,
    /// Busy-spin until the condition holds or the deadline passes; never sleep. The
    /// lowest latency, one core burnt per waiter. Wakers still wake sleepers that use
    /// another strategy.
    Spin,
    /// Sleep on the futex at once. The least CPU, a syscall-priced wake-up.
    Park,
}

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

static STRATEGY: AtomicU8 = AtomicU8::new(0);

/// Sets the wait strategy for every blocking call this process makes from now on.
pub fn set_wait_strategy(strategy: WaitStrategy) {
    let raw = match strategy {
        WaitStrategy::Adaptive => 0,
        WaitStrategy::Spin => 1,
        WaitStrategy::Park => 2,
    };
    STRATEGY.store(raw, Ordering::Relaxed);
}

/// The wait strategy in force in this process.
pub fn wait_strategy() -> WaitStrategy {
    match STRATEGY.load(Ordering::Relaxed) {
        1 => WaitStrategy::Spin,
        2 => WaitStrategy::Park,
        _ => WaitStrategy::Adaptive,
    }
}

/// The adaptive spin budget (see `notifier`): process-local, a hint only, so Relaxed.
/// 0 = not set yet (starts at the maximum).
static SPIN_BUDGET: AtomicU32 = AtomicU32::new(0);

/// Slow waits so far (wrapping): every `PROBE_EVERY`th one spins the full budget.
static SLOW_WAITS: AtomicU32 = AtomicU32::new(0);

/// How often a wait probes with the full spin budget although the budget has sunk:
/// without it, two processes that both sleep would each see the other answer only
/// after a wake-up, and the budget could never recover when they move to separate
/// CPUs. One probe in 32 costs a shared-CPU pair about 3% of a round trip.
const PROBE_EVERY: u32 = 32;

/// The adaptive spin budget for the next slow wait, in `spin_loop` hints.
pub(crate) fn spin_budget() -> u32 {
    let n = SLOW_WAITS.fetch_add(1, Ordering::Relaxed);
    match SPIN_BUDGET.load(Ordering::Relaxed) {
        0 => SPIN_HINTS_MAX,
        _ if n % PROBE_EVERY == PROBE_EVERY - 1 => SPIN_HINTS_MAX,
        b => b,
    }
}

/// Sets the adaptive spin budget.
pub(crate) fn set_spin_budget(hints: u32) {
    SPIN_BUDGET.store(hints, Ordering::Relaxed);
}

/// The spin phase, in hints and yields, of the locks that wait on their own futex
/// word (`Mutex`, `Condvar`): a fixed [`SPIN_HINTS`] under `Adaptive`, since a lock is
/// held for a short, bounded time.
pub(crate) fn fixed_spin(strategy: WaitStrategy) -> (u32, u32) {
    match strategy {
        WaitStrategy::Spin => (u32::MAX, 0),
        WaitStrategy::Park => (0, 0),
        WaitStrategy::Adaptive => (SPIN_HINTS, SPIN_YIELDS),
    }
}

/// What one look during [`spin_phase`] found.
pub(crate) enum Look<R> {
    /// The wait is over, with this.
    Ready(R),
    /// Not yet: go on spinning.
    NotYet,
    /// End the spin phase now (the caller goes on to sleep, or gives up).
    Stop,
}

/// The spin phase every blocking wait begins with: up to `hints` `spin_loop` hints,
/// then up to `yields` `sched_yield`s, with a `look` after each. The clock is read only
/// after every 64th hint's look, and before each yield: the phase ends early once
/// `deadline` has passed. `look(true)` marks every 64th hint's look, for work a caller
/// does only now and then (a check of the holder's liveness).
///
/// `None`: the phase ended (its budget spent, the deadline passed, or a look said
/// [`Look::Stop`]) without the wait being over.
#[inline(always)]
pub(crate) fn spin_phase<R>(
    hints: u32,
    yields: u32,
    deadline: crate::primitive::Deadline,
    mut look: impl FnMut(bool) -> Look<R>,
) -> Option<R> {
    let mut i: u32 = 0;
    while i < hints {
        crate::primitive::spin_loop();
        // Look at the clock now and then only: it costs ~20 ns.
        let periodic = i % 64 == 63;
        match look(periodic) {
            Look::Ready(r) => return Some(r),
            Look::Stop => return None,
            Look::NotYet => {}
        }
        if periodic && deadline.expired() {
            return None;
        }
        i = i.wrapping_add(1);
    }
    for _ in 0..yields {
        if deadline.expired() {
            return None;
        }
        crate::primitive::yield_now();
        match look(false) {
            Look::Ready(r) => return Some(r),
            Look::Stop => return None,
            Look::NotYet => {}
        }
    }
    None
}

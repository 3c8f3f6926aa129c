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
        0 => super::notifier::SPIN_HINTS_MAX,
        _ if n % PROBE_EVERY == PROBE_EVERY - 1 => super::notifier::SPIN_HINTS_MAX,
        b => b,
    }
}

/// Sets the adaptive spin budget.
pub(crate) fn set_spin_budget(hints: u32) {
    SPIN_BUDGET.store(hints, Ordering::Relaxed);
}

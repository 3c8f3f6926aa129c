//! Identity and liveness: who the caller is, and whether the owner of a record is
//! still alive.
//!
//! Shared words (lock words, queue claims, pipe-end owners) record *participant ids*,
//! never pids or tids: see `sys::registry` for what an id is and why. Every algorithm
//! asks the functions here and nothing else. Under loom each model thread has an id of
//! its own and stands for a process (see `loom_ids`).

use core::time::Duration;

pub(crate) use crate::sys::proc::Liveness;
// The bits a participant id may use (`0x3FFF_FFFF`): ids are non-zero and below
// `2^30`, so that they fit a 32-bit futex word beside two flag bits. `ID_MASK` itself
// is never an id. The registry's id layout defines it; under loom it bounds the model's
// ids just the same.
pub(crate) use crate::sys::registry::ID_MASK;

/// The calling process's participant id (non-zero, `< ID_MASK`): the owner of things a
/// process holds as a whole (pipe ends, queue claims). Under loom, the model thread's.
#[inline]
pub(crate) fn my_process_id() -> u32 {
    #[cfg(not(shmkit_loom))]
    {
        crate::sys::ids::process_id()
    }
    #[cfg(shmkit_loom)]
    {
        super::loom_ids::current() as u32
    }
}

/// The calling thread's participant id (non-zero, `< ID_MASK`): the owner of things a
/// thread holds (lock words). Under loom, the model thread's (each stands for a process).
#[inline]
pub(crate) fn my_thread_id() -> u32 {
    #[cfg(not(shmkit_loom))]
    {
        crate::sys::ids::thread_id()
    }
    #[cfg(shmkit_loom)]
    {
        super::loom_ids::current() as u32
    }
}

/// Is participant `id` (a process's or a thread's) alive? `Unknown` must be treated as
/// alive: a failed check may cost latency, never safety. `Dead` is final: an id that
/// was found dead never comes back to life. Under loom: dead once the model thread with
/// that id called [`loom_die`](super::loom_die).
pub(crate) fn id_liveness(id: u32) -> Liveness {
    #[cfg(not(shmkit_loom))]
    {
        crate::sys::ids::liveness(id)
    }
    #[cfg(shmkit_loom)]
    {
        super::loom_ids::liveness(id as i32)
    }
}

/// Is a (possibly system-call priced) liveness check due on this thread? True at most
/// once per `period` per thread (with `std`; always without it, and under loom): for
/// non-blocking calls such as `try_lock`, which must notice a dead holder without
/// making every failed attempt a system call.
#[inline]
pub(crate) fn liveness_check_due(period: Duration) -> bool {
    #[cfg(all(feature = "std", not(shmkit_loom)))]
    {
        std::thread_local! {
            static NEXT: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
        }
        let now = crate::sys::time::monotonic_ns();
        NEXT.try_with(|next| {
            if now < next.get() {
                return false;
            }
            let period = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
            next.set(now.saturating_add(period));
            true
        })
        .unwrap_or(true)
    }
    #[cfg(not(all(feature = "std", not(shmkit_loom))))]
    {
        let _ = period;
        true
    }
}

/// The participant id of the child being handed values by [`crate::process`] right
/// now: set on the parent's side while it drops the closure it just forked with, so
/// that a handle moved into that closure can pass what it owns to the child (a pipe end
/// is pre-claimed for the child). `None` everywhere else.
#[inline]
pub(crate) fn handoff_target() -> Option<u32> {
    #[cfg(all(feature = "std", not(shmkit_loom)))]
    {
        crate::sys::ids::handoff_target()
    }
    #[cfg(not(all(feature = "std", not(shmkit_loom))))]
    {
        None
    }
}

// Lock words keep their two flag bits above the id (`sync::raw_mutex`).
const _: () = assert!(ID_MASK == 0x3FFF_FFFF);

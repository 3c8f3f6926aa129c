//! The primitive facade: the only place that names atomics, `UnsafeCell`, spin hints
//! and the futex pair for the algorithms above it.
//!
//! Built normally, these are `core`'s types and the shared futex of [`crate::sys`].
//! Built with `RUSTFLAGS="--cfg shmkit_loom"`, they come from [`loom`], so every lock,
//! ring and queue runs unchanged inside loom's model checker:
//!
//! - The futex is modelled exactly as the kernel defines it: `futex_wait` compares the
//!   word and enqueues the thread under one lock (the kernel's hash-bucket lock), then
//!   parks; `futex_wake` dequeues and unparks up to `count` waiters. A missed wake-up
//!   is therefore not papered over by polling: loom reports it as a deadlock.
//! - Time is a model thread's choice: a [`Deadline`] from a zero timeout has always
//!   expired; every other finite deadline expires at once, together, when some model
//!   thread calls [`loom_clock_tick`] (models that never call it keep time standing
//!   still). The tick also ends every timed futex sleep, so loom explores each
//!   timeout racing with each wake-up.
//! - A death ([`loom_die`], or a die point: [`loom_die_at`]) lets time pass too, but
//!   only as far as crash detection needs: each finite deadline whose thread has not
//!   yet seen that death expire one of its deadlines passes, and every timed sleep
//!   ends. So after each death, every waiting thread's current sleep slice ends once
//!   and it looks again (at the dead process's claims, say), as the real clock would
//!   make it, while a thread that sleeps again after that sleeps until woken.
//!
//! `clippy.toml` forbids naming `core::sync::atomic` and `core::cell::UnsafeCell`
//! anywhere else in the crate's algorithms.
//!
//! The facade, file by file:
//!
//! | file | holds |
//! |---|---|
//! | `atomics` | the atomics and `Ordering`, `UnsafeCell`, the spin and yield hints, `loom_const_fn!` |
//! | `deadline` | [`Deadline`], read from `CLOCK_MONOTONIC` (or the model's clock) |
//! | `futex` | `futex_wait`, `futex_waitv`, `futex_wake` and the waker's and waiter's barriers |
//! | `identity` | participant ids and their liveness: `my_process_id`, `my_thread_id`, `id_liveness`, `ID_MASK`, ... |
//! | `hooks` | the die points in the protocols' code, and what loom models call: `loom_clock_tick`, `loom_die`, ... |
//! | `loom_clock`, `loom_futex`, `loom_ids` | under loom only: the model's clock, futex and participant ids |
//!
//! Each file takes from those above it in this table (the loom models from the
//! facade's types), never the other way round.

mod atomics;
mod deadline;
mod futex;
mod hooks;
mod identity;
#[cfg(shmkit_loom)]
mod loom_clock;
#[cfg(shmkit_loom)]
mod loom_futex;
#[cfg(shmkit_loom)]
mod loom_ids;

pub(crate) use atomics::{
    AtomicU32, AtomicU64, Ordering, UnsafeCell, loom_const_fn, spin_loop, yield_now,
};
pub use deadline::Deadline;
pub(crate) use futex::{Wake, futex_wait, futex_waitv, futex_wake, heavy_barrier, light_barrier};
pub(crate) use hooks::die_point;
#[cfg(shmkit_loom)]
pub use hooks::{loom_clock_tick, loom_die, loom_die_at, loom_until_death};
pub(crate) use identity::{
    ID_MASK, Liveness, handoff_target, id_liveness, liveness_check_due, my_process_id, my_thread_id,
};

//! The sync layer: futex-based locks and signals that live in shared memory.
//!
//! Every blocking call waits through one protocol (spin per the process's
//! [`WaitStrategy`], then sleep on a shared futex; wakers make a system call only
//! when someone sleeps), and has a `_timeout` form on `CLOCK_MONOTONIC` that never
//! returns before its deadline.
//!
//! | Python | shmkit |
//! |---|---|
//! | `Lock` | [`Mutex<T>`] (robust: a dead holder is reported as [`LockError::OwnerDead`]) |
//! | `RLock` | [`ReentrantMutex<T>`] |
//! | `Semaphore`, `BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`] |
//! | `Condition` | [`Condvar`] with a [`Mutex`] |
//! | `Event` | [`Event`] |
//! | `Barrier` | [`Barrier`] |
//!
//! Every type is `#[repr(C)]` with its layout pinned at compile time, so it can sit in
//! a [`Shared<T>`](crate::Shared) or in a `#[repr(C)]` struct of your own that is.

pub(crate) mod barrier;
mod condvar;
pub(crate) mod event;
mod lock_error;
mod mutex;
pub(crate) mod notifier;
pub(crate) mod raw_mutex;
mod reentrant;
mod semaphore;
mod strategy;

/// Counts a lock guard made on this thread (see `sys::held`).
#[inline]
pub(crate) fn count_guard_made() {
    #[cfg(feature = "std")]
    crate::sys::held::made();
}

/// Counts a lock guard dropped on this thread.
#[inline]
pub(crate) fn count_guard_dropped() {
    #[cfg(feature = "std")]
    crate::sys::held::dropped();
}

pub use barrier::{Barrier, BarrierError, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use lock_error::{LockError, LockResult};
pub use mutex::{Mutex, MutexGuard};
pub use reentrant::{ReentrantMutex, ReentrantMutexGuard};
pub use semaphore::{BoundedSemaphore, Semaphore};
pub use strategy::{WaitStrategy, set_wait_strategy, wait_strategy};

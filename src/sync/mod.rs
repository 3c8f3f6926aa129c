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
pub(crate) mod strategy;

/// The methods and impls both robust locks ([`Mutex`], [`ReentrantMutex`]) have word
/// for word: `$Lock<T>` has a `raw: RawMutex` word, a `data: UnsafeCell<T>` and a
/// `new(T)`.
macro_rules! lock_data_access {
    ($Lock:ident) => {
        impl<T> $Lock<T> {
            /// Is it held right now (or not recoverable, so that it can never be
            /// taken)? A snapshot, stale as soon as it returns.
            pub fn is_locked(&self) -> bool {
                self.raw.is_locked()
            }

            /// The data, through exclusive access (no locking needed).
            pub fn get_mut(&mut self) -> &mut T {
                // SAFETY: `&mut self` excludes every other access to the data.
                self.data.with_mut(|p| unsafe { &mut *p })
            }

            /// Consumes the lock, returning the data.
            pub fn into_inner(self) -> T {
                self.data.into_inner()
            }
        }

        impl<T: Default> Default for $Lock<T> {
            fn default() -> Self {
                $Lock::new(T::default())
            }
        }
    };
}
use lock_data_access;

/// What every lock guard carries: it counts the guards alive on this thread (see
/// `sys::held`: made when the guard is, dropped after the guard's own `drop` has
/// unlocked), and makes the guard `!Send + !Sync`, so that no guard reaches another
/// thread or a forked child (the lock word names the holding thread).
pub(crate) struct GuardMark(core::marker::PhantomData<*const ()>);

impl GuardMark {
    /// Counts a guard made on this thread.
    #[inline]
    pub(crate) fn new() -> Self {
        #[cfg(feature = "std")]
        crate::sys::held::made();
        GuardMark(core::marker::PhantomData)
    }
}

impl Drop for GuardMark {
    /// Counts a guard dropped on this thread.
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "std")]
        crate::sys::held::dropped();
    }
}

pub use barrier::{Barrier, BarrierError, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use lock_error::{LockError, LockResult};
pub use mutex::{Mutex, MutexGuard};
pub use reentrant::{ReentrantMutex, ReentrantMutexGuard};
pub use semaphore::{BoundedSemaphore, Semaphore};
pub use strategy::{WaitStrategy, set_wait_strategy, wait_strategy};

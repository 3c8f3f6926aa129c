//! The result of taking a robust lock.

use core::fmt;

/// The result of a lock operation: the guard, or why there is none (or why it comes
/// with a warning, for [`LockError::OwnerDead`]).
pub type LockResult<G> = Result<G, LockError<G>>;

/// Why a lock operation did not simply succeed.
///
/// `OwnerDead` still hands over the guard: the caller holds the lock, and decides
/// whether the data it protects is usable.
pub enum LockError<G> {
    /// The previous holder died while holding the lock; the caller now holds it.
    /// Repair the data, then call the guard's `make_consistent`; dropping the guard
    /// without it makes the lock [`NotRecoverable`](LockError::NotRecoverable) for
    /// everyone (as `PTHREAD_MUTEX_ROBUST` does).
    OwnerDead(G),
    /// A holder that took the lock from a dead one released it without declaring the
    /// data consistent: the lock can never be taken again.
    NotRecoverable,
    /// `try_lock`: the lock is held.
    WouldBlock,
    /// `lock_timeout`: the deadline passed with the lock still held.
    Timeout,
    /// The lock's shared state failed validation (a peer scribbled on it): for
    /// example a `ReentrantMutex` nesting count at its maximum.
    Corrupted,
}

impl<G> LockError<G> {
    /// The guard of an [`OwnerDead`](LockError::OwnerDead) error; `None` otherwise.
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDead(guard) => Some(guard),
            _ => None,
        }
    }

    /// Applies `f` to the guard of an `OwnerDead` error, keeping every other variant.
    pub(crate) fn map<H>(self, f: impl FnOnce(G) -> H) -> LockError<H> {
        match self {
            LockError::OwnerDead(guard) => LockError::OwnerDead(f(guard)),
            LockError::NotRecoverable => LockError::NotRecoverable,
            LockError::WouldBlock => LockError::WouldBlock,
            LockError::Timeout => LockError::Timeout,
            LockError::Corrupted => LockError::Corrupted,
        }
    }

    /// Is this [`Timeout`](LockError::Timeout)? (Every error type of the kit that can
    /// time out has this method.)
    pub fn is_timeout(&self) -> bool {
        matches!(self, LockError::Timeout)
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDead(_) => f.write_str("OwnerDead(..)"),
            LockError::NotRecoverable => f.write_str("NotRecoverable"),
            LockError::WouldBlock => f.write_str("WouldBlock"),
            LockError::Timeout => f.write_str("Timeout"),
            LockError::Corrupted => f.write_str("Corrupted"),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::OwnerDead(_) => {
                "the previous holder of the lock died; the data may be inconsistent"
            }
            LockError::NotRecoverable => {
                "the lock is not recoverable (a dead holder's data was never made consistent)"
            }
            LockError::WouldBlock => "the lock is held",
            LockError::Timeout => "timed out waiting for the lock",
            LockError::Corrupted => "the lock's shared state failed validation (corrupted)",
        })
    }
}

impl<G> core::error::Error for LockError<G> {}

//! Every operation error of the kit converts into [`Error`] with `?`.

use super::{Error, SegmentError, SegmentName};

impl<T> From<crate::PutError<T>> for Error {
    /// `Full` and `Stalled` become [`Error::WouldBlock`]; the item is dropped.
    fn from(e: crate::PutError<T>) -> Self {
        match e {
            crate::PutError::Full(_) | crate::PutError::Stalled(_) => Error::WouldBlock,
            crate::PutError::Timeout(_) => Error::Timeout,
            crate::PutError::Closed(_) => Error::Closed,
            crate::PutError::Corrupted(_) => Error::Corrupted,
        }
    }
}

impl From<crate::GetError> for Error {
    /// `Empty` and `Stalled` become [`Error::WouldBlock`].
    fn from(e: crate::GetError) -> Self {
        match e {
            crate::GetError::Empty | crate::GetError::Stalled => Error::WouldBlock,
            crate::GetError::Timeout => Error::Timeout,
            crate::GetError::Closed => Error::Closed,
            crate::GetError::Corrupted => Error::Corrupted,
        }
    }
}

impl<G> From<crate::LockError<G>> for Error {
    /// `OwnerDead(guard)` becomes [`Error::OwnerDead`]: the guard is dropped without
    /// `make_consistent`, so the lock becomes not recoverable for everyone (as if this
    /// holder had died too). Match `OwnerDead` yourself where the data can be repaired.
    fn from(e: crate::LockError<G>) -> Self {
        match e {
            crate::LockError::OwnerDead(_) => Error::OwnerDead,
            crate::LockError::NotRecoverable => Error::NotRecoverable,
            crate::LockError::WouldBlock => Error::WouldBlock,
            crate::LockError::Timeout => Error::Timeout,
            crate::LockError::Corrupted => Error::Corrupted,
        }
    }
}

impl From<crate::BarrierError> for Error {
    fn from(e: crate::BarrierError) -> Self {
        match e {
            crate::BarrierError::Broken => Error::Broken,
            crate::BarrierError::Timeout => Error::Timeout,
            crate::BarrierError::Corrupted => Error::Corrupted,
        }
    }
}

#[cfg(feature = "std")]
impl From<crate::PoolError> for Error {
    fn from(e: crate::PoolError) -> Self {
        // Braced patterns match whatever shape a variant takes.
        #[allow(unreachable_patterns)]
        match e {
            crate::PoolError::WorkerDied { pid, signal, .. } => Error::WorkerDied { pid, signal },
            #[allow(clippy::unneeded_struct_pattern)]
            crate::PoolError::TaskPanicked { .. } => Error::TaskPanicked,
            crate::PoolError::Closed => Error::Closed,
            crate::PoolError::Timeout => Error::Timeout,
            crate::PoolError::Other { 0: e, .. } => e,
            // The pool's zygote died, and every worker with it.
            crate::PoolError::ZygoteDied { pid, signal } => Error::WorkerDied { pid, signal },
            _ => Error::InvalidArgument,
        }
    }
}

impl From<SegmentError> for Error {
    /// Keeps the kind, the errno and the first [`SegmentName::MAX`] bytes of the name.
    fn from(e: SegmentError) -> Self {
        Error::Segment {
            kind: e.kind,
            errno: e.errno as i16,
            name: SegmentName::new(e.name()),
        }
    }
}

// ---- segment errors --------------------------------------------------------------

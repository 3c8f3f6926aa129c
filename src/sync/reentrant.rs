//! [`ReentrantMutex<T>`]: Python's `RLock`, robust, in shared memory.

use core::fmt;
use core::ops::Deref;
use core::time::Duration;

use super::GuardMark;
use super::lock_error::{LockError, LockResult};
use super::raw_mutex::{Acquired, RawMutex, WordDebug, my_tid};
use crate::primitive::{AtomicU32, Deadline, Ordering, UnsafeCell, loom_const_fn};
use crate::segment::ShmSafe;

/// A robust lock that the thread holding it may take again (Python's `RLock`); each
/// lock is undone by one guard drop, and the lock is released with the last.
///
/// It gives shared access only (`Deref`, no `DerefMut`), since two guards of one
/// thread can coexist; put a `Cell`-like type of your own, or atomics, inside.
/// Owner death and forked children behave as for [`Mutex`](super::Mutex).
///
/// # Layout
///
/// ```text
/// offset            size           field  written by
///      0               4           word   the robust lock word (see `Mutex`)
///      4               4           count  the holder only: how many guards it has
/// align_of::<T>()  size_of::<T>()  data
/// ```
///
/// # Examples
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use shmkit::ReentrantMutex;
///
/// let m = ReentrantMutex::new(AtomicU32::new(0));
/// let outer = m.lock().unwrap();
/// let inner = m.lock().unwrap(); // the same thread: no deadlock
/// inner.fetch_add(1, Ordering::Relaxed);
/// drop(inner);
/// assert!(m.is_locked());
/// drop(outer);
/// assert!(!m.is_locked());
/// ```
#[repr(C)]
pub struct ReentrantMutex<T> {
    pub(crate) raw: RawMutex,
    /// Nesting depth; meaningful only while the word names a holder.
    pub(crate) count: AtomicU32,
    data: UnsafeCell<T>,
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(core::mem::size_of::<ReentrantMutex<u32>>() == 12);
crate::layout::pin_layout!(ReentrantMutex<u64> { raw: 0, count: 4, data: 8 }, size 16);

// SAFETY: guards give only `&T`, to the one holding thread at a time (several guards
// of that thread may coexist): like `std`'s `ReentrantLock`, `T: Send` suffices since
// no two threads ever see the data at once.
unsafe impl<T: Send> Sync for ReentrantMutex<T> {}
// SAFETY: owning the lock owns the `T`.
unsafe impl<T: Send> Send for ReentrantMutex<T> {}
// SAFETY: repr(C), two u32 words (any bit pattern decodes) and a ShmSafe `T`.
unsafe impl<T: ShmSafe> ShmSafe for ReentrantMutex<T> {
    crate::segment::kit_identity!(ReentrantMutex, 1, "shmkit::ReentrantMutex", shm T);
}
// SAFETY: all-zero: unlocked, consistent, count 0, zeroed `T`.
#[cfg(not(shmkit_loom))]
unsafe impl<T: bytemuck::Zeroable> bytemuck::Zeroable for ReentrantMutex<T> {}

impl<T> ReentrantMutex<T> {
    loom_const_fn! {
        /// An unlocked reentrant mutex holding `value`.
        pub const fn new(value: T) -> Self {
            ReentrantMutex {
                raw: RawMutex::new(),
                count: AtomicU32::new(0),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Locks, waiting as long as it takes; at once if this thread holds it already.
    ///
    /// # Errors
    ///
    /// `OwnerDead(guard)` if the previous holder died holding it, `NotRecoverable`
    /// after an `OwnerDead` guard was dropped unrepaired (as for `Mutex::lock`);
    /// `Corrupted` if the shared nesting count is at its maximum (no thread nests a
    /// lock `u32::MAX` times: a peer scribbled on it).
    pub fn lock(&self) -> LockResult<ReentrantMutexGuard<'_, T>> {
        self.lock_deadline(Deadline::NEVER, LockError::Timeout)
    }

    /// Locks if free or held by this thread, without waiting; a dead holder is
    /// detected as by [`Mutex::try_lock`](super::Mutex::try_lock).
    ///
    /// # Errors
    ///
    /// `WouldBlock` if another thread holds it; `OwnerDead`, `NotRecoverable` as for
    /// [`lock`](Self::lock).
    pub fn try_lock(&self) -> LockResult<ReentrantMutexGuard<'_, T>> {
        let tid = my_tid();
        if let Some(relocked) = self.relock(tid) {
            return relocked;
        }
        self.finish(self.raw.try_lock_checked(tid, false), LockError::WouldBlock)
    }

    /// Locks, waiting at most `timeout` (never returning `Timeout` before it passed).
    ///
    /// # Errors
    ///
    /// `Timeout` if another thread still holds it; `OwnerDead`, `NotRecoverable` as
    /// for [`lock`](Self::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<ReentrantMutexGuard<'_, T>> {
        self.lock_deadline(Deadline::after(timeout), LockError::Timeout)
    }

    fn lock_deadline<'a>(
        &'a self,
        deadline: Deadline,
        busy: LockError<ReentrantMutexGuard<'a, T>>,
    ) -> LockResult<ReentrantMutexGuard<'a, T>> {
        let tid = my_tid();
        if let Some(relocked) = self.relock(tid) {
            return relocked;
        }
        self.finish(self.raw.lock(tid, deadline, false), busy)
    }

    /// A nested lock by the holder; `Some(Err(Corrupted))` if the count cannot grow.
    fn relock(&self, tid: u32) -> Option<LockResult<ReentrantMutexGuard<'_, T>>> {
        if !self.raw.is_owned_by(tid) {
            return None;
        }
        // Only the holder writes `count` (a scribbler aside: then it is checked).
        let count = self.count.load(Ordering::Relaxed);
        let Some(next) = count.checked_add(1) else {
            return Some(Err(LockError::Corrupted));
        };
        self.count.store(next, Ordering::Relaxed);
        Some(Ok(ReentrantMutexGuard::new(self)))
    }

    fn finish<'a>(
        &'a self,
        got: Acquired,
        busy: LockError<ReentrantMutexGuard<'a, T>>,
    ) -> LockResult<ReentrantMutexGuard<'a, T>> {
        got.into_result(
            || {
                // The first guard (a dead holder's count means nothing now).
                self.count.store(1, Ordering::Relaxed);
                ReentrantMutexGuard::new(self)
            },
            busy,
        )
    }
}

super::lock_data_access!(ReentrantMutex);

impl<T> fmt::Debug for ReentrantMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReentrantMutex")
            .field("state", &WordDebug(self.raw.load()))
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Shared access to a [`ReentrantMutex`]'s data; the last guard of the holding thread
/// unlocks when dropped. Neither `Send` nor `Sync`, so no forked child can get one
/// (see [`MutexGuard`](super::MutexGuard)):
///
/// ```compile_fail
/// use shmkit::{Process, ReentrantMutex, Shared};
/// let m = Shared::new(ReentrantMutex::new(0u64)).unwrap();
/// let g = m.lock().unwrap();
/// let _ = Process::spawn(|| { let _ = *g; 0 }); // error: not `Sync`
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ReentrantMutexGuard<'a, T> {
    lock: &'a ReentrantMutex<T>,
    /// `!Send + !Sync`, and counted.
    _mark: GuardMark,
}

impl<'a, T> ReentrantMutexGuard<'a, T> {
    fn new(lock: &'a ReentrantMutex<T>) -> Self {
        ReentrantMutexGuard {
            lock,
            _mark: GuardMark::new(),
        }
    }

    /// Declares the data consistent after `OwnerDead`; a no-op otherwise.
    pub fn make_consistent(&self) {
        self.lock.raw.make_consistent_as(my_tid());
    }
}

impl<T> Deref for ReentrantMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: only the holding thread has guards, and they give shared access only.
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T> Drop for ReentrantMutexGuard<'_, T> {
    fn drop(&mut self) {
        let tid = my_tid();
        // A guard inherited through fork (another tid) leaves the lock alone.
        if self.lock.raw.is_owned_by(tid) {
            let count = self.lock.count.load(Ordering::Relaxed);
            if count > 1 {
                self.lock.count.store(count - 1, Ordering::Relaxed);
            } else {
                self.lock.count.store(0, Ordering::Relaxed);
                self.lock.raw.unlock_as(tid);
            }
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for ReentrantMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

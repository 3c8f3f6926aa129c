//! [`Mutex<T>`]: a robust, futex-based mutual-exclusion lock in shared memory
//! (Python's `Lock`, with the data it guards inside).

use core::fmt;
use core::ops::{Deref, DerefMut};
use core::time::Duration;

use super::GuardMark;
use super::lock_error::{LockError, LockResult};
use super::raw_mutex::{Acquired, RawMutex, WordDebug, my_tid};
use crate::primitive::{Deadline, UnsafeCell, loom_const_fn};
use crate::segment::ShmSafe;

/// A robust mutual-exclusion lock that can live in shared memory, guarding a `T`.
///
/// - No system call when uncontended: lock is one CAS, unlock one swap (plus a
///   `FUTEX_WAKE` only if someone sleeps).
/// - **Robust**: if the holder dies (`kill -9`, even before its parent reaped it), the
///   next locker gets [`LockError::OwnerDead`] with the guard, within about 5 ms of the
///   death when it was already waiting. After [`MutexGuard::make_consistent`] the
///   mutex is normal again; if that guard is dropped without it, every later lock gets
///   [`LockError::NotRecoverable`].
/// - A forked child that inherited a held guard cannot release its parent's lock: the
///   guard's drop checks that the caller's thread is the one recorded in the lock word.
///
/// Not reentrant: a thread that locks a mutex it holds waits for itself (until its
/// deadline, with `lock_timeout`). See [`ReentrantMutex`](super::ReentrantMutex).
///
/// # Layout
///
/// ```text
/// offset            size           field  written by
///      0               4           word   the lock word (see below)
/// align_of::<T>()  size_of::<T>()  data   the holder only
/// ```
///
/// The lock word is in the kernel's robust-futex format, owner tid | `WAITERS` (bit
/// 31) | `OWNER_DIED` (bit 30); `0` is unlocked and consistent, so zeroed memory is an
/// unlocked mutex. The full state table is in the source (`src/sync/raw_mutex.rs`).
///
/// # Examples
///
/// ```
/// use shmkit::{Mutex, Process, Shared};
///
/// let total = Shared::new(Mutex::new(0u64))?;
/// let mut child = Process::spawn(|| {
///     *total.lock().unwrap() += 1;
///     0
/// })?;
/// *total.lock().unwrap() += 1;
/// child.join()?;
/// assert_eq!(*total.lock().unwrap(), 2);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct Mutex<T> {
    pub(crate) raw: RawMutex,
    data: UnsafeCell<T>,
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(core::mem::size_of::<Mutex<u32>>() == 8);
crate::layout::pin_layout!(Mutex<u64> { raw: 0, data: 8 }, size 16);
crate::layout::pin_layout!(Mutex<u8> { raw: 0, data: 4 }, size 8, align 4);

// SAFETY: the lock gives one thread at a time access to `T`, which may therefore be
// used from (and sent to) any thread: the `Sync` bound of `std::sync::Mutex`.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: owning the mutex owns the `T`.
unsafe impl<T: Send> Send for Mutex<T> {}

// SAFETY: repr(C), a u32 lock word (valid in every state a peer can leave, every bit
// pattern decodes) and a ShmSafe `T`; no pointers, no Drop needed; Sync/Send above.
unsafe impl<T: ShmSafe> ShmSafe for Mutex<T> {
    crate::segment::kit_identity!(Mutex, 1, "shmkit::Mutex", shm T);
}

// SAFETY: an all-zero word is an unlocked, consistent lock, and `T` is zeroable.
#[cfg(not(shmkit_loom))]
unsafe impl<T: bytemuck::Zeroable> bytemuck::Zeroable for Mutex<T> {}

impl<T> Mutex<T> {
    loom_const_fn! {
        /// An unlocked mutex holding `value`.
        pub const fn new(value: T) -> Self {
            Mutex {
                raw: RawMutex::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Locks, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// - [`LockError::OwnerDead`]`(guard)`: the previous holder died holding it; the
    ///   lock is now held by the caller (see [`MutexGuard::make_consistent`]).
    /// - [`LockError::NotRecoverable`]: an earlier `OwnerDead` guard was dropped
    ///   without `make_consistent`.
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.lock_deadline(Deadline::NEVER)
    }

    /// Locks if it is free now, without waiting. If it is held, the holder's
    /// liveness is checked (at most once per 5 ms per thread, since a check may cost a
    /// system call), and a dead holder's lock is taken (`OwnerDead`), as glibc's robust
    /// `pthread_mutex_trylock` returns `EOWNERDEAD`. A free lock costs one CAS.
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if held by a live thread; `OwnerDead` and
    /// `NotRecoverable` as for [`lock`](Self::lock).
    #[inline]
    pub fn try_lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.finish(
            self.raw.try_lock_checked(my_tid(), false),
            LockError::WouldBlock,
        )
    }

    /// Locks, waiting at most `timeout` (never returning `Timeout` before it has
    /// passed). Even with a zero timeout, a held lock's holder is checked for liveness
    /// once before giving up.
    ///
    /// # Errors
    ///
    /// [`LockError::Timeout`] if still held at the deadline; `OwnerDead` and
    /// `NotRecoverable` as for [`lock`](Self::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<MutexGuard<'_, T>> {
        self.lock_deadline(Deadline::after(timeout))
    }

    #[inline]
    pub(crate) fn lock_deadline(&self, deadline: Deadline) -> LockResult<MutexGuard<'_, T>> {
        self.finish(self.raw.lock(my_tid(), deadline, false), LockError::Timeout)
    }

    /// Locks for a cell of `Pod` data, which is valid whatever a dead holder left:
    /// recovers from a dead holder (and from a not-recoverable word) at once.
    pub(crate) fn lock_recovering(&self) -> MutexGuard<'_, T> {
        loop {
            if let Some(guard) = self.lock_recovering_until(Deadline::NEVER) {
                return guard;
            }
        }
    }

    /// As [`lock_recovering`](Self::lock_recovering), giving up at `deadline`.
    pub(crate) fn lock_recovering_until(&self, deadline: Deadline) -> Option<MutexGuard<'_, T>> {
        let tid = my_tid();
        match self.raw.lock(tid, deadline, true) {
            Acquired::Locked => Some(MutexGuard::new(self)),
            Acquired::OwnerDead => {
                self.raw.make_consistent_as(tid);
                Some(MutexGuard::new(self))
            }
            // Busy: the deadline passed. (NotRecoverable is taken over when
            // recovering; should a scribbler make it reappear, the caller asks again.)
            Acquired::NotRecoverable | Acquired::Busy => None,
        }
    }

    /// `try_lock` for a cell of `Pod` data: recovers from a dead holder (and a
    /// not-recoverable word) at once; `None` if held by a live thread.
    pub(crate) fn try_lock_recovering(&self) -> Option<MutexGuard<'_, T>> {
        let tid = my_tid();
        match self.raw.try_lock_checked(tid, true) {
            Acquired::Locked => Some(MutexGuard::new(self)),
            Acquired::OwnerDead => {
                self.raw.make_consistent_as(tid);
                Some(MutexGuard::new(self))
            }
            Acquired::NotRecoverable | Acquired::Busy => None,
        }
    }

    #[inline]
    fn finish<'a>(
        &'a self,
        got: Acquired,
        busy: LockError<MutexGuard<'a, T>>,
    ) -> LockResult<MutexGuard<'a, T>> {
        got.into_result(|| MutexGuard::new(self), busy)
    }
}

super::lock_data_access!(Mutex);

impl<T> fmt::Debug for Mutex<T> {
    /// Shows the lock's state (holder tid, sleepers, owner-died), not the data: reading
    /// it would need the lock.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("state", &WordDebug(self.raw.load()))
            .finish_non_exhaustive()
    }
}

/// Access to a [`Mutex`]'s data while it is locked; unlocks when dropped.
///
/// Neither `Send` nor `Sync`: the lock belongs to the thread that took it (its
/// participant id is in the lock word), and — more important — a guard must never reach
/// a forked child, which would go on writing through it after the parent unlocked.
/// [`Process::spawn`](crate::Process::spawn) takes only `Send` closures, so a guard can
/// be neither moved nor borrowed into one:
///
/// ```compile_fail
/// use shmkit::{Mutex, Process, Shared};
/// let m = Shared::new(Mutex::new(0u64)).unwrap();
/// let mut g = m.lock().unwrap();
/// let _ = Process::spawn(move || { *g += 1; 0 }); // error: `MutexGuard` is not `Send`
/// ```
///
/// ```compile_fail
/// use shmkit::{Mutex, Process, Shared};
/// let m = Shared::new(Mutex::new(0u64)).unwrap();
/// let g = m.lock().unwrap();
/// let _ = Process::spawn(|| { let _ = *g; 0 }); // error: `MutexGuard` is not `Sync`
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
    /// `!Send + !Sync` (see the type's docs), and counted.
    _mark: GuardMark,
}

impl<'a, T> MutexGuard<'a, T> {
    #[inline]
    fn new(mutex: &'a Mutex<T>) -> Self {
        MutexGuard {
            mutex,
            _mark: GuardMark::new(),
        }
    }

    /// Declares the data consistent after [`LockError::OwnerDead`]: the mutex is
    /// normal again once this guard is dropped. A no-op on a guard from a normal lock.
    pub fn make_consistent(&self) {
        self.mutex.raw.make_consistent_as(my_tid());
    }

    /// The mutex this guard locks (for `Condvar`).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock, so no other
        // thread or process accesses the data.
        self.mutex.data.with(|p| unsafe { &*p })
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference
        // through the guard.
        self.mutex.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // A guard inherited through fork has another owner id: it leaves the lock
        // alone.
        self.mutex.raw.unlock_as(my_tid());
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

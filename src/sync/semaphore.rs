//! [`Semaphore`] and [`BoundedSemaphore`]: counting semaphores in shared memory.
//!
//! The count is one `u32`; blocking goes through a [`Notifier`] (spin, then futex;
//! `release` makes a system call only when someone sleeps).
//!
//! ```text
//! acquire: CAS count c -> c-1 when c > 0 (Acquire); else wait on the notifier
//! release: CAS count c -> c+1 (Release), then notify_one
//! ```
//!
//! `notify_one` suffices: every waiter waits for the same condition (`count > 0`), so
//! whichever sleeper wakes either takes the permit or finds that someone else did.

use core::fmt;
use core::time::Duration;

use super::notifier::Notifier;
use crate::error::Error;
use crate::primitive::{AtomicU32, Deadline, Ordering, loom_const_fn};
use crate::segment::ShmSafe;

/// Takes one permit from `count` if there is one.
#[inline]
fn try_take(count: &AtomicU32) -> bool {
    let mut c = count.load(Ordering::Relaxed);
    while c > 0 {
        // SYNC POINT with the Release CAS in `give` (what the releaser did before
        // `release` happens before what the acquirer does after `acquire`).
        match count.compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => c = now,
        }
    }
    false
}

/// Adds one permit unless the count is at `max`; returns whether it did.
#[inline]
fn give(count: &AtomicU32, max: u32) -> bool {
    let mut c = count.load(Ordering::Relaxed);
    loop {
        if c >= max {
            return false;
        }
        // SYNC POINT with the Acquire CAS in `try_take`.
        match count.compare_exchange_weak(c, c + 1, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => c = now,
        }
    }
}

/// A counting semaphore in shared memory (Python's `Semaphore`).
///
/// # Layout
///
/// ```text
/// offset size field     written by
///      0    4 count     acquire (CAS down), release (CAS up)
///      4    8 notifier  waiters and releasers (see `Notifier`)
/// ```
///
/// All-zero is a semaphore with no permits.
///
/// # Examples
///
/// ```
/// use shmkit::Semaphore;
///
/// let s = Semaphore::new(1);
/// s.acquire();
/// assert!(!s.try_acquire());
/// s.release();
/// assert_eq!(s.value(), 1);
/// ```
#[repr(C)]
pub struct Semaphore {
    pub(crate) count: AtomicU32,
    pub(crate) notifier: Notifier,
}

crate::layout::pin_layout!(Semaphore { count: 0, notifier: 4 }, size 12);

// SAFETY: repr(C), three u32 words (every value valid), no pointers, no Drop.
unsafe impl ShmSafe for Semaphore {
    crate::segment::kit_identity!(Semaphore, 1, "shmkit::Semaphore");
}
// SAFETY: all-zero = no permits, nobody asleep.
#[cfg(not(shmkit_loom))]
unsafe impl bytemuck::Zeroable for Semaphore {}

impl Semaphore {
    loom_const_fn! {
        /// A semaphore with `value` permits.
        pub const fn new(value: u32) -> Self {
            Semaphore {
                count: AtomicU32::new(value),
                notifier: Notifier::new(),
            }
        }
    }

    /// Takes a permit, waiting as long as it takes.
    pub fn acquire(&self) {
        let _ = self
            .notifier
            .wait_until(Deadline::NEVER, || try_take(&self.count).then_some(()));
    }

    /// Takes a permit if one is free now (no system call).
    pub fn try_acquire(&self) -> bool {
        try_take(&self.count)
    }

    /// Takes a permit, waiting at most `timeout`; false = none came in time (and
    /// `timeout` has passed).
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.notifier
            .wait_until(Deadline::after(timeout), || {
                try_take(&self.count).then_some(())
            })
            .is_some()
    }

    /// Returns a permit, waking one waiter if any sleeps. At `u32::MAX` permits the
    /// count stays where it is (no program holds four billion permits: a peer
    /// scribbled on it), and nothing panics.
    pub fn release(&self) {
        let _ = give(&self.count, u32::MAX);
        self.notifier.notify_one();
    }

    /// The number of free permits (a snapshot).
    pub fn value(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Default for Semaphore {
    /// A semaphore with no permits.
    fn default() -> Self {
        Semaphore::new(0)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .field("notifier", &self.notifier)
            .finish()
    }
}

/// A semaphore whose count may never exceed its initial value (Python's
/// `BoundedSemaphore`): a `release` past it is an error and changes nothing.
///
/// # Layout
///
/// ```text
/// offset size field     written by
///      0   12 inner     a `Semaphore` (count, notifier); release never takes the
///                       count past `bound`
///     12    4 bound     set once by `new`
/// ```
///
/// Not `Zeroable`: a zero bound would be a semaphore that can never be released.
///
/// # Examples
///
/// ```
/// use shmkit::{BoundedSemaphore, Error};
///
/// let s = BoundedSemaphore::new(1);
/// assert_eq!(s.release(), Err(Error::Overflow));
/// s.acquire();
/// assert_eq!(s.release(), Ok(()));
/// ```
#[repr(C)]
pub struct BoundedSemaphore {
    pub(crate) inner: Semaphore,
    pub(crate) bound: u32,
}

crate::layout::pin_layout!(BoundedSemaphore { inner: 0, bound: 12 }, size 16);

// SAFETY: repr(C), u32 words (every value valid), no pointers, no Drop.
unsafe impl ShmSafe for BoundedSemaphore {
    crate::segment::kit_identity!(BoundedSemaphore, 1, "shmkit::BoundedSemaphore");
}

impl BoundedSemaphore {
    loom_const_fn! {
        /// A semaphore with `value` permits, never more.
        pub const fn new(value: u32) -> Self {
            BoundedSemaphore {
                inner: Semaphore::new(value),
                bound: value,
            }
        }
    }

    /// Takes a permit, waiting as long as it takes.
    pub fn acquire(&self) {
        self.inner.acquire();
    }

    /// Takes a permit if one is free now (no system call).
    pub fn try_acquire(&self) -> bool {
        self.inner.try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`; false = none came in time.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.inner.acquire_timeout(timeout)
    }

    /// Returns a permit, waking one waiter if any sleeps.
    ///
    /// # Errors
    ///
    /// [`Error::Overflow`] if every permit is already free (the count is at its
    /// bound); nothing changes then.
    pub fn release(&self) -> Result<(), Error> {
        if !give(&self.inner.count, self.bound) {
            return Err(Error::Overflow);
        }
        self.inner.notifier.notify_one();
        Ok(())
    }

    /// The number of free permits (a snapshot).
    pub fn value(&self) -> u32 {
        self.inner.value()
    }

    /// The initial value, which the count never exceeds.
    pub fn bound(&self) -> u32 {
        self.bound
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .field("bound", &self.bound)
            .field("notifier", &self.inner.notifier)
            .finish()
    }
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;

    // Non-blocking paths: pure atomics, and notify finds nobody asleep (no syscall).
    #[test]
    fn miri_semaphore_counts() {
        let s = Semaphore::new(2);
        assert!(s.try_acquire());
        assert!(s.try_acquire());
        assert!(!s.try_acquire());
        s.release();
        assert_eq!(s.value(), 1);
    }

    #[test]
    fn miri_bounded_release_past_bound_changes_nothing() {
        let s = BoundedSemaphore::new(1);
        assert_eq!(s.release(), Err(Error::Overflow));
        assert_eq!(s.value(), 1);
        assert!(s.try_acquire());
        assert_eq!(s.release(), Ok(()));
        assert_eq!(s.release(), Err(Error::Overflow));
        assert_eq!((s.value(), s.bound()), (1, 1));
    }
}

//! [`Condvar`]: a condition variable for [`Mutex`](super::Mutex) in shared memory (Python's
//! `Condition`).

use core::fmt;
use core::time::Duration;

use super::lock_error::LockResult;
use super::mutex::MutexGuard;
use super::notifier::Sleepers;
use super::strategy::{Look, fixed_spin, spin_phase, wait_strategy};
use crate::primitive::{AtomicU32, Deadline, Ordering, futex_wait, futex_wake, loom_const_fn};
use crate::segment::ShmSafe;

/// Whether a timed condition-variable wait ended by timing out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Did the wait end because its timeout passed (rather than a notification)?
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable: waits for a notification while releasing a [`Mutex`](super::Mutex)
/// (Python's `Condition`, with the lock passed in as a guard).
///
/// Waits may end spuriously (without a notification): wait in a loop, or use
/// [`wait_while`](Condvar::wait_while). A notification with nobody waiting is not
/// stored for a later waiter.
///
/// # Layout and protocol
///
/// ```text
/// offset size field    written by
///      0    4 seq      notifiers: +1 per notification; the futex word
///      4    4 waiters  waiters: +1 before releasing the mutex, -1 after waking
/// ```
///
/// ```text
/// waiter (holding the mutex)           notifier
/// waiters += 1            (SeqCst)     seq += 1                  (SeqCst)
/// s = seq                 (SeqCst)     if waiters > 0 { FUTEX_WAKE(seq) }
/// unlock the mutex
/// futex_wait(seq, s)  (after a brief spin on seq != s)
/// waiters -= 1; lock the mutex again
/// ```
///
/// No lost wake-up: a notifier that changed the condition under the mutex did so
/// either before the waiter locked it (the waiter then sees the condition) or after
/// the waiter read `s` and unlocked, so its `seq += 1` makes `seq != s`; and of the
/// four SeqCst operations, either the notifier's load sees `waiters > 0` (and wakes)
/// or the waiter's load of `seq` already sees the increment.
///
/// A waiter killed while waiting would leave `waiters` too high for good, and every
/// later notification would pay a system call. So `waiters` counts the way the kit's
/// notifiers count sleepers (bits 0..=15 the count, bits 16..=31 the coarse time of
/// the latest announcement): a waiter sleeps at most a second at a time and announces
/// itself again, and a notifier that finds only stale announcements clears them after
/// its wake-up. All-zero is a fresh condition variable.
///
/// # Examples
///
/// ```
/// use shmkit::{Condvar, Mutex, Process, Shared};
///
/// #[repr(C)]
/// struct Slot { ready: Mutex<u32>, cv: Condvar }
/// // SAFETY: repr(C), kit types only.
/// unsafe impl shmkit::ShmSafe for Slot {}
///
/// let slot = Shared::new(Slot { ready: Mutex::new(0), cv: Condvar::new() })?;
/// let mut child = Process::spawn(|| {
///     *slot.ready.lock().unwrap() = 42;
///     slot.cv.notify_all();
///     0
/// })?;
/// let got = slot.cv.wait_while(slot.ready.lock().unwrap(), |v| *v == 0).unwrap();
/// assert_eq!(*got, 42);
/// drop(got);
/// child.join()?;
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct Condvar {
    pub(crate) seq: AtomicU32,
    pub(crate) waiters: Sleepers,
}

crate::layout::pin_layout!(Condvar { seq: 0, waiters: 4 }, size 8);

// SAFETY: repr(C), two u32 words (every value valid), no pointers, no Drop.
unsafe impl ShmSafe for Condvar {
    crate::segment::kit_identity!(Condvar, 1, "shmkit::Condvar");
}
// SAFETY: all-zero = no notifications, nobody waiting.
#[cfg(not(shmkit_loom))]
unsafe impl bytemuck::Zeroable for Condvar {}

impl Condvar {
    loom_const_fn! {
        /// A condition variable with nobody waiting.
        pub const fn new() -> Self {
            Condvar {
                seq: AtomicU32::new(0),
                waiters: Sleepers::new(),
            }
        }
    }

    /// Releases `guard`'s mutex, waits for a notification (or a spurious wake-up),
    /// and locks the mutex again.
    ///
    /// # Errors
    ///
    /// As for [`Mutex::lock`](super::Mutex::lock) when locking again: `OwnerDead`
    /// (with the guard) if another holder died meanwhile, `NotRecoverable`.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        self.wait_deadline(guard, Deadline::NEVER)
            .map(|(g, _)| g)
            .map_err(|e| e.map(|(g, _)| g))
    }

    /// Waits while `condition` holds for the data, as [`wait`](Self::wait) in a loop.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait); the condition is not checked again after an
    /// `OwnerDead`.
    pub fn wait_while<'a, T, F: FnMut(&mut T) -> bool>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>> {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// As [`wait`](Self::wait), for at most `timeout`.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        self.wait_deadline(guard, Deadline::after(timeout))
    }

    /// Waits while `condition` holds, for at most `timeout` in all;
    /// `timed_out()` is true if the condition still held at the deadline.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub fn wait_timeout_while<'a, T, F: FnMut(&mut T) -> bool>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let deadline = Deadline::after(timeout);
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            if deadline.expired() {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            guard = self.wait_deadline(guard, deadline)?.0;
        }
    }

    fn wait_deadline<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Deadline,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let mutex = guard.mutex();
        self.waiters.announce();
        // SYNC POINT with the SeqCst increment in `notify` (see the protocol above).
        let seq = self.seq.load(Ordering::SeqCst);
        drop(guard);
        let timed_out = !self.sleep(seq, deadline);
        self.waiters.withdraw();
        let timed_out = WaitTimeoutResult(timed_out);
        match mutex.lock() {
            Ok(g) => Ok((g, timed_out)),
            Err(e) => Err(e.map(|g| (g, timed_out))),
        }
    }

    /// Waits until `seq` moves past `seen` or the deadline passes; false = timed out.
    fn sleep(&self, seen: u32, deadline: Deadline) -> bool {
        let moved = || self.seq.load(Ordering::Acquire) != seen;
        let (hints, yields) = fixed_spin(wait_strategy());
        let spun = spin_phase(hints, yields, deadline, |_| {
            if moved() {
                Look::Ready(())
            } else {
                Look::NotYet
            }
        });
        if spun.is_some() {
            return true;
        }
        loop {
            if moved() {
                return true;
            }
            if deadline.expired() {
                return false;
            }
            // SYNC POINT with the increment in `notify`: the kernel compares `seq`
            // with `seen` and queues us atomically with respect to FUTEX_WAKE. In
            // slices, each announced afresh (see the type's docs).
            let _ = futex_wait(&self.seq, seen, reannounce_by(deadline));
            if !moved() && !deadline.expired() {
                self.waiters.announce();
                self.waiters.withdraw();
            }
        }
    }

    /// Wakes one waiter, if any waits.
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }

    #[inline]
    fn notify(&self, count: u32) {
        // SYNC POINT with the SeqCst increment of `waiters` and load of `seq` in
        // `wait_deadline`.
        self.seq.fetch_add(1, Ordering::SeqCst);
        let waiters = self.waiters.load(Ordering::SeqCst);
        if Sleepers::anyone(waiters) {
            futex_wake(&self.seq, count);
            self.waiters.expire(waiters);
        }
    }
}

/// The end of one sleep slice: `deadline`, or one `REANNOUNCE` from now if sooner.
fn reannounce_by(deadline: Deadline) -> Deadline {
    #[cfg(not(shmkit_loom))]
    {
        deadline.earlier(Deadline::after(super::notifier::REANNOUNCE))
    }
    #[cfg(shmkit_loom)]
    {
        deadline
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar")
            .field("waiters", &self.waiters.count())
            .finish_non_exhaustive()
    }
}

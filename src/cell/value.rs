//! [`Value<T>`]: one `Pod` value behind a robust lock (Python's `Value`).

use core::fmt;

use bytemuck::Pod;
#[cfg(not(shmkit_loom))]
use bytemuck::Zeroable;

use core::time::Duration;

use crate::error::Error;
use crate::primitive::{Deadline, loom_const_fn};
use crate::segment::ShmSafe;
use crate::sync::{Mutex, MutexGuard};

/// One `Pod` value in shared memory behind a robust lock (Python's `Value`).
///
/// `get` and `set` copy the value under the lock; `update` and `lock` change it in
/// place. A holder that dies is recovered from at once (the value may be what it left
/// half-written: `Pod` makes that safe, not meaningful).
///
/// # Layout
///
/// That of a [`Mutex<T>`]: a 4-byte lock word at offset 0, the value at
/// `align_of::<T>().max(4)`. All-zero is an unlocked zero value.
///
/// # Examples
///
/// ```
/// use shmkit::{Process, Shared, Value};
///
/// let hits = Shared::new(Value::new(0u64))?;
/// let mut child = Process::spawn(|| {
///     hits.update(|n| *n += 1);
///     0
/// })?;
/// *hits.lock() += 1;
/// child.join()?;
/// assert_eq!(hits.get(), 2);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct Value<T: Pod> {
    inner: Mutex<T>,
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(core::mem::size_of::<Value<u32>>() == 8);
crate::layout::pin_layout!(Value<u64> { inner: 0 }, size 16);

// SAFETY: repr(C) over a Mutex<T> of a Pod (every bit pattern valid) and Send
// (hence Sync through the lock) `T`; `Pod + Send` excludes raw pointers and
// references; no Drop.
unsafe impl<T: Pod + Send> ShmSafe for Value<T> {
    crate::segment::kit_identity!(Value, 1, "shmkit::Value", pod T);
}
// SAFETY: all-zero = unlocked lock word and a zero `T` (Pod is Zeroable).
#[cfg(not(shmkit_loom))]
unsafe impl<T: Pod> Zeroable for Value<T> {}

impl<T: Pod> Value<T> {
    loom_const_fn! {
        /// A cell holding `value`.
        pub const fn new(value: T) -> Self {
            Value { inner: Mutex::new(value) }
        }
    }

    /// A copy of the value (taken under the lock).
    #[inline]
    pub fn get(&self) -> T {
        *self.inner.lock_recovering()
    }

    /// Replaces the value (under the lock).
    #[inline]
    pub fn set(&self, value: T) {
        *self.inner.lock_recovering() = value;
    }

    /// Runs `f` on the value under the lock: `v.update(|x| *x += 1)`.
    #[inline]
    pub fn update<R, F: FnOnce(&mut T) -> R>(&self, f: F) -> R {
        f(&mut self.inner.lock_recovering())
    }

    /// Locks the value for longer work; unlocks when the guard drops. Waits as long as
    /// it takes; a dead holder is recovered from at once.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.inner.lock_recovering()
    }

    /// [`lock`](Self::lock), waiting at most `timeout` (a live holder that never lets
    /// go — or a peer that wrote a live participant's id into the lock word — cannot
    /// hang the caller).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the lock was still held at the deadline.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_, T>, Error> {
        self.inner
            .lock_recovering_until(Deadline::after(timeout))
            .ok_or(Error::Timeout)
    }

    /// [`get`](Self::get), waiting at most `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        Ok(*self.lock_timeout(timeout)?)
    }

    /// [`set`](Self::set), waiting at most `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`]; the value is unchanged then.
    pub fn set_timeout(&self, value: T, timeout: Duration) -> Result<(), Error> {
        *self.lock_timeout(timeout)? = value;
        Ok(())
    }

    /// [`update`](Self::update), waiting at most `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`]; `f` did not run then.
    pub fn update_timeout<R, F: FnOnce(&mut T) -> R>(
        &self,
        timeout: Duration,
        f: F,
    ) -> Result<R, Error> {
        let mut guard = self.lock_timeout(timeout)?;
        Ok(f(&mut guard))
    }
}

impl<T: Pod + Default> Default for Value<T> {
    fn default() -> Self {
        Value::new(T::default())
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    /// Shows the value if the lock is free now, `<locked>` otherwise (never waits).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Value");
        match self.inner.try_lock_recovering() {
            Some(guard) => d.field("value", &*guard),
            None => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}

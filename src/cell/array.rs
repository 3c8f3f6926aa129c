//! [`Array<T, N>`]: `N` `Pod` values behind one robust lock (Python's `Array`).

use core::fmt;
use core::time::Duration;

use bytemuck::Pod;
#[cfg(not(shmkit_loom))]
use bytemuck::Zeroable;

use crate::error::Error;
use crate::primitive::{Deadline, loom_const_fn};
use crate::segment::ShmSafe;
use crate::sync::{Mutex, MutexGuard};

/// `N` `Pod` values in shared memory behind one robust lock (Python's `Array`).
///
/// Indexing is checked: an index out of range gives `None` or
/// [`Error::IndexOutOfBounds`], never a panic. A holder that dies is recovered from
/// at once, as for [`Value`](super::Value).
///
/// # Layout
///
/// That of a [`Mutex<[T; N]>`](Mutex): a 4-byte lock word at offset 0, the elements
/// from `align_of::<T>().max(4)`. All-zero is an unlocked array of zeros, so big
/// arrays are made in place with `Shared::new_zeroed()`.
///
/// # Examples
///
/// ```
/// use shmkit::{Array, Error, Shared};
///
/// let a = Shared::new(Array::new([0u32; 4]))?;
/// a.set(2, 7)?;
/// assert_eq!(a.get(2), Some(7));
/// assert_eq!(a.get(4), None);
/// assert_eq!(a.set(9, 1), Err(Error::IndexOutOfBounds { index: 9, len: 4 }));
/// let mut out = [0u32; 4];
/// assert_eq!(a.copy_to(&mut out), 4);
/// assert_eq!(out, [0, 0, 7, 0]);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct Array<T: Pod, const N: usize> {
    inner: Mutex<[T; N]>,
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(core::mem::size_of::<Array<u8, 4>>() == 8);
crate::layout::pin_layout!(Array<u64, 4> { inner: 0 }, size 40);

// SAFETY: repr(C) over a Mutex of a Pod + Send array; see `Value`.
unsafe impl<T: Pod + Send, const N: usize> ShmSafe for Array<T, N> {
    crate::segment::kit_identity!(Array, 1, "shmkit::Array", pod T, const N);
}
// SAFETY: all-zero = unlocked lock word and zero elements.
#[cfg(not(shmkit_loom))]
unsafe impl<T: Pod, const N: usize> Zeroable for Array<T, N> {}

impl<T: Pod, const N: usize> Array<T, N> {
    loom_const_fn! {
        /// An array holding `values`.
        pub const fn new(values: [T; N]) -> Self {
            Array { inner: Mutex::new(values) }
        }
    }

    /// A copy of element `index`; `None` if `index >= N`.
    pub fn get(&self, index: usize) -> Option<T> {
        if index >= N {
            return None;
        }
        Some(self.inner.lock_recovering()[index])
    }

    /// Replaces element `index`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index >= N`; nothing changes then.
    pub fn set(&self, index: usize, value: T) -> Result<(), Error> {
        if index >= N {
            return Err(Error::IndexOutOfBounds { index, len: N });
        }
        self.inner.lock_recovering()[index] = value;
        Ok(())
    }

    /// The number of elements, `N`.
    pub const fn len(&self) -> usize {
        N
    }

    /// Is `N` zero?
    pub const fn is_empty(&self) -> bool {
        N == 0
    }

    /// Locks the whole array; unlocks when the guard drops.
    pub fn lock(&self) -> MutexGuard<'_, [T; N]> {
        self.inner.lock_recovering()
    }

    /// [`lock`](Self::lock), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the lock was still held at the deadline.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_, [T; N]>, Error> {
        self.inner
            .lock_recovering_until(Deadline::after(timeout))
            .ok_or(Error::Timeout)
    }

    /// [`get`](Self::get), waiting at most `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index >= N`; [`Error::Timeout`].
    pub fn get_timeout(&self, index: usize, timeout: Duration) -> Result<T, Error> {
        if index >= N {
            return Err(Error::IndexOutOfBounds { index, len: N });
        }
        Ok(self.lock_timeout(timeout)?[index])
    }

    /// [`set`](Self::set), waiting at most `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index >= N`; [`Error::Timeout`]. Nothing
    /// changes on an error.
    pub fn set_timeout(&self, index: usize, value: T, timeout: Duration) -> Result<(), Error> {
        if index >= N {
            return Err(Error::IndexOutOfBounds { index, len: N });
        }
        self.lock_timeout(timeout)?[index] = value;
        Ok(())
    }

    /// Copies the leading `min(N, out.len())` elements into `out`, under one lock;
    /// returns how many.
    pub fn copy_to(&self, out: &mut [T]) -> usize {
        let n = N.min(out.len());
        out[..n].copy_from_slice(&self.inner.lock_recovering()[..n]);
        n
    }

    /// Copies `min(N, src.len())` leading elements of `src` into the array, under one
    /// lock; returns how many.
    pub fn copy_from(&self, src: &[T]) -> usize {
        let n = N.min(src.len());
        self.inner.lock_recovering()[..n].copy_from_slice(&src[..n]);
        n
    }
}

impl<T: Pod, const N: usize> Default for Array<T, N> {
    /// All zeros.
    fn default() -> Self {
        Array::new([T::zeroed(); N])
    }
}

impl<T: Pod + fmt::Debug, const N: usize> fmt::Debug for Array<T, N> {
    /// Shows the elements if the lock is free now, `<locked>` otherwise (never waits).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Array");
        d.field("len", &N);
        match self.inner.try_lock_recovering() {
            Some(guard) => d.field("values", &&guard[..]),
            None => d.field("values", &format_args!("<locked>")),
        };
        d.finish()
    }
}

//! The pool's calls — `map` and its relatives, `apply` and `apply_async` — and how a
//! typed call becomes a type-erased job.

use core::mem::size_of;
use core::time::Duration;
use std::vec::Vec;

use bytemuck::Pod;

use super::job::{Buf, Spec};
use super::results::{AsyncResult, Forget, Imap, ImapUnordered, Run};
use super::{Pool, PoolError, assert_item, pod_slice_bytes, task};
use crate::primitive::Deadline;

impl Pool {
    /// Applies `f` to every item on the workers; the results in input order.
    ///
    /// # Errors
    ///
    /// The first failure seen: [`PoolError::WorkerDied`] (a worker died while running
    /// one of the items), [`PoolError::TaskPanicked`], [`PoolError::Closed`] (the
    /// pool was closed, or terminated meanwhile). Items still running then finish in
    /// the background and their results are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmkit::Pool;
    /// let pool = Pool::new(2)?;
    /// let items: Vec<u32> = (0..1000).collect();
    /// let doubled = pool.map(|x: u32| u64::from(x) * 2, &items)?;
    /// assert_eq!(doubled[999], 1998);
    /// # Ok::<(), shmkit::PoolError>(())
    /// ```
    pub fn map<T: Pod, U: Pod>(&self, f: fn(T) -> U, items: &[T]) -> Result<Vec<U>, PoolError> {
        self.map_until(f, items, Deadline::NEVER)
    }

    /// As [`Pool::map`], but gives up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] if some item had not finished by then (items still
    /// running finish in the background, and those not started are dropped; the
    /// results are lost either way), or as [`Pool::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmkit::{Pool, PoolError};
    /// # use std::time::Duration;
    /// fn slow(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.map_timeout(slow, &[1, 2], Duration::from_secs(60))?, [1, 2]);
    /// let late = pool.map_timeout(slow, &[60_000], Duration::from_millis(10));
    /// assert_eq!(late, Err(PoolError::Timeout));
    /// # pool.terminate();
    /// # Ok::<(), shmkit::PoolError>(())
    /// ```
    pub fn map_timeout<T: Pod, U: Pod>(
        &self,
        f: fn(T) -> U,
        items: &[T],
        timeout: Duration,
    ) -> Result<Vec<U>, PoolError> {
        self.map_until(f, items, Deadline::after(timeout))
    }

    fn map_until<T: Pod, U: Pod>(
        &self,
        f: fn(T) -> U,
        items: &[T],
        deadline: Deadline,
    ) -> Result<Vec<U>, PoolError> {
        const { assert_item::<T>() };
        const { assert_item::<U>() };
        let mut out: Vec<U> = std::vec![U::zeroed(); items.len()];
        // SAFETY: `collect_into` removes the job before it returns or unwinds, and
        // neither `items` nor `out` is touched until then.
        let bufs = unsafe {
            (
                Buf::lend(pod_slice_bytes(items)),
                Buf::lend_mut(pod_slice_bytes_mut(&mut out)),
            )
        };
        let id = self.submit(map_spec(f), bufs, items.len(), false)?;
        self.collect_into(id, deadline)?;
        Ok(out)
    }

    /// Like [`Pool::map`], but yields the results one by one, in input order, as they
    /// come; an item that failed yields its error and the rest go on.
    ///
    /// All items are queued at once; dropping the iterator early drops the rest.
    pub fn imap<'a, T: Pod, U: Pod>(&'a self, f: fn(T) -> U, items: &'a [T]) -> Imap<'a, T, U> {
        const { assert_item::<T>() };
        const { assert_item::<U>() };
        let bufs = (owned(items), out_buf::<U>(items.len()));
        let job = self.submit(map_spec(f), bufs, items.len(), false);
        Imap::new(Run::new(self, job), items.len())
    }

    /// Like [`Pool::imap`], but yields `(index, result)` in completion order (the
    /// index is into `items`).
    pub fn imap_unordered<'a, T: Pod, U: Pod>(
        &'a self,
        f: fn(T) -> U,
        items: &'a [T],
    ) -> ImapUnordered<'a, T, U> {
        const { assert_item::<T>() };
        const { assert_item::<U>() };
        let bufs = (owned(items), out_buf::<U>(items.len()));
        let job = self.submit(map_spec(f), bufs, items.len(), true);
        ImapUnordered::new(Run::new(self, job), items.len())
    }

    /// Applies the two-argument `f` to every pair; the results in input order.
    ///
    /// # Errors
    ///
    /// As [`Pool::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmkit::Pool;
    /// let pool = Pool::new(2)?;
    /// let powers = pool.starmap(|b: u64, e: u32| b.pow(e), &[(2, 10), (3, 3)])?;
    /// assert_eq!(powers, [1024, 27]);
    /// # Ok::<(), shmkit::PoolError>(())
    /// ```
    pub fn starmap<A: Pod, B: Pod, U: Pod>(
        &self,
        f: fn(A, B) -> U,
        items: &[(A, B)],
    ) -> Result<Vec<U>, PoolError> {
        const {
            assert!(
                size_of::<A>() + size_of::<B>() <= Pool::MAX_ITEM_SIZE,
                "pool task arguments are at most Pool::MAX_ITEM_SIZE (1024) bytes together"
            )
        };
        const { assert_item::<U>() };
        let (asz, bsz) = (size_of::<A>(), size_of::<B>());
        let mut input = Vec::with_capacity(items.len() * (asz + bsz));
        for (a, b) in items {
            input.extend_from_slice(pod_slice_bytes(core::slice::from_ref(a)));
            input.extend_from_slice(pod_slice_bytes(core::slice::from_ref(b)));
        }
        let spec = Spec {
            trampoline: task::fn_addr(task::run_pair::<A, B, U> as task::Trampoline as *const ()),
            func: task::fn_addr(f as *const ()),
            sig: task::pair_signature::<A, B, U>(),
            in_size: asz + bsz,
            out_size: size_of::<U>(),
        };
        let mut out: Vec<U> = std::vec![U::zeroed(); items.len()];
        // SAFETY: as in `map`: the job is gone before `out` is touched again.
        let output = unsafe { Buf::lend_mut(pod_slice_bytes_mut(&mut out)) };
        let id = self.submit(spec, (Buf::Owned(input), output), items.len(), false)?;
        self.collect_into(id, Deadline::NEVER)?;
        Ok(out)
    }

    /// Runs `f(arg)` on a worker and waits for its result.
    ///
    /// # Errors
    ///
    /// As [`AsyncResult::get`].
    pub fn apply<T: Pod, U: Pod>(&self, f: fn(T) -> U, arg: T) -> Result<U, PoolError> {
        self.apply_async(f, arg).get()
    }

    /// Starts `f(arg)` on a worker (as soon as one is free) and returns at once.
    ///
    /// If the pool is closed, the returned handle yields [`PoolError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmkit::Pool;
    /// let pool = Pool::new(2)?;
    /// let a = pool.apply_async(|x: u32| x + 1, 41);
    /// let b = pool.apply_async(|x: u32| x * 2, 21);
    /// assert_eq!((a.get()?, b.get()?), (42, 42));
    /// # Ok::<(), shmkit::PoolError>(())
    /// ```
    pub fn apply_async<T: Pod, U: Pod>(&self, f: fn(T) -> U, arg: T) -> AsyncResult<'_, U> {
        const { assert_item::<T>() };
        const { assert_item::<U>() };
        let bufs = (owned(core::slice::from_ref(&arg)), out_buf::<U>(1));
        let job = self.submit(map_spec(f), bufs, 1, false);
        AsyncResult::new(Run::new(self, job))
    }

    fn submit(
        &self,
        spec: Spec,
        bufs: (Buf, Buf),
        len: usize,
        track_order: bool,
    ) -> Result<u64, PoolError> {
        self.lock().submit(spec, bufs, len, track_order)
    }

    /// Waits for every item of job `id`, or its first failure, or `deadline`; forgets
    /// the job (also when unwinding), so a buffer lent to it is free again when this
    /// returns.
    fn collect_into(&self, id: u64, deadline: Deadline) -> Result<(), PoolError> {
        let _forget = Forget { pool: self, id };
        self.drive(deadline, |inner| {
            let Some(job) = inner.job(id) else {
                return Some(Err(PoolError::Closed));
            };
            if let Some(e) = job.first_error {
                return Some(Err(e));
            }
            (job.remaining == 0).then_some(Ok(()))
        })
        .unwrap_or(Err(PoolError::Timeout))
    }
}

/// The job description of `map(f, ..)`.
pub(crate) fn map_spec<T: Pod, U: Pod>(f: fn(T) -> U) -> Spec {
    Spec {
        // Both addresses are of functions of this executable; see `task`.
        trampoline: task::fn_addr(task::run_map::<T, U> as task::Trampoline as *const ()),
        func: task::fn_addr(f as *const ()),
        sig: task::map_signature::<T, U>(),
        in_size: size_of::<T>(),
        out_size: size_of::<U>(),
    }
}

/// The mutable bytes of a slice of `Pod`s (empty for a zero-sized `T`).
fn pod_slice_bytes_mut<T: Pod>(items: &mut [T]) -> &mut [u8] {
    if size_of::<T>() == 0 {
        &mut []
    } else {
        bytemuck::cast_slice_mut(items)
    }
}

/// A copy of the items' bytes, owned by the job.
fn owned<T: Pod>(items: &[T]) -> Buf {
    Buf::Owned(pod_slice_bytes(items).to_vec())
}

/// A zeroed result buffer for `len` results of `U`, owned by the job.
fn out_buf<U: Pod>(len: usize) -> Buf {
    Buf::Owned(std::vec![0u8; len * size_of::<U>()])
}

//! Handles on submitted work: [`AsyncResult`] (one task) and the iterators of `imap`
//! and `imap_unordered`. Each forgets its job when dropped.

use core::fmt;
use core::marker::PhantomData;
use core::mem::size_of;
use core::time::Duration;
use std::vec::Vec;

use bytemuck::Pod;

use super::{Pool, PoolError};
use crate::primitive::Deadline;

/// The result of [`Pool::apply_async`], to wait for. Borrows the pool.
pub struct AsyncResult<'a, U: Pod> {
    run: Run<'a>,
    _result: PhantomData<fn() -> U>,
}

impl<'a, U: Pod> AsyncResult<'a, U> {
    pub(crate) fn new(run: Run<'a>) -> Self {
        AsyncResult {
            run,
            _result: PhantomData,
        }
    }

    /// Waits for the result. Can be called again (it returns the same result).
    ///
    /// # Errors
    ///
    /// [`PoolError::WorkerDied`], [`PoolError::TaskPanicked`], [`PoolError::Closed`]
    /// (the pool was closed before the task was submitted, or terminated before it
    /// finished), [`PoolError::ZygoteDied`].
    pub fn get(&self) -> Result<U, PoolError> {
        self.wait(Deadline::NEVER)
    }

    /// Waits at most `timeout` for the result.
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] if it is not ready by then (it keeps running; ask
    /// again), or as [`AsyncResult::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<U, PoolError> {
        self.wait(Deadline::after(timeout))
    }

    /// Has the task finished (successfully or not)?
    pub fn ready(&self) -> bool {
        self.run.item_ready(0)
    }

    fn wait(&self, deadline: Deadline) -> Result<U, PoolError> {
        self.run.wait_item(0, deadline).map(|b| pod_from::<U>(&b))
    }
}

impl<U: Pod> fmt::Debug for AsyncResult<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}

/// The iterator of [`Pool::imap`]: results in input order.
pub struct Imap<'a, T: Pod, U: Pod> {
    run: Run<'a>,
    next: usize,
    len: usize,
    _items: Marker<'a, T, U>,
}

impl<'a, T: Pod, U: Pod> Imap<'a, T, U> {
    pub(crate) fn new(run: Run<'a>, len: usize) -> Self {
        Imap {
            run,
            next: 0,
            len,
            _items: PhantomData,
        }
    }
}

impl<T: Pod, U: Pod> Iterator for Imap<'_, T, U> {
    type Item = Result<U, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next == self.len {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some(
            self.run
                .wait_item(i, Deadline::NEVER)
                .map(|b| pod_from::<U>(&b)),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len - self.next, Some(self.len - self.next))
    }
}

impl<T: Pod, U: Pod> ExactSizeIterator for Imap<'_, T, U> {}

impl<T: Pod, U: Pod> fmt::Debug for Imap<'_, T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("next", &self.next)
            .field("len", &self.len)
            .finish()
    }
}

/// The iterator of [`Pool::imap_unordered`]: `(index, result)` in completion order.
pub struct ImapUnordered<'a, T: Pod, U: Pod> {
    run: Run<'a>,
    yielded: usize,
    len: usize,
    _items: Marker<'a, T, U>,
}

impl<'a, T: Pod, U: Pod> ImapUnordered<'a, T, U> {
    pub(crate) fn new(run: Run<'a>, len: usize) -> Self {
        ImapUnordered {
            run,
            yielded: 0,
            len,
            _items: PhantomData,
        }
    }
}

impl<T: Pod, U: Pod> Iterator for ImapUnordered<'_, T, U> {
    type Item = (usize, Result<U, PoolError>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.yielded == self.len {
            return None;
        }
        let k = self.yielded;
        self.yielded += 1;
        let id = match self.run.job {
            Ok(id) => id,
            // Never submitted: every item fails with the same error, in input order.
            Err(e) => return Some((k, Err(e))),
        };
        let got = self.run.pool.drive(Deadline::NEVER, |inner| {
            let job = inner.job_mut(id)?;
            let i = job.order.as_mut()?.pop_front()?;
            Some((i, job.result(i).map(|b| pod_from::<U>(b))))
        });
        Some(got.unwrap_or((k, Err(PoolError::Closed))))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len - self.yielded, Some(self.len - self.yielded))
    }
}

impl<T: Pod, U: Pod> ExactSizeIterator for ImapUnordered<'_, T, U> {}

impl<T: Pod, U: Pod> fmt::Debug for ImapUnordered<'_, T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("yielded", &self.yielded)
            .field("len", &self.len)
            .finish()
    }
}

/// What the iterators borrow (the items) and yield (`U`s).
type Marker<'a, T, U> = PhantomData<(&'a [T], fn() -> U)>;

/// A submitted job seen from its handle: forgets the job when dropped.
pub(crate) struct Run<'a> {
    pool: &'a Pool,
    job: Result<u64, PoolError>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(pool: &'a Pool, job: Result<u64, PoolError>) -> Self {
        Run { pool, job }
    }

    fn item_ready(&self, i: usize) -> bool {
        let Ok(id) = self.job else { return true };
        let mut inner = self.pool.lock();
        inner.pump(&self.pool.hub, false);
        inner.job(id).is_none_or(|job| job.is_final(i))
    }

    /// Waits until item `i` is final; its result bytes (copied) or its error.
    fn wait_item(&self, i: usize, deadline: Deadline) -> Result<Vec<u8>, PoolError> {
        let id = self.job?;
        self.pool
            .drive(deadline, |inner| {
                let Some(job) = inner.job(id) else {
                    return Some(Err(PoolError::Closed));
                };
                job.is_final(i).then(|| job.result(i).map(<[u8]>::to_vec))
            })
            .unwrap_or(Err(PoolError::Timeout))
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if let Ok(id) = self.job {
            self.pool.lock().remove_job(id);
        }
    }
}

/// Forgets a job when a blocking call returns (or unwinds).
pub(crate) struct Forget<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.pool.lock().remove_job(self.id);
    }
}

/// One `U` read from its unaligned bytes.
fn pod_from<U: Pod>(bytes: &[u8]) -> U {
    if size_of::<U>() == 0 {
        return U::zeroed();
    }
    bytemuck::pod_read_unaligned(bytes)
}

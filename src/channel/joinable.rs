//! `JoinableQueue<T, N>`: a [`Queue`] that counts unfinished tasks.

use core::fmt;
use core::time::Duration;

use bytemuck::Pod;

use super::queue::{GetError, JoinCtl, PutError, Queue};
use super::ring::Line;
use super::wait::{Waitable, sealed};
use crate::error::Error;
use crate::primitive::Deadline;
use crate::segment::ShmSafe;

/// A [`Queue`] that also counts unfinished tasks (Python's
/// `multiprocessing.JoinableQueue`): every put adds one, every
/// [`task_done`](Self::task_done) takes one off, and [`join`](Self::join) waits for
/// zero.
///
/// An item whose producer died mid-put is reclaimed as in [`Queue`] and no longer
/// counts. Not covered: a producer killed in the few instructions between counting
/// its put and claiming a slot leaves the count one too high (`join_timeout` bounds
/// the wait); a consumer that dies before `task_done` leaves its task unfinished, as
/// in Python.
///
/// # Examples
///
/// ```
/// use shmkit::{JoinableQueue, Process, Shared};
///
/// let q = Shared::<JoinableQueue<u32, 16>>::new_zeroed()?;
/// let mut worker = Process::spawn(|| {
///     while let Ok(_job) = q.get() {
///         q.task_done().unwrap();
///     }
///     0
/// })?;
/// for job in 0..10 {
///     q.put(job).unwrap();
/// }
/// q.join(); // every job was taken and marked done
/// assert_eq!(q.unfinished(), 0);
/// q.close();
/// assert!(worker.join()?.success());
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct JoinableQueue<T: Pod, const N: usize> {
    join: Line<JoinCtl>,
    queue: Queue<T, N>,
}

crate::layout::pin_layout!(JoinableQueue<u64, 4> { join: 0, queue: 128 }, size 128 + 640, align 128);

impl<T: Pod, const N: usize> JoinableQueue<T, N> {
    crate::primitive::loom_const_fn! {
        /// An empty, open queue with no unfinished tasks (all zero).
        pub const fn new() -> Self {
            JoinableQueue {
                join: Line(JoinCtl::new()),
                queue: Queue::new(),
            }
        }
    }

    /// As [`Queue::put`]; counts one unfinished task.
    ///
    /// # Errors
    ///
    /// As [`Queue::put`].
    pub fn put(&self, value: T) -> Result<(), PutError<T>> {
        self.queue
            .put_impl(value, Some(Deadline::NEVER), Some(&self.join.0))
    }

    /// As [`Queue::try_put`].
    ///
    /// # Errors
    ///
    /// As [`Queue::try_put`].
    pub fn try_put(&self, value: T) -> Result<(), PutError<T>> {
        self.queue.put_impl(value, None, Some(&self.join.0))
    }

    /// As [`Queue::put_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Queue::put_timeout`].
    pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.queue
            .put_impl(value, Some(Deadline::after(timeout)), Some(&self.join.0))
    }

    /// As [`Queue::get`]; call [`task_done`](Self::task_done) when the item is handled.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`].
    pub fn get(&self) -> Result<T, GetError> {
        self.queue
            .get_impl(Some(Deadline::NEVER), Some(&self.join.0))
    }

    /// As [`Queue::try_get`].
    ///
    /// # Errors
    ///
    /// As [`Queue::try_get`].
    pub fn try_get(&self) -> Result<T, GetError> {
        self.queue.get_impl(None, Some(&self.join.0))
    }

    /// As [`Queue::get_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Queue::get_timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.queue
            .get_impl(Some(Deadline::after(timeout)), Some(&self.join.0))
    }

    /// As [`Queue::len`].
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// As [`Queue::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// As [`Queue::is_full`].
    pub fn is_full(&self) -> bool {
        self.queue.is_full()
    }

    /// The capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// As [`Queue::close`].
    pub fn close(&self) {
        self.queue.close();
    }

    /// As [`Queue::is_closed`].
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// As [`Queue::lost`] (a producer's item reclaimed there no longer counts as
    /// unfinished).
    pub fn lost(&self) -> u64 {
        self.queue.lost_impl(Some(&self.join.0))
    }

    /// Marks one task (an item got from the queue) as finished.
    ///
    /// # Errors
    ///
    /// [`Error::Overflow`] if no task is unfinished (called more often than items
    /// were put); nothing changes.
    pub fn task_done(&self) -> Result<(), Error> {
        self.join.0.decrement()
    }

    /// How many tasks are unfinished: put (or being put), and not yet marked done.
    pub fn unfinished(&self) -> u64 {
        self.join.0.unfinished()
    }

    /// Waits until every task put so far is marked done.
    pub fn join(&self) {
        self.join.0.wait_all_done(Deadline::NEVER);
    }

    /// Waits at most `timeout` for every task to be done; returns whether they are.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join.0.wait_all_done(Deadline::after(timeout))
    }
}

impl<T: Pod, const N: usize> Default for JoinableQueue<T, N> {
    fn default() -> Self {
        JoinableQueue::new()
    }
}

impl<T: Pod, const N: usize> fmt::Debug for JoinableQueue<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.queue)
            .field("unfinished", &self.unfinished())
            .finish()
    }
}

impl<T: Pod, const N: usize> sealed::Sealed for JoinableQueue<T, N> {
    fn ready_notifier(&self) -> sealed::ReadyNotifier<'_> {
        sealed::ReadyNotifier(self.queue.not_empty())
    }
}

impl<T: Pod, const N: usize> Waitable for JoinableQueue<T, N> {
    fn is_ready(&self) -> bool {
        self.queue.ready_now()
    }
}

// SAFETY: a Queue (Sync for T: Pod + Send) plus atomics.
unsafe impl<T: Pod + Send, const N: usize> Sync for JoinableQueue<T, N> {}
// SAFETY: repr(C) of a ShmSafe Queue and a line of fixed-width atomics; no Drop.
unsafe impl<T: Pod + Send, const N: usize> ShmSafe for JoinableQueue<T, N> {
    // Layout 2: the queue inside it (see `Queue`).
    crate::segment::kit_identity!(JoinableQueue, 2, "shmkit::JoinableQueue", pod T, const N);
    const ITEM_STRIDE: u32 = Queue::<T, N>::ITEM_STRIDE;
}

/// Where the queue sits inside a `JoinableQueue` (for `crate::inspect`).
#[cfg(all(feature = "std", not(shmkit_loom)))]
pub(crate) const QUEUE_OFFSET: usize = core::mem::offset_of!(JoinableQueue<u64, 1>, queue);
/// Where the unfinished-task count and the joiners' notifier sit (for `crate::inspect`).
#[cfg(all(feature = "std", not(shmkit_loom)))]
pub(crate) const UNFINISHED_OFFSET: usize =
    core::mem::offset_of!(JoinableQueue<u64, 1>, join) + super::queue::JoinCtl::UNFINISHED;
#[cfg(all(feature = "std", not(shmkit_loom)))]
pub(crate) const DONE_OFFSET: usize =
    core::mem::offset_of!(JoinableQueue<u64, 1>, join) + super::queue::JoinCtl::DONE;
// SAFETY: all-zero is an empty open queue with no unfinished tasks.
#[cfg(not(shmkit_loom))]
unsafe impl<T: Pod, const N: usize> bytemuck::Zeroable for JoinableQueue<T, N> {}

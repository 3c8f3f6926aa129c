//! `JoinableQueue<T, N>`: a [`Queue`] that counts unfinished tasks.

use core::fmt;
use core::time::Duration;

use bytemuck::Pod;

use super::queue::{GetError, PutError, Queue};
use super::ring::Line;
use super::wait::{Waitable, sealed};
use crate::error::Error;
use crate::primitive::{AtomicU64, Deadline, Ordering};
use crate::segment::ShmSafe;
use crate::sync::notifier::Notifier;

/// The unfinished-task count and the notifier `join` sleeps on.
///
/// ```text
/// offset size field       written by
///      0    8 unfinished  put (+1 before its claim, -1 if it fails), task_done (-1),
///                         a reclaimer of a dead producer's slot (-1)
///      8    8 done        Notifier: whoever brings `unfinished` to 0 wakes, join sleeps
/// ```
#[repr(C)]
pub(crate) struct JoinCtl {
    unfinished: AtomicU64,
    done: Notifier,
}

impl JoinCtl {
    /// A put is starting.
    pub(crate) fn item_added(&self) {
        self.unfinished.fetch_add(1, Ordering::AcqRel);
    }

    /// A put failed, or its item was lost with its producer.
    pub(crate) fn item_gone(&self) {
        let _ = self.decrement();
    }

    /// Takes one off the count; `Err(Overflow)` if it is zero.
    fn decrement(&self) -> Result<(), Error> {
        let mut now = self.unfinished.load(Ordering::Acquire);
        loop {
            if now == 0 {
                return Err(Error::Overflow);
            }
            // SYNC POINT with the Acquire load in `join`: the work a consumer did
            // before `task_done` is visible to the joiner.
            match self.unfinished.compare_exchange_weak(
                now,
                now - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => now = actual,
            }
        }
        if now == 1 {
            self.done.notify_all();
        }
        Ok(())
    }

    fn all_done(&self) -> Option<()> {
        (self.unfinished.load(Ordering::Acquire) == 0).then_some(())
    }
}

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
/// let q = Shared::new(JoinableQueue::<u32, 16>::new())?;
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

impl<T: Pod, const N: usize> JoinableQueue<T, N> {
    crate::primitive::loom_const_fn! {
        /// An empty, open queue with no unfinished tasks (all zero).
        pub const fn new() -> Self {
            JoinableQueue {
                join: Line(JoinCtl { unfinished: AtomicU64::new(0), done: Notifier::new() }),
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

    /// As [`Queue::lost`].
    pub fn lost(&self) -> u64 {
        self.queue.lost()
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
        self.join.0.unfinished.load(Ordering::Acquire)
    }

    /// Waits until every task put so far is marked done.
    pub fn join(&self) {
        let _ = self
            .join
            .0
            .done
            .wait_until(Deadline::NEVER, || self.join.0.all_done());
    }

    /// Waits at most `timeout` for every task to be done; returns whether they are.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join
            .0
            .done
            .wait_until(Deadline::after(timeout), || self.join.0.all_done())
            .is_some()
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
    crate::segment::kit_identity!(JoinableQueue, 1, "shmkit::JoinableQueue", pod T, const N);
}
// SAFETY: all-zero is an empty open queue with no unfinished tasks.
#[cfg(not(shmkit_loom))]
unsafe impl<T: Pod, const N: usize> bytemuck::Zeroable for JoinableQueue<T, N> {}

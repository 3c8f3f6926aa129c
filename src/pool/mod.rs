//! `Pool`: forked worker processes running plain `fn` tasks (std only).
//!
//! Python's `multiprocessing.Pool` for CPU-bound work, without pickling: a task is a
//! plain `fn` pointer with a [`Pod`] argument and a [`Pod`] result, each at most
//! [`Pool::MAX_ITEM_SIZE`] bytes (a larger type does not compile). Workers are forked
//! once, when the pool starts; a fork runs the same executable at the same addresses,
//! so a `fn` pointer taken in the parent is valid in every worker.
//!
//! ```
//! use shmkit::Pool;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let pool = Pool::new(2)?;
//! let squares = pool.map(square, &[1, 2, 3, 4])?;
//! assert_eq!(squares, [1, 4, 9, 16]);
//!
//! let pending = pool.apply_async(square, 12);
//! assert_eq!(pending.get()?, 144);
//! # Ok::<(), shmkit::PoolError>(())
//! ```
//!
//! A type larger than [`Pool::MAX_ITEM_SIZE`] is refused when the call is compiled:
//!
//! ```compile_fail,E0080
//! use shmkit::Pool;
//! fn first(x: [u8; 2048]) -> u8 { x[0] }
//! let pool = Pool::new(1).unwrap();
//! let _ = pool.apply(first, [0u8; 2048]); // error: items are at most 1024 bytes
//! ```
//!
//! # Crashes
//!
//! A worker killed in the middle of a task (`kill -9`, a segfault, `exit` inside a
//! task) fails exactly the items it was running with [`PoolError::WorkerDied`] — a
//! `map` returns that error, it never hangs — and a replacement worker is forked into
//! its place; later tasks succeed. A task that panics fails with
//! [`PoolError::TaskPanicked`], for that item alone; the worker lives on.
//!
//! # How it works
//!
//! Each worker has a mailbox in an anonymous shared mapping (made before the fork)
//! holding one chunk of tasks: a small state word, the task's addresses and type
//! signature, and up to 32 KiB of arguments and of results. The parent posts a chunk,
//! wakes the worker through a futex, and sleeps on one pool-wide futex that every
//! worker bumps when it finishes. Long `map`s are cut into chunks of several items,
//! about four per worker (Python's default `chunksize`), so tiny tasks pay one round
//! trip per chunk.
//!
//! Per-worker mailboxes rather than one shared queue let the parent know exactly which
//! items each worker holds, and whether it had started them: a dead worker's unstarted
//! chunk is posted again, a started one fails with the dead worker's pid and signal,
//! and the replacement takes over the mailbox.
//!
//! The parent has no helper thread: whichever of its threads waits on the pool (in
//! `map`, an iterator's `next`, [`AsyncResult::get`], [`Pool::join`], ...) collects
//! finished chunks, replaces dead workers and posts queued chunks for every caller.
//! While no thread waits, chunks already posted keep running, and the rest wait.
//!
//! # Fork safety
//!
//! Workers are forked from whichever thread creates the pool or replaces a worker.
//! A worker runs only the initializer, the tasks, and the pool's own shared-memory
//! code. Keep tasks free of locks other threads of the parent may have held at the
//! fork (stdout, a `std::sync::Mutex`); glibc's allocator is safe. A panicking task
//! runs the panic hook in the worker, which writes to stderr.
//!
//! Workers leave through `_exit`. An idle worker checks twice a second that its parent
//! lives and exits if it does not; dropping the pool kills and reaps every worker.

mod mailbox;
mod sched;
mod task;

use core::fmt;
use core::marker::PhantomData;
use core::mem::size_of;
use core::time::Duration;
use std::sync::{Mutex, MutexGuard};
use std::vec::Vec;

use bytemuck::Pod;

use self::mailbox::Hub;
use self::sched::{Buf, Config, HEALTH_INTERVAL_NS, Inner, Phase, Spec};
use crate::error::Error;
use crate::primitive::Deadline;
use crate::segment::Shared;

/// The mailbox hand-over, for the loom model in `tests/loom_pool.rs`. Exists only
/// under `--cfg shmkit_loom`; not part of the API.
#[cfg(shmkit_loom)]
#[doc(hidden)]
pub mod __loom_pool {
    pub use super::mailbox::{Hub, Mailbox};
    use std::vec::Vec;

    /// The key the model's parent and worker share.
    pub const KEY: u64 = 0x5eed;

    fn double(x: u32) -> u64 {
        u64::from(x) * 2
    }

    pub fn new_mailbox() -> Mailbox {
        Mailbox::new()
    }

    pub fn new_hub() -> Hub {
        Hub::new()
    }

    /// The worker's whole loop (no initializer; the parent-death check never fires
    /// under loom, where non-zero timeouts never expire).
    pub fn worker(mb: &Mailbox, hub: &Hub) -> i32 {
        super::mailbox::worker_main(mb, hub, None, 0, KEY)
    }

    /// The parent posts `items` as one chunk of `double`.
    pub fn post_doubles(mb: &Mailbox, items: &[u32]) {
        let spec = super::map_spec::<u32, u64>(double);
        let input: Vec<u8> = items.iter().flat_map(|x| x.to_ne_bytes()).collect();
        mb.post(&super::mailbox::Post {
            trampoline: spec.trampoline,
            func: spec.func,
            sig: spec.sig,
            tag: super::task::tag(KEY, spec.trampoline, spec.func, spec.sig),
            in_size: 4,
            out_size: 8,
            input: &input,
            count: items.len(),
            retire: false,
        });
    }

    /// The parent's wait, as `Pool::drive` does it: read the completion count, look
    /// at the mailbox, sleep on the hub until the count moves. Then collects.
    pub fn wait_and_collect(mb: &Mailbox, hub: &Hub, n: usize) -> Vec<u64> {
        loop {
            let seen = hub.completions();
            if mb.state() == super::mailbox::DONE {
                break;
            }
            hub.wait_change(seen, crate::primitive::Deadline::NEVER);
        }
        let mut status = std::vec![0u8; n];
        let mut out = std::vec![0u8; n * 8];
        assert!(matches!(
            mb.collect(&mut status, &mut out),
            super::mailbox::Collected::Ran
        ));
        assert!(status.iter().all(|&s| s == super::task::ITEM_OK));
        out.chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    pub fn request_exit(mb: &Mailbox) {
        mb.request_exit();
    }
}

/// What a pool task can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PoolError {
    /// The worker running the task died (it has been replaced).
    WorkerDied {
        /// The dead worker's pid.
        pid: i32,
        /// The signal that killed it; `None` if it exited.
        signal: Option<i32>,
    },
    /// The task panicked (only that task fails; the worker lives on).
    TaskPanicked,
    /// The pool was closed or terminated before the task ran.
    Closed,
    /// [`AsyncResult::get_timeout`]: the result was not ready in time.
    Timeout,
    /// Another error from the kit (a corrupted mailbox, a failed fork).
    Other(Error),
}

impl From<Error> for PoolError {
    fn from(e: Error) -> Self {
        PoolError::Other(e)
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::WorkerDied {
                pid,
                signal: Some(sig),
            } => write!(f, "pool worker {pid} was killed by signal {sig}"),
            PoolError::WorkerDied { pid, signal: None } => {
                write!(f, "pool worker {pid} exited during the task")
            }
            PoolError::TaskPanicked => f.write_str("the pool task panicked"),
            PoolError::Closed => f.write_str("the pool is closed"),
            PoolError::Timeout => f.write_str("the pool task did not finish in time"),
            PoolError::Other(e) => write!(f, "pool: {e}"),
        }
    }
}

impl core::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            PoolError::Other(e) => Some(e),
            _ => None,
        }
    }
}

/// A pool of forked worker processes; see the [module docs](self).
///
/// `Send + Sync`: several threads may use one pool at once; their tasks share the
/// workers first come, first served. Dropping the pool kills and reaps every worker.
pub struct Pool {
    hub: Shared<Hub>,
    inner: Mutex<Inner>,
}

/// The longest `sleep` between two looks at the workers' health while waiting.
const SLICE: Duration = Duration::from_nanos(HEALTH_INTERVAL_NS);

impl Pool {
    /// The largest argument or result type, in bytes (for `starmap`, the two
    /// arguments together). A larger one is refused at compile time.
    pub const MAX_ITEM_SIZE: usize = 1024;

    /// A pool of `workers` processes, forked now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `workers` is 0; [`Error::Os`] if a mapping or a
    /// fork fails (the workers already forked are killed and reaped).
    pub fn new(workers: usize) -> Result<Pool, Error> {
        PoolBuilder::new().workers(workers).build()
    }

    /// A builder for the worker count, an initializer and `max_tasks_per_child`.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    /// Applies `f` to every item on the workers; the results in input order.
    ///
    /// # Errors
    ///
    /// The first failure seen: [`PoolError::WorkerDied`] (a worker died while running
    /// some of the items), [`PoolError::TaskPanicked`], [`PoolError::Closed`] (the
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
        const { assert_item::<T>() };
        const { assert_item::<U>() };
        let mut out: Vec<U> = std::vec![U::zeroed(); items.len()];
        // SAFETY: `collect_into` removes the job before it returns or unwinds, and
        // neither `items` nor `out` is touched until then.
        let (input, output) = unsafe {
            (
                Buf::lend(pod_slice_bytes(items)),
                Buf::lend_mut(pod_slice_bytes_mut(&mut out)),
            )
        };
        let id = self.submit(map_spec(f), input, output, items.len(), false)?;
        self.collect_into(id)?;
        Ok(out)
    }

    /// Like [`Pool::map`], but yields the results one by one, in input order, as they
    /// come; an item that failed yields its error and the rest go on.
    ///
    /// All items are queued at once; dropping the iterator early drops the rest.
    pub fn imap<'a, T: Pod, U: Pod>(&'a self, f: fn(T) -> U, items: &'a [T]) -> Imap<'a, T, U> {
        const { assert_item::<T>() };
        const { assert_item::<U>() };
        let job = self.submit(
            map_spec(f),
            owned(items),
            out_buf::<U>(items.len()),
            items.len(),
            false,
        );
        Imap {
            run: Run::new(self, job),
            next: 0,
            len: items.len(),
            _items: PhantomData,
        }
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
        let job = self.submit(
            map_spec(f),
            owned(items),
            out_buf::<U>(items.len()),
            items.len(),
            true,
        );
        ImapUnordered {
            run: Run::new(self, job),
            yielded: 0,
            len: items.len(),
            _items: PhantomData,
        }
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
        let id = self.submit(spec, Buf::Owned(input), output, items.len(), false)?;
        self.collect_into(id)?;
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
        let input = owned(core::slice::from_ref(&arg));
        let job = self.submit(map_spec(f), input, out_buf::<U>(1), 1, false);
        AsyncResult {
            run: Run::new(self, job),
            _result: PhantomData,
        }
    }

    /// No new tasks from now on (they fail with [`PoolError::Closed`]); tasks already
    /// submitted still run.
    pub fn close(&self) {
        let mut inner = self.lock();
        if inner.phase == Phase::Open {
            inner.phase = Phase::Closed;
        }
    }

    /// Closes the pool, waits until every submitted task has finished, then lets the
    /// workers exit and reaps them.
    pub fn join(&self) {
        self.close();
        self.drive(Deadline::NEVER, |inner| inner.drained().then_some(()));
        let mut inner = self.lock();
        if inner.phase != Phase::Finished {
            inner.exit_workers(&self.hub);
        }
    }

    /// Kills (`SIGKILL`) and reaps every worker now. Tasks not finished fail with
    /// [`PoolError::Closed`].
    pub fn terminate(&self) {
        let mut inner = self.lock();
        if inner.phase != Phase::Finished {
            inner.finish(PoolError::Closed, &self.hub);
        }
    }

    /// The pids of the current workers (none after `join` or `terminate`).
    pub fn worker_pids(&self) -> Vec<i32> {
        self.lock().worker_pids()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held leaves the bookkeeping consistent enough
        // to kill and reap the workers: keep going rather than leak processes.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn submit(
        &self,
        spec: Spec,
        input: Buf,
        output: Buf,
        len: usize,
        track_order: bool,
    ) -> Result<u64, PoolError> {
        self.lock().submit(spec, input, output, len, track_order)
    }

    /// Waits (running the pump) until `check` says done, or `deadline`.
    fn drive<R>(
        &self,
        deadline: Deadline,
        mut check: impl FnMut(&mut Inner) -> Option<R>,
    ) -> Option<R> {
        loop {
            // Read before pumping: a chunk finished after this read bumps the count,
            // one finished before it is seen DONE by the pump.
            let seen = self.hub.completions();
            {
                let mut inner = self.lock();
                if let Some(r) = check(&mut inner) {
                    return Some(r);
                }
                inner.pump(&self.hub, false);
                if let Some(r) = check(&mut inner) {
                    return Some(r);
                }
            }
            if deadline.expired() {
                return None;
            }
            let slice = Deadline::after(SLICE);
            let until = match (deadline.as_ns(), slice.as_ns()) {
                (Some(d), Some(s)) if d < s => deadline,
                _ => slice,
            };
            self.hub.wait_change(seen, until);
        }
    }

    /// Waits for every item of job `id`, or its first failure; forgets the job (also
    /// when unwinding), so a buffer lent to it is free again when this returns.
    fn collect_into(&self, id: u64) -> Result<(), PoolError> {
        let _forget = Forget { pool: self, id };
        self.drive(Deadline::NEVER, |inner| {
            let Some(job) = inner.job(id) else {
                return Some(Err(PoolError::Closed));
            };
            if let Some(e) = job.first_error {
                return Some(Err(e));
            }
            (job.remaining == 0).then_some(Ok(()))
        })
        .unwrap_or(Err(PoolError::Closed))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("Pool")
            .field("workers", &inner.worker_pids())
            .field("phase", &inner.phase)
            .finish()
    }
}

/// Options for a [`Pool`].
#[derive(Debug, Clone, Default)]
pub struct PoolBuilder {
    workers: Option<usize>,
    initializer: Option<fn()>,
    max_tasks_per_child: Option<usize>,
}

impl PoolBuilder {
    /// Default options: one worker per available CPU, no initializer, workers live
    /// as long as the pool.
    pub fn new() -> Self {
        PoolBuilder::default()
    }

    /// How many worker processes (default: `std::thread::available_parallelism`).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Runs `f` in each worker right after it is forked, replacements included. A
    /// worker whose initializer panics exits; if three in a row do, the pool gives up
    /// and its pending tasks fail with [`PoolError::WorkerDied`].
    pub fn initializer(mut self, f: fn()) -> Self {
        self.initializer = Some(f);
        self
    }

    /// A worker exits after running `k` tasks (items) and a fresh one is forked in its
    /// place (Python's `maxtasksperchild`; chunks are cut to fit).
    pub fn max_tasks_per_child(mut self, k: usize) -> Self {
        self.max_tasks_per_child = Some(k);
        self
    }

    /// Forks the workers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for 0 workers or `max_tasks_per_child(0)`;
    /// [`Error::Os`] if a mapping or a fork fails (the workers already forked are
    /// killed and reaped).
    pub fn build(self) -> Result<Pool, Error> {
        let workers = match self.workers {
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if workers == 0 || self.max_tasks_per_child == Some(0) {
            return Err(Error::InvalidArgument);
        }
        let cfg = Config {
            initializer: self.initializer,
            max_tasks_per_child: self.max_tasks_per_child,
            key: fresh_key(),
            parent: crate::sys::ids::pid(),
        };
        // SAFETY: an all-zero Hub is a valid one (a zero counter, an idle Notifier).
        let hub = unsafe { Shared::<Hub>::new_with(|_| {}) }?;
        let pool = Pool {
            hub,
            inner: Mutex::new(Inner::new(cfg)),
        };
        {
            let mut inner = pool.lock();
            for _ in 0..workers {
                inner.add_worker(&pool.hub)?; // on error, dropping `pool` reaps the rest
            }
        }
        Ok(pool)
    }
}

/// The result of [`Pool::apply_async`], to wait for. Borrows the pool.
pub struct AsyncResult<'a, U: Pod> {
    run: Run<'a>,
    _result: PhantomData<fn() -> U>,
}

impl<U: Pod> AsyncResult<'_, U> {
    /// Waits for the result. Can be called again (it returns the same result).
    ///
    /// # Errors
    ///
    /// [`PoolError::WorkerDied`], [`PoolError::TaskPanicked`], [`PoolError::Closed`]
    /// (the pool was closed before the task was submitted, or terminated before it
    /// finished).
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
struct Run<'a> {
    pool: &'a Pool,
    job: Result<u64, PoolError>,
}

impl<'a> Run<'a> {
    fn new(pool: &'a Pool, job: Result<u64, PoolError>) -> Self {
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
struct Forget<'a> {
    pool: &'a Pool,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.pool.lock().remove_job(self.id);
    }
}

/// Refuses (at compile time, when the generic call is instantiated) a type larger than
/// a mailbox slot.
const fn assert_item<T>() {
    assert!(
        size_of::<T>() <= Pool::MAX_ITEM_SIZE,
        "pool task arguments and results are at most Pool::MAX_ITEM_SIZE (1024) bytes"
    );
}

fn map_spec<T: Pod, U: Pod>(f: fn(T) -> U) -> Spec {
    Spec {
        // Both addresses are of functions of this executable; see `task`.
        trampoline: task::fn_addr(task::run_map::<T, U> as task::Trampoline as *const ()),
        func: task::fn_addr(f as *const ()),
        sig: task::map_signature::<T, U>(),
        in_size: size_of::<T>(),
        out_size: size_of::<U>(),
    }
}

/// The bytes of a slice of `Pod`s (empty for a zero-sized `T`).
fn pod_slice_bytes<T: Pod>(items: &[T]) -> &[u8] {
    if size_of::<T>() == 0 {
        &[]
    } else {
        bytemuck::cast_slice(items)
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

/// One `U` read from its unaligned bytes.
fn pod_from<U: Pod>(bytes: &[u8]) -> U {
    if size_of::<U>() == 0 {
        return U::zeroed();
    }
    bytemuck::pod_read_unaligned(bytes)
}

/// A fresh key for `task::tag`, from the standard library's per-process random seed,
/// the pid and the clock.
fn fresh_key() -> u64 {
    use core::hash::BuildHasher;
    std::hash::RandomState::new()
        .hash_one((crate::sys::ids::pid(), crate::sys::time::monotonic_ns()))
}

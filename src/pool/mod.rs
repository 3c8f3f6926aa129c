//! `Pool`: forked worker processes running plain `fn` tasks (std only).
//!
//! Python's `multiprocessing.Pool` for CPU-bound work, without pickling: a task is a
//! plain `fn` pointer with a [`Pod`] argument and a [`Pod`] result, each at most
//! [`Pool::MAX_ITEM_SIZE`] bytes (a larger type does not compile). Workers are forks of
//! this process: a fork runs the same executable at the same addresses, so a `fn`
//! pointer taken here is valid in every worker.
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
//! task) fails exactly the item it was running with [`PoolError::WorkerDied`] — a `map`
//! returns that error, it never hangs. The items of its chunk that had finished keep
//! their results, those it had not started run on another worker, and a replacement
//! worker takes its place; later tasks succeed. A task that panics fails with
//! [`PoolError::TaskPanicked`], which carries the panic's text; for that item alone,
//! and the worker lives on.
//!
//! # How it works
//!
//! Each worker has a slot in an anonymous shared mapping (made before any fork)
//! holding its life record and its mailbox: one chunk of tasks, with a small state
//! word, the task's addresses and type signature, and up to 32 KiB of arguments and of
//! results. The parent posts a chunk, wakes the worker through a futex, and sleeps on
//! one pool-wide futex that every worker bumps when it finishes. Long `map`s are cut
//! into chunks of several items, about four per worker (Python's default `chunksize`),
//! so tiny tasks pay one round trip per chunk.
//!
//! Per-worker mailboxes rather than one shared queue let the parent know exactly which
//! items each worker holds and how far it got: the worker marks each item as it starts
//! and finishes it, so a dead worker's finished items are kept, its unstarted ones are
//! posted again, and the one in progress fails with the dead worker's pid and signal.
//!
//! The parent has no helper thread: whichever of its threads waits on the pool (in
//! `map`, an iterator's `next`, [`AsyncResult::get`], [`Pool::join`], ...) collects
//! finished chunks, accounts for dead workers and posts queued chunks for every
//! caller. While no thread waits, chunks already posted keep running, and the rest wait.
//!
//! # Fork safety: the zygote
//!
//! A process forked from a multi-threaded one inherits every lock another thread held
//! at that instant, held forever. So the parent forks exactly once, when the pool is
//! built: a single-threaded *zygote*, which then forks every worker — the first ones
//! and every replacement — on request, reaps them, and reports their pids and deaths
//! through shared memory (see `zygote`). Workers start from that one quiet image, not
//! from whichever thread of the parent happens to be waiting on the pool. Consequences:
//!
//! - Build the pool while no other thread holds a lock its tasks need (early in
//!   `main` is best): a lock held at that moment stays held in every worker. Memory
//!   the parent changes after `build` (a static set later, a mapping made later) is
//!   not seen by any worker, first or replacement.
//! - Workers keep only stdin, stdout and stderr of the parent's file descriptors.
//! - A worker's panic hook is the pool's: it writes one line with raw `write(2)`, and
//!   the text also comes back in [`PoolError::TaskPanicked`].
//! - The zygote is a copy-on-write snapshot of the parent: it costs little unless the
//!   parent is large and keeps writing to memory it had at `build`.
//!
//! Workers leave through `_exit`. The zygote exits when the pool ends, and when its
//! parent dies (it watches a pidfd of it); workers die with the zygote
//! (`PR_SET_PDEATHSIG`). Dropping the pool kills every worker, and reaps the zygote,
//! which reaps the workers.

mod builder;
mod calls;
mod error;
mod hub;
mod job;
#[cfg(shmkit_loom)]
mod loom_api;
mod mailbox;
mod results;
mod sched;
mod slot;
mod task;
mod worker;
mod zygote;

use core::fmt;
use core::time::Duration;
use std::sync::{Mutex, MutexGuard};
use std::vec::Vec;

use bytemuck::Pod;

pub use self::builder::PoolBuilder;
pub use self::error::{PanicMessage, PoolError};
use self::hub::Hub;
pub use self::results::{AsyncResult, Imap, ImapUnordered};
use self::sched::{HEALTH_INTERVAL_NS, Inner, Phase};
use crate::error::Error;
use crate::primitive::Deadline;
use crate::process::Process;
use crate::segment::Shared;

#[cfg(shmkit_loom)]
#[doc(hidden)]
pub use self::loom_api::__loom_pool;

/// A pool of forked worker processes; see the [module docs](self).
///
/// `Send + Sync`: several threads may use one pool at once; their tasks share the
/// workers first come, first served. Dropping the pool kills every worker and reaps
/// its zygote.
pub struct Pool {
    hub: Shared<Hub>,
    inner: Mutex<Inner>,
}

/// The longest `sleep` between two looks at the zygote's health while waiting.
const SLICE: Duration = Duration::from_nanos(HEALTH_INTERVAL_NS);
/// How long the zygote gets to kill its workers and exit before it is killed.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long [`Pool::worker_pids`] waits for workers being forked.
const PIDS_PATIENCE: Duration = Duration::from_secs(10);

impl Pool {
    /// The largest argument or result type, in bytes (for `starmap`, the two
    /// arguments together). A larger one is refused at compile time.
    pub const MAX_ITEM_SIZE: usize = 1024;

    /// A pool of `workers` processes, forked now (see [`PoolBuilder::build`]).
    ///
    /// # Errors
    ///
    /// As [`PoolBuilder::build`].
    pub fn new(workers: usize) -> Result<Pool, Error> {
        PoolBuilder::new().workers(workers).build()
    }

    /// A builder for the worker count, an initializer and `max_tasks_per_child`.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
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
    /// workers exit and reaps the zygote (which reaps them).
    pub fn join(&self) {
        self.close();
        self.drive(Deadline::NEVER, |inner| inner.drained().then_some(()));
        let zygote = {
            let mut inner = self.lock();
            if inner.phase != Phase::Finished {
                inner.exit_workers(&self.hub);
            }
            inner.zygote.take()
        };
        // Outside the lock: the zygote gives slow workers a grace period.
        reap_zygote(zygote, zygote::EXIT_GRACE + KILL_GRACE);
    }

    /// Kills (`SIGKILL`) every worker now, and reaps the zygote. Tasks not finished
    /// fail with [`PoolError::Closed`].
    pub fn terminate(&self) {
        let zygote = {
            let mut inner = self.lock();
            if inner.phase != Phase::Finished {
                inner.finish(PoolError::Closed, &self.hub);
            }
            inner.zygote.take()
        };
        reap_zygote(zygote, KILL_GRACE);
    }

    /// The pids of the current workers (none after `join` or `terminate`). Waits (a
    /// few seconds at most) for workers that are leaving (`max_tasks_per_child`) or
    /// being forked to replace others.
    pub fn worker_pids(&self) -> Vec<i32> {
        let deadline = Deadline::after(PIDS_PATIENCE);
        self.drive(deadline, |inner| (!inner.changing_workers()).then_some(()));
        self.lock().worker_pids()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held leaves the bookkeeping consistent enough
        // to end the pool: keep going rather than leak processes.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
}

/// Waits up to `grace` for the zygote (told to leave) to exit, kills it past that (its
/// workers die with it), and reaps it.
fn reap_zygote(zygote: Option<Process>, grace: Duration) {
    let Some(mut zygote) = zygote else { return };
    if !matches!(zygote.join_timeout(grace), Ok(Some(_))) {
        let _ = zygote.kill();
        let _ = zygote.join();
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

/// Refuses (at compile time, when the generic call is instantiated) a type larger than
/// a mailbox slot.
const fn assert_item<T>() {
    assert!(
        core::mem::size_of::<T>() <= Pool::MAX_ITEM_SIZE,
        "pool task arguments and results are at most Pool::MAX_ITEM_SIZE (1024) bytes"
    );
}

/// The bytes of a slice of `Pod`s (empty for a zero-sized `T`).
fn pod_slice_bytes<T: Pod>(items: &[T]) -> &[u8] {
    if core::mem::size_of::<T>() == 0 {
        &[]
    } else {
        bytemuck::cast_slice(items)
    }
}

//! The parent's side of the pool: process-local bookkeeping of jobs and workers, and
//! the `pump` that collects finished chunks, replaces dead workers and posts new chunks.
//!
//! Nothing here lives in shared memory. It sits behind the pool's `std::sync::Mutex`;
//! whichever thread of the parent is waiting for a result runs the pump, so every
//! thread's jobs progress while any thread waits. `pump` never blocks for long: it
//! reads mailbox states, copies bytes, and forks a replacement when one is due.

use std::collections::{BTreeMap, VecDeque};
use std::vec;
use std::vec::Vec;

use core::time::Duration;

use super::PoolError;
use super::mailbox::{self, Collected, Hub, Mailbox, Post};
use super::task::{self, ITEM_OK, ITEM_PANICKED};
use crate::error::Error;
use crate::process::{ExitStatus, Process};
use crate::segment::Shared;

/// How often the parent checks its workers for death while it waits.
pub(crate) const HEALTH_INTERVAL_NS: u64 = 10_000_000;
/// A pool whose workers die in their initializer this many times in a row gives up.
const INIT_FAILURE_LIMIT: u32 = 3;
/// How long a retiring or exiting worker gets to leave before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Item state, parent side: not final yet.
const PENDING: u8 = 0;
/// Item state, parent side: failed; the error is in `Job::failures`.
const FAILED: u8 = 3;
const _: () = assert!(ITEM_OK != PENDING && ITEM_PANICKED != PENDING);
const _: () = assert!(ITEM_OK != FAILED && ITEM_PANICKED != FAILED);

/// Fixed settings of a pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) initializer: Option<fn()>,
    pub(crate) max_tasks_per_child: Option<usize>,
    /// The process-private key of `task::tag`.
    pub(crate) key: u64,
    /// The parent's pid (workers exit when their parent is no longer this).
    pub(crate) parent: i32,
}

/// What one job runs: the type-erased form of `fn(T) -> U` (or `fn(A, B) -> U`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub(crate) trampoline: u64,
    pub(crate) func: u64,
    pub(crate) sig: u64,
    pub(crate) in_size: usize,
    pub(crate) out_size: usize,
}

/// A submitted batch of items (one `map` call, one `apply_async`, ...).
pub(crate) struct Job {
    spec: Spec,
    tag: u64,
    len: usize,
    chunk: usize,
    /// `len * in_size` argument bytes.
    input: Buf,
    /// First item never posted.
    next: usize,
    /// Chunks to post again (their worker died before it started them).
    retry: Vec<(usize, usize)>,
    /// `len * out_size` result bytes.
    output: Buf,
    /// Per item: `PENDING`, `ITEM_OK`, `ITEM_PANICKED` or `FAILED`.
    status: Vec<u8>,
    /// Failed ranges, in the order they failed: the first range holding an item is
    /// the one that failed it.
    failures: Vec<(usize, usize, PoolError)>,
    /// Items not final yet.
    pub(crate) remaining: usize,
    /// The first failure seen.
    pub(crate) first_error: Option<PoolError>,
    /// Indices in the order they became final (`imap_unordered` only).
    pub(crate) order: Option<VecDeque<usize>>,
}

impl Job {
    fn has_work(&self) -> bool {
        !self.retry.is_empty() || self.next < self.len
    }

    /// Is item `i` final?
    pub(crate) fn is_final(&self, i: usize) -> bool {
        self.status[i] != PENDING
    }

    /// Item `i`'s result bytes, or its error. Only for a final item.
    pub(crate) fn result(&self, i: usize) -> Result<&[u8], PoolError> {
        let size = self.spec.out_size;
        match self.status[i] {
            ITEM_OK => Ok(&self.output.bytes()[i * size..(i + 1) * size]),
            ITEM_PANICKED => Err(PoolError::TaskPanicked),
            _ => Err(self
                .failures
                .iter()
                .find(|(start, len, _)| (*start..start + len).contains(&i))
                .map_or(PoolError::Other(Error::Corrupted), |f| f.2)),
        }
    }

    fn settle(&mut self, i: usize) {
        self.remaining -= 1;
        if let Some(order) = &mut self.order {
            order.push_back(i);
        }
    }

    /// Fails every still-pending item of `start..start + len` with `err`.
    fn fail(&mut self, start: usize, len: usize, err: PoolError) {
        let mut any = false;
        for i in start..start + len {
            if self.status[i] == PENDING {
                self.status[i] = FAILED;
                self.settle(i);
                any = true;
            }
        }
        if any {
            self.failures.push((start, len, err));
            self.first_error.get_or_insert(err);
        }
    }
}

/// A job's argument or result bytes: its own, or a caller's buffer that outlives the
/// job (a blocking `map` lends its argument slice and its result vector, saving two
/// copies and two allocations of the whole data).
pub(crate) enum Buf {
    /// Bytes the job owns.
    Owned(Vec<u8>),
    /// A caller's buffer; see [`Buf::lend`].
    Lent { ptr: *mut u8, len: usize },
}

// SAFETY: a `Lent` buffer is only touched through the pool's mutex (the job is in
// `Inner`), and its lender, on whichever thread, does not touch it until it has
// removed the job under that mutex (see `Buf::lend`).
unsafe impl Send for Buf {}

impl Buf {
    /// Lends `bytes` to a job.
    ///
    /// # Safety
    ///
    /// Until the job holding the `Buf` is removed from `Inner` (under the pool's
    /// mutex), the buffer must stay allocated and the caller must not access it. The
    /// job may write to it (for a result buffer) only if it came from a `&mut`; an
    /// argument buffer from a `&[u8]` is only ever read.
    pub(crate) unsafe fn lend(bytes: &[u8]) -> Buf {
        Buf::Lent {
            ptr: bytes.as_ptr().cast_mut(),
            len: bytes.len(),
        }
    }

    /// Lends a result buffer. Safety: as [`Buf::lend`].
    pub(crate) unsafe fn lend_mut(bytes: &mut [u8]) -> Buf {
        Buf::Lent {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Buf::Owned(v) => v,
            // SAFETY: the lender keeps the buffer alive and untouched while the job
            // exists (`lend`'s contract); `ptr` and `len` describe it.
            Buf::Lent { ptr, len } => unsafe { core::slice::from_raw_parts(*ptr, *len) },
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Buf::Owned(v) => v,
            // SAFETY: as in `bytes`; only result buffers, which were lent from a
            // `&mut [u8]` (`lend_mut`), are written.
            Buf::Lent { ptr, len } => unsafe { core::slice::from_raw_parts_mut(*ptr, *len) },
        }
    }
}

/// The chunk a worker holds.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    job: u64,
    start: usize,
    len: usize,
    retire: bool,
}

/// One worker process and its mailbox.
struct Worker {
    process: Process,
    mailbox: Shared<Mailbox>,
    chunk: Option<Chunk>,
    /// Items posted to this process so far (for `max_tasks_per_child`).
    calls: usize,
}

/// Where the pool is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Taking tasks.
    Open,
    /// `close`d: no new tasks; queued ones still run.
    Closed,
    /// `join`ed or `terminate`d (or given up): no workers left.
    Finished,
}

/// The pool's process-local state (behind its mutex).
pub(crate) struct Inner {
    cfg: Config,
    workers: Vec<Worker>,
    jobs: BTreeMap<u64, Job>,
    /// Jobs with chunks still to post, first come first served.
    queue: VecDeque<u64>,
    next_job: u64,
    pub(crate) phase: Phase,
    last_health_ns: u64,
    init_failures: u32,
}

impl Inner {
    pub(crate) fn new(cfg: Config) -> Inner {
        Inner {
            cfg,
            workers: Vec::new(),
            jobs: BTreeMap::new(),
            queue: VecDeque::new(),
            next_job: 1,
            phase: Phase::Open,
            last_health_ns: crate::sys::time::monotonic_ns(),
            init_failures: 0,
        }
    }

    /// Forks one more worker with a fresh mailbox.
    pub(crate) fn add_worker(&mut self, hub: &Shared<Hub>) -> Result<(), Error> {
        // SAFETY: an all-zero Mailbox is a valid IDLE mailbox (see its docs); the slot
        // starts zero-filled.
        let mailbox = unsafe { Shared::<Mailbox>::new_with(|_| {}) }?;
        let process = spawn_worker(&mailbox, hub, &self.cfg)?;
        self.workers.push(Worker {
            process,
            mailbox,
            chunk: None,
            calls: 0,
        });
        Ok(())
    }

    pub(crate) fn worker_pids(&self) -> Vec<i32> {
        self.workers.iter().map(|w| w.process.pid()).collect()
    }

    pub(crate) fn job(&self, id: u64) -> Option<&Job> {
        self.jobs.get(&id)
    }

    pub(crate) fn job_mut(&mut self, id: u64) -> Option<&mut Job> {
        self.jobs.get_mut(&id)
    }

    /// Forgets a job; chunks of it still in flight are discarded when they finish.
    pub(crate) fn remove_job(&mut self, id: u64) {
        self.jobs.remove(&id);
    }

    /// Queues a job of `len` items (`input` holds their bytes, `output` receives the
    /// results) and posts what it can.
    pub(crate) fn submit(
        &mut self,
        spec: Spec,
        input: Buf,
        output: Buf,
        len: usize,
        track_order: bool,
    ) -> Result<u64, PoolError> {
        if self.phase != Phase::Open {
            return Err(PoolError::Closed);
        }
        debug_assert_eq!(input.bytes().len(), len * spec.in_size);
        debug_assert_eq!(output.bytes().len(), len * spec.out_size);
        let id = self.next_job;
        self.next_job += 1;
        let chunk = task::chunk_size(
            len,
            self.workers.len(),
            spec.in_size,
            spec.out_size,
            (mailbox::MAX_CHUNK, mailbox::IN_BYTES, mailbox::OUT_BYTES),
        );
        let job = Job {
            spec,
            tag: task::tag(self.cfg.key, spec.trampoline, spec.func, spec.sig),
            len,
            chunk,
            input,
            next: 0,
            retry: Vec::new(),
            output,
            status: vec![PENDING; len],
            failures: Vec::new(),
            remaining: len,
            first_error: None,
            order: track_order.then(VecDeque::new),
        };
        self.jobs.insert(id, job);
        if len > 0 {
            self.queue.push_back(id);
        }
        self.dispatch();
        Ok(id)
    }

    /// Collects finished chunks, checks the workers' health when due (or when `force`),
    /// and posts chunks to idle workers.
    pub(crate) fn pump(&mut self, hub: &Shared<Hub>, force_health: bool) {
        let mut i = 0;
        // `collect` may retire and replace a worker, and a failed fork ends the pool.
        while i < self.workers.len() {
            if self.workers[i].chunk.is_some() && self.workers[i].mailbox.state() == mailbox::DONE {
                self.collect(i, hub);
            }
            i += 1;
        }
        let now = crate::sys::time::monotonic_ns();
        if force_health || now.saturating_sub(self.last_health_ns) >= HEALTH_INTERVAL_NS {
            self.last_health_ns = now;
            self.check_health(hub);
        }
        self.dispatch();
    }

    /// Nothing queued and nothing in flight?
    pub(crate) fn drained(&self) -> bool {
        self.workers.iter().all(|w| w.chunk.is_none())
            && self
                .queue
                .iter()
                .all(|id| self.jobs.get(id).is_none_or(|j| !j.has_work()))
    }

    /// Worker `i`'s mailbox is DONE: takes its results.
    fn collect(&mut self, i: usize, hub: &Shared<Hub>) {
        let w = &mut self.workers[i];
        let Some(chunk) = w.chunk.take() else { return };
        match self.jobs.get_mut(&chunk.job) {
            Some(job) => {
                let (start, len, size) = (chunk.start, chunk.len, job.spec.out_size);
                let outcome = w.mailbox.collect(
                    &mut job.status[start..start + len],
                    &mut job.output.bytes_mut()[start * size..(start + len) * size],
                );
                match outcome {
                    Collected::Ran => {
                        for k in start..start + len {
                            match job.status[k] {
                                ITEM_OK | ITEM_PANICKED => {
                                    if job.status[k] == ITEM_PANICKED {
                                        job.first_error.get_or_insert(PoolError::TaskPanicked);
                                    }
                                    job.settle(k);
                                }
                                _ => {
                                    // A byte the worker never writes: count it failed.
                                    job.status[k] = PENDING;
                                    job.fail(k, 1, PoolError::Other(Error::Corrupted));
                                }
                            }
                        }
                    }
                    Collected::Corrupt => job.fail(start, len, PoolError::Other(Error::Corrupted)),
                }
            }
            None => {
                let _ = w.mailbox.collect(&mut [], &mut []);
            }
        }
        if chunk.retire {
            self.retire(i, hub);
        }
    }

    /// Worker `i` finished its last chunk and is leaving: reap it, fork its successor.
    fn retire(&mut self, i: usize, hub: &Shared<Hub>) {
        let w = &mut self.workers[i];
        if !matches!(w.process.join_timeout(EXIT_GRACE), Ok(Some(_))) {
            let _ = w.process.kill();
            let _ = w.process.join();
        }
        self.replace(i, hub);
    }

    /// Polls every worker; a dead one has its chunk accounted for and is replaced.
    fn check_health(&mut self, hub: &Shared<Hub>) {
        let mut i = 0;
        while i < self.workers.len() {
            i += 1;
            let i = i - 1;
            let status = match self.workers[i].process.join_timeout(Duration::ZERO) {
                Ok(Some(status)) => status,
                Ok(None) => continue,
                // ECHILD: someone else reaped it (a waitpid(-1) elsewhere): it is gone.
                Err(_) => ExitStatus::Exited(-1),
            };
            self.handle_death(i, status, hub);
        }
    }

    fn handle_death(&mut self, i: usize, status: ExitStatus, hub: &Shared<Hub>) {
        let pid = self.workers[i].process.pid();
        let state = self.workers[i].mailbox.state();
        let started = self.workers[i].mailbox.started();
        if let Some(chunk) = self.workers[i].chunk {
            match state {
                mailbox::DONE => {
                    // It finished the chunk, then died: the results are good.
                    let mut chunk = chunk;
                    chunk.retire = false;
                    self.workers[i].chunk = Some(chunk);
                    self.collect(i, hub);
                }
                mailbox::READY | mailbox::IDLE => {
                    // Never started: post it again, first thing.
                    self.workers[i].chunk = None;
                    if let Some(job) = self.jobs.get_mut(&chunk.job) {
                        job.retry.push((chunk.start, chunk.len));
                        self.queue.push_front(chunk.job);
                    }
                }
                _ => {
                    self.workers[i].chunk = None;
                    if let Some(job) = self.jobs.get_mut(&chunk.job) {
                        let err = PoolError::WorkerDied {
                            pid,
                            signal: status.signal(),
                        };
                        job.fail(chunk.start, chunk.len, err);
                    }
                }
            }
        }
        if started {
            self.init_failures = 0;
        } else {
            self.init_failures += 1;
            if self.init_failures >= INIT_FAILURE_LIMIT {
                // Every replacement dies before it can run anything: give up rather
                // than fork forever, and fail what is pending with the cause.
                let err = PoolError::WorkerDied {
                    pid,
                    signal: status.signal(),
                };
                self.finish(err, hub);
                return;
            }
        }
        self.replace(i, hub);
    }

    /// Worker `i` is reaped: reset its mailbox and fork its successor into it.
    fn replace(&mut self, i: usize, hub: &Shared<Hub>) {
        let w = &mut self.workers[i];
        w.chunk = None;
        w.calls = 0;
        w.mailbox.reset();
        match spawn_worker(&w.mailbox, hub, &self.cfg) {
            Ok(process) => w.process = process,
            Err(e) => {
                // Cannot fork (process limit, memory): the pool cannot go on.
                self.finish(PoolError::Other(e), hub);
            }
        }
    }

    /// Posts chunks to idle workers.
    fn dispatch(&mut self) {
        if self.phase == Phase::Finished {
            return;
        }
        for w in self.workers.iter_mut() {
            if w.chunk.is_some() {
                continue;
            }
            let budget = self
                .cfg
                .max_tasks_per_child
                .map_or(usize::MAX, |k| k.saturating_sub(w.calls));
            if budget == 0 {
                continue; // retiring; replaced when its last chunk is collected
            }
            // The first queued job with work left.
            let picked = loop {
                let Some(&id) = self.queue.front() else {
                    break None;
                };
                match self.jobs.get_mut(&id) {
                    Some(job) if job.has_work() => break Some((id, job)),
                    _ => {
                        self.queue.pop_front();
                    }
                }
            };
            let Some((id, job)) = picked else { break };
            let (start, len) = match job.retry.pop() {
                Some((start, len)) if len > budget => {
                    job.retry.push((start + budget, len - budget));
                    (start, budget)
                }
                Some(range) => range,
                None => {
                    let len = job.chunk.min(job.len - job.next).min(budget);
                    let start = job.next;
                    job.next += len;
                    (start, len)
                }
            };
            w.calls += len;
            let retire = self.cfg.max_tasks_per_child.is_some_and(|k| w.calls >= k);
            let in_size = job.spec.in_size;
            w.mailbox.post(&Post {
                trampoline: job.spec.trampoline,
                func: job.spec.func,
                sig: job.spec.sig,
                tag: job.tag,
                in_size,
                out_size: job.spec.out_size,
                input: &job.input.bytes()[start * in_size..(start + len) * in_size],
                count: len,
                retire,
            });
            w.chunk = Some(Chunk {
                job: id,
                start,
                len,
                retire,
            });
        }
    }

    /// Kills and reaps every worker now; every pending item fails with `err`.
    pub(crate) fn finish(&mut self, err: PoolError, hub: &Shared<Hub>) {
        self.phase = Phase::Finished;
        for w in self.workers.iter_mut() {
            let _ = w.process.kill();
            let _ = w.process.join();
        }
        self.workers.clear();
        self.fail_pending(err);
        hub.bump();
    }

    /// Every pending item of every job fails with `err`.
    fn fail_pending(&mut self, err: PoolError) {
        self.queue.clear();
        for job in self.jobs.values_mut() {
            job.next = job.len;
            job.retry.clear();
            if job.remaining > 0 {
                let len = job.len;
                job.fail(0, len, err);
            }
        }
    }

    /// Asks every (idle) worker to exit and reaps them all. Call when [`drained`].
    pub(crate) fn exit_workers(&mut self, hub: &Shared<Hub>) {
        for w in self.workers.iter() {
            w.mailbox.request_exit();
        }
        for w in self.workers.iter_mut() {
            if !matches!(w.process.join_timeout(EXIT_GRACE), Ok(Some(_))) {
                let _ = w.process.kill();
                let _ = w.process.join();
            }
        }
        self.workers.clear();
        self.phase = Phase::Finished;
        self.fail_pending(PoolError::Closed);
        hub.bump();
    }
}

/// Forks a worker serving `mailbox`.
fn spawn_worker(mailbox: &Mailbox, hub: &Hub, cfg: &Config) -> Result<Process, Error> {
    let (init, parent, key) = (cfg.initializer, cfg.parent, cfg.key);
    Process::spawn(|| mailbox::worker_main(mailbox, hub, init, parent, key))
}

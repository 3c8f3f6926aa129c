//! The parent's side of the pool: process-local bookkeeping of jobs and worker slots,
//! and the `pump` that collects finished chunks, accounts for dead workers, asks the
//! zygote for replacements and posts new chunks.
//!
//! Nothing here lives in shared memory. It sits behind the pool's `std::sync::Mutex`;
//! whichever thread of the parent is waiting for a result runs the pump, so every
//! thread's jobs progress while any thread waits. `pump` never blocks: it reads
//! mailbox and life states, copies bytes, and rings the zygote's doorbell. It never
//! forks, waits for a worker or signals one: the zygote does all of that.

use std::collections::{BTreeMap, VecDeque};
use std::vec::Vec;

use rustix::fd::{AsFd, OwnedFd};

use super::error::PoolError;
use super::hub::{self, Hub};
use super::job::{Buf, ChunkEnd, Job, Spec};
use super::mailbox::{self, Collected, Post};
use super::slot::{Seen, Slot};
use super::task;
use super::zygote::EXIT_GRACE;
use crate::error::Error;
use crate::process::{ExitStatus, Process};
use crate::segment::Shared;

/// How often the parent checks that its zygote lives while it waits.
pub(crate) const HEALTH_INTERVAL_NS: u64 = 10_000_000;
/// A pool whose workers die in their initializer this many times in a row gives up.
const INIT_FAILURE_LIMIT: u32 = 3;

/// Fixed settings of a pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) initializer: Option<fn()>,
    pub(crate) max_tasks_per_child: Option<usize>,
    /// The process-private key of `task::tag`.
    pub(crate) key: u64,
}

/// The chunk a worker holds.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    job: u64,
    start: usize,
    len: usize,
    retire: bool,
}

/// One worker slot, as the parent sees it.
struct Worker {
    slot: Shared<Slot>,
    chunk: Option<Chunk>,
    /// Items posted to this slot's current process (for `max_tasks_per_child`).
    calls: usize,
    /// When its last chunk (`max_tasks_per_child`) was collected: it is leaving.
    retiring: Option<u64>,
    /// Asked the zygote to kill it.
    kill_asked: bool,
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
    /// The zygote's doorbell (an eventfd).
    bell: OwnedFd,
    /// The zygote, until the pool is finished and a thread takes it to reap it.
    pub(crate) zygote: Option<Process>,
}

impl Inner {
    /// The bookkeeping of a pool whose zygote was forked to serve `slots`.
    pub(crate) fn new(
        cfg: Config,
        slots: Vec<Shared<Slot>>,
        bell: OwnedFd,
        zygote: Process,
    ) -> Inner {
        Inner {
            cfg,
            workers: slots
                .into_iter()
                .map(|slot| Worker {
                    slot,
                    chunk: None,
                    calls: 0,
                    retiring: None,
                    kill_asked: false,
                })
                .collect(),
            jobs: BTreeMap::new(),
            queue: VecDeque::new(),
            next_job: 1,
            phase: Phase::Open,
            last_health_ns: crate::sys::time::monotonic_ns(),
            init_failures: 0,
            bell,
            zygote: Some(zygote),
        }
    }

    /// The pids of the workers running now.
    pub(crate) fn worker_pids(&self) -> Vec<i32> {
        self.workers
            .iter()
            .filter_map(|w| match w.slot.life.seen() {
                Seen::Live(pid) => Some(pid),
                _ => None,
            })
            .collect()
    }

    /// At start-up: `None` while the zygote has not answered for every slot; then
    /// `Ok` if every first worker was forked, or why not.
    pub(crate) fn startup(&mut self) -> Option<Result<(), Error>> {
        let mut pending = false;
        for w in &self.workers {
            match w.slot.life.seen() {
                Seen::Failed(errno) => return Some(Err(Error::Os(errno))),
                Seen::Corrupt => return Some(Err(Error::Corrupted)),
                Seen::Requested | Seen::Empty => pending = true,
                Seen::Live(_) | Seen::Dead(..) => {}
            }
        }
        if let Some(zygote) = self.zygote.as_mut() {
            if !matches!(zygote.join_timeout(core::time::Duration::ZERO), Ok(None)) {
                return Some(Err(Error::Os(libc::ECHILD)));
            }
        }
        (!pending).then_some(Ok(()))
    }

    /// Is a worker leaving (`max_tasks_per_child`), or a slot waiting for the zygote
    /// to fork its successor?
    pub(crate) fn changing_workers(&self) -> bool {
        self.phase != Phase::Finished
            && self
                .workers
                .iter()
                .any(|w| w.retiring.is_some() || w.slot.life.seen() == Seen::Requested)
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
        (input, output): (Buf, Buf),
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
        let tag = task::tag(self.cfg.key, spec.trampoline, spec.func, spec.sig);
        let job = Job::new(spec, tag, len, chunk, (input, output), track_order);
        self.jobs.insert(id, job);
        if len > 0 {
            self.queue.push_back(id);
        }
        self.dispatch();
        Ok(id)
    }

    /// Collects finished chunks, accounts for dead workers and asks for their
    /// replacements, checks the zygote when due (or when `force_health`), and posts
    /// chunks to idle workers.
    pub(crate) fn pump(&mut self, hub: &Hub, force_health: bool) {
        if self.phase == Phase::Finished {
            return;
        }
        for i in 0..self.workers.len() {
            if self.phase == Phase::Finished {
                return;
            }
            self.visit(i, hub);
        }
        let now = crate::sys::time::monotonic_ns();
        if force_health || now.saturating_sub(self.last_health_ns) >= HEALTH_INTERVAL_NS {
            self.last_health_ns = now;
            self.check_zygote(hub);
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

    /// Looks at worker `i`'s mailbox and life record.
    fn visit(&mut self, i: usize, hub: &Hub) {
        let w = &mut self.workers[i];
        if w.chunk.is_some() {
            match w.slot.mailbox.state() {
                mailbox::DONE => self.collect(i),
                mailbox::READY | mailbox::RUNNING => {}
                // No state a worker holding a chunk can be in: it scribbled its
                // mailbox. It goes; its items are judged by their outcome bytes.
                _ => self.ask_kill(i),
            }
        }
        match self.workers[i].slot.life.seen() {
            Seen::Dead(pid, status) => self.on_death(i, pid, status, hub),
            Seen::Failed(errno) => self.finish(PoolError::Other(Error::Os(errno)), hub),
            Seen::Corrupt => self.finish(PoolError::Other(Error::Corrupted), hub),
            Seen::Live(_) | Seen::Requested | Seen::Empty => {
                let overdue = self.workers[i].retiring.is_some_and(|since| {
                    crate::sys::time::monotonic_ns().saturating_sub(since)
                        >= EXIT_GRACE.as_nanos() as u64
                });
                if overdue {
                    self.ask_kill(i);
                }
            }
        }
    }

    /// Asks the zygote to kill worker `i` (once).
    fn ask_kill(&mut self, i: usize) {
        let w = &mut self.workers[i];
        if !w.kill_asked {
            w.kill_asked = true;
            w.slot.life.ask_kill();
            crate::sys::fds::ring(self.bell.as_fd());
        }
    }

    /// Worker `i`'s mailbox is DONE: takes its results.
    fn collect(&mut self, i: usize) {
        let w = &mut self.workers[i];
        let Some(chunk) = w.chunk.take() else { return };
        if chunk.retire {
            w.retiring = Some(crate::sys::time::monotonic_ns());
        }
        let Some(job) = self.jobs.get_mut(&chunk.job) else {
            let _ = w.slot.mailbox.collect(&mut [], &mut []);
            return;
        };
        let (start, len, size) = (chunk.start, chunk.len, job.spec.out_size);
        let outcome = w.slot.mailbox.collect(
            &mut job.status[start..start + len],
            &mut job.output.bytes_mut()[start * size..(start + len) * size],
        );
        let again = match outcome {
            Collected::Ran => job.absorb(start, len, ChunkEnd::Done { panic: None }),
            Collected::Panicked(m) => job.absorb(start, len, ChunkEnd::Done { panic: Some(m) }),
            Collected::Refused => {
                job.fail(start, len, PoolError::Other(Error::Corrupted));
                false
            }
        };
        if again {
            self.queue.push_front(chunk.job);
        }
    }

    /// The zygote reaped worker `i` (`pid`, ended as `status`): accounts for the chunk
    /// it held, and asks for its successor.
    fn on_death(&mut self, i: usize, pid: i32, status: Option<ExitStatus>, hub: &Hub) {
        let err = PoolError::WorkerDied {
            pid,
            signal: status.and_then(|s| s.signal()),
        };
        let w = &mut self.workers[i];
        if let Some(chunk) = w.chunk {
            match w.slot.mailbox.state() {
                // It finished the chunk, then died: the results are good.
                mailbox::DONE => self.collect(i),
                // Never started: post it all again, first thing.
                mailbox::READY => {
                    w.chunk = None;
                    if let Some(job) = self.jobs.get_mut(&chunk.job) {
                        job.retry.push((chunk.start, chunk.len));
                        self.queue.push_front(chunk.job);
                    }
                }
                // Died in the middle: each item's outcome byte says how far it got.
                _ => {
                    w.chunk = None;
                    if let Some(job) = self.jobs.get_mut(&chunk.job) {
                        let (start, len, size) = (chunk.start, chunk.len, job.spec.out_size);
                        let panic = w.slot.mailbox.salvage(
                            &mut job.status[start..start + len],
                            &mut job.output.bytes_mut()[start * size..(start + len) * size],
                        );
                        if job.absorb(start, len, ChunkEnd::Died { err, panic }) {
                            self.queue.push_front(chunk.job);
                        }
                    }
                }
            }
        }
        let w = &mut self.workers[i];
        // A worker killed by SIGKILL (by hand, by the OOM killer) before it got going
        // says nothing about the initializer: it is simply replaced.
        let killed = status.and_then(|s| s.signal()) == Some(libc::SIGKILL);
        if w.retiring.is_none() && !killed {
            if w.slot.mailbox.started() {
                self.init_failures = 0;
            } else {
                self.init_failures += 1;
                if self.init_failures >= INIT_FAILURE_LIMIT {
                    // Every replacement dies before it can run anything: give up rather
                    // than fork forever, and fail what is pending with the cause.
                    self.finish(err, hub);
                    return;
                }
            }
        }
        self.replace(i);
    }

    /// Worker `i` is reaped: resets its mailbox and asks the zygote for a successor.
    fn replace(&mut self, i: usize) {
        let w = &mut self.workers[i];
        w.chunk = None;
        w.calls = 0;
        w.retiring = None;
        w.kill_asked = false;
        w.slot.mailbox.reset();
        w.slot.life.request();
        crate::sys::fds::ring(self.bell.as_fd());
    }

    /// Is the zygote alive? If not, the pool is over.
    fn check_zygote(&mut self, hub: &Hub) {
        let Some(zygote) = self.zygote.as_mut() else {
            return;
        };
        let pid = zygote.pid();
        let ended = match zygote.join_timeout(core::time::Duration::ZERO) {
            Ok(None) => return,
            Ok(Some(status)) => status.signal(),
            Err(_) => None,
        };
        self.finish(PoolError::ZygoteDied { pid, signal: ended }, hub);
    }

    /// Posts chunks to idle workers.
    fn dispatch(&mut self) {
        if self.phase == Phase::Finished {
            return;
        }
        for w in self.workers.iter_mut() {
            if w.chunk.is_some() || w.retiring.is_some() || w.kill_asked {
                continue;
            }
            let budget = self
                .cfg
                .max_tasks_per_child
                .map_or(usize::MAX, |k| k.saturating_sub(w.calls));
            if budget == 0 {
                continue; // retiring; replaced when its death is reported
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
                Some((start, len)) if len > budget.min(job.chunk) => {
                    let take = budget.min(job.chunk);
                    job.retry.push((start + take, len - take));
                    (start, take)
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
            w.slot.mailbox.post(&Post {
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

    /// Ends the pool now: the zygote kills and reaps every worker and exits; every
    /// pending item fails with `err`. Does not wait for the zygote: whoever takes
    /// [`Inner::zygote`] reaps it.
    pub(crate) fn finish(&mut self, err: PoolError, hub: &Hub) {
        self.end(hub::KILL, err, hub);
    }

    /// Asks every (idle) worker to exit, and the zygote to reap them and exit. Call
    /// when [`Inner::drained`]. Does not wait, as [`Inner::finish`].
    pub(crate) fn exit_workers(&mut self, hub: &Hub) {
        for w in self.workers.iter() {
            w.slot.mailbox.request_exit();
        }
        self.end(hub::JOIN, PoolError::Closed, hub);
    }

    fn end(&mut self, order: u32, err: PoolError, hub: &Hub) {
        self.phase = Phase::Finished;
        hub.order(order);
        crate::sys::fds::ring(self.bell.as_fd());
        self.workers.clear();
        self.queue.clear();
        for job in self.jobs.values_mut() {
            job.next = job.len;
            job.retry.clear();
            if job.remaining > 0 {
                let len = job.len;
                job.fail(0, len, err);
            }
        }
        hub.bump();
    }
}

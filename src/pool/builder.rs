//! [`PoolBuilder`]: a pool's options, and its start — the shared slots, the zygote, the
//! first workers.

use core::time::Duration;
use std::sync::Mutex;
use std::vec::Vec;

use rustix::fd::{AsFd, OwnedFd};

use super::hub::Hub;
use super::sched::{Config, Inner};
use super::slot::Slot;
use super::zygote::{self, FORK_PATIENCE, Plan};
use super::{Pool, SLICE};
use crate::error::Error;
use crate::primitive::Deadline;
use crate::process::{Process, ProcessBuilder};
use crate::segment::Shared;
use crate::sys;

/// How long [`PoolBuilder::build`] waits for its first workers: the zygote's patience
/// with `EAGAIN`, and then some.
const START_PATIENCE: Duration = Duration::from_secs(FORK_PATIENCE.as_secs() + 5);
/// How long a freshly forked zygote gets to set itself up (it needs microseconds).
const ZYGOTE_READY_PATIENCE: Duration = Duration::from_secs(3);
/// How many zygotes are forked before `build` gives up.
const ZYGOTE_ATTEMPTS: u32 = 4;

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
    /// worker whose initializer panics exits; if three in a row die before their
    /// initializer returns (a panic, an `exit`, a crash — not a `SIGKILL` from outside),
    /// the pool gives up and its pending tasks fail with
    /// [`PoolError::WorkerDied`](super::PoolError).
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

    /// Forks the pool's zygote, which forks the workers, and waits until they run.
    ///
    /// The zygote is forked from the calling thread: see the [fork safety
    /// notes](super#fork-safety-the-zygote) on what it (and so every worker) inherits.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for 0 workers or `max_tasks_per_child(0)`;
    /// [`Error::Os`] if a mapping or a fork fails (`EAGAIN`, a process limit, only after
    /// retrying for a few seconds; `ECHILD` if the zygote died); [`Error::Timeout`] if
    /// the workers were not running after that. On an error, whatever was started is
    /// killed and reaped.
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
        };
        // SAFETY: an all-zero Hub is a valid one (a zero counter, an idle Notifier,
        // the RUN command).
        let hub = unsafe { Shared::<Hub>::new_with(|_| {}) }?;
        let slots = (0..workers)
            // SAFETY: an all-zero Slot is a valid one (EMPTY life, IDLE mailbox).
            .map(|_| unsafe { Shared::<Slot>::new_with(|_| {}) }.map_err(Error::from))
            .collect::<Result<Vec<_>, _>>()?;
        for slot in &slots {
            slot.life.request();
        }
        let bell = sys::fds::doorbell()?;
        let zygote = start_zygote(&slots, &hub, &bell, &cfg)?;
        let pool = Pool {
            hub,
            inner: Mutex::new(Inner::new(cfg, slots, bell, zygote)),
        };
        pool.await_workers()?; // on error, dropping `pool` ends the zygote
        Ok(pool)
    }
}

/// Forks the zygote and waits until it is set up.
///
/// A zygote can hang at its very start: it installs the workers' panic hook, and if
/// another thread of ours was in the middle of a panic (holding std's hook lock) at
/// the fork, that lock stays held in the zygote. Such a zygote is killed and forked
/// again (by then the panic is over), a few times.
fn start_zygote(
    slots: &[Shared<Slot>],
    hub: &Hub,
    bell: &OwnedFd,
    cfg: &Config,
) -> Result<Process, Error> {
    for _ in 0..ZYGOTE_ATTEMPTS {
        let mut zygote = fork_zygote(slots, hub, bell, cfg)?;
        if zygote_ready(hub, &mut zygote) {
            return Ok(zygote);
        }
        let _ = zygote.kill();
        let _ = zygote.join();
    }
    Err(Error::Timeout)
}

/// Waits (up to [`ZYGOTE_READY_PATIENCE`]) until the zygote says it is set up; `false`
/// if it does not, or exits.
fn zygote_ready(hub: &Hub, zygote: &mut Process) -> bool {
    let deadline = Deadline::after(ZYGOTE_READY_PATIENCE);
    loop {
        let seen = hub.completions();
        if hub.is_ready() {
            return true;
        }
        if deadline.expired() || !matches!(zygote.join_timeout(Duration::ZERO), Ok(None)) {
            return false;
        }
        let slice = Deadline::after(SLICE);
        let until = match (deadline.as_ns(), slice.as_ns()) {
            (Some(d), Some(s)) if d < s => deadline,
            _ => slice,
        };
        hub.wait_change(seen, until);
    }
}

/// Forks the zygote (retrying `EAGAIN` for up to [`FORK_PATIENCE`]).
fn fork_zygote(
    slots: &[Shared<Slot>],
    hub: &Hub,
    bell: &OwnedFd,
    cfg: &Config,
) -> Result<Process, Error> {
    let parent = sys::ids::pid();
    let give_up = Deadline::after(FORK_PATIENCE);
    let mut backoff = Duration::from_millis(1);
    loop {
        // Everything the zygote needs, allocated now: it never allocates after the fork.
        let plan = Plan::new(
            slots.iter().map(|s| &**s).collect(),
            hub,
            bell.as_fd(),
            cfg.initializer,
            cfg.key,
            parent,
        );
        // SAFETY: the closure holds the plan alone — references to the pool's own
        // slots and hub (no data behind a lock), descriptors, and tables — so no lock
        // guard, nor anything derived from one, reaches the zygote. (`spawn` would
        // refuse to fork while any thread of ours holds a guard, which needs no
        // refusal here: the zygote never touches guarded data.)
        let forked =
            unsafe { ProcessBuilder::new().spawn_unchecked(move || zygote::zygote_main(plan)) };
        match forked {
            Err(Error::Os(libc::EAGAIN)) if !give_up.expired() => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

impl Pool {
    /// Waits until the zygote has forked every first worker (or failed to).
    fn await_workers(&self) -> Result<(), Error> {
        let deadline = Deadline::after(START_PATIENCE);
        loop {
            let seen = self.hub.completions();
            if let Some(started) = self.lock().startup() {
                return started;
            }
            if deadline.expired() {
                return Err(Error::Timeout);
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

/// A fresh key for `task::tag`, from the standard library's per-process random seed,
/// the pid and the clock.
fn fresh_key() -> u64 {
    use core::hash::BuildHasher;
    std::hash::RandomState::new().hash_one((sys::ids::pid(), sys::time::monotonic_ns()))
}

//! The zygote: a single-threaded process forked from the parent once, when the pool is
//! built, whose only job is to fork the workers — the first ones and every
//! replacement — on the parent's request, reap them, and report their pids and how
//! they ended through the slots' [`Life`](super::slot::Life) records.
//!
//! Why: a process forked from a multi-threaded parent inherits every lock another
//! thread held at that instant, held forever (stderr's, the allocator's, a
//! `std::sync::Mutex`). Forking replacements from whichever user thread is waiting on
//! the pool made a worker that deadlocks on its first panic possible. The zygote is
//! forked once, from the thread that builds the pool, and then never runs anything but
//! this loop: workers forked from it start from that one, quiet image.
//!
//! It keeps nothing of the parent it does not need: every descriptor but its doorbell
//! and its parent's pidfd is closed, `SIGCHLD` is reset to its default, and the panic
//! hook is the workers' own (raw `write(2)`, see `worker`). It never allocates: its
//! tables are allocated by the parent before the fork.
//!
//! It lives exactly as long as the pool: it exits when told (`Hub::order`), and when
//! its parent dies (it polls a pidfd of its parent, and checks `getppid`). It does not
//! use `PR_SET_PDEATHSIG`, which fires when the *thread* that forked it exits — a pool
//! built on a short-lived thread would lose its zygote. Its workers do use it (the
//! zygote has one thread), and check `getppid` too: they die with the zygote.
//!
//! It waits in `poll(2)` on its doorbell (an eventfd the parent rings after a request),
//! its parent's pidfd and one pidfd per worker, so a worker's death is reported (and
//! the parent woken through the hub) at once. `EAGAIN` from `fork` (a process limit)
//! is retried with backoff for up to [`FORK_PATIENCE`], without holding up the other
//! slots; only then does the slot report `FAILED`.

use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::vec::Vec;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::process::Signal;

use super::hub::{self, Hub};
use super::slot::Slot;
use super::worker::{self, EXIT_ORPHANED};
use crate::error::Error;
use crate::process::ExitStatus;
use crate::sys;
use crate::sys::fds::PollSet;

/// How long the zygote keeps retrying a fork that fails with `EAGAIN`.
pub(crate) const FORK_PATIENCE: Duration = Duration::from_secs(10);
/// How long workers told to exit (the pool joins) get before they are killed.
pub(crate) const EXIT_GRACE: Duration = Duration::from_secs(5);
/// The first and the longest wait before retrying a fork that failed with `EAGAIN`.
const BACKOFF_MIN_NS: u64 = 1_000_000;
const BACKOFF_MAX_NS: u64 = 250_000_000;
/// The longest `poll` while nothing is due: a safety net (the parent's liveness by
/// `getppid`, children reaped even if a pidfd could not be opened).
const SWEEP_NS: u64 = 1_000_000_000;
/// The same where this kernel has no pidfds (before Linux 5.3): deaths are then
/// noticed by this sweep alone.
const SWEEP_WITHOUT_PIDFDS_NS: u64 = 20_000_000;
/// Exit code of a worker whose loop panicked outside a task (a bug of the pool).
const EXIT_WORKER_PANICKED: i32 = 101;

/// What the zygote runs with, prepared by the parent before the fork (so that the
/// zygote never allocates).
pub(crate) struct Plan<'a> {
    /// The slots, in the parent's order.
    pub(crate) slots: Vec<&'a Slot>,
    pub(crate) hub: &'a Hub,
    /// The eventfd the parent rings after a request or an order.
    pub(crate) bell: BorrowedFd<'a>,
    pub(crate) initializer: Option<fn()>,
    /// The process-private key of `task::tag`.
    pub(crate) key: u64,
    /// The parent's pid.
    pub(crate) parent: i32,
    /// One entry per slot.
    pub(crate) children: Vec<Child>,
    /// Room for the doorbell, the parent's pidfd and one pidfd per slot.
    pub(crate) polls: PollSet,
}

impl<'a> Plan<'a> {
    /// A plan for `slots`.
    pub(crate) fn new(
        slots: Vec<&'a Slot>,
        hub: &'a Hub,
        bell: BorrowedFd<'a>,
        initializer: Option<fn()>,
        key: u64,
        parent: i32,
    ) -> Plan<'a> {
        let n = slots.len();
        Plan {
            slots,
            hub,
            bell,
            initializer,
            key,
            parent,
            children: (0..n).map(|_| Child::default()).collect(),
            polls: PollSet::with_capacity(n + 2),
        }
    }
}

/// The zygote's own record of one slot's worker (process-local, authoritative).
#[derive(Debug, Default)]
pub(crate) struct Child {
    /// The worker's pid; 0 = none.
    pid: i32,
    /// A pidfd for it, to wake up when it exits (`None` without kernel support).
    pidfd: Option<OwnedFd>,
    /// SIGKILL already sent on the parent's request.
    killed: bool,
    /// `EAGAIN`: when the first failed fork for this slot was, when to try again, and
    /// how long to wait after the next failure.
    eagain_since: Option<u64>,
    retry_at: u64,
    backoff: u64,
}

/// The zygote's whole life; returns its exit code. Runs in the forked child only.
pub(crate) fn zygote_main(mut plan: Plan<'_>) -> i32 {
    sys::proc::default_child_signal();
    worker::install_panic_hook();
    let parent = plan.parent;
    if sys::proc::parent_pid() != parent {
        return EXIT_ORPHANED;
    }
    let parent_fd = sys::proc::pidfd(parent).ok();
    // Still our parent after the open: the pidfd is of the parent, not of a process
    // that took over its pid.
    if sys::proc::parent_pid() != parent {
        return EXIT_ORPHANED;
    }
    match &parent_fd {
        Some(fd) => sys::fds::close_all_but(&[plan.bell, fd.as_fd()]),
        None => sys::fds::close_all_but(&[plan.bell]),
    }
    let me = sys::ids::pid();
    plan.hub.set_ready();
    plan.hub.bump();
    let mut parent_gone = false;
    loop {
        reap(&mut plan);
        parent_gone |= sys::proc::parent_pid() != parent;
        match plan.hub.command() {
            _ if parent_gone => return kill_all(&mut plan),
            hub::KILL => return kill_all(&mut plan),
            hub::JOIN => return join(&mut plan, parent_fd.as_ref(), parent),
            _ => {}
        }
        for (slot, child) in plan.slots.iter().zip(plan.children.iter_mut()) {
            if child.pid != 0 && !child.killed && slot.life.kill_asked() {
                let _ = sys::proc::signal_pid(child.pid, Signal::KILL);
                child.killed = true;
            }
        }
        let next_retry = serve_requests(&mut plan, me);
        let (bell_at, parent_at) = fill_polls(&mut plan, parent_fd.as_ref());
        let mut timeout = sweep_ns(&plan);
        if let Some(at) = next_retry {
            timeout = timeout.min(at.saturating_sub(sys::time::monotonic_ns()));
        }
        let _ = plan.polls.wait(Some(timeout));
        if bell_at.is_some_and(|i| plan.polls.ready(i)) {
            sys::fds::drain(plan.bell);
        }
        parent_gone |= parent_at.is_some_and(|i| plan.polls.ready(i));
    }
}

/// Forks a worker into every slot the parent asked for (and whose `EAGAIN` backoff is
/// over); returns when the earliest backoff ends, if any is running.
fn serve_requests(plan: &mut Plan<'_>, me: i32) -> Option<u64> {
    let mut next_retry: Option<u64> = None;
    for i in 0..plan.slots.len() {
        let slot = plan.slots[i];
        if !slot.life.requested() {
            continue;
        }
        let now = sys::time::monotonic_ns();
        let child = &mut plan.children[i];
        if child.eagain_since.is_some() && now < child.retry_at {
            next_retry = Some(next_retry.map_or(child.retry_at, |t| t.min(child.retry_at)));
            continue;
        }
        if child.pid != 0 {
            // The parent wants a new worker here while the old one lives (it could
            // only think otherwise from a scribbled record): the old one goes first.
            let _ = sys::proc::signal_pid(child.pid, Signal::KILL);
            let _ = sys::proc::reap(child.pid, true);
            *child = Child::default();
        }
        match fork_worker(plan, i, me) {
            Ok(pid) => {
                let child = &mut plan.children[i];
                *child = Child {
                    pid,
                    pidfd: sys::proc::pidfd(pid).ok(),
                    ..Child::default()
                };
                slot.life.born(pid);
                plan.hub.bump();
            }
            Err(Error::Os(libc::EAGAIN)) => {
                let child = &mut plan.children[i];
                let since = *child.eagain_since.get_or_insert(now);
                if now.saturating_sub(since) >= FORK_PATIENCE.as_nanos() as u64 {
                    *child = Child::default();
                    slot.life.failed(libc::EAGAIN);
                    plan.hub.bump();
                } else {
                    child.backoff = (child.backoff * 2).clamp(BACKOFF_MIN_NS, BACKOFF_MAX_NS);
                    child.retry_at = now.saturating_add(child.backoff);
                    next_retry = Some(next_retry.map_or(child.retry_at, |t| t.min(child.retry_at)));
                }
            }
            Err(e) => {
                plan.children[i] = Child::default();
                slot.life.failed(e.raw_os_error().unwrap_or(libc::EIO));
                plan.hub.bump();
            }
        }
    }
    next_retry
}

/// Forks the worker of slot `i`; its pid.
fn fork_worker(plan: &Plan<'_>, i: usize, me: i32) -> Result<i32, Error> {
    let (mailbox, hub) = (&plan.slots[i].mailbox, plan.hub);
    let (init, key) = (plan.initializer, plan.key);
    // SAFETY: the child runs only the worker loop (shared memory, the futex, the
    // user's initializer and tasks; no lock of ours) and leaves through `_exit`; the
    // zygote it is forked from has a single thread, so no lock is held at the fork.
    match unsafe { sys::proc::fork() }? {
        None => {
            // Die with the zygote (its single thread is the one that forked us).
            sys::proc::die_with_parent(me);
            // The zygote's doorbell and pidfds are none of a worker's business.
            sys::fds::close_all_but(&[]);
            let code = std::panic::catch_unwind(AssertUnwindSafe(|| {
                worker::worker_main(mailbox, hub, init, me, key)
            }))
            .unwrap_or(EXIT_WORKER_PANICKED);
            sys::proc::exit_now(code)
        }
        Some(pid) => Ok(pid),
    }
}

/// Reaps every worker that has ended and reports it in its slot.
fn reap(plan: &mut Plan<'_>) {
    while let Ok(Some((pid, ended))) = sys::proc::reap_any() {
        if let Some(i) = plan.children.iter().position(|c| c.pid == pid) {
            plan.children[i] = Child::default();
            plan.slots[i].life.died(ExitStatus::from(ended));
            plan.hub.bump();
        }
    }
}

/// Fills the poll set: the doorbell, the parent's pidfd, the workers' pidfds. Returns
/// the indices of the first two.
fn fill_polls(plan: &mut Plan<'_>, parent_fd: Option<&OwnedFd>) -> (Option<usize>, Option<usize>) {
    plan.polls.clear();
    let bell = plan.polls.add(plan.bell);
    let parent = parent_fd.and_then(|fd| plan.polls.add(fd.as_fd()));
    for child in &plan.children {
        if let Some(fd) = &child.pidfd {
            plan.polls.add(fd.as_fd());
        }
    }
    (bell, parent)
}

/// How long to sleep at most before the next sweep for dead children: short while a
/// live child has no pidfd to poll (its death wakes nobody).
fn sweep_ns(plan: &Plan<'_>) -> u64 {
    if plan
        .children
        .iter()
        .any(|c| c.pid != 0 && c.pidfd.is_none())
    {
        SWEEP_WITHOUT_PIDFDS_NS
    } else {
        SWEEP_NS
    }
}

/// `JOIN`: the parent told every worker to exit. Waits for them (up to
/// [`EXIT_GRACE`]), kills the rest, and returns the zygote's exit code.
fn join(plan: &mut Plan<'_>, parent_fd: Option<&OwnedFd>, parent: i32) -> i32 {
    let deadline = sys::time::deadline_after(EXIT_GRACE);
    loop {
        reap(plan);
        if plan.children.iter().all(|c| c.pid == 0) {
            return 0;
        }
        let now = sys::time::monotonic_ns();
        if now >= deadline || plan.hub.command() == hub::KILL || sys::proc::parent_pid() != parent {
            return kill_all(plan);
        }
        let (_, parent_at) = fill_polls(plan, parent_fd);
        let slice = sweep_ns(plan);
        let _ = plan.polls.wait(Some((deadline - now).min(slice)));
        if parent_at.is_some_and(|i| plan.polls.ready(i)) {
            return kill_all(plan);
        }
    }
}

/// Kills every worker, reaps them all, and returns the zygote's exit code.
fn kill_all(plan: &mut Plan<'_>) -> i32 {
    for child in &plan.children {
        if child.pid != 0 {
            // Unreaped, so the pid is still this worker's.
            let _ = sys::proc::signal_pid(child.pid, Signal::KILL);
        }
    }
    for (slot, child) in plan.slots.iter().zip(plan.children.iter_mut()) {
        if child.pid != 0 {
            if let Ok(Some(ended)) = sys::proc::reap(child.pid, true) {
                slot.life.died(ExitStatus::from(ended));
            }
            *child = Child::default();
        }
    }
    plan.hub.bump();
    0
}

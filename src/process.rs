//! `Process`: run a closure in a forked child (std only).

use core::fmt;
use core::time::Duration;

use rustix::fd::OwnedFd;
use rustix::process::Signal;

use crate::error::Error;
use crate::sys;

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It exited with this code (a child whose closure panicked exits with 101).
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Exited(0)
    }

    /// The exit code, if it exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            ExitStatus::Exited(code) => Some(*code),
            ExitStatus::Signaled(_) => None,
        }
    }

    /// The signal that killed it, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self {
            ExitStatus::Signaled(sig) => Some(*sig),
            ExitStatus::Exited(_) => None,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signaled(sig) => write!(f, "killed by signal {sig}"),
        }
    }
}

impl From<sys::proc::Ended> for ExitStatus {
    fn from(ended: sys::proc::Ended) -> Self {
        match ended {
            sys::proc::Ended::Exited(code) => ExitStatus::Exited(code),
            sys::proc::Ended::Signaled(sig) => ExitStatus::Signaled(sig),
        }
    }
}

/// How long `spawn` waits for other threads to drop their lock guards.
const GUARD_WAIT_NS: u64 = 2_000_000_000;

/// The exit code of a child whose closure panicked (Rust's own for a panicking `main`).
const PANIC_EXIT_CODE: i32 = 101;

/// A child process running a closure: Python's `multiprocessing.Process` over `fork`.
///
/// The child gets a copy of the parent's memory, so the closure may borrow (no
/// `'static` needed); [`Shared`](crate::Shared) segments and other `MAP_SHARED`
/// memory are shared instead of copied. The closure's return value is
/// the child's exit code. The child leaves through `_exit`: it never returns into the
/// parent's code, runs no destructors it does not own, and a panic in it becomes exit
/// code 101 instead of unwinding into (for example) the parent's test harness.
///
/// Dropping a `Process` neither kills nor waits for the child: [`join`](Self::join)
/// it, or it stays a zombie until this process exits.
///
/// # Why the closure must be `Send`
///
/// A fork hands the closure to another process, which is like handing it to another
/// thread, except that what it borrows is *copied* — and a copy of a lock guard (a
/// `&mut` into shared memory) would let the child write on after the parent unlocked.
/// Guards are neither `Send` nor `Sync`, so the bound keeps every guard (moved or
/// borrowed) out of the child at compile time, while `Shared` handles, atomics and
/// the kit's primitives (all `Sync`) can still be borrowed:
///
/// ```compile_fail
/// use shmkit::{Process, Shared, Value};
/// let v = Shared::new(Value::new(0u64)).unwrap();
/// let mut g = v.lock();
/// let _ = Process::spawn(move || { *g += 1; 0 }); // error: the guard is not `Send`
/// ```
///
/// A pipe end ([`Connection`](crate::Connection)) is `Send` but not `Sync` (one
/// thread at a time uses it): move it into the closure (`move ||`, after
/// `let shared = &shared;` for the handles you want to keep borrowing). The parent's
/// copy of a moved end is then claimed for the child, so the parent learns of the
/// child's death even if it dies before using the end.
///
/// ```
/// use shmkit::{Pipe, Process, Queue, Shared};
/// let pipe = Shared::new(Pipe::<256>::new())?;
/// let queue = Shared::new(Queue::<u64, 8>::new())?;
/// let (parent, child) = pipe.ends();
/// let q = &queue; // borrowed by the child, still ours
/// let mut p = Process::spawn(move || {
///     child.send(&q.get().unwrap()).unwrap(); // `child` moved in
///     0
/// })?;
/// queue.put(5).unwrap();
/// assert_eq!(parent.recv::<u64>()?, 5);
/// assert!(p.join()?.success());
/// # Ok::<(), shmkit::Error>(())
/// ```
///
/// A reborrow of a guard (`&mut *guard`) is `Send` for `Send` data, so the types alone
/// cannot keep it out; `spawn` therefore refuses to fork while any lock guard is alive
/// in the process ([`Error::GuardHeld`]: at once if the calling thread holds one, after
/// a short wait for other threads otherwise). Drop guards before spawning.
///
/// # Fork safety
///
/// Only the forking thread exists in the child. A lock that another thread held at the
/// fork (the allocator's, stdout's, a `std::sync::Mutex`) stays held in the child
/// forever. In a multi-threaded parent, keep the child's work to shared memory and
/// the kit's own primitives, which are fork-safe.
///
/// # Examples
///
/// ```
/// use shmkit::{ExitStatus, Process};
///
/// let mut child = Process::spawn(|| 7)?;
/// assert_eq!(child.join()?, ExitStatus::Exited(7));
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Process {
    pid: i32,
    /// A pidfd, for waits with a timeout and signals immune to pid reuse (`None` on a
    /// kernel without `pidfd_open`).
    pidfd: Option<OwnedFd>,
    status: Option<ExitStatus>,
}

impl Process {
    /// Forks a child that runs `f` and exits with its return value.
    ///
    /// # Errors
    ///
    /// [`Error::GuardHeld`] if a lock guard is alive in this process (see "Why the
    /// closure must be `Send`" above); [`Error::Os`] if `fork` fails (`EAGAIN`:
    /// process limit; `ENOMEM`).
    pub fn spawn<F: FnOnce() -> i32 + Send>(f: F) -> Result<Process, Error> {
        ProcessBuilder::new().spawn(f)
    }

    /// A builder for options such as [`ProcessBuilder::die_with_parent`].
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder::new()
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Is the child still running? An exited child that nobody has joined yet (a
    /// zombie) is not alive.
    pub fn is_alive(&self) -> bool {
        self.status.is_none() && !sys::proc::has_exited(self.pid)
    }

    /// Waits for the child to end and reaps it. Calling it again returns the same
    /// status.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if `waitpid` fails (`ECHILD`: something else reaped the child).
    pub fn join(&mut self) -> Result<ExitStatus, Error> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let ended = sys::proc::reap(self.pid, true)?.ok_or(Error::Os(libc::ECHILD))?;
        Ok(self.finish(ended.into()))
    }

    /// Waits up to `timeout` for the child to end; `Ok(None)` if it still runs.
    ///
    /// # Errors
    ///
    /// As [`Process::join`].
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let deadline = sys::time::deadline_after(timeout);
        match &self.pidfd {
            Some(fd) => {
                if !sys::proc::wait_pidfd(fd, deadline)? {
                    return Ok(None);
                }
            }
            None => loop {
                if sys::proc::has_exited(self.pid) {
                    break;
                }
                if sys::time::monotonic_ns() >= deadline {
                    return Ok(None);
                }
                sys::time::sleep_ns(1_000_000);
            },
        }
        match sys::proc::reap(self.pid, true)? {
            Some(ended) => Ok(Some(self.finish(ended.into()))),
            None => Ok(None),
        }
    }

    /// How the child ended, once it has been joined.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Asks the child to stop (`SIGTERM`). `Ok` if it has already ended.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if the signal cannot be sent.
    pub fn terminate(&self) -> Result<(), Error> {
        self.signal(Signal::TERM)
    }

    /// Kills the child (`SIGKILL`). `Ok` if it has already ended.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if the signal cannot be sent.
    pub fn kill(&self) -> Result<(), Error> {
        self.signal(Signal::KILL)
    }

    fn signal(&self, signal: Signal) -> Result<(), Error> {
        if self.status.is_some() {
            return Ok(());
        }
        // Until it is reaped, the pid cannot be reused, so either way is exact.
        match &self.pidfd {
            Some(fd) => sys::proc::signal_pidfd(fd, signal),
            None => sys::proc::signal_pid(self.pid, signal),
        }
    }

    fn finish(&mut self, status: ExitStatus) -> ExitStatus {
        self.status = Some(status);
        self.pidfd = None;
        status
    }
}

/// Options for [`Process`].
#[derive(Debug, Clone, Default)]
pub struct ProcessBuilder {
    die_with_parent: bool,
}

impl ProcessBuilder {
    /// Default options.
    pub fn new() -> Self {
        ProcessBuilder::default()
    }

    /// Kill the child (`SIGKILL`) when its parent dies, like Python's daemon
    /// processes (`PR_SET_PDEATHSIG`). If the parent died between the fork and the
    /// `prctl`, the child exits at once.
    ///
    /// Linux delivers the signal when the parent *thread* that forked exits, not only
    /// the whole parent process: fork from a thread that lives as long as the child
    /// should.
    pub fn die_with_parent(mut self, yes: bool) -> Self {
        self.die_with_parent = yes;
        self
    }

    /// Forks a child that runs `f` and exits with its return value.
    ///
    /// # Errors
    ///
    /// [`Error::GuardHeld`] if this thread holds a lock guard, or other threads of
    /// this process still do after a short wait (see [`Process`]'s "Why the closure
    /// must be `Send`"); [`Error::Os`] if `fork` fails.
    pub fn spawn<F: FnOnce() -> i32 + Send>(self, f: F) -> Result<Process, Error> {
        // No guard may be alive at the fork: a reborrow of one (`&mut *guard`) is
        // `Send` and could be in `f` (see `sys::held`).
        sys::held::wait_for_none(GUARD_WAIT_NS)?;
        // SAFETY: `f` is `Send` (no guard, no `Rc`, no thread-bound handle inside) and
        // no guard is alive in this process, so nothing `f` reaches is a reference
        // that the parent's unlock could invalidate.
        unsafe { self.spawn_unchecked(f) }
    }

    /// [`spawn`](Self::spawn) without its checks: `f` need not be `Send`, and lock
    /// guards may be alive in this process.
    ///
    /// # Safety
    ///
    /// Nothing `f` uses may be, or be derived from, a lock guard of this process
    /// (`MutexGuard`, `ReentrantMutexGuard`, or a guard of a `Value`/`Array`): the
    /// child would keep reading and writing the locked data through its copy after
    /// this process unlocks, racing with the next holder. Thread-bound values (an `Rc`,
    /// a pipe end in use by another thread) are copied into the child: that is fine as
    /// long as the child uses only its copy and nothing shared through it.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if `fork` fails.
    pub unsafe fn spawn_unchecked<F: FnOnce() -> i32>(self, f: F) -> Result<Process, Error> {
        let parent = sys::ids::pid();
        // The child's participant slot is claimed here, before the fork, on a
        // descriptor that only the child keeps: so the parent knows the child's id at
        // once, and the slot's lifeline dies with the child even if it dies before it
        // ever uses the kit.
        let slot = sys::registry::reserve_child();
        // The child starts `f` only once the parent has handed it what `f` owns (the
        // parent drops its copy of `f` with the child as handoff target, below): so a
        // pipe end moved into `f` is already the child's when `f` first uses it.
        let barrier = match sys::proc::StartBarrier::new() {
            Ok(barrier) => barrier,
            Err(e) => {
                if let Some(slot) = slot {
                    sys::registry::finish_child(slot, false);
                }
                return Err(e);
            }
        };
        // SAFETY: the child runs only `f` (the caller's code, documented under "Fork
        // safety") and then leaves through `_exit`, never returning into our caller.
        let forked = unsafe { sys::proc::fork() };
        let forked = match forked {
            Ok(forked) => forked,
            Err(e) => {
                if let Some(slot) = slot {
                    sys::registry::finish_child(slot, false);
                }
                return Err(e);
            }
        };
        match forked {
            None => {
                sys::held::forget_in_child();
                if self.die_with_parent {
                    sys::proc::die_with_parent(parent);
                }
                barrier.wait_in_child();
                let code = match std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)) {
                    Ok(code) => code,
                    Err(_) => PANIC_EXIT_CODE,
                };
                sys::proc::exit_now(code)
            }
            Some(pid) => {
                // The parent's copy of the closure is dropped here, with the child
                // named as the one its values now belong to: a pipe end moved into
                // the closure is claimed for the child (see `Connection`).
                let child = slot.map_or(0, |slot| {
                    let id = slot.id();
                    sys::registry::finish_child(slot, true);
                    id
                });
                sys::ids::with_handoff(child, move || drop(f));
                barrier.release_in_parent();
                Ok(Process {
                    pid,
                    pidfd: sys::proc::pidfd(pid).ok(),
                    status: None,
                })
            }
        }
    }
}

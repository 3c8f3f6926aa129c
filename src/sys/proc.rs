//! Processes: liveness checks, and (with `std`) fork, wait and signals.

/// What a liveness check found. `Unknown` must be treated as alive: a failed check
/// may cost latency, never safety.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// The process (or thread) runs.
    Alive,
    /// It has exited: gone, or a zombie waiting to be reaped.
    Dead,
    /// The check itself failed (no pidfd support, out of descriptors, ...).
    Unknown,
}

/// Is the process `pid` still running?
///
/// A zombie (exited, not yet reaped by its parent) is reported dead: `kill(pid, 0)`
/// would call it alive, but a pidfd polls readable as soon as the process exits.
/// Pids are reused; the window in which a dead owner's pid is handed to a new
/// process is the caller's to accept (it errs on the side of "alive"). Only the
/// no_std build's thread-slot table still asks (std builds ask the registry).
#[cfg(any(test, not(feature = "std")))]
pub(crate) fn liveness(pid: i32) -> Liveness {
    use rustix::io::Errno;
    use rustix::process::{Pid, PidfdFlags};
    let Some(pid) = Pid::from_raw(pid) else {
        return Liveness::Dead;
    };
    match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => {
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            let zero = rustix::thread::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            match rustix::event::poll(&mut fds, Some(&zero)) {
                Ok(0) => Liveness::Alive,
                Ok(_) => Liveness::Dead,
                Err(_) => Liveness::Unknown,
            }
        }
        Err(Errno::SRCH) => Liveness::Dead,
        Err(_) => match rustix::process::test_kill_process(pid) {
            Err(Errno::SRCH) => Liveness::Dead,
            Ok(()) | Err(Errno::PERM) => Liveness::Unknown,
            Err(_) => Liveness::Unknown,
        },
    }
}

/// Is thread `tid` of process `pid` still running? (`tgkill(pid, tid, 0)` after the
/// process check, so that a zombie process counts as dead.)
#[cfg(any(test, not(feature = "std")))]
pub(crate) fn thread_liveness(pid: i32, tid: i32) -> Liveness {
    match liveness(pid) {
        Liveness::Dead => return Liveness::Dead,
        Liveness::Alive | Liveness::Unknown => {}
    }
    if tid == pid {
        // The main thread: while the process lives, so does its leader's tid (a
        // leader that called pthread_exit keeps its pid until the process ends).
        return Liveness::Alive;
    }
    // SAFETY: tgkill with signal 0 only checks that the thread exists and that we may
    // signal it; no signal is sent and no memory is passed.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, 0) };
    if rc == 0 {
        return Liveness::Alive;
    }
    // SAFETY: reading errno right after the failed call on this thread.
    let errno = unsafe { *libc::__errno_location() };
    if errno == libc::ESRCH {
        Liveness::Dead
    } else {
        Liveness::Unknown
    }
}

#[cfg(feature = "std")]
pub(crate) use self::std_only::*;

#[cfg(feature = "std")]
mod std_only {
    use rustix::fd::{AsFd, OwnedFd};
    use rustix::io::Errno;
    use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions, WaitOptions};

    use crate::error::Error;

    /// `fork()` through libc, so that `pthread_atfork` handlers (ours included) run.
    ///
    /// # Safety
    ///
    /// The child starts with one thread, a copy of the forking one. Locks that other
    /// threads held at the fork (the allocator's, stdout's) stay locked in the child
    /// forever, so the child may only do what is safe in that state before it exits
    /// with [`exit_now`].
    pub(crate) unsafe fn fork() -> Result<Option<i32>, Error> {
        // SAFETY: the caller upholds the post-fork rules above.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Error::Os(
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            ));
        }
        Ok(if pid == 0 { None } else { Some(pid) })
    }

    /// A one-shot start signal from a parent to the child it forks: a `pipe(2)`, made
    /// before the fork; the child blocks on its read end until the parent writes (or
    /// dies: the read then sees end-of-file).
    #[derive(Debug)]
    pub(crate) struct StartBarrier {
        read: OwnedFd,
        write: OwnedFd,
    }

    impl StartBarrier {
        /// `pipe2(O_CLOEXEC)`.
        pub(crate) fn new() -> Result<StartBarrier, Error> {
            let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(Error::from_errno)?;
            Ok(StartBarrier { read, write })
        }

        /// In the child: waits for the parent's go (async-signal-safe: `close`,
        /// `read`).
        pub(crate) fn wait_in_child(self) {
            let StartBarrier { read, write } = self;
            drop(write);
            let mut byte = [0u8; 1];
            loop {
                match rustix::io::read(&read, &mut byte) {
                    Err(Errno::INTR) => {}
                    _ => return,
                }
            }
        }

        /// In the parent: lets the child start.
        pub(crate) fn release_in_parent(self) {
            let StartBarrier { read, write } = self;
            drop(read);
            loop {
                match rustix::io::write(&write, &[1u8]) {
                    Err(Errno::INTR) => {}
                    _ => return,
                }
            }
        }
    }

    /// `_exit(code)`: ends the process without running atexit handlers, destructors of
    /// statics, or flushing stdio buffers that belong to the parent's copy.
    pub(crate) fn exit_now(code: i32) -> ! {
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(code) }
    }

    /// `pidfd_open(pid, 0)`.
    pub(crate) fn pidfd(pid: i32) -> Result<OwnedFd, Error> {
        let pid = Pid::from_raw(pid).ok_or(Error::InvalidArgument)?;
        rustix::process::pidfd_open(pid, PidfdFlags::empty()).map_err(Error::from_errno)
    }

    /// How a child ended, as `waitpid` reports it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Ended {
        /// `exit(code)`.
        Exited(i32),
        /// Killed by a signal.
        Signaled(i32),
    }

    /// `waitpid(pid, 0)` or with `WNOHANG`: reaps the child. `Ok(None)` = still running.
    pub(crate) fn reap(pid: i32, block: bool) -> Result<Option<Ended>, Error> {
        let pid = Pid::from_raw(pid).ok_or(Error::InvalidArgument)?;
        let opts = if block {
            WaitOptions::empty()
        } else {
            WaitOptions::NOHANG
        };
        loop {
            match rustix::process::waitpid(Some(pid), opts) {
                Ok(None) => return Ok(None),
                Ok(Some((_, status))) => {
                    if let Some(code) = status.exit_status() {
                        return Ok(Some(Ended::Exited(code)));
                    }
                    if let Some(sig) = status.terminating_signal() {
                        return Ok(Some(Ended::Signaled(sig)));
                    }
                    // Stopped or continued: not an end; keep waiting if asked to.
                    if !block {
                        return Ok(None);
                    }
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(Error::from_errno(e)),
            }
        }
    }

    /// `waitpid(-1, WNOHANG)`: reaps one child that has ended, if any: its pid and how
    /// it ended. `Ok(None)`: none has ended (or there are no children).
    pub(crate) fn reap_any() -> Result<Option<(i32, Ended)>, Error> {
        loop {
            match rustix::process::waitpid(None, WaitOptions::NOHANG) {
                Ok(None) | Err(Errno::CHILD) => return Ok(None),
                Ok(Some((pid, status))) => {
                    let pid = pid.as_raw_nonzero().get();
                    if let Some(code) = status.exit_status() {
                        return Ok(Some((pid, Ended::Exited(code))));
                    }
                    if let Some(sig) = status.terminating_signal() {
                        return Ok(Some((pid, Ended::Signaled(sig))));
                    }
                    // Stopped or continued (not reported without WUNTRACED): look again.
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(Error::from_errno(e)),
            }
        }
    }

    /// `getppid()`: the parent's pid (0 if there is none, as for pid 1).
    pub(crate) fn parent_pid() -> i32 {
        rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get())
    }

    /// `signal(SIGCHLD, SIG_DFL)`: children become zombies to be reaped, whatever the
    /// forking process had set (`SIG_IGN` would have them reaped by the kernel, and
    /// `waitpid` could no longer report how they ended).
    pub(crate) fn default_child_signal() {
        // SAFETY: installs the default disposition; no handler code is involved.
        unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    }

    /// `waitid(P_PID, pid, WEXITED | WNOHANG | WNOWAIT)`: has the child exited? Leaves
    /// it unreaped.
    pub(crate) fn has_exited(pid: i32) -> bool {
        let Some(pid) = Pid::from_raw(pid) else {
            return true;
        };
        let opts = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        match rustix::process::waitid(WaitId::Pid(pid), opts) {
            Ok(Some(_)) => true,
            Ok(None) => false,
            // ECHILD: not our child, or already reaped by someone else.
            Err(Errno::CHILD) => true,
            Err(_) => false,
        }
    }

    /// Waits until `pidfd` polls readable (the process exited) or `timeout_ns` passes.
    /// Returns true if it exited.
    pub(crate) fn wait_pidfd(pidfd: &OwnedFd, deadline_ns: u64) -> Result<bool, Error> {
        loop {
            let now = crate::sys::time::monotonic_ns();
            let left = deadline_ns.saturating_sub(now);
            let ts = crate::sys::time::timespec_from_ns(left);
            let mut fds = [rustix::event::PollFd::new(
                pidfd,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(0) if left == 0 => return Ok(false),
                Ok(0) => {}
                Ok(_) => return Ok(true),
                Err(Errno::INTR) => {}
                Err(e) => return Err(Error::from_errno(e)),
            }
        }
    }

    /// Sends `signal` through the pidfd (immune to pid reuse). `Ok` if the process has
    /// already exited.
    pub(crate) fn signal_pidfd(pidfd: &OwnedFd, signal: Signal) -> Result<(), Error> {
        match rustix::process::pidfd_send_signal(pidfd.as_fd(), signal) {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(e) => Err(Error::from_errno(e)),
        }
    }

    /// Sends `signal` to `pid` (`kill`). `Ok` if the process no longer exists.
    pub(crate) fn signal_pid(pid: i32, signal: Signal) -> Result<(), Error> {
        let pid = Pid::from_raw(pid).ok_or(Error::InvalidArgument)?;
        match rustix::process::kill_process(pid, signal) {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(e) => Err(Error::from_errno(e)),
        }
    }

    /// `prctl(PR_SET_PDEATHSIG, SIGKILL)`, then closes the race with a parent that died
    /// before the call: if the parent is no longer `parent`, exits at once.
    pub(crate) fn die_with_parent(parent: i32) {
        if rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).is_err() {
            exit_now(126);
        }
        let now = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
        if now != parent {
            exit_now(126);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreaped_zombie_is_dead() {
        // SAFETY: the child calls only the async-signal-safe _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe { libc::_exit(0) };
        }
        assert!(pid > 0);
        // Wait (without reaping) until it has exited: it is then a zombie.
        // SAFETY: siginfo_t is plain old data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
        // SAFETY: a valid siginfo_t out-pointer; WNOWAIT leaves the child unreaped.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as u32,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(rc, 0);
        // kill(pid, 0) still calls a zombie alive; the liveness check must not.
        assert_eq!(
            rustix::process::test_kill_process(rustix::process::Pid::from_raw(pid).unwrap()),
            Ok(())
        );
        assert_eq!(liveness(pid), Liveness::Dead);
        assert_eq!(thread_liveness(pid, pid), Liveness::Dead);
        let mut status = 0;
        // SAFETY: reaping our own child with a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(liveness(pid), Liveness::Dead);
    }

    #[test]
    fn self_is_alive_and_pid_zero_is_dead() {
        let me = crate::sys::ids::pid();
        assert_eq!(liveness(me), Liveness::Alive);
        assert_eq!(liveness(0), Liveness::Dead);
        assert_eq!(thread_liveness(me, crate::sys::ids::tid()), Liveness::Alive);
    }
}

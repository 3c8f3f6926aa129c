//! Asymmetric memory barriers between processes, through `membarrier(2)`.
//!
//! Every blocking call in the kit ends in a Dekker-style hand-shake (see
//! `sync::notifier`): a waker changes the state and then reads whether anybody sleeps;
//! a waiter announces itself and then re-reads the state. Each side needs a StoreLoad
//! barrier between its store and its load. A plain `fence(SeqCst)` (`mfence` or a
//! `lock`ed instruction on x86) does it, but it stalls until the store buffer drains,
//! and on the waker's side that buffer holds the message just written to a cache line
//! the peer is reading: one cross-core transfer per message on the fast path.
//!
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` moves the whole cost to the rare side.
//! It makes every thread of every process registered with
//! `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` that is running at the time execute a full
//! barrier (through an IPI; a thread not running passes a full barrier when it is
//! scheduled out). So:
//!
//! - [`light`], on the waker's side: a compiler fence only, once this process is
//!   registered; a real `fence(SeqCst)` until then, or if registration failed.
//! - [`heavy`], on the waiter's side, just before it sleeps: `fence(SeqCst)`, then the
//!   system call. It costs about a microsecond, or about 10 µs when it must interrupt
//!   another CPU (in a VM): small beside the sleep it comes before.
//!
//! Either the waker's store became visible before the waiter's barrier, and the
//! waiter's re-check sees it, or the waker's load ran after the barrier that the
//! system call forced on it, and sees the waiter's announcement.
//!
//! Registration is per process (the kernel keeps it in the `mm`, which `fork` copies
//! and `exec` drops). To depend on nothing the kernel does at `fork`, a fork hook
//! (`super::fork`) forgets it in the child, which registers again on its first
//! wake-up.
//!
//! ## Where `membarrier` is missing
//!
//! - The kernel lacks the command (before Linux 4.16), as `MEMBARRIER_CMD_QUERY` proves
//!   by answering without it: then no process can be registered, every waker uses a
//!   real fence, and a waiter's fence is enough.
//! - The call fails any other way (`EPERM` or `ENOSYS` from a seccomp filter, say)
//!   while a peer may be registered: then [`heavy`] reports `false`, and the waiter
//!   must not sleep for long at a time (the notifier caps each sleep at a millisecond
//!   and re-checks), so a wake-up lost to the missing barrier costs at most that long.
use core::sync::atomic::{AtomicU8, Ordering, compiler_fence, fence};

use rustix::thread::{MembarrierCommand, membarrier};

/// This process is not registered yet (or forked since): the next [`light`] tries.
const UNKNOWN: u8 = 0;
/// Registered: wakers need only a compiler fence.
const REGISTERED: u8 = 1;
/// Registration failed: wakers use a real fence.
const FENCE: u8 = 2;

/// This process's waker mode: [`UNKNOWN`], [`REGISTERED`] or [`FENCE`].
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The waiter's side, as last seen: [`UNKNOWN`]; [`REGISTERED`] = the call works;
/// [`FENCE`] = the kernel lacks it (nobody can be registered).
static HEAVY: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The waker's StoreLoad barrier: between publishing a state change and reading
/// whether anybody sleeps.
#[inline]
pub(crate) fn light() {
    // Miri runs no system calls: both sides are plain fences there.
    if cfg!(miri) {
        fence(Ordering::SeqCst);
        return;
    }
    // Relaxed: MODE is only ever set to REGISTERED after the registering system call
    // returned, and from then on the kernel interrupts every CPU running this process
    // on each heavy barrier, so seeing the value is all that matters.
    if MODE.load(Ordering::Relaxed) == REGISTERED {
        compiler_fence(Ordering::SeqCst);
    } else {
        light_slow();
    }
}

#[cold]
fn light_slow() {
    if MODE.load(Ordering::Relaxed) == UNKNOWN {
        // The fork hook that resets MODE must exist before MODE is set.
        super::fork::on_child(forget_in_child);
        let mode = match membarrier(MembarrierCommand::RegisterGlobalExpedited) {
            Ok(()) => REGISTERED,
            Err(_) => FENCE,
        };
        MODE.store(mode, Ordering::Relaxed);
    }
    // This one time (and always in FENCE mode), a real fence.
    fence(Ordering::SeqCst);
}

/// The waiter's StoreLoad barrier: between announcing itself and re-checking the
/// state. Returns `false` if registered wakers may have skipped their fence unseen
/// (the call was refused here): the caller must then sleep in short slices.
pub(crate) fn heavy() -> bool {
    fence(Ordering::SeqCst);
    if cfg!(miri) {
        return true;
    }
    if HEAVY.load(Ordering::Relaxed) == FENCE {
        return true;
    }
    match membarrier(MembarrierCommand::GlobalExpedited) {
        Ok(()) => {
            HEAVY.store(REGISTERED, Ordering::Relaxed);
            true
        }
        // The call failed. Only a kernel that answers the query, and lists no global
        // expedited barrier, proves that no process can have registered (so every
        // waker runs a real fence, which pairs with ours). Any other failure — a
        // seccomp filter may answer ENOSYS or EPERM for a command the kernel has, while
        // a registered peer skips its fence — means no barrier: short sleeps.
        Err(_) => {
            let supported = rustix::thread::membarrier_query();
            if !supported.is_empty()
                && !supported.contains_command(MembarrierCommand::GlobalExpedited)
            {
                HEAVY.store(FENCE, Ordering::Relaxed);
                true
            } else {
                false
            }
        }
    }
}

/// In a forked child (a `super::fork` hook): the child registers afresh.
fn forget_in_child() {
    // Relaxed: the child has one thread at this point.
    MODE.store(UNKNOWN, Ordering::Relaxed);
}

/// Is this process registered (its wakers skip the fence)?
#[cfg(test)]
pub(crate) fn registered() -> bool {
    MODE.load(Ordering::Relaxed) == REGISTERED
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a forked child, installs a seccomp filter that fails `membarrier` with
    /// `errno`, then reports (exit code) whether `heavy` claimed a barrier.
    #[cfg(target_arch = "x86_64")]
    fn heavy_under_seccomp(errno: i32) -> i32 {
        // SAFETY: the child makes only system calls (prctl, membarrier) and _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let ins = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
                code: code as u16,
                jt,
                jf,
                k,
            };
            let filter = [
                // A = seccomp_data.nr
                ins(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
                ins(
                    libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                    libc::SYS_membarrier as u32,
                    0,
                    1,
                ),
                ins(
                    libc::BPF_RET | libc::BPF_K,
                    libc::SECCOMP_RET_ERRNO | errno as u32,
                    0,
                    0,
                ),
                ins(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
            ];
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            // SAFETY: plain prctl calls with a valid filter program that outlives them.
            let ok = unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                    && libc::prctl(
                        libc::PR_SET_SECCOMP,
                        libc::SECCOMP_MODE_FILTER,
                        &prog as *const libc::sock_fprog,
                    ) == 0
            };
            let code = if !ok {
                2
            } else if heavy() {
                1
            } else {
                0
            };
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: reaping our own child with a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        libc::WEXITSTATUS(status)
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    #[cfg_attr(miri, ignore = "no system calls under Miri")]
    fn a_refused_barrier_is_no_barrier() {
        // A seccomp filter that answers ENOSYS (or EPERM, or EINVAL) for membarrier:
        // the waiter must not take that for a kernel without the command.
        for errno in [libc::ENOSYS, libc::EPERM, libc::EINVAL] {
            assert_eq!(heavy_under_seccomp(errno), 0, "errno {errno}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "no system calls under Miri")]
    fn registers_and_heavy_barrier_works() {
        light();
        // On any kernel since 4.16 without a seccomp filter (every CI machine), the
        // registration succeeds and the heavy barrier is a real system call.
        assert!(registered(), "membarrier registration failed");
        assert!(heavy());
        light();
    }
}

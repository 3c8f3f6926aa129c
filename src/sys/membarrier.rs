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
//! and `exec` drops). To depend on nothing the kernel does at `fork`, the
//! `pthread_atfork` child handler in [`super::ids`] calls [`forget_in_child`], and a
//! child registers again on its first wake-up.
//!
//! ## Where `membarrier` is missing
//!
//! - The kernel lacks the command (`ENOSYS`, `EINVAL`; before Linux 4.16): then no
//!   process can be registered, every waker uses a real fence, and a waiter's fence is
//!   enough.
//! - The call is refused in this process (`EPERM` from a seccomp filter, say) while a
//!   peer may be registered: then [`heavy`] reports `false`, and the waiter must not
//!   sleep for long at a time (the notifier caps each sleep at a millisecond and
//!   re-checks), so a wake-up lost to the missing barrier costs at most that long.
use core::sync::atomic::{AtomicU8, Ordering, compiler_fence, fence};

use rustix::io::Errno;
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
        // The fork handler that resets MODE must exist before MODE is set.
        super::ids::ensure_atfork();
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
        // This kernel has no such command: no process can have registered, so every
        // waker runs a real fence, which pairs with ours.
        Err(Errno::NOSYS | Errno::INVAL) => {
            HEAVY.store(FENCE, Ordering::Relaxed);
            true
        }
        Err(_) => false,
    }
}

/// Called by the `pthread_atfork` child handler: the child registers afresh.
pub(crate) fn forget_in_child() {
    // Relaxed: the child has one thread at this point.
    MODE.store(UNKNOWN, Ordering::Relaxed);
}

/// Is this process registered (its wakers skip the fence)?
pub(crate) fn registered() -> bool {
    MODE.load(Ordering::Relaxed) == REGISTERED
}

#[cfg(test)]
mod tests {
    use super::*;

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

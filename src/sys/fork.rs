//! What a forked child must forget: one `pthread_atfork` child handler that runs the
//! reset hook of every module that caches something process-specific (the pid and tid
//! caches, the participant registry's descriptor and slots, the membarrier
//! registration, the counters).
//!
//! A module registers its hook (with [`on_child`]) before it first caches anything;
//! the handler runs the hooks in the child right after `fork`, on the only thread the
//! child has, so each hook may only do async-signal-safe work (atomics, `open`,
//! `close`). This module knows none of the modules it serves: they come to it.
//! (A raw `clone` system call that bypasses libc's `fork` also bypasses the handler:
//! don't use one.)

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// The registered hooks (`fn()` addresses; 0 = empty).
static HOOKS: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

/// `pthread_atfork` registration: 0 = not yet, [`DONE`], or the pid of the process one
/// of whose threads is installing it right now.
static ATFORK: AtomicU32 = AtomicU32::new(0);
const DONE: u32 = u32::MAX;

/// Runs `hook` in every child forked from now on (once per hook, however often it is
/// registered). Returns only once the handler is installed.
pub(crate) fn on_child(hook: fn()) {
    install();
    let addr = hook as usize;
    for slot in &HOOKS {
        match slot.compare_exchange(0, addr, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(cur) if cur == addr => return,
            Err(_) => {}
        }
    }
    // Eight hooks are more than the kit has; a ninth is a bug in the kit.
    debug_assert!(false, "sys::fork: no room for another child hook");
}

/// Installs the handler once. Never waits forever: in a child forked while another
/// thread of its parent was installing (that thread does not exist here), the word
/// holds the parent's pid, and the child installs the handler itself. (Installed twice,
/// the hooks run twice: each is idempotent.)
fn install() {
    if ATFORK.load(Ordering::Acquire) == DONE {
        return;
    }
    let me = rustix::process::getpid().as_raw_nonzero().get() as u32;
    let mut seen = ATFORK.load(Ordering::Acquire);
    loop {
        if seen == DONE {
            return;
        }
        if seen == 0 || seen != me {
            // Free, or claimed by an installer in another process (our parent, which
            // forked us mid-installation): ours to do.
            match ATFORK.compare_exchange(seen, me, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        } else {
            // Another thread of this process is installing it.
            core::hint::spin_loop();
            seen = ATFORK.load(Ordering::Acquire);
        }
    }
    // SAFETY: `pthread_atfork` only records the function pointer; the child handler is
    // an `extern "C" fn` with no arguments that runs the registered hooks, each
    // async-signal-safe.
    unsafe {
        libc::pthread_atfork(None, None, Some(in_child));
    }
    ATFORK.store(DONE, Ordering::Release);
}

/// The child handler: runs every registered hook.
extern "C" fn in_child() {
    for slot in &HOOKS {
        let addr = slot.load(Ordering::Relaxed);
        if addr != 0 {
            // SAFETY: every non-zero value was stored by `on_child` from a `fn()`, and
            // functions are never unloaded from this process.
            let hook: fn() = unsafe { core::mem::transmute::<usize, fn()>(addr) };
            hook();
        }
    }
}

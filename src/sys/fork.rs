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

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// The registered hooks (`fn()` addresses; 0 = empty).
static HOOKS: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

/// `pthread_atfork` registration: 0 = not yet, 1 = in progress, 2 = done.
static ATFORK: AtomicU8 = AtomicU8::new(0);

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

/// Installs the handler once.
fn install() {
    if ATFORK.load(Ordering::Acquire) == 2 {
        return;
    }
    if ATFORK
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        // SAFETY: `pthread_atfork` only records the function pointer; the child
        // handler is an `extern "C" fn` with no arguments that runs the registered
        // hooks, each async-signal-safe.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        }
        ATFORK.store(2, Ordering::Release);
    } else {
        while ATFORK.load(Ordering::Acquire) != 2 {
            core::hint::spin_loop();
        }
    }
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

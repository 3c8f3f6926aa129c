//! A `#![no_std]` binary that uses shmkit's core: proof that the core links without
//! `std`. It maps a shared segment, forks through libc, and checks that the child's
//! write is seen by the parent, and that a lock the child dies holding is reported
//! `OwnerDead` (participant registry, no_std thread ids). Exit code 0 = pass.
#![no_std]
#![no_main]
#![allow(clippy::disallowed_types)]

use core::sync::atomic::{AtomicU64, Ordering};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: _exit is always safe to call; it never returns.
    unsafe { libc::_exit(3) }
}

#[unsafe(no_mangle)]
extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let Ok(counter) = shmkit::Shared::new(AtomicU64::new(40)) else {
        return 1;
    };
    // SAFETY: the child only touches the shared atomic and leaves through _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        counter.fetch_add(2, Ordering::SeqCst);
        // SAFETY: as above.
        unsafe { libc::_exit(0) }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if counter.load(Ordering::SeqCst) != 42 {
        return 2;
    }
    let Ok(lock) = shmkit::Shared::new(shmkit::Mutex::new(0u32)) else {
        return 1;
    };
    // SAFETY: the child only locks the shared mutex and leaves through _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        core::mem::forget(lock.lock());
        // SAFETY: as above.
        unsafe { libc::_exit(0) }
    }
    // SAFETY: as above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    match lock.lock_timeout(core::time::Duration::from_secs(5)) {
        Err(shmkit::LockError::OwnerDead(g)) => {
            g.make_consistent();
            0
        }
        _ => 4,
    }
}

/// The precompiled `core` refers to the unwinding personality even under
/// `panic = "abort"`; nothing ever unwinds here, so an empty one satisfies the linker.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

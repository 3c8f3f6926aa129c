//! Failpoints: named places in the pipe's protocol where a crash test can make the
//! calling process kill itself (`SIGKILL`), so that the narrow windows between two
//! shared stores — the ones a crash must not break — are hit on purpose instead of
//! once in a million random kills.
//!
//! They exist only in builds with `RUSTFLAGS="--cfg shmkit_failpoints"` (and `std`);
//! everywhere else `failpoint!` expands to nothing. A test arms one point per
//! process with `arm`: the `countdown`-th time the process passes it, it runs the
//! test's `before_death` hook and kills itself.

/// Marks a failpoint named `$name` (one of `POINTS`).
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(all(shmkit_failpoints, feature = "std"))]
        $crate::channel::ring::failpoint::hit($name);
    };
}
pub(crate) use failpoint;

#[cfg(all(shmkit_failpoints, feature = "std"))]
pub(crate) use armed::hit;
#[cfg(all(shmkit_failpoints, feature = "std"))]
pub use armed::{POINTS, arm};

#[cfg(all(shmkit_failpoints, feature = "std"))]
mod armed {
    #![allow(clippy::disallowed_types)]
    use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};

    /// Every failpoint, by name.
    pub const POINTS: &[&str] = &[
        // Producer: between the zero-ahead store and the header store.
        "ring.publish.zeroed",
        // Producer: the header is published, `tail` not yet stored (issue 10, defect 7).
        "ring.publish.header",
        // Producer: a padding record is published, the record not yet reserved.
        "ring.reserve.padding",
        // Producer: a batch's later records are published, its first header (which
        // publishes them all) not yet stored.
        "ring.batch.before_first",
        // Producer: the payload is written, the record not yet published.
        "connection.send.filled",
        // Consumer: the record is read, `head` not yet stored (as inside `recv_with`).
        "ring.release.read",
        // Consumer: `head` stored past a padding record, the producer not yet woken.
        "ring.peek.padding",
        // Consumer: the message is released, the receive not yet returned.
        "connection.recv.released",
        // Either side: the end is claimed (or adopted), nothing else done yet.
        "connection.bind.claimed",
    ];

    /// Index + 1 of the armed point (0: none).
    static ARMED: AtomicUsize = AtomicUsize::new(0);
    /// Passes left before the armed point fires.
    static COUNTDOWN: AtomicU64 = AtomicU64::new(0);
    /// The hook to run before dying (a `fn()`; null: none).
    static BEFORE_DEATH: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

    /// Arms `point` (one of [`POINTS`]; anything else disarms) for this process: the
    /// `countdown`-th pass (at least 1) runs `before_death`, then `SIGKILL`s the process.
    pub fn arm(point: &str, countdown: u64, before_death: fn()) {
        let index = POINTS.iter().position(|p| *p == point).map_or(0, |i| i + 1);
        BEFORE_DEATH.store(before_death as *mut (), SeqCst);
        COUNTDOWN.store(countdown.max(1), SeqCst);
        ARMED.store(index, SeqCst);
    }

    /// A pass through failpoint `name`.
    #[inline(never)]
    pub(crate) fn hit(name: &str) {
        let armed = ARMED.load(SeqCst);
        if armed == 0 || POINTS[armed - 1] != name {
            return;
        }
        if COUNTDOWN.fetch_sub(1, SeqCst) != 1 {
            return;
        }
        let hook = BEFORE_DEATH.load(SeqCst);
        if !hook.is_null() {
            // SAFETY: only `arm` stores here, and it stores a `fn()`.
            let hook: fn() = unsafe { core::mem::transmute::<*mut (), fn()>(hook) };
            hook();
        }
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; should delivery lag, do nothing more meanwhile.
        loop {
            std::thread::sleep(core::time::Duration::from_secs(1));
        }
    }
}

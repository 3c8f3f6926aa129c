//! The calling process's and thread's ids, cached.
//!
//! Lock words and pipe ends record who owns them, so the fast paths need the pid and
//! tid without a system call. `getpid`/`gettid` are real system calls on current
//! glibc and in rustix, so both are cached: the pid process-wide, the tid per thread
//! (with `std`; without it every call asks the kernel). A fork hook (`super::fork`)
//! clears both caches in the child, whose only thread is the one that forked, so a
//! forked child never acts under its parent's ids.

use core::sync::atomic::{AtomicI32, Ordering};

/// The cached pid; 0 = not known yet (no process has pid 0).
static PID: AtomicI32 = AtomicI32::new(0);

#[cfg(feature = "std")]
std::thread_local! {
    /// This thread's tid; 0 = not known yet.
    static TID: core::cell::Cell<i32> = const { core::cell::Cell::new(0) };
}

/// Runs in a forked child (see `super::fork`): the caches held the parent's ids.
fn forget_in_child() {
    // Relaxed: the child is single-threaded at this point.
    PID.store(0, Ordering::Relaxed);
    #[cfg(feature = "std")]
    {
        let _ = TID.try_with(|tid| tid.set(0));
        let _ = THREAD_ID.try_with(|t| t.set(0));
    }
}

/// Makes sure a forked child clears these caches.
pub(crate) fn ensure_atfork() {
    super::fork::on_child(forget_in_child);
}

/// The calling process's pid (`getpid`, cached).
#[inline]
pub(crate) fn pid() -> i32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    pid_slow()
}

#[cold]
fn pid_slow() -> i32 {
    ensure_atfork();
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    PID.store(pid, Ordering::Relaxed);
    pid
}

/// The calling thread's tid (`gettid`, cached per thread with `std`): for the no_std
/// build's thread-slot table (std builds identify threads by registry slots).
#[cfg(any(test, not(feature = "std")))]
#[inline]
pub(crate) fn tid() -> i32 {
    #[cfg(feature = "std")]
    {
        let cached = TID.try_with(|tid| tid.get()).unwrap_or(0);
        if cached != 0 {
            return cached;
        }
        tid_slow()
    }
    #[cfg(not(feature = "std"))]
    {
        rustix::thread::gettid().as_raw_nonzero().get()
    }
}

#[cfg(all(test, feature = "std"))]
#[cold]
fn tid_slow() -> i32 {
    ensure_atfork();
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    let _ = TID.try_with(|cell| cell.set(tid));
    tid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_kernel() {
        assert_eq!(pid(), rustix::process::getpid().as_raw_nonzero().get());
        assert_eq!(tid(), rustix::thread::gettid().as_raw_nonzero().get());
        assert_eq!(pid(), pid());
    }
}

// ---- participant ids ------------------------------------------------------------
//
// See `super::registry`: a process's id is claimed on first use; a thread's too, cached
// per thread (with `std`) and released when the thread exits.

/// The calling process's participant id.
#[inline]
pub(crate) fn process_id() -> u32 {
    super::registry::process_id()
}

/// Is participant `id` alive?
pub(crate) fn liveness(id: u32) -> super::proc::Liveness {
    super::registry::liveness(id)
}

#[cfg(feature = "std")]
std::thread_local! {
    /// This thread's participant id; 0 = none yet (the fast path's cache: no destructor).
    static THREAD_ID: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
    /// Owns the thread's registry slot and gives it up when the thread exits.
    static THREAD_SLOT: ThreadSlot = const {
        ThreadSlot { id: core::cell::Cell::new(0), epoch: core::cell::Cell::new(0) }
    };
}

/// A thread's registry slot, released at thread exit (unless the process forked since:
/// then the slot is the parent's).
#[cfg(feature = "std")]
struct ThreadSlot {
    id: core::cell::Cell<u32>,
    epoch: core::cell::Cell<u32>,
}

#[cfg(feature = "std")]
impl Drop for ThreadSlot {
    fn drop(&mut self) {
        // A thread that leaked a lock guard keeps its id (and so its locks) for the
        // life of the process: see `super::held`.
        if super::held::mine() != 0 {
            return;
        }
        let id = self.id.replace(0);
        if id != 0 {
            let _ = THREAD_ID.try_with(|t| t.set(0));
            super::registry::release_thread(id, self.epoch.get());
        }
    }
}

/// The calling thread's participant id.
#[inline]
pub(crate) fn thread_id() -> u32 {
    #[cfg(feature = "std")]
    {
        let cached = THREAD_ID.try_with(core::cell::Cell::get).unwrap_or(0);
        if cached != 0 {
            return cached;
        }
        thread_id_slow()
    }
    #[cfg(not(feature = "std"))]
    {
        no_std_threads::thread_id()
    }
}

#[cfg(feature = "std")]
#[cold]
fn thread_id_slow() -> u32 {
    ensure_atfork();
    let id = super::registry::claim_thread();
    let epoch = super::registry::epoch();
    // A thread whose slot holder is already destroyed (a lock taken in another
    // thread-local's destructor) keeps its slot until the process exits.
    let _ = THREAD_SLOT.try_with(|slot| {
        slot.id.set(id);
        slot.epoch.set(epoch);
    });
    let _ = THREAD_ID.try_with(|t| t.set(id));
    id
}

/// Without `std` there are no thread-locals: a small table maps kernel tids to
/// participant ids, and a thread's exit is not seen. An entry whose tid is found gone
/// is given to a new thread with a fresh id, while the old id stays claimed for the
/// life of the process (so a lock the gone thread left held stays held: it may have
/// leaked a guard). A new thread that reuses a gone thread's tid before its entry is
/// recycled inherits its id. (Threads exist in a `no_std` program only through
/// `unsafe` code of its own, which takes on that caveat.)
#[cfg(not(feature = "std"))]
mod no_std_threads {
    use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

    const N: usize = 64;
    static TIDS: [AtomicI32; N] = [const { AtomicI32::new(0) }; N];
    static IDS: [AtomicU32; N] = [const { AtomicU32::new(0) }; N];
    static EPOCH: AtomicU32 = AtomicU32::new(0);

    pub(super) fn thread_id() -> u32 {
        let epoch = crate::sys::registry::epoch();
        if EPOCH.swap(epoch, Ordering::AcqRel) != epoch {
            // Forked since: every entry is the parent's.
            for t in &TIDS {
                t.store(0, Ordering::Relaxed);
            }
        }
        let tid = super::tid();
        for (t, id) in TIDS.iter().zip(&IDS) {
            if t.load(Ordering::Acquire) == tid {
                let id = id.load(Ordering::Acquire);
                if id != 0 {
                    return id;
                }
            }
        }
        let id = crate::sys::registry::claim_thread();
        for round in 0..2 {
            for (t, slot) in TIDS.iter().zip(&IDS) {
                let cur = t.load(Ordering::Acquire);
                let gone = round == 1
                    && cur != 0
                    && crate::sys::proc::thread_liveness(super::pid(), cur)
                        == crate::sys::proc::Liveness::Dead;
                if (cur == 0 || gone)
                    && t.compare_exchange(cur, tid, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    slot.store(id, Ordering::Release);
                    return id;
                }
            }
        }
        // Full of live threads: this one keeps its id unrecorded (it claims a fresh
        // one per call, which only wastes slots).
        id
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    /// See [`handoff_target`]; 0 = none.
    static HANDOFF: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

/// The child a forking parent is handing its closure's values to (see
/// `primitive::handoff_target`).
#[cfg(feature = "std")]
#[inline]
pub(crate) fn handoff_target() -> Option<u32> {
    match HANDOFF.try_with(core::cell::Cell::get) {
        Ok(0) | Err(_) => None,
        Ok(id) => Some(id),
    }
}

/// Runs `f` (the parent's drop of a closure it forked with) with
/// [`handoff_target`] = `child`.
#[cfg(feature = "std")]
pub(crate) fn with_handoff<R>(child: u32, f: impl FnOnce() -> R) -> R {
    struct Reset(u32);
    impl Drop for Reset {
        fn drop(&mut self) {
            let _ = HANDOFF.try_with(|h| h.set(self.0));
        }
    }
    let previous = HANDOFF.try_with(|h| h.replace(child)).unwrap_or(0);
    let _reset = Reset(previous);
    f()
}

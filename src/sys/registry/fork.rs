//! Forks: the slot `Process::spawn` claims for its child, and the hook that makes a
//! forked child drop its parent's lifelines.

#![allow(clippy::disallowed_types)]

#[allow(clippy::wildcard_imports)]
use super::*;

// ---- fork ---------------------------------------------------------------------------------

/// A process slot claimed for a child about to be forked (see [`reserve_child`]).
#[cfg(feature = "std")]
#[derive(Debug)]
pub(crate) struct ChildSlot {
    index: usize,
    id: u32,
}

#[cfg(feature = "std")]
impl ChildSlot {
    /// The child's participant id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }
}

/// Before `fork`: opens a descriptor of its own on the registry, claims a process slot
/// through it for the child, and marks it as what the next fork on this thread hands
/// to the child. The parent then calls [`finish_child`] after the fork.
#[cfg(feature = "std")]
pub(crate) fn reserve_child() -> Option<ChildSlot> {
    let reg = reg()?;
    let fd = reopen(FD.load(Ordering::Acquire))?;
    let index = PENDING_FD.iter().position(|p| {
        p.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    });
    let Some(index) = index else {
        // SAFETY: ours, unused.
        let _ = unsafe { libc::close(fd) };
        return None;
    };
    let parent = process_id();
    let Some(id) = claim(reg, fd, PROCESS, parent) else {
        PENDING_FD[index].store(-1, Ordering::Release);
        // SAFETY: ours, unused.
        let _ = unsafe { libc::close(fd) };
        return None;
    };
    // The slot is the child's, not ours: `claim` marked it owned here.
    mark_owned(id & SLOT_MASK, false);
    PENDING_ID[index].store(id, Ordering::Release);
    let _ = FORKING_WITH.try_with(|f| f.set(index as i32));
    Some(ChildSlot { index, id })
}

/// After `fork`, in the parent: closes the parent's copy of the child's descriptor (the
/// child's copy keeps the slot's lock for the child's lifetime). If the fork failed
/// (`forked == false`), frees the slot instead.
#[cfg(feature = "std")]
pub(crate) fn finish_child(slot: ChildSlot, forked: bool) {
    let _ = FORKING_WITH.try_with(|f| f.set(-1));
    let fd = PENDING_FD[slot.index].load(Ordering::Acquire);
    if !forked {
        if let Some(reg) = reg() {
            let s = slot.id & SLOT_MASK;
            let e = reg.entry(s);
            e.state
                .store(gen_of(e.state.load(Ordering::Acquire)), Ordering::Release);
            let _ = unlock(fd, LOCK_BASE + i64::from(s));
        }
    }
    PENDING_ID[slot.index].store(0, Ordering::Release);
    PENDING_FD[slot.index].store(-1, Ordering::Release);
    // SAFETY: the descriptor was opened by `reserve_child` for this slot alone.
    let _ = unsafe { libc::close(fd) };
}

/// A new open file description of the file behind `fd` (`/proc/self/fd/N`), so that
/// its locks are its own. Async-signal-safe (no allocation). `None` if it fails.
pub(super) fn reopen(fd: i32) -> Option<i32> {
    if fd < 0 {
        return None;
    }
    let mut path = *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0\0";
    // 14 + at most 10 digits: the NUL after them is still in the buffer.
    put_decimal(&mut path[14..], fd as u32);
    // SAFETY: `path` is NUL-terminated (zero-filled past the digits); open is
    // async-signal-safe.
    let new = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC) };
    (new >= 0).then_some(new)
}

/// The fork hook (async-signal-safe: atomics, `open`, `close`): the child stops
/// sharing its parent's lifelines at once, forgets the slots it inherited, and takes
/// the slot pre-claimed for it, if the fork was `Process::spawn`'s.
pub(super) fn after_fork_in_child() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
    for word in &OWNED {
        word.store(0, Ordering::Relaxed);
    }
    PROCESS_ID.store(0, Ordering::Relaxed);
    #[cfg(feature = "std")]
    let mine = FORKING_WITH.try_with(|f| f.replace(-1)).unwrap_or(-1);
    #[cfg(not(feature = "std"))]
    let mine = -1;
    // Every descriptor of the parent's but our own pending one: closed.
    for (i, p) in PENDING_FD.iter().enumerate() {
        let fd = p.load(Ordering::Relaxed);
        if fd >= 0 && i as i32 != mine {
            p.store(-1, Ordering::Relaxed);
            // SAFETY: our inherited copy of the parent's descriptor; close is
            // async-signal-safe.
            let _ = unsafe { libc::close(fd) };
        }
    }
    let old = FD.load(Ordering::Relaxed);
    let new = if mine >= 0 {
        let i = mine as usize;
        let fd = PENDING_FD[i].swap(-1, Ordering::Relaxed);
        let id = PENDING_ID[i].swap(0, Ordering::Relaxed);
        if fd >= 0 && id != 0 {
            mark_owned(id & SLOT_MASK, true);
            PROCESS_ID.store(id, Ordering::Relaxed);
            // The parent claimed the entry with its own pid: record ours (for display,
            // `shmkit inspect`). We hold the slot's byte now, so the entry is ours to
            // write; getpid is async-signal-safe.
            if let Some(base) = NonNull::new(BASE.load(Ordering::Relaxed) as *mut u8) {
                let e = Reg { base }.entry(id & SLOT_MASK);
                let pid = rustix::process::getpid().as_raw_nonzero().get();
                e.pid.store(pid, Ordering::Relaxed);
                e.tid.store(pid, Ordering::Relaxed);
            }
        }
        fd
    } else {
        reopen(old).unwrap_or(-1)
    };
    FD.store(new, Ordering::Relaxed);
    if old >= 0 {
        // SAFETY: our inherited copy; the parent's stays open in the parent.
        let _ = unsafe { libc::close(old) };
    }
    if new < 0 && SETUP.load(Ordering::Relaxed) == 2 {
        // No descriptor: no lifeline can be held. Treated as a registry that failed.
        SETUP.store(3, Ordering::Relaxed);
    }
}

//! Manager sockets never outlive a fork in the child.
//!
//! The server learns that a client died when the client's sockets close — which the
//! kernel does only once *every* process holding a copy has closed it. A child forked
//! after its parent connected holds copies of the parent's sockets: if it kept them,
//! the server would not see the parent die while the child lives (and would not give
//! back the parent's locks). And the child must not talk on its parent's sockets
//! either: two processes writing frames into one stream garble it.
//!
//! So every socket the manager opens is listed here, in a fixed table of atomics (no
//! lock, no allocation), and a `pthread_atfork` child handler closes every listed
//! descriptor in the child right after `fork`. The child's copies of the objects that
//! owned them are never used or dropped: a process that finds its manager session
//! belongs to another process (see `Session`) leaks it and connects afresh.
//!
//! Order keeps the table a subset of the open descriptors at every instant — a
//! descriptor is listed after it is opened and unlisted before it is closed — so the
//! handler never closes a descriptor number that was reused for something else.
//! A full table (more than [`SLOTS`] sockets) just leaves the extra ones unlisted:
//! they are then closed in the child only when it first uses the manager.

#[allow(clippy::disallowed_types)] // process-local table of descriptors, never in shared memory
type Slot = core::sync::atomic::AtomicI32;
#[allow(clippy::disallowed_types)] // process-local flag, never in shared memory
type Flag = core::sync::atomic::AtomicU8;
use core::sync::atomic::Ordering;

/// How many sockets the table lists.
const SLOTS: usize = 1024;
/// A free slot.
const FREE: i32 = -1;

static TABLE: [Slot; SLOTS] = [const { Slot::new(FREE) }; SLOTS];
/// The fork handler: 0 = not installed, 1 = being installed, 2 = installed.
static HANDLER: Flag = Flag::new(0);

/// Installs the fork handler, without ever waiting: a `std::sync::Once` (or a spin
/// until another thread is done) would hang a child forked while another thread of
/// its parent was installing — the child inherits "in progress" and nobody finishes.
/// Such a child just goes without the handler (its own children then close the
/// inherited sockets only when they first use the manager).
fn install_handler() {
    if HANDLER.load(Ordering::Acquire) == 2 {
        return;
    }
    if HANDLER
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        // SAFETY: `close_all_in_child` is an `extern "C" fn()` that only reads and
        // writes static atomics and calls `close(2)`, both async-signal-safe, as a
        // handler running right after `fork` must be.
        unsafe {
            libc::pthread_atfork(None, None, Some(close_all_in_child));
        }
        HANDLER.store(2, Ordering::Release);
    }
}

/// Lists `fd` (an open socket of the manager's). Returns the slot to give to
/// [`unregister`] before the descriptor is closed (`None` if the table is full).
pub(crate) fn register(fd: i32) -> Option<usize> {
    install_handler();
    for (i, slot) in TABLE.iter().enumerate() {
        // Relaxed: the table is read by the forking thread's child, which sees this
        // thread's writes that happened before the fork (fork copies the memory).
        if slot
            .compare_exchange(FREE, fd, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            return Some(i);
        }
    }
    None
}

/// Unlists the socket of `slot` (before it is closed).
pub(crate) fn unregister(slot: Option<usize>) {
    if let Some(i) = slot {
        TABLE[i].store(FREE, Ordering::Relaxed);
    }
}

/// Runs in the child after `fork`: closes every listed socket.
extern "C" fn close_all_in_child() {
    for slot in &TABLE {
        let fd = slot.swap(FREE, Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: `fd` was open in the parent at the fork (the table lists only
            // open descriptors), so it is open in the child, and nothing in the
            // child will use or close it again (its owners are never dropped here).
            unsafe {
                libc::close(fd);
            }
        }
    }
}

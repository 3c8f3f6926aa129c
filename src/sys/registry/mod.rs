//! The participant registry: identities that survive pid reuse, zombies and PID
//! namespaces, with lifelines the kernel releases.
//!
//! Shared words (lock words, queue claims, pipe-end owners) must say *who* holds
//! something, so that a survivor can tell whether the holder still lives. A pid or tid
//! cannot say it: pids are reused (pid_max is 32768 here, and a busy host wraps it in
//! seconds), and mean nothing to a process in another PID namespace (two containers
//! sharing `/dev/shm`). So every process that uses the kit takes a **slot** in a
//! registry file, and every thread that takes locks takes one more; shared words
//! store a **participant id**, the slot plus its **generation**.
//!
//! ## Lifelines
//!
//! A process holds an open-file-description lock (`F_OFD_SETLK`, a write lock on one
//! byte, `LOCK_BASE + slot`) for every slot it owns, all through one descriptor of the
//! registry file. The kernel drops those locks when the last descriptor of that open
//! file description closes — when the process dies, however it dies, whichever PID
//! namespace it lives in, zombie or not. "Is participant `(slot, gen)` alive" is then:
//! the slot's generation is still `gen` and it is not free, and some process holds the
//! slot's byte (`F_OFD_GETLK`). This is LMDB's reader table (byte-range locks on the
//! lock file as reader liveness) with generations added.
//!
//! A `fork`ed child shares its parent's open file description, and with it the
//! parent's locks: a fork hook (see `super::fork`) therefore
//! replaces the child's descriptor with a fresh open of the same file (through
//! `/proc/self/fd`) at once, so the child never keeps its parent's lifelines alive,
//! and forgets every slot it inherited. The child claims slots of its own on first use;
//! `Process::spawn` claims the child's process slot *before* the fork (on a descriptor
//! of its own that only the child keeps), so the parent knows the child's id.
//!
//! ## The id (30 bits, fits a futex word beside two flag bits)
//!
//! ```text
//! bits 29..14  gen   1..=65535, bumped each time the slot is claimed (0 is skipped)
//! bits 13..0   slot  0..=16382 (16383 is never used, so no id equals ID_MASK)
//! ```
//!
//! Id 0 means nobody (gen is never 0). A generation wraps after 65535 claims of one
//! slot; a stale id whose slot has been claimed exactly a multiple of 65536 times since
//! then reads as alive until that occupant leaves: a wait, never two owners.
//!
//! ## The file
//!
//! `/dev/shm/shmkit-registry-<euid>` (a POSIX shared-memory object, mode 0600), or the
//! path in `SHMKIT_REGISTRY`. Processes that share segments must share the registry:
//! the segment header records the registry's nonce, and `open` refuses a segment made
//! under another registry.
//!
//! ```text
//! offset          size  field        written by
//!      0             8  magic        the creator, before state = READY
//!      8             4  version      the creator, before READY
//!     12             4  state        the creator: 0 -> INITIALIZING -> READY
//!     16             4  slots        the creator, before READY (16383)
//!     20             4  reserved
//!     24             8  nonce        the creator, before READY (random)
//!     32            32  reserved
//!     64   32 * 16384  entries      slot i at 64 + 32 i; written only by the holder
//!                                    of byte LOCK_BASE + i
//! ```
//!
//! An entry:
//!
//! ```text
//! +0   u32 state     gen (bits 15..0) | kind << 16 (FREE 0, PROCESS 1, THREAD 2)
//! +4   u32 parent    THREAD: the owning process's participant id; PROCESS: 0
//! +8   i32 pid       for display only (in the owner's PID namespace)
//! +12  i32 tid       for display only
//! +16  u64 started   CLOCK_REALTIME ns at claim, for display only
//! +24  u64 reserved
//! ```
//!
//! State table of one entry (only the holder of the slot's byte lock writes it):
//!
//! | state           | meaning                                 | left by |
//! |-----------------|-----------------------------------------|---------|
//! | `g \| FREE`     | unowned (all zero: never used)           | a thread's release (keeps `g`) |
//! | `g \| PROCESS`  | process participant `(slot, g)`          | claim: lock byte, then `g = old + 1` |
//! | `g \| THREAD`   | thread participant `(slot, g)`           | claim, as above |
//! | anything, byte unlocked | its owner died: free to claim    | the kernel (the owner's death) |
//!
//! A scribbled registry (another process of the same user writing garbage into it)
//! can make liveness answers wrong; it cannot make the kit touch memory it should
//! not. What is never done: trusting "dead" without the kernel's word (an unlocked
//! byte) or a generation that moved on.
#![allow(clippy::disallowed_types)]

use core::ffi::CStr;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::proc::Liveness;

mod file;
mod fork;
mod lock;

#[cfg(all(feature = "std", not(shmkit_loom)))]
pub(crate) use file::MAGIC;
use file::*;
use fork::after_fork_in_child;
#[cfg(feature = "std")]
pub(crate) use fork::{finish_child, reserve_child};
use lock::*;

/// Bits of an id that hold the slot.
const SLOT_BITS: u32 = 14;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Slots in use: `0..SLOTS` (the all-ones slot is never handed out).
pub(crate) const SLOTS: u32 = SLOT_MASK;
/// Entries laid out in the file (one more than used, for a round size).
const ENTRIES: usize = 1 << SLOT_BITS;
const GEN_MASK: u32 = 0xFFFF;
/// The bits a participant id may use: ids are non-zero and below `2^30` (16 bits of
/// generation above 14 of slot), so that they fit a 32-bit futex word beside two flag
/// bits. `ID_MASK` itself is never an id (see `next_gen`). The facade hands it to the
/// algorithms as `primitive::ID_MASK`.
pub(crate) const ID_MASK: u32 = pack_id(SLOT_MASK, GEN_MASK);
const KIND_SHIFT: u32 = 16;
const FREE: u32 = 0;
const PROCESS: u32 = 1;
const THREAD: u32 = 2;

#[inline]
const fn pack_id(slot: u32, generation: u32) -> u32 {
    (generation << SLOT_BITS) | slot
}

#[inline]
const fn gen_of(state: u32) -> u32 {
    state & GEN_MASK
}

#[inline]
const fn kind_of(state: u32) -> u32 {
    (state >> KIND_SHIFT) & 3
}

/// The generation after `g`: never 0, and never one that makes slot `slot`'s id
/// equal `ID_MASK`.
#[inline]
const fn next_gen(g: u32, slot: u32) -> u32 {
    let mut n = (g + 1) & GEN_MASK;
    if n == 0 {
        n = 1;
    }
    if pack_id(slot, n) == ID_MASK {
        n = 1;
    }
    n
}

// ---- process-local state -------------------------------------------------------------
//
// Plain statics, read by the fork handler too (which may only use async-signal-safe
// calls and atomics).

/// Registry setup: 0 = not yet, 1 = in progress, 2 = ready, 3 = failed for good.
static SETUP: AtomicU8 = AtomicU8::new(0);
/// The mapping of the registry file (0 = none).
static BASE: AtomicUsize = AtomicUsize::new(0);
/// This process's descriptor of the registry file, holding its slots' locks (-1: none).
static FD: AtomicI32 = AtomicI32::new(-1);
/// The registry's nonce (as read from its header).
static NONCE: AtomicU64 = AtomicU64::new(0);
/// This process's participant id: 0 = none yet; `CLAIMING` while a thread claims it.
static PROCESS_ID: AtomicU32 = AtomicU32::new(0);
const CLAIMING: u32 = u32::MAX;
/// The slots this process owns (bit `s` of word `s / 64`).
static OWNED: [AtomicU64; ENTRIES / 64] = [const { AtomicU64::new(0) }; ENTRIES / 64];
/// Descriptors opened for children about to be forked (see [`reserve_child`]): each
/// holds the lock of one pre-claimed process slot. -1 = unused.
static PENDING_FD: [AtomicI32; 16] = [const { AtomicI32::new(-1) }; 16];
/// The pre-claimed id for each `PENDING_FD`.
static PENDING_ID: [AtomicU32; 16] = [const { AtomicU32::new(0) }; 16];
/// Bumped in a forked child: a cached thread id from before the fork is stale.
static EPOCH: AtomicU32 = AtomicU32::new(1);

#[cfg(feature = "std")]
std::thread_local! {
    /// The pending child slot this thread is forking with (index into `PENDING_FD`,
    /// -1 = none): read by the fork handler, which runs on the forking thread.
    static FORKING_WITH: core::cell::Cell<i32> = const { core::cell::Cell::new(-1) };
}

fn mark_owned(slot: u32, owned: bool) {
    let (word, bit) = ((slot / 64) as usize, 1u64 << (slot % 64));
    if owned {
        OWNED[word].fetch_or(bit, Ordering::AcqRel);
    } else {
        OWNED[word].fetch_and(!bit, Ordering::AcqRel);
    }
}

fn is_owned(slot: u32) -> bool {
    let (word, bit) = ((slot / 64) as usize, 1u64 << (slot % 64));
    OWNED[word].load(Ordering::Acquire) & bit != 0
}

// ---- claiming and releasing slots --------------------------------------------------------

/// Claims a free (or dead) slot through descriptor `fd` as `kind`. Returns its id.
fn claim(reg: Reg, fd: i32, kind: u32, parent: u32) -> Option<u32> {
    // Asked of the kernel, not of `super::ids`'s caches (which are built on this
    // registry): a claim is a slow path already.
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    let start = (pid as u32)
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add((tid as u32).wrapping_mul(0x85EB_CA6B))
        .wrapping_add(super::time::monotonic_ns() as u32)
        % SLOTS;
    // First pass: entries that look free (one system call each); second pass: any
    // entry whose byte nobody holds (its owner died).
    for pass in 0..2 {
        for i in 0..SLOTS {
            let slot = (start + i) % SLOTS;
            if is_owned(slot) {
                continue;
            }
            let e = reg.entry(slot);
            let state = e.state.load(Ordering::Acquire);
            if pass == 0 && kind_of(state) != FREE {
                continue;
            }
            match set_lock(fd, LOCK_BASE + i64::from(slot), true) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => return None,
            }
            // The byte is ours: whoever had this entry is gone (or it was free).
            mark_owned(slot, true);
            let generation = next_gen(gen_of(e.state.load(Ordering::Acquire)), slot);
            e.parent.store(parent, Ordering::Relaxed);
            e.pid.store(pid, Ordering::Relaxed);
            e.tid.store(tid, Ordering::Relaxed);
            e.started
                .store(super::time::realtime_ns(), Ordering::Relaxed);
            // SYNC POINT with the Acquire loads of `state` in `liveness`.
            e.state
                .store(generation | (kind << KIND_SHIFT), Ordering::Release);
            return Some(pack_id(slot, generation));
        }
    }
    None
}

/// Gives up slot `id` (a thread's, at its exit): free, then its byte unlocked.
#[cfg(feature = "std")]
fn release(reg: Reg, fd: i32, id: u32) {
    let slot = id & SLOT_MASK;
    let e = reg.entry(slot);
    let state = e.state.load(Ordering::Acquire);
    if gen_of(state) != id >> SLOT_BITS || !is_owned(slot) {
        return;
    }
    // SYNC POINT with the Acquire loads of `state` in `liveness`: free before the byte
    // is unlocked, so nobody can see an unlocked byte with a live-looking state of ours.
    e.state.store(gen_of(state), Ordering::Release);
    mark_owned(slot, false);
    let _ = unlock(fd, LOCK_BASE + i64::from(slot));
}

/// The calling process's participant id, claimed on first use.
#[inline]
pub(crate) fn process_id() -> u32 {
    let id = PROCESS_ID.load(Ordering::Acquire);
    if id != 0 && id != CLAIMING {
        return id;
    }
    process_id_slow()
}

#[cold]
fn process_id_slow() -> u32 {
    loop {
        match PROCESS_ID.compare_exchange(0, CLAIMING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                let id = reg()
                    .and_then(|reg| claim(reg, FD.load(Ordering::Acquire), PROCESS, 0))
                    .unwrap_or_else(|| no_registry());
                PROCESS_ID.store(id, Ordering::Release);
                return id;
            }
            Err(CLAIMING) => core::hint::spin_loop(),
            Err(id) => return id,
        }
    }
}

#[cold]
fn no_registry() -> ! {
    panic!(
        "shmkit: no participant registry (cannot open /dev/shm/shmkit-registry-<uid>, \
         $SHMKIT_REGISTRY, nor a memfd): the kit cannot tell its peers apart"
    )
}

/// Claims a thread slot for the calling thread (owned by this process).
#[cold]
pub(crate) fn claim_thread() -> u32 {
    let parent = process_id();
    reg()
        .and_then(|reg| claim(reg, FD.load(Ordering::Acquire), THREAD, parent))
        .unwrap_or_else(|| no_registry())
}

/// Releases the calling thread's slot `id` (at thread exit), unless this process was
/// forked since it was claimed (`epoch` then differs: the slot is the parent's).
#[cfg(feature = "std")]
pub(crate) fn release_thread(id: u32, epoch: u32) {
    if epoch != EPOCH.load(Ordering::Acquire) {
        return;
    }
    if let Some(reg) = reg() {
        release(reg, FD.load(Ordering::Acquire), id);
    }
}

/// This process's descriptor of the registry file, if it has one. Code that closes
/// the descriptors a child inherited (the pool's zygote) must keep it: closing it would
/// drop this process's lifelines, and a later descriptor reusing its number would be
/// taken for the registry.
#[cfg(feature = "std")]
pub(crate) fn descriptor() -> Option<i32> {
    let fd = FD.load(Ordering::Acquire);
    (fd >= 0).then_some(fd)
}

/// The current fork epoch (bumped in every forked child).
#[inline]
pub(crate) fn epoch() -> u32 {
    EPOCH.load(Ordering::Acquire)
}

/// Is participant `id` alive? See the module docs. `Dead` is certain and final.
pub(crate) fn liveness(id: u32) -> Liveness {
    let slot = id & SLOT_MASK;
    let generation = id >> SLOT_BITS;
    if generation == 0 || generation > GEN_MASK || slot >= SLOTS {
        // No participant ever had this id: a scribbled word.
        return Liveness::Dead;
    }
    let Some(reg) = reg() else {
        return Liveness::Unknown;
    };
    let e = reg.entry(slot);
    // SYNC POINT with the Release stores of `state` in `claim` / `release`.
    let state = e.state.load(Ordering::Acquire);
    if gen_of(state) != generation || kind_of(state) == FREE {
        return Liveness::Dead;
    }
    if is_owned(slot) {
        // One of ours (this process or one of its threads), still claimed.
        return Liveness::Alive;
    }
    match held_by_other(FD.load(Ordering::Acquire), LOCK_BASE + i64::from(slot)) {
        None => Liveness::Unknown,
        Some(false) => {
            // Nobody holds the byte: the owner is gone — unless we just claimed the
            // slot ourselves (then the generation moved on too).
            Liveness::Dead
        }
        Some(true) => {
            let again = e.state.load(Ordering::Acquire);
            if gen_of(again) == generation && kind_of(again) != FREE {
                Liveness::Alive
            } else {
                Liveness::Dead
            }
        }
    }
}

/// The registry's nonce (0 if there is no registry): recorded in segment headers, so
/// that processes that meet on a segment are known to share one registry.
pub(crate) fn nonce() -> u64 {
    match reg() {
        Some(_) => NONCE.load(Ordering::Acquire),
        None => 0,
    }
}

/// The registry's nonce, for tools that must not create a registry where none exists
/// (`shmkit ls` on a machine where no program of the kit ran): `None` if there is no
/// registry file (then no participant of any registry here can be checked).
pub(crate) fn nonce_if_exists() -> Option<u64> {
    #[cfg(feature = "std")]
    if SETUP.load(Ordering::Acquire) != 2 {
        let exists = match std::env::var_os("SHMKIT_REGISTRY") {
            Some(path) => std::path::Path::new(&path).exists(),
            None => {
                let mut name = [0u8; 48];
                let len = shm_name(&mut name);
                let name = core::str::from_utf8(&name[1..len]).unwrap_or("");
                std::path::Path::new("/dev/shm").join(name).exists()
            }
        };
        if !exists {
            return None;
        }
    }
    Some(nonce()).filter(|&n| n != 0)
}

/// A view of one entry for tools (`shmkit ls`): `(kind, pid, tid, parent)` if live.
#[cfg(feature = "std")]
pub(crate) fn describe(id: u32) -> Option<(u32, i32, i32, u32)> {
    if liveness(id) == Liveness::Dead {
        return None;
    }
    let e = reg()?.entry(id & SLOT_MASK);
    let state = e.state.load(Ordering::Acquire);
    Some((
        kind_of(state),
        e.pid.load(Ordering::Relaxed),
        e.tid.load(Ordering::Relaxed),
        e.parent.load(Ordering::Relaxed),
    ))
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;

    #[test]
    fn ids_fit_and_are_alive() {
        let p = process_id();
        assert!(p != 0 && p < ID_MASK);
        assert_eq!(process_id(), p);
        assert_eq!(liveness(p), Liveness::Alive);
        assert_eq!(liveness(0), Liveness::Dead);
        assert_eq!(liveness(ID_MASK), Liveness::Dead);
    }

    #[test]
    fn a_released_thread_slot_is_dead_for_good() {
        let id = claim_thread();
        assert_eq!(liveness(id), Liveness::Alive);
        release_thread(id, epoch());
        assert_eq!(liveness(id), Liveness::Dead);
    }

    #[test]
    fn generations_skip_zero_and_id_mask() {
        assert_eq!(next_gen(0xFFFF, 3), 1);
        assert_eq!(next_gen(0, 3), 1);
        assert_eq!(next_gen(0xFFFE, SLOTS), 1);
        assert_eq!(pack_id(5, 2), (2 << 14) | 5);
    }
}

//! The pool's transport: one [`Mailbox`] per worker and one pool-wide [`Hub`], each in
//! an anonymous shared mapping made before the workers are forked.
//!
//! A mailbox holds at most one chunk of tasks. Ownership passes with its `state` word:
//!
//! ```text
//! state    value  owner   meaning                              next
//! IDLE       0    parent  empty (or results collected)         parent writes a task -> READY
//! READY      1    worker  a task is posted, not yet started    worker -> RUNNING
//! RUNNING    2    worker  the worker is running it             worker -> DONE
//! DONE       3    parent  results and outcome bytes are ready  parent collects -> IDLE
//! EXIT       4    worker  leave: the pool is joining           worker exits (code 0)
//! ```
//!
//! Every hand-over is a Release store of `state` paired with the other side's Acquire
//! load, and is followed by a wake-up through a [`Notifier`]: the mailbox's `wake`
//! (parent -> worker), or the hub's `done` after the hub's `completions` counter was
//! bumped (worker -> parent; the parent sleeps on one notifier for all its workers).
//!
//! Because the parent knows which chunk each mailbox holds and in which state it was
//! left, a worker that dies is exact to account for: died in `READY`, its chunk never
//! started and is posted again; in `RUNNING`, exactly that chunk's items fail with
//! `WorkerDied`; in `DONE`, its results are collected as usual. The replacement
//! worker takes over the dead one's mailbox (reset to `IDLE` once the dead one has been
//! reaped, so nobody else can write it).

use core::time::Duration;

use super::task::{self, Trampoline};
use crate::primitive::{AtomicU32, AtomicU64, Deadline, Ordering, UnsafeCell};
use crate::segment::ShmSafe;
use crate::sync::notifier::Notifier;

/// The most items one chunk carries (one outcome byte each).
#[cfg(not(shmkit_loom))]
pub(crate) const MAX_CHUNK: usize = 4096;
/// Bytes of arguments one chunk carries.
#[cfg(not(shmkit_loom))]
pub(crate) const IN_BYTES: usize = 32 * 1024;
/// Bytes of results one chunk carries.
#[cfg(not(shmkit_loom))]
pub(crate) const OUT_BYTES: usize = 32 * 1024;
// Under loom a mailbox is built on a model thread's small stack: keep it small (the
// protocol does not depend on the sizes).
#[cfg(shmkit_loom)]
pub(crate) const MAX_CHUNK: usize = 8;
#[cfg(shmkit_loom)]
pub(crate) const IN_BYTES: usize = 64;
#[cfg(shmkit_loom)]
pub(crate) const OUT_BYTES: usize = 64;

/// See the module docs' state table.
pub(crate) const IDLE: u32 = 0;
/// See the module docs' state table.
pub(crate) const READY: u32 = 1;
/// See the module docs' state table.
pub(crate) const RUNNING: u32 = 2;
/// See the module docs' state table.
pub(crate) const DONE: u32 = 3;
/// See the module docs' state table.
pub(crate) const EXIT: u32 = 4;

/// `outcome`: the chunk ran; per-item bytes say how each item went.
pub(crate) const OUTCOME_RAN: u32 = 0;
/// `outcome`: the descriptor failed validation (tag, signature, sizes); nothing ran.
pub(crate) const OUTCOME_CORRUPT: u32 = 1;

/// Exit code of a worker whose initializer panicked.
pub(crate) const EXIT_INIT_PANICKED: i32 = 102;
/// Exit code of a worker that found its parent gone.
pub(crate) const EXIT_ORPHANED: i32 = 103;

/// How often an idle worker checks that its parent still lives.
const PARENT_CHECK: Duration = Duration::from_millis(500);

/// One worker's mailbox. All-zero bytes are a valid, `IDLE` mailbox.
///
/// ```text
/// offset  size   field       written by
///      0     4   state       both, per the state table (the hand-over word)
///      4     4   started     worker: 1 once its initializer has returned
///      8     8   wake        parent -> worker Notifier
///     16    48   (padding: the handshake line is only the handshake)
///     64     8   trampoline  parent, while IDLE: address of a task::Trampoline
///     72     8   func        parent, while IDLE: address of the user's fn
///     80     8   sig         parent, while IDLE: task::signature of the fn type
///     88     8   tag         parent, while IDLE: task::tag over the three above
///     96     4   count       parent, while IDLE: items in the chunk (<= MAX_CHUNK)
///    100     4   in_size     parent, while IDLE: bytes per argument
///    104     4   out_size    parent, while IDLE: bytes per result
///    108     4   retire      parent, while IDLE: 1 = exit after this chunk
///    112     4   outcome     worker, while RUNNING: OUTCOME_RAN / OUTCOME_CORRUPT
///    116    12   (padding)
///    128  4096   status      worker, while RUNNING: task::ITEM_* per item
///   4224 32768   input       parent, while IDLE: count * in_size argument bytes
///  36992 32768   output      worker, while RUNNING: count * out_size result bytes
/// ```
///
/// The descriptor words are atomics (Relaxed, published by the `state` hand-over) so
/// that even a misbehaving peer cannot make them a data race; the byte areas are
/// accessed only by the side that owns the mailbox in the current state.
#[repr(C)]
pub struct Mailbox {
    state: AtomicU32,
    started: AtomicU32,
    wake: Notifier,
    _pad0: [u8; 48],
    trampoline: AtomicU64,
    func: AtomicU64,
    sig: AtomicU64,
    tag: AtomicU64,
    count: AtomicU32,
    in_size: AtomicU32,
    out_size: AtomicU32,
    retire: AtomicU32,
    outcome: AtomicU32,
    _pad1: [u8; 12],
    status: UnsafeCell<[u8; MAX_CHUNK]>,
    input: UnsafeCell<[u8; IN_BYTES]>,
    output: UnsafeCell<[u8; OUT_BYTES]>,
}

#[cfg(not(shmkit_loom))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Mailbox, wake) == 8);
    assert!(offset_of!(Mailbox, trampoline) == 64);
    assert!(offset_of!(Mailbox, retire) == 108);
    assert!(offset_of!(Mailbox, outcome) == 112);
    assert!(offset_of!(Mailbox, status) == 128);
    assert!(offset_of!(Mailbox, input) == 128 + MAX_CHUNK);
    assert!(offset_of!(Mailbox, output) == 128 + MAX_CHUNK + IN_BYTES);
    assert!(size_of::<Mailbox>() == 128 + MAX_CHUNK + IN_BYTES + OUT_BYTES);
    assert!(super::Pool::MAX_ITEM_SIZE <= IN_BYTES && super::Pool::MAX_ITEM_SIZE <= OUT_BYTES);
};

// SAFETY: repr(C), fixed-width atomics and byte arrays, no pointers (the fn addresses
// are plain u64s, meaningful only to forks of one image and checked by a tag before
// use), every bit pattern of every field is handled (states and outcomes are decoded,
// lengths bounds-checked), no Drop, no process-local state.
unsafe impl ShmSafe for Mailbox {
    crate::segment::kit_identity!(Internal, 1, "shmkit::pool::Mailbox");
}
// SAFETY: the byte areas behind `UnsafeCell` are only touched by the side that owns the
// mailbox in the current `state` (module docs); everything else is atomic.
unsafe impl Sync for Mailbox {}

/// A chunk as the parent posts it.
pub(crate) struct Post<'a> {
    pub(crate) trampoline: u64,
    pub(crate) func: u64,
    pub(crate) sig: u64,
    pub(crate) tag: u64,
    pub(crate) in_size: usize,
    pub(crate) out_size: usize,
    /// `count * in_size` bytes.
    pub(crate) input: &'a [u8],
    pub(crate) count: usize,
    pub(crate) retire: bool,
}

/// What the parent found in a `DONE` mailbox.
pub(crate) enum Collected {
    /// The chunk ran; `status[i]` is item i's `task::ITEM_*` byte.
    Ran,
    /// The worker refused the descriptor; nothing ran.
    Corrupt,
}

impl Mailbox {
    /// A fresh `IDLE` mailbox (for in-process use such as model tests; the pool makes
    /// its mailboxes zero-filled in place, which is the same value).
    #[cfg(any(test, shmkit_loom))]
    pub(crate) fn new() -> Self {
        Mailbox {
            state: AtomicU32::new(IDLE),
            started: AtomicU32::new(0),
            wake: Notifier::new(),
            _pad0: [0; 48],
            trampoline: AtomicU64::new(0),
            func: AtomicU64::new(0),
            sig: AtomicU64::new(0),
            tag: AtomicU64::new(0),
            count: AtomicU32::new(0),
            in_size: AtomicU32::new(0),
            out_size: AtomicU32::new(0),
            retire: AtomicU32::new(0),
            outcome: AtomicU32::new(0),
            _pad1: [0; 12],
            status: UnsafeCell::new([0; MAX_CHUNK]),
            input: UnsafeCell::new([0; IN_BYTES]),
            output: UnsafeCell::new([0; OUT_BYTES]),
        }
    }

    /// The state word's current value (Acquire).
    #[inline]
    pub(crate) fn state(&self) -> u32 {
        // SYNC POINT with the Release stores of DONE in `finish` (the parent then
        // reads the results) and of READY/EXIT in `post`/`request_exit` (the worker).
        self.state.load(Ordering::Acquire)
    }

    /// Has the worker finished its initializer?
    pub(crate) fn started(&self) -> bool {
        self.started.load(Ordering::Relaxed) != 0
    }

    /// Parent: resets a mailbox whose worker is dead and reaped, for its replacement.
    pub(crate) fn reset(&self) {
        self.started.store(0, Ordering::Relaxed);
        self.retire.store(0, Ordering::Relaxed);
        self.outcome.store(OUTCOME_RAN, Ordering::Relaxed);
        self.state.store(IDLE, Ordering::Relaxed);
    }

    /// Parent, mailbox `IDLE`: posts a chunk and wakes the worker.
    pub(crate) fn post(&self, p: &Post<'_>) {
        debug_assert!(p.count <= MAX_CHUNK && p.input.len() == p.count * p.in_size);
        debug_assert!(p.input.len() <= IN_BYTES && p.count * p.out_size <= OUT_BYTES);
        self.trampoline.store(p.trampoline, Ordering::Relaxed);
        self.func.store(p.func, Ordering::Relaxed);
        self.sig.store(p.sig, Ordering::Relaxed);
        self.tag.store(p.tag, Ordering::Relaxed);
        self.count.store(p.count as u32, Ordering::Relaxed);
        self.in_size.store(p.in_size as u32, Ordering::Relaxed);
        self.out_size.store(p.out_size as u32, Ordering::Relaxed);
        self.retire.store(u32::from(p.retire), Ordering::Relaxed);
        self.input.with_mut(|area| {
            // SAFETY: the mailbox is IDLE, so the parent owns `input`; the length was
            // checked against IN_BYTES by the caller (and debug-asserted above).
            unsafe {
                core::ptr::copy_nonoverlapping(p.input.as_ptr(), area.cast::<u8>(), p.input.len())
            }
        });
        // SYNC POINT with the Acquire load in the worker's wait (`state`).
        self.state.store(READY, Ordering::Release);
        self.wake.notify_one();
    }

    /// Parent, mailbox `IDLE`: tells the worker to leave.
    pub(crate) fn request_exit(&self) {
        // SYNC POINT with the Acquire load in the worker's wait (`state`).
        self.state.store(EXIT, Ordering::Release);
        self.wake.notify_one();
    }

    /// Parent, mailbox `DONE` (seen through [`Mailbox::state`]): copies the chunk's
    /// outcome bytes into `status` and its result bytes into `output`, and sets the
    /// mailbox `IDLE`. The lengths are the parent's own record of what it posted.
    pub(crate) fn collect(&self, status: &mut [u8], output: &mut [u8]) -> Collected {
        let n = status.len().min(MAX_CHUNK);
        let bytes = output.len().min(OUT_BYTES);
        let collected = if self.outcome.load(Ordering::Relaxed) == OUTCOME_RAN {
            self.status.with(|area| {
                // SAFETY: DONE: the parent owns the mailbox; n <= MAX_CHUNK.
                let area = unsafe { &(&*area)[..n] };
                status[..n].copy_from_slice(area);
            });
            self.output.with(|area| {
                // SAFETY: DONE: the parent owns the mailbox; bytes <= OUT_BYTES.
                let area = unsafe { &(&*area)[..bytes] };
                output[..bytes].copy_from_slice(area);
            });
            Collected::Ran
        } else {
            Collected::Corrupt
        };
        self.state.store(IDLE, Ordering::Relaxed);
        collected
    }

    /// Worker: waits (up to `deadline`) for a posted chunk or an exit request; returns
    /// the state it found, `READY` or `EXIT`.
    pub(crate) fn wait_for_work(&self, deadline: Deadline) -> Option<u32> {
        // Parked: an idle worker that spins steals the CPU a busy sibling needs.
        self.wake.wait_parked(deadline, || {
            let s = self.state();
            (s == READY || s == EXIT).then_some(s)
        })
    }

    /// Worker, mailbox `READY`: marks it `RUNNING`, validates the descriptor, runs the
    /// chunk, publishes `DONE`. Returns whether the parent asked it to exit afterwards.
    pub(crate) fn run(&self, key: u64) -> bool {
        // Relaxed: only the worker writes RUNNING; the parent reads it only after
        // reaping a dead worker (waitpid orders everything the worker did before).
        self.state.store(RUNNING, Ordering::Relaxed);
        let trampoline = self.trampoline.load(Ordering::Relaxed);
        let func = self.func.load(Ordering::Relaxed);
        let sig = self.sig.load(Ordering::Relaxed);
        let tag = self.tag.load(Ordering::Relaxed);
        let count = self.count.load(Ordering::Relaxed) as usize;
        let in_size = self.in_size.load(Ordering::Relaxed) as usize;
        let out_size = self.out_size.load(Ordering::Relaxed) as usize;
        let retire = self.retire.load(Ordering::Relaxed) != 0;
        let fits = count <= MAX_CHUNK
            && count.checked_mul(in_size).is_some_and(|n| n <= IN_BYTES)
            && count.checked_mul(out_size).is_some_and(|n| n <= OUT_BYTES);
        let mut ran = false;
        if fits && tag == task::tag(key, trampoline, func, sig) {
            // SAFETY: the tag, keyed by a value only this pool's processes hold, proves
            // the parent wrote `trampoline` as the address of a `Trampoline` of this
            // image (a fork shares its parent's code at the same addresses).
            let trampoline = unsafe { task::fn_at::<Trampoline>(trampoline as usize) };
            ran = self.input.with(|input| {
                self.output.with_mut(|output| {
                    self.status.with_mut(|status| {
                        // SAFETY: RUNNING: the worker owns the three areas; the lengths
                        // were checked against their capacities just above.
                        let (input, output, status) = unsafe {
                            (
                                &(&*input)[..count * in_size],
                                &mut (&mut *output)[..count * out_size],
                                &mut (&mut *status)[..count],
                            )
                        };
                        // SAFETY: `func` came with the same tagged descriptor, written
                        // by the parent from the monomorphisation the trampoline is;
                        // the trampoline re-checks the signature and lengths itself.
                        unsafe { trampoline(func as usize, sig, input, output, status) }
                    })
                })
            });
        }
        let outcome = if ran { OUTCOME_RAN } else { OUTCOME_CORRUPT };
        self.outcome.store(outcome, Ordering::Relaxed);
        // SYNC POINT with the parent's Acquire load in `state` before `collect`.
        self.state.store(DONE, Ordering::Release);
        retire
    }

    /// Worker: its initializer has returned.
    pub(crate) fn mark_started(&self) {
        self.started.store(1, Ordering::Relaxed);
    }
}

/// The pool-wide wake-up the parent sleeps on: a counter of finished chunks and its
/// notifier.
///
/// ```text
/// offset size field        written by
///      0    8 completions  workers: +1 (Release) after each DONE; the parent bumps it
///                          too, to wake its own waiting threads (terminate)
///      8    8 done         Notifier: workers -> parent threads
///     16   48 (padding to one line)
/// ```
#[repr(C)]
pub struct Hub {
    completions: AtomicU64,
    done: Notifier,
    _pad: [u8; 48],
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(core::mem::size_of::<Hub>() == 64);

// SAFETY: repr(C), an atomic counter and a Notifier (two atomics), no pointers, every
// bit pattern valid, no Drop.
unsafe impl ShmSafe for Hub {
    crate::segment::kit_identity!(Internal, 1, "shmkit::pool::Hub");
}

impl Hub {
    /// A fresh hub (zero bytes are the same value).
    #[cfg(any(test, shmkit_loom))]
    pub(crate) fn new() -> Self {
        Hub {
            completions: AtomicU64::new(0),
            done: Notifier::new(),
            _pad: [0; 48],
        }
    }

    /// The completion count, to compare against in [`Hub::wait_change`].
    pub(crate) fn completions(&self) -> u64 {
        // SYNC POINT with the Release increment in `bump`.
        self.completions.load(Ordering::Acquire)
    }

    /// Something finished (a chunk, or the pool's state changed): wake every sleeper.
    pub(crate) fn bump(&self) {
        // SYNC POINT with the Acquire load in `completions`.
        self.completions.fetch_add(1, Ordering::Release);
        self.done.notify_all();
    }

    /// Sleeps until the completion count differs from `seen`, or `deadline`.
    pub(crate) fn wait_change(&self, seen: u64, deadline: Deadline) {
        let _ = self
            .done
            // Parked: the parent waits for CPU-bound work that needs every core.
            .wait_parked(deadline, || (self.completions() != seen).then_some(()));
    }
}

/// A worker's whole life: run the initializer, then take chunks from `mailbox` until
/// told to exit, told to retire, or orphaned. Returns the exit code.
///
/// Fork safety: it touches only the two shared structures, the futex, the user's
/// initializer and tasks, and `getppid` — no lock another thread of the parent could
/// have held at the fork (a panicking task's message goes through the panic hook,
/// which is the one exception the pool docs name).
pub(crate) fn worker_main(
    mailbox: &Mailbox,
    hub: &Hub,
    initializer: Option<fn()>,
    parent: i32,
    key: u64,
) -> i32 {
    if let Some(init) = initializer {
        if std::panic::catch_unwind(init).is_err() {
            return EXIT_INIT_PANICKED;
        }
    }
    mailbox.mark_started();
    loop {
        match mailbox.wait_for_work(Deadline::after(PARENT_CHECK)) {
            Some(EXIT) => return 0,
            Some(_) => {
                let retire = mailbox.run(key);
                hub.bump();
                if retire {
                    return 0;
                }
            }
            None => {
                let ppid = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
                if ppid != parent {
                    return EXIT_ORPHANED;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::task::{ITEM_OK, map_signature, run_map};
    use std::boxed::Box;

    fn triple(x: u32) -> u64 {
        u64::from(x) * 3
    }

    /// Posts a chunk of `triple` whose descriptor carries `func` but was tagged over
    /// `tagged` (the same value unless the test tampers with it).
    fn post_triples(mb: &Mailbox, key: u64, tagged: u64, func: u64, input: &[u8]) {
        let trampoline = task::fn_addr(run_map::<u32, u64> as Trampoline as *const ());
        let sig = map_signature::<u32, u64>();
        mb.post(&Post {
            trampoline,
            func,
            sig,
            tag: task::tag(key, trampoline, tagged, sig),
            in_size: 4,
            out_size: 8,
            input,
            count: input.len() / 4,
            retire: false,
        });
    }

    // The whole hand-over on one thread, over ordinary memory: post, run, collect.
    // No system call happens (nobody sleeps on the notifiers), so Miri runs it.
    #[test]
    fn miri_mailbox_round_trip_and_tampered_descriptor() {
        let mb = Box::new(Mailbox::new());
        let hub = Box::new(Hub::new());
        let key = 0x1234_5678;
        // One address, taken once: a function's address may differ between casts.
        let f = task::fn_addr(triple as fn(u32) -> u64 as *const ());
        let input: std::vec::Vec<u8> = [1u32, 2, 7].iter().flat_map(|x| x.to_ne_bytes()).collect();
        post_triples(&mb, key, f, f, &input);
        assert_eq!(mb.state(), READY);
        assert!(!mb.run(key));
        hub.bump();
        assert_eq!(hub.completions(), 1);
        assert_eq!(mb.state(), DONE);
        let mut status = [0u8; 3];
        let mut output = [0u8; 24];
        assert!(matches!(
            mb.collect(&mut status, &mut output),
            Collected::Ran
        ));
        assert_eq!(status, [ITEM_OK; 3]);
        let got: [u64; 3] = bytemuck::pod_read_unaligned(&output);
        assert_eq!(got, [3, 6, 21]);
        assert_eq!(mb.state(), IDLE);

        // A descriptor whose fn address changed after tagging is refused unrun.
        post_triples(&mb, key, f, 0xdead_beef, &input);
        assert!(!mb.run(key));
        assert!(matches!(
            mb.collect(&mut status, &mut output),
            Collected::Corrupt
        ));
        // So is a descriptor tagged under another key.
        post_triples(&mb, key ^ 1, f, f, &input);
        assert!(!mb.run(key));
        assert!(matches!(
            mb.collect(&mut status, &mut output),
            Collected::Corrupt
        ));
        mb.request_exit();
        assert_eq!(mb.state(), EXIT);
    }
}

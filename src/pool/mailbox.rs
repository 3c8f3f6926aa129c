//! One worker's [`Mailbox`]: the chunk of tasks it holds, handed back and forth between
//! the parent and the worker through a state word.
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
//! left, a worker that dies is exact to account for. Died in `READY`: its chunk never
//! started and is posted again. In `RUNNING`: the per-item outcome bytes, which the
//! parent zeroes when it posts and the worker marks as it goes (`ITEM_STARTED` before
//! an item, `ITEM_OK` after it), tell which items finished (they keep their results),
//! which one was in progress (it fails with `WorkerDied`) and which were never started
//! (posted again). In `DONE`: its results are collected as usual. The replacement
//! worker takes over the dead one's mailbox (reset to `IDLE` once the dead one has been
//! reaped, so nobody else can write it).
//!
//! Nothing the parent reads here is trusted: states, counts, outcome bytes and message
//! lengths are validated, and what fails validation is reported as corrupted.

use super::error::PanicMessage;
use super::task::{self, ChunkIo, ITEM_NOT_RUN, Ran, Trampoline};
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
/// Bytes of a panic's text one chunk carries back.
pub(crate) const MESSAGE_BYTES: usize = PanicMessage::CAPACITY;

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
const OUTCOME_RAN: u32 = 0;
/// `outcome`: the descriptor failed validation (tag, signature, sizes); nothing ran.
const OUTCOME_REFUSED: u32 = 1;
/// `outcome`: an item panicked; the items after it were not started; `message` holds
/// the panic's text.
const OUTCOME_PANICKED: u32 = 2;

/// `message_len`: set if the text was cut to fit.
const MESSAGE_TRUNCATED: u32 = 1 << 16;

/// One worker's mailbox. All-zero bytes are a valid, `IDLE` mailbox.
///
/// ```text
/// offset  size   field        written by
///      0     4   state        both, per the state table (the hand-over word)
///      4     4   started      worker: 1 once its initializer has returned
///      8     8   wake         parent -> worker Notifier
///     16    48   (padding: the handshake line is only the handshake)
///     64     8   trampoline   parent, while IDLE: address of a task::Trampoline
///     72     8   func         parent, while IDLE: address of the user's fn
///     80     8   sig          parent, while IDLE: task::signature of the fn type
///     88     8   tag          parent, while IDLE: task::tag over the three above
///     96     4   count        parent, while IDLE: items in the chunk (<= MAX_CHUNK)
///    100     4   in_size      parent, while IDLE: bytes per argument
///    104     4   out_size     parent, while IDLE: bytes per result
///    108     4   retire       parent, while IDLE: 1 = exit after this chunk
///    112     4   outcome      worker, while RUNNING: OUTCOME_*
///    116     4   message_len  worker, while RUNNING: text bytes | MESSAGE_TRUNCATED
///    120     8   (padding)
///    128   112   message      worker, while RUNNING: a panic's text (UTF-8)
///    240    16   (padding)
///    256  4096   status       parent zeroes while IDLE; worker marks while RUNNING:
///                             task::ITEM_* per item
///   4352 32768   input        parent, while IDLE: count * in_size argument bytes
///  37120 32768   output       worker, while RUNNING: count * out_size result bytes
/// ```
///
/// The descriptor words are atomics (Relaxed, published by the `state` hand-over) so
/// that even a misbehaving peer cannot make them a data race; the byte areas are
/// accessed only by the side that owns the mailbox in the current state (or, for the
/// parent, once the worker is dead).
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
    message_len: AtomicU32,
    _pad1: [u8; 8],
    message: UnsafeCell<[u8; MESSAGE_BYTES]>,
    _pad2: [u8; 256 - 128 - MESSAGE_BYTES],
    status: UnsafeCell<[u8; MAX_CHUNK]>,
    input: UnsafeCell<[u8; IN_BYTES]>,
    output: UnsafeCell<[u8; OUT_BYTES]>,
}

crate::layout::pin_layout!(
    Mailbox {
        state: 0, started: 4, wake: 8, _pad0: 16, trampoline: 64, func: 72, sig: 80,
        tag: 88, count: 96, in_size: 100, out_size: 104, retire: 108, outcome: 112,
        message_len: 116, _pad1: 120, message: 128, _pad2: 128 + MESSAGE_BYTES,
        status: 256, input: 256 + MAX_CHUNK, output: 256 + MAX_CHUNK + IN_BYTES,
    },
    size 256 + MAX_CHUNK + IN_BYTES + OUT_BYTES,
);

#[cfg(not(shmkit_loom))]
const _: () = {
    assert!(super::Pool::MAX_ITEM_SIZE <= IN_BYTES && super::Pool::MAX_ITEM_SIZE <= OUT_BYTES);
    assert!(MESSAGE_BYTES < MESSAGE_TRUNCATED as usize);
};

// SAFETY: repr(C), fixed-width atomics and byte arrays, no pointers (the fn addresses
// are plain u64s, meaningful only to forks of one image and checked by a tag before
// use), every bit pattern of every field is handled (states and outcomes are decoded,
// lengths bounds-checked), no Drop, no process-local state.
unsafe impl ShmSafe for Mailbox {
    // Layout 2: the panic message; the per-item outcome bytes moved to offset 256.
    crate::segment::kit_identity!(Internal, 2, "shmkit::pool::Mailbox");
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
#[derive(Debug, Clone, Copy)]
pub(crate) enum Collected {
    /// The chunk ran; `status[i]` is item i's `task::ITEM_*` byte.
    Ran,
    /// The chunk ran up to a panic, whose text this is; the outcome bytes say which
    /// item panicked and which were not started.
    Panicked(PanicMessage),
    /// The worker refused the descriptor (or wrote an outcome that means nothing):
    /// nothing ran.
    Refused,
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
            message_len: AtomicU32::new(0),
            _pad1: [0; 8],
            message: UnsafeCell::new([0; MESSAGE_BYTES]),
            _pad2: [0; 256 - 128 - MESSAGE_BYTES],
            status: UnsafeCell::new([0; MAX_CHUNK]),
            input: UnsafeCell::new([0; IN_BYTES]),
            output: UnsafeCell::new([0; OUT_BYTES]),
        }
    }

    /// The state word's current value (Acquire). Any `u32`: the caller decodes it.
    #[inline]
    pub(crate) fn state(&self) -> u32 {
        // SYNC POINT with the Release stores of DONE in `run` (the parent then reads
        // the results) and of READY/EXIT in `post`/`request_exit` (the worker).
        self.state.load(Ordering::Acquire)
    }

    /// Has the worker finished its initializer?
    pub(crate) fn started(&self) -> bool {
        self.started.load(Ordering::Relaxed) != 0
    }

    /// Parent: resets a mailbox whose worker is dead and reaped, for its replacement.
    /// (The replacement is forked after this, and the fork orders these stores before
    /// anything it does.)
    pub(crate) fn reset(&self) {
        self.started.store(0, Ordering::Relaxed);
        self.retire.store(0, Ordering::Relaxed);
        self.outcome.store(OUTCOME_RAN, Ordering::Relaxed);
        self.message_len.store(0, Ordering::Relaxed);
        self.state.store(IDLE, Ordering::Relaxed);
    }

    /// Parent, mailbox `IDLE`: posts a chunk and wakes the worker.
    pub(crate) fn post(&self, p: &Post<'_>) {
        debug_assert!(p.count <= MAX_CHUNK && p.input.len() == p.count * p.in_size);
        debug_assert!(p.input.len() <= IN_BYTES && p.count * p.out_size <= OUT_BYTES);
        let count = p.count.min(MAX_CHUNK);
        let in_len = p.input.len().min(IN_BYTES);
        self.trampoline.store(p.trampoline, Ordering::Relaxed);
        self.func.store(p.func, Ordering::Relaxed);
        self.sig.store(p.sig, Ordering::Relaxed);
        self.tag.store(p.tag, Ordering::Relaxed);
        self.count.store(count as u32, Ordering::Relaxed);
        self.in_size.store(p.in_size as u32, Ordering::Relaxed);
        self.out_size.store(p.out_size as u32, Ordering::Relaxed);
        self.retire.store(u32::from(p.retire), Ordering::Relaxed);
        self.outcome.store(OUTCOME_RAN, Ordering::Relaxed);
        self.message_len.store(0, Ordering::Relaxed);
        self.status.with_mut(|area| {
            // SAFETY: the mailbox is IDLE, so the parent owns `status`; count <=
            // MAX_CHUNK. Every item starts "not run", whatever an earlier chunk left.
            unsafe { core::ptr::write_bytes(area.cast::<u8>(), ITEM_NOT_RUN, count) }
        });
        self.input.with_mut(|area| {
            // SAFETY: the mailbox is IDLE, so the parent owns `input`; in_len <= IN_BYTES.
            unsafe { core::ptr::copy_nonoverlapping(p.input.as_ptr(), area.cast::<u8>(), in_len) }
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
        let collected = match self.outcome.load(Ordering::Relaxed) {
            OUTCOME_RAN => {
                self.copy_out(status, output);
                Collected::Ran
            }
            OUTCOME_PANICKED => {
                self.copy_out(status, output);
                Collected::Panicked(self.message())
            }
            _ => Collected::Refused,
        };
        self.state.store(IDLE, Ordering::Relaxed);
        collected
    }

    /// Parent, once the worker is dead and reaped (whatever state it left): copies the
    /// outcome bytes and results as [`Mailbox::collect`] does, without a state change;
    /// the text of a panic, if the worker had recorded one.
    pub(crate) fn salvage(&self, status: &mut [u8], output: &mut [u8]) -> Option<PanicMessage> {
        self.copy_out(status, output);
        (self.outcome.load(Ordering::Relaxed) == OUTCOME_PANICKED).then(|| self.message())
    }

    /// Copies outcome bytes and results (clamped to the areas' sizes).
    fn copy_out(&self, status: &mut [u8], output: &mut [u8]) {
        let n = status.len().min(MAX_CHUNK);
        let bytes = output.len().min(OUT_BYTES);
        self.status.with(|area| {
            // SAFETY: the parent owns the mailbox (DONE, or its worker is dead); n <=
            // MAX_CHUNK.
            let area = unsafe { &(&*area)[..n] };
            status[..n].copy_from_slice(area);
        });
        self.output.with(|area| {
            // SAFETY: as above; bytes <= OUT_BYTES.
            let area = unsafe { &(&*area)[..bytes] };
            output[..bytes].copy_from_slice(area);
        });
    }

    /// The panic text the worker recorded, validated (length clamped, invalid UTF-8 cut).
    fn message(&self) -> PanicMessage {
        let word = self.message_len.load(Ordering::Relaxed);
        let len = ((word & !MESSAGE_TRUNCATED) as usize).min(MESSAGE_BYTES);
        self.message.with(|area| {
            // SAFETY: the parent owns the mailbox (DONE, or its worker is dead); len <=
            // MESSAGE_BYTES.
            let raw = unsafe { &(&*area)[..len] };
            PanicMessage::from_worker(raw, word & MESSAGE_TRUNCATED != 0)
        })
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
        // Relaxed: only the worker writes RUNNING. The parent reads it (with the
        // outcome bytes) either after DONE, or after the worker died: the zygote's
        // waitpid, then its Release store of DEAD in the worker's `Life`, order
        // everything the worker did before.
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
        let mut ran = Ran::Refused;
        if fits && tag == task::tag(key, trampoline, func, sig) {
            // SAFETY: the tag, keyed by a value only this pool's processes hold, proves
            // the parent wrote `trampoline` as the address of a `Trampoline` of this
            // image (a fork shares its parent's code at the same addresses).
            let trampoline = unsafe { task::fn_at::<Trampoline>(trampoline as usize) };
            ran = self.input.with(|input| {
                self.output.with_mut(|output| {
                    self.status.with_mut(|status| {
                        self.message.with_mut(|message| {
                            // SAFETY: RUNNING: the worker owns the four areas; the
                            // lengths were checked against their capacities above.
                            let io = unsafe {
                                ChunkIo {
                                    input: &(&*input)[..count * in_size],
                                    output: &mut (&mut *output)[..count * out_size],
                                    status: &mut (&mut *status)[..count],
                                    message: &mut *message,
                                }
                            };
                            // SAFETY: `func` came with the same tagged descriptor,
                            // written by the parent from the monomorphisation the
                            // trampoline is; the trampoline re-checks the signature and
                            // lengths itself.
                            unsafe { trampoline(func as usize, sig, io) }
                        })
                    })
                })
            });
        }
        let outcome = match ran {
            Ran::Refused => OUTCOME_REFUSED,
            Ran::Finished => OUTCOME_RAN,
            Ran::Panicked { len, truncated } => {
                let flag = if truncated { MESSAGE_TRUNCATED } else { 0 };
                let len = len.min(MESSAGE_BYTES) as u32;
                self.message_len.store(len | flag, Ordering::Relaxed);
                OUTCOME_PANICKED
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::task::{ITEM_OK, ITEM_PANICKED, map_signature, run_map};
    use std::boxed::Box;

    fn triple(x: u32) -> u64 {
        assert!(x != 5, "five: {x}");
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

    fn bytes_of(items: &[u32]) -> std::vec::Vec<u8> {
        items.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    // The whole hand-over on one thread, over ordinary memory: post, run, collect.
    // No system call happens (nobody sleeps on the notifiers), so Miri runs it.
    #[test]
    fn miri_mailbox_round_trip_and_tampered_descriptor() {
        let mb = Box::new(Mailbox::new());
        let key = 0x1234_5678;
        // One address, taken once: a function's address may differ between casts.
        let f = task::fn_addr(triple as fn(u32) -> u64 as *const ());
        let input = bytes_of(&[1, 2, 7]);
        post_triples(&mb, key, f, f, &input);
        assert_eq!(mb.state(), READY);
        assert!(!mb.run(key));
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
            Collected::Refused
        ));
        // So is a descriptor tagged under another key.
        post_triples(&mb, key ^ 1, f, f, &input);
        assert!(!mb.run(key));
        assert!(matches!(
            mb.collect(&mut status, &mut output),
            Collected::Refused
        ));
        mb.request_exit();
        assert_eq!(mb.state(), EXIT);
    }

    #[test]
    fn miri_a_panic_stops_the_chunk_and_its_text_comes_back() {
        let mb = Box::new(Mailbox::new());
        let key = 99;
        let f = task::fn_addr(triple as fn(u32) -> u64 as *const ());
        // The previous chunk leaves its outcome bytes behind: the next post clears them.
        post_triples(&mb, key, f, f, &bytes_of(&[1, 1, 1, 1]));
        mb.run(key);
        let (mut status, mut output) = ([0u8; 4], [0u8; 32]);
        mb.collect(&mut status, &mut output);
        post_triples(&mb, key, f, f, &bytes_of(&[4, 5, 6, 7]));
        mb.run(key);
        match mb.collect(&mut status, &mut output) {
            Collected::Panicked(m) => assert_eq!(m.as_str(), "five: 5"),
            other => panic!("{other:?}"),
        }
        assert_eq!(status, [ITEM_OK, ITEM_PANICKED, ITEM_NOT_RUN, ITEM_NOT_RUN]);

        // A scribbled message length is clamped; a scribbled outcome is "refused".
        post_triples(&mb, key, f, f, &bytes_of(&[5]));
        mb.run(key);
        mb.message_len.store(u32::MAX, Ordering::Relaxed);
        let (mut status, mut output) = ([0u8; 1], [0u8; 8]);
        match mb.salvage(&mut status, &mut output) {
            Some(m) => assert!(m.as_str().starts_with("five: 5") && m.is_truncated()),
            None => panic!("no message"),
        }
        mb.outcome.store(77, Ordering::Relaxed);
        assert!(matches!(
            mb.collect(&mut status, &mut output),
            Collected::Refused
        ));
    }
}

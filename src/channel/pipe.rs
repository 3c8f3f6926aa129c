//! `Pipe<CAP>`: two byte rings and the ownership records of their two ends.
//!
//! The handles on the ends (`Connection`, in `connection/`) build on this file; this
//! file does not know them.

use super::ring::{Line, Ring};
use crate::primitive::{AtomicU32, AtomicU64, ID_MASK, Ordering};
use crate::segment::ShmSafe;

/// `EndState::flags` bit: the end's owner closed it (final).
pub(crate) const END_CLOSED: u32 = 1;

/// Who owns one end of a pipe, and whether it is closed.
///
/// ```text
/// offset size field   written by
///      0    8 owner   0 = nobody yet; else (participant id << 32) | handle token.
///                     CAS by the first user; by a process that finds the owner dead
///                     (adoption); by a forking parent handing an end to its child
///      8    4 flags   END_CLOSED, set (Release) by the owner after its last publish
/// ```
///
/// The owner's id is the participant id of its process (`primitive::my_process_id`,
/// non-zero and below `ID_MASK`), asked about only through `primitive::id_liveness`;
/// the token tells apart the handles of one process (and a handle's copies in forked
/// children: they keep its token). A word whose id is out of range was scribbled.
#[repr(C)]
#[derive(Default)]
pub(crate) struct EndState {
    pub(crate) owner: AtomicU64,
    pub(crate) flags: AtomicU32,
}

/// The owner word of handle `token` in the process with participant id `id`.
#[inline]
pub(crate) const fn owner_word(id: u32, token: u32) -> u64 {
    ((id as u64) << 32) | token as u64
}

/// The participant id in an owner word: `None` for "nobody" (0) and for ids out of
/// range (a scribbled word).
#[inline]
pub(crate) const fn owner_id(word: u64) -> Option<u32> {
    let id = (word >> 32) as u32;
    if id == 0 || id >= ID_MASK {
        None
    } else {
        Some(id)
    }
}

/// A duplex channel of variable-length byte messages: two SPSC byte rings of `CAP`
/// bytes each, in one block of shared memory (Python's `multiprocessing.Pipe()`).
///
/// `CAP` is a power of two, at least 64 (checked at compile time). A message takes
/// 8 bytes of header plus its length rounded up to 8, so the largest message is
/// `CAP - 8` bytes ([`Connection::max_message_len`](crate::Connection::max_message_len)).
///
/// Put it in a [`Shared`](crate::Shared) (`Shared::<Pipe<CAP>>::new_zeroed()`: a
/// fresh pipe is all zeros, built in place) and call [`ends`](Pipe::ends): the first
/// [`Connection`](crate::Connection) sends to the second and the second to the first.
/// With `std`, `Pipe::pair()` makes the segment and gives two
/// [`OwnedConnection`](crate::OwnedConnection)s that keep it alive themselves (and
/// `Pipe::owned_ends` does so for a segment you hold in an `Arc`): use those to keep
/// ends in a struct, or to move them into threads.
/// Each end belongs to the first process (and handle) that uses it, or to the child
/// its handle is moved into; see [`Connection`](crate::Connection) for the rules and
/// for what the peer sees when the owner closes its end or dies.
///
/// A send needs room for its record (8 bytes of header plus the message rounded up
/// to 8) plus 8 bytes: the ring always keeps one header word free, except for one
/// message of the largest size, which needs the ring empty. So a receive frees what
/// it received: after receiving a message of `n` bytes, a send of `n` bytes finds
/// room, unless it must first skip the rest of the ring's array (a record never
/// wraps). Messages whose records tile the ring (8-byte messages: 16-byte records)
/// never skip.
///
/// # Layout
///
/// ```text
/// offset              size      field
///      0               128      end 0: EndState (owner, flags)
///    128               128      end 1: EndState
///    256        384 + CAP'      ring 0: end 0 sends, end 1 receives (see the ring's layout)
///    256 + 384 + CAP'  384 + CAP' ring 1: end 1 sends, end 0 receives
/// ```
/// (`CAP'` is `CAP` rounded up to 128.)
///
/// # Examples
///
/// ```
/// use shmkit::{Pipe, Process, Shared};
///
/// let pipe = Shared::<Pipe<4096>>::new_zeroed()?; // built in place
/// let (parent, child) = pipe.ends();
/// let mut p = Process::spawn(move || {
///     // `move`: this end now belongs to the child (a pipe end is used by one thread
///     // at a time, so it is moved, not borrowed, into the child)
///     let n: u64 = child.recv().unwrap();
///     child.send(&(n * 2)).unwrap();
///     0
/// })?;
/// parent.send(&21u64)?;
/// assert_eq!(parent.recv::<u64>()?, 42);
/// assert!(p.join()?.success());
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct Pipe<const CAP: usize> {
    pub(crate) ends: [Line<EndState>; 2],
    pub(crate) rings: [Ring<CAP>; 2],
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(core::mem::size_of::<Pipe<64>>() == 256 + 2 * 512);
crate::layout::pin_layout!(EndState { owner: 0, flags: 8 }, size 16);
crate::layout::pin_layout!(Pipe<4096> { ends: 0, rings: 256 }, size 256 + 2 * (384 + 4096));

impl<const CAP: usize> Pipe<CAP> {
    crate::primitive::loom_const_fn! {
        /// A pipe with both rings empty and both ends unowned (all zero: a zeroed
        /// mapping is a valid fresh pipe).
        pub const fn new() -> Self {
            Pipe {
                ends: [
                    Line(EndState { owner: AtomicU64::new(0), flags: AtomicU32::new(0) }),
                    Line(EndState { owner: AtomicU64::new(0), flags: AtomicU32::new(0) }),
                ],
                rings: [Ring::new(), Ring::new()],
            }
        }
    }

    /// Overwrites bytes of ring `ring` (0 or 1) from `offset` (its indices at 0 and
    /// 128, its notifiers at 256, its data at 384), as a scribbling peer would: for
    /// the `ring_corrupt` fuzz target and tests of validation. Not part of the API.
    ///
    /// # Safety
    ///
    /// No other thread or process may access the pipe while this runs: the writes are
    /// plain (non-atomic) ones, so any racing access is a data race (undefined
    /// behaviour). Between operations of a single thread it is sound, and the pipe
    /// then reports what it finds as [`Error::Corrupted`](crate::Error::Corrupted).
    #[doc(hidden)]
    #[cfg(not(shmkit_loom))]
    pub unsafe fn __scribble(&self, ring: usize, offset: usize, bytes: &[u8]) {
        // SAFETY: the caller's contract is the ring's.
        unsafe { self.rings[ring & 1].scribble(offset, bytes) };
    }

    /// Overwrites the owner word of end `side` (0 or 1), as a scribbling peer would:
    /// for tests of validation. Not part of the API. (Atomic, so safe to race; still
    /// it breaks the ownership rules, so it is `unsafe`.)
    ///
    /// # Safety
    ///
    /// The end's owner must not send or receive on it again: two handles on one end
    /// would race on its ring.
    #[doc(hidden)]
    #[cfg(not(shmkit_loom))]
    pub unsafe fn __scribble_owner(&self, side: usize, word: u64) {
        self.ends[side & 1].0.owner.store(word, Ordering::SeqCst);
    }

    /// Is end `side` closed by its owner?
    pub(crate) fn end_closed(&self, side: usize) -> bool {
        // SYNC POINT with the Release `fetch_or` of END_CLOSED in `Connection::close`:
        // everything the owner published before closing is visible after this.
        self.ends[side].0.flags.load(Ordering::Acquire) & END_CLOSED != 0
    }
}

impl<const CAP: usize> Default for Pipe<CAP> {
    fn default() -> Self {
        Pipe::new()
    }
}

impl<const CAP: usize> core::fmt::Debug for Pipe<CAP> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let end = |i: usize| {
            let owner = self.ends[i].0.owner.load(Ordering::Relaxed);
            (owner_id(owner), self.end_closed(i))
        };
        f.debug_struct("Pipe")
            .field("capacity", &CAP)
            .field("end0 (owner id, closed)", &end(0))
            .field("end1 (owner id, closed)", &end(1))
            .field("ring0", &self.rings[0])
            .field("ring1", &self.rings[1])
            .finish()
    }
}

// SAFETY: repr(C); atomics and `UnsafeCell<u8>` bytes of fixed width, no pointers;
// every bit pattern is handled (the rings validate indices and headers, an owner id
// out of range is reported as corruption, any other is just an id to check); no Drop; mutation only through atomics and the ring
// protocol.
unsafe impl<const CAP: usize> ShmSafe for Pipe<CAP> {
    crate::segment::kit_identity!(Pipe, 1, "shmkit::Pipe", const CAP);
}

// SAFETY: all-zero is the documented fresh state: empty rings, unowned open ends,
// notifiers with nobody asleep.
#[cfg(not(shmkit_loom))]
unsafe impl<const CAP: usize> bytemuck::Zeroable for Pipe<CAP> {}

// SAFETY: the bytes are only accessed under the SPSC ring protocol (the producer owns
// [tail, head + CAP), the consumer [head, tail)), and ownership of each end keeps each
// side to one handle; everything else is atomic.
unsafe impl<const CAP: usize> Sync for Pipe<CAP> {}
// SAFETY: no process- or thread-local state inside.
unsafe impl<const CAP: usize> Send for Pipe<CAP> {}

//! `Spsc<T, N>`: a typed single-producer single-consumer ring of `N` fixed-size `Pod`
//! slots, for streams of small items between two processes (or threads).
//!
//! Where [`Pipe`](crate::Pipe) frames variable-length byte messages (a sealed header
//! per record) and checks its peer on every call, this ring is the plain Lamport queue
//! as rtrb builds it: no per-item header, no per-item check of the peer. Each handle
//! keeps its own index and a cache of the opposite one, and reads the shared opposite
//! index only when the cache says the ring is full (producer) or empty (consumer): in a
//! steady stream each side touches the other's line once per batch, not per item.
//! Closing and a dead peer are looked at only then too.
//!
//! The ordering rules are the kernel's (`Documentation/core-api/circular-buffers.rst`):
//! the producer writes the slots, then publishes `tail` (Release); the consumer
//! Acquire-loads `tail`, reads the slots, then frees them by publishing `head`
//! (Release), which the producer Acquire-loads before it overwrites them.
//!
//! ## Layout (`#[repr(C)]`, `N` a power of two, `1 ≤ N ≤ 2^31`)
//!
//! ```text
//! offset  size      field            written by
//!      0     8      tail             producer (Release after each push or batch)
//!    128     8      head             consumer (Release after each pop or batch)
//!    256     8      producer owner   0 = nobody yet; else (participant id << 32) | token
//!    264     8      consumer owner   the same for the consumer
//!    272     4      flags            PRODUCER_CLOSED | CONSUMER_CLOSED (final), Release
//!    276     8      data             Notifier "items published": producer wakes, consumer sleeps
//!    284     8      space            Notifier "slots freed": consumer wakes, producer sleeps
//!    384  N*size    slots            the producer writes [tail, head + N), the consumer reads [head, tail)
//! ```
//!
//! `head` and `tail` count items ever popped and pushed (64 bits: they never wrap in
//! practice); slot `i % N` holds item `i`. Each index sits on a 128-byte line of its
//! own (the adjacent-line prefetcher pulls pairs), and the line of owners, flags and
//! notifiers is read-mostly: the fast paths only read it (the notifiers' sleeper
//! counts), so it stays cached on both sides.
//!
//! ## Validation
//!
//! Each handle keeps its own index privately and trusts only that: the shared copy of
//! its own index is written, never read back (except by a process that adopts the end
//! of a dead owner). The opposite index, read from shared memory, must satisfy
//! `0 ≤ tail - head ≤ N` (wrapping arithmetic) and must not move backwards; anything
//! else is [`Error::Corrupted`]. Every slot position is `index % N`, in bounds by
//! construction, and every bit pattern is a valid `T` (`Pod`), so a scribbling peer can
//! make items wrong, never make this process read out of bounds, panic or hang.
//!
//! ## Ownership, closing and crashes
//!
//! As for a `Pipe` end: each end belongs to the first process (and handle) that uses
//! it, recorded by participant id; a handle moved into a [`Process::spawn`] closure is
//! handed to the child; a process may adopt an end whose owner died. When one end is
//! closed, dropped, or its owner dies (even by `kill -9`), the other gets
//! [`Error::Disconnected`] once it has drained what was published (consumer) or finds
//! the ring full (producer). See [`Producer`] and [`Consumer`].
//!
//! [`Process::spawn`]: crate::Process::spawn

use bytemuck::Pod;

use super::ring::Line;
use crate::error::Error;
use crate::primitive::{AtomicU32, AtomicU64, Ordering, UnsafeCell};
use crate::segment::ShmSafe;
use crate::sync::notifier::Notifier;

#[cfg(not(shmkit_loom))]
mod chunk;
mod consumer;
mod end;
mod handle;
mod producer;

#[cfg(not(shmkit_loom))]
pub use chunk::{ReadChunk, WriteChunk};
pub use consumer::Consumer;
pub use producer::{Producer, PushError};

/// `flags` bit: the producer's owner closed its end (final).
pub(crate) const PRODUCER_CLOSED: u32 = 1;
/// `flags` bit: the consumer's owner closed its end (final).
pub(crate) const CONSUMER_CLOSED: u32 = 2;

/// The read-mostly line: who owns each end, whether it is closed, and the notifiers.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Ends {
    /// `[producer, consumer]` owner records: `(participant id << 32) | token`, 0 = none.
    pub(crate) owner: [AtomicU64; 2],
    /// `PRODUCER_CLOSED | CONSUMER_CLOSED`.
    pub(crate) flags: AtomicU32,
    /// "Items were published": the producer wakes, the consumer sleeps.
    pub(crate) data: Notifier,
    /// "Slots were freed": the consumer wakes, the producer sleeps.
    pub(crate) space: Notifier,
}

/// A typed SPSC ring of `N` slots of `T`, in one block of shared memory; see the
/// [module docs](self) for the protocol and layout.
///
/// Put it in a [`Shared`](crate::Shared) (or a `Box`, for threads) and take the two
/// handles with [`split`](Spsc::split) (or [`producer`](Spsc::producer) and
/// [`consumer`](Spsc::consumer) separately).
///
/// `N` is a power of two (checked at compile time). All-zero is a valid empty ring, so
/// large rings can be made in place with [`Shared::new_zeroed`](crate::Shared::new_zeroed).
///
/// # Examples
///
/// ```
/// use shmkit::{Process, Shared, Spsc};
///
/// let ring = Shared::<Spsc<u64, 1024>>::new_zeroed()?;
/// let (mut tx, mut rx) = ring.split();
/// let mut child = Process::spawn(move || {
///     // `tx` was moved in: it belongs to the child now.
///     for i in 0..10_000u64 {
///         tx.push(i).unwrap();
///     }
///     0 // dropping `tx` closes the producer's end
/// })?;
/// let mut sum = 0;
/// while let Ok(x) = rx.pop() {
///     sum += x;
/// }
/// // Everything was drained, then the consumer saw the end closed.
/// assert_eq!(sum, 9_999 * 10_000 / 2);
/// assert!(child.join()?.success());
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct Spsc<T: Pod, const N: usize> {
    /// Items ever pushed. Written by the producer only.
    pub(crate) tail: Line<AtomicU64>,
    /// Items ever popped. Written by the consumer only.
    pub(crate) head: Line<AtomicU64>,
    /// Owners, flags, notifiers.
    pub(crate) ends: Line<Ends>,
    /// The items.
    slots: [UnsafeCell<T>; N],
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(core::mem::size_of::<Spsc<u64, 16>>() == 384 + 128);
crate::layout::pin_layout!(Ends { owner: 0, flags: 16, data: 20, space: 28 }, size 40);
crate::layout::pin_layout!(
    Spsc<[u8; 64], 4> { tail: 0, head: 128, ends: 256, slots: 384 },
    size 384 + 256,
    align 128,
);

impl<T: Pod, const N: usize> Spsc<T, N> {
    /// Rejects bad capacities at compile time (post-monomorphisation).
    const N_OK: () = assert!(
        N.is_power_of_two() && N <= 1 << 31,
        "Spsc capacity must be a power of two in 1..=2^31"
    );
    /// `index & MASK` is the slot of item `index`.
    pub(crate) const MASK: u64 = N as u64 - 1;

    crate::primitive::loom_const_fn! {
        /// An empty ring with both ends unowned (all zero).
        pub const fn new() -> Self {
            #[allow(clippy::let_unit_value)]
            let () = Self::N_OK;
            Spsc {
                tail: Line(AtomicU64::new(0)),
                head: Line(AtomicU64::new(0)),
                ends: Line(Ends {
                    owner: [AtomicU64::new(0), AtomicU64::new(0)],
                    flags: AtomicU32::new(0),
                    data: Notifier::new(),
                    space: Notifier::new(),
                }),
                slots: new_slots::<T, N>(),
            }
        }
    }

    /// The producer's handle (unclaimed until first used).
    pub fn producer(&self) -> Producer<'_, T, N> {
        Producer::new(self)
    }

    /// The consumer's handle (unclaimed until first used).
    pub fn consumer(&self) -> Consumer<'_, T, N> {
        Consumer::new(self)
    }

    /// Both handles: `(producer, consumer)`.
    ///
    /// Handles are cheap and process-local; each end is *claimed* by the first process
    /// (and handle) that uses it. Calling `split` again gives fresh handles under the
    /// same rules (a second handle in the owner's process gets
    /// [`Error::EndpointInUse`]).
    pub fn split(&self) -> (Producer<'_, T, N>, Consumer<'_, T, N>) {
        (self.producer(), self.consumer())
    }

    /// The number of slots, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Overwrites bytes of the ring from `offset` (see the layout table), as a
    /// scribbling peer would: for the fuzz targets and tests of validation. Not part of
    /// the API.
    ///
    /// # Safety
    ///
    /// The caller must hold no reference into the slots (a chunk) while it runs; it
    /// writes shared memory non-atomically, racing with the handles as a foreign
    /// process would.
    #[doc(hidden)]
    #[cfg(not(shmkit_loom))]
    pub unsafe fn __scribble(&self, offset: usize, bytes: &[u8]) {
        // Only field bytes: the padding between the lines is nobody's memory.
        let in_field =
            |at: usize| at < 8 || (128..136).contains(&at) || (256..292).contains(&at) || at >= 384;
        // SAFETY: every field byte is inside an atomic or an `UnsafeCell`; the caller
        // holds no reference into the slots (our contract).
        unsafe { crate::channel::scribble_fields(self, offset, bytes, in_field) }
    }

    // ---- slot access -------------------------------------------------------------
    //
    // Outside loom: plain memory operations on the slots. Under loom: one tracked
    // access per slot, so the model checker sees every race on the data.

    /// A pointer to slot `index % N`.
    #[cfg(not(shmkit_loom))]
    #[inline(always)]
    pub(crate) fn slot_ptr(&self, index: u64) -> *mut T {
        // Every slot is inside an `UnsafeCell`, so a pointer derived from the shared
        // reference to the whole array may be written through; `index & MASK < N`.
        let base = self.slots.as_ptr().cast::<T>().cast_mut();
        base.wrapping_add((index & Self::MASK) as usize)
    }

    /// The slots of items `start..start + len` (`len ≤ N`) as two runs in the array:
    /// `(pointer, length)` up to its end, then from its start (empty unless they wrap).
    /// Both lie inside the array and do not overlap: `pos + first ≤ N` and
    /// `len - first ≤ pos`.
    #[cfg(not(shmkit_loom))]
    pub(crate) fn runs(&self, start: u64, len: usize) -> ((*mut T, usize), (*mut T, usize)) {
        let pos = (start & Self::MASK) as usize;
        let first = len.min(N - pos);
        (
            (self.slot_ptr(start), first),
            (self.slot_ptr(0), len - first),
        )
    }

    /// Writes item `index` into its slot. The caller (the producer) owns the slot.
    #[inline(always)]
    pub(crate) fn write_slot(&self, index: u64, value: T) {
        #[cfg(not(shmkit_loom))]
        // SAFETY: in bounds (`slot_ptr`), aligned (an element of `[T; N]`); the
        // producer owns slots [tail, head + N): the consumer does not read this one
        // until `tail` is published past it.
        unsafe {
            self.slot_ptr(index).write(value)
        };
        #[cfg(shmkit_loom)]
        // SAFETY: loom tracks the access; the protocol makes it exclusive.
        self.slots[(index & Self::MASK) as usize].with_mut(|p| unsafe { p.write(value) });
    }

    /// Reads item `index` from its slot. The caller (the consumer) owns the slot.
    #[inline(always)]
    pub(crate) fn read_slot(&self, index: u64) -> T {
        #[cfg(not(shmkit_loom))]
        // SAFETY: in bounds and aligned (`slot_ptr`); every bit pattern is a `T`
        // (`Pod`); the consumer owns slots [head, tail): the producer does not write
        // this one until `head` is published past it.
        unsafe {
            self.slot_ptr(index).read()
        }
        #[cfg(shmkit_loom)]
        // SAFETY: loom tracks the access; the protocol makes it exclusive.
        self.slots[(index & Self::MASK) as usize].with(|p| unsafe { p.read() })
    }

    /// Copies `items` into the slots from index `at` on (wrapping at the end).
    #[inline]
    pub(crate) fn write_slots(&self, at: u64, items: &[T]) {
        #[cfg(not(shmkit_loom))]
        {
            let pos = (at & Self::MASK) as usize;
            let first = items.len().min(N - pos);
            // SAFETY: `pos + first ≤ N` and `items.len() - first ≤ N - first ≤ pos`
            // (the caller never passes more than the free slots, ≤ N): both ranges are
            // in bounds; the producer owns them (see `write_slot`); a local slice never
            // overlaps the shared slots.
            unsafe {
                core::ptr::copy_nonoverlapping(items.as_ptr(), self.slot_ptr(at), first);
                core::ptr::copy_nonoverlapping(
                    items.as_ptr().add(first),
                    self.slot_ptr(0),
                    items.len() - first,
                );
            }
        }
        #[cfg(shmkit_loom)]
        for (i, item) in items.iter().enumerate() {
            self.write_slot(at.wrapping_add(i as u64), *item);
        }
    }

    /// Copies items from index `at` on into `out` (wrapping at the end).
    #[inline]
    pub(crate) fn read_slots(&self, at: u64, out: &mut [T]) {
        #[cfg(not(shmkit_loom))]
        {
            let pos = (at & Self::MASK) as usize;
            let first = out.len().min(N - pos);
            // SAFETY: as in `write_slots` (the caller never asks for more than the
            // published items, ≤ N); the consumer owns these slots.
            unsafe {
                core::ptr::copy_nonoverlapping(self.slot_ptr(at), out.as_mut_ptr(), first);
                core::ptr::copy_nonoverlapping(
                    self.slot_ptr(0),
                    out.as_mut_ptr().add(first),
                    out.len() - first,
                );
            }
        }
        #[cfg(shmkit_loom)]
        for (i, item) in out.iter_mut().enumerate() {
            *item = self.read_slot(at.wrapping_add(i as u64));
        }
    }

    /// Current `(head, tail)` (for `Debug` and `len`).
    pub(crate) fn indices(&self) -> (u64, u64) {
        (
            self.head.0.load(Ordering::Acquire),
            self.tail.0.load(Ordering::Acquire),
        )
    }

    /// Is end `side` (0 producer, 1 consumer) closed by its owner?
    #[inline]
    pub(crate) fn closed(&self, side: usize) -> bool {
        let bit = if side == 0 {
            PRODUCER_CLOSED
        } else {
            CONSUMER_CLOSED
        };
        // SYNC POINT with the Release `fetch_or` in `EndClaim::close`: every index the
        // owner published before closing is visible after this.
        self.ends.0.flags.load(Ordering::Acquire) & bit != 0
    }
}

/// Checks an index pair read (in part) from shared memory; returns the items in use.
#[inline]
pub(crate) fn used(head: u64, tail: u64, n: usize) -> Result<u64, Error> {
    let used = tail.wrapping_sub(head);
    if used > n as u64 {
        return Err(Error::Corrupted);
    }
    Ok(used)
}

/// The all-zero slots.
#[cfg(not(shmkit_loom))]
const fn new_slots<T: Pod, const N: usize>() -> [UnsafeCell<T>; N] {
    // SAFETY: `T: Pod` is `Zeroable`, and `UnsafeCell<T>` has `T`'s layout, so the
    // all-zero array is a valid array of cells.
    unsafe { core::mem::zeroed() }
}

/// The all-zero slots (loom's cells are not `const`).
#[cfg(shmkit_loom)]
fn new_slots<T: Pod, const N: usize>() -> [UnsafeCell<T>; N] {
    core::array::from_fn(|_| UnsafeCell::new(T::zeroed()))
}

impl<T: Pod, const N: usize> Default for Spsc<T, N> {
    fn default() -> Self {
        Spsc::new()
    }
}

impl<T: Pod, const N: usize> core::fmt::Debug for Spsc<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (head, tail) = self.indices();
        f.debug_struct("Spsc")
            .field("capacity", &N)
            .field("head", &head)
            .field("tail", &tail)
            .field("producer_closed", &self.closed(0))
            .field("consumer_closed", &self.closed(1))
            .finish()
    }
}

// SAFETY: repr(C); atomics and `UnsafeCell<T>` with `T: Pod` (fixed layout, no
// pointers, every bit pattern valid); every index read from the segment is validated
// before use; no Drop; mutation only through atomics and the SPSC protocol.
unsafe impl<T: Pod + Send, const N: usize> ShmSafe for Spsc<T, N> {}

// SAFETY: all-zero is the documented fresh state: empty ring, unowned open ends,
// notifiers with nobody asleep; zeroed slots are valid `T: Pod`.
#[cfg(not(shmkit_loom))]
unsafe impl<T: Pod, const N: usize> bytemuck::Zeroable for Spsc<T, N> {}

// SAFETY: the slots are accessed only under the SPSC protocol (the producer owns
// [tail, head + N), the consumer [head, tail)), and ownership of each end keeps each
// side to one handle; everything else is atomic.
unsafe impl<T: Pod + Send, const N: usize> Sync for Spsc<T, N> {}

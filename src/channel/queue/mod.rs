//! `Queue<T, N>`: a bounded MPMC queue of `Pod` items in shared memory.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue
//! (<https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue>),
//! as crossbeam's `ArrayQueue` implements it, with three changes for processes that
//! may be killed at any instruction:
//!
//! 1. **A claim names its claimer.** Each slot has one 64-bit state word; a producer
//!    claims a slot by a CAS that writes its participant id into that word
//!    (`WRITING`), and a consumer likewise (`READING`). There is no instant at which a
//!    slot is taken but its taker unknown, so a process that finds a slot held can
//!    ask whether the holder lives (`id_liveness`) — and if it is dead, *reclaim* the
//!    slot by a CAS from the exact state it saw (a live holder's own CAS then cannot
//!    collide with it). The item is dropped and counted in [`Queue::lost`].
//! 2. **`head` and `tail` are hints.** The claim CAS is on the slot, not on the index;
//!    the claimer then advances the index, and anyone who finds the slot at the index
//!    already taken advances it for them. A process killed between its claim and its
//!    index update therefore wedges nobody.
//! 3. **A later lap means "passed".** A reclaimed slot is reused one lap on, possibly
//!    before the head gets there; a slot found at the index holding a state of a later
//!    lap tells that the position was passed, whatever that state is.
//!
//! `put` and `get` share one claim skeleton (`claim.rs`) driven by a table of what
//! each side does with each state (`state.rs` documents the encoding and the table);
//! `recover.rs` holds what is done about other processes' claims, `ops.rs` the
//! try / timeout / blocking policies.
//!
//! ## Layout (`#[repr(C)]`)
//!
//! ```text
//! offset size  field      written by
//!      0    8  head       consumers (a hint: the next position to get)
//!    128    8  tail       producers (a hint: the next position to put)
//!    256    4  closed     `close` (1 = closed)
//!    264    8  lost       reclaimers (items dropped with a dead holder)
//!    384    8  not_empty  Notifier: producers wake, consumers sleep
//!    392    8  not_full   Notifier: consumers wake, producers sleep
//!    512  N*S  slots      { state: u64, value: T } (S = size of that, 8-aligned)
//! ```
//!
//! All-zero is an empty, open queue: every slot `FREE(0)`, `head = tail = 0`.
//!
//! Every state, index and lap read from shared memory is validated; a state that no
//! correct run can produce (confirmed with a fresh read-modify-write) gives
//! `Corrupted`, and no loop runs without some index or state changing, or beyond a
//! bound.

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use bytemuck::Pod;

use super::ring::Line;
use super::wait::{Waitable, sealed};
use crate::primitive::{AtomicU32, AtomicU64, Deadline, Ordering, UnsafeCell};
use crate::segment::ShmSafe;
use crate::sync::notifier::Notifier;

mod claim;
mod errors;
mod ops;
mod recover;
mod state;
mod tasks;

pub use errors::{GetError, PutError};
pub(crate) use tasks::JoinCtl;

/// One slot: its state word and its item.
#[repr(C)]
struct Slot<T> {
    state: AtomicU64,
    value: UnsafeCell<T>,
}

/// `closed` and `lost`, on one line (both rarely written).
#[repr(C)]
struct Control {
    closed: AtomicU32,
    _pad: u32,
    lost: AtomicU64,
}

/// The two notifiers.
#[repr(C)]
struct QueueWakers {
    not_empty: Notifier,
    not_full: Notifier,
}

/// A bounded multi-producer multi-consumer queue of `Pod` items in shared memory
/// (Python's `multiprocessing.Queue`, without pickling: items are copied as bytes).
///
/// Capacity `N ≥ 1` (checked at compile time). Put it in a
/// [`Shared`](crate::Shared) (for a large `N`,
/// [`Shared::new_zeroed`](crate::Shared::new_zeroed) builds it in place).
///
/// Every operation is linearizable: it takes effect at one instant between its call
/// and its return, in one order consistent with FIFO. `Empty`, `Full`, `Timeout`
/// are answers about such an instant; [`GetError::Stalled`] and
/// [`PutError::Stalled`] are the answers when another process's operation in
/// progress stands in the way (below).
///
/// # Waiting
///
/// `put` and `get` wait by the process's [`WaitStrategy`](crate::WaitStrategy): spin,
/// then sleep on a futex. While they spin they only read the slot they wait for, so a
/// waiting process does not take cache lines from the one it waits for. A `put` that
/// finds the queue full first waits, in a short spin of its own (not under
/// `WaitStrategy::Park`), for room for a run of puts: an eighth of the queue, at most
/// 32 slots. A producer that outruns its consumer then fills slots in runs instead of
/// working on the slot the consumer is reading; if the consumer frees fewer and stops,
/// the put takes the free slot after that spin (a few microseconds).
///
/// # Crashes
///
/// A process can be killed at any instruction. Each item is held by at most one
/// process at a time (the slot's claim names it), so a death costs at most that one
/// item:
///
/// - **A producer** killed before its claim changes nothing. Killed after claiming a
///   slot and before publishing the item, it drops the item (its `put` never
///   returned): the slot is reclaimed by the first process that needs it and finds
///   the producer dead — a consumer waiting at that position with items queued
///   behind it (after its spin: within a sleep slice for `get` and `get_timeout`,
///   within the bounded wait of `try_get`), a producer a lap later, or
///   [`lost`](Self::lost) — and counted in `lost`; consumers then pass that position.
///   Killed after publishing, its item is delivered as any other (though its `put`
///   never returned).
/// - **A consumer** killed before its claim changes nothing. Killed after claiming an
///   item and before releasing its slot, it drops the item (its `get` never returned):
///   other consumers pass that position at once; the slot is reclaimed by a producer
///   a lap later, or by [`lost`](Self::lost), and counted in `lost`. Killed after
///   releasing the slot, in the last instructions of `get` — the wake-up of sleeping
///   producers (a load, and a `FUTEX_WAKE` system call if a producer sleeps) and the
///   return — the item has left the queue and nothing records it: **the one window
///   in which an item is lost uncounted.**
/// - **Killed between its claim and its index update** (either side): nothing is
///   lost; the others advance the index.
/// - **A stopped process** (`SIGSTOP`, or one the scheduler does not run) keeps what
///   it holds: it is alive, and a claim of a live process is never taken away (it may
///   be writing or reading the item's bytes). A producer stopped mid-put holds the
///   head back: `get` waits for it (as long as it lives); `try_get` waits a bounded
///   time (about a millisecond), then returns [`GetError::Stalled`] if items are
///   queued behind it, or `Empty` if none is; `get_timeout` returns `Stalled` at its
///   deadline. A consumer stopped mid-get holds its slot: `put` waits for it, a lap
///   later; `try_put` and `put_timeout` return [`PutError::Stalled`] (the item it
///   holds no longer counts as queued, so the queue is not full). A producer stopped
///   while writing the newest position likewise turns `Full` into `Stalled` for
///   `try_put`. Everything flows again once it continues, or dies.
///
/// So: **every item whose put returned `Ok` is returned by exactly one `get`, or is
/// counted in [`lost`](Self::lost) once its taker has died, or was taken by a
/// consumer killed in the window above.** `lost` also counts the items of producers
/// killed mid-put (whose put never returned).
///
/// # Examples
///
/// ```
/// use shmkit::{PutError, Queue};
///
/// let q = Queue::<u32, 2>::new();
/// q.put(1).unwrap();
/// q.try_put(2).unwrap();
/// assert_eq!(q.try_put(3), Err(PutError::Full(3)));
/// assert_eq!(q.get(), Ok(1));
/// q.close();
/// assert_eq!(q.get(), Ok(2));
/// assert_eq!(q.get(), Err(shmkit::GetError::Closed));
/// ```
#[repr(C)]
pub struct Queue<T: Pod, const N: usize> {
    head: Line<AtomicU64>,
    tail: Line<AtomicU64>,
    ctl: Line<Control>,
    wake: Line<QueueWakers>,
    slots: [Slot<T>; N],
    _items: PhantomData<T>,
}

crate::layout::pin_layout!(Slot<u64> { state: 0, value: 8 }, size 16);
crate::layout::pin_layout!(Control { closed: 0, _pad: 4, lost: 8 }, size 16);
crate::layout::pin_layout!(QueueWakers { not_empty: 0, not_full: 8 }, size 16);
// The lines make the whole queue 128-aligned: its size rounds up to 128.
crate::layout::pin_layout!(
    Queue<u64, 4> { head: 0, tail: 128, ctl: 256, wake: 384, slots: 512, _items: 576 },
    size 640,
    align 128,
);

impl<T: Pod, const N: usize> Queue<T, N> {
    const N_OK: () = assert!(
        N >= 1 && N <= u32::MAX as usize,
        "Queue capacity must be >= 1"
    );

    crate::primitive::loom_const_fn! {
        /// An empty, open queue (all zero). For a large `N`, build it in place with
        /// [`Shared::new_zeroed`](crate::Shared::new_zeroed) instead.
        pub const fn new() -> Self {
            #[allow(clippy::let_unit_value)]
            let () = Self::N_OK;
            Queue {
                head: Line(AtomicU64::new(0)),
                tail: Line(AtomicU64::new(0)),
                ctl: Line(Control { closed: AtomicU32::new(0), _pad: 0, lost: AtomicU64::new(0) }),
                wake: Line(QueueWakers { not_empty: Notifier::new(), not_full: Notifier::new() }),
                slots: new_slots::<T, N>(),
                _items: PhantomData,
            }
        }
    }

    #[inline]
    fn closed_now(&self) -> bool {
        // SYNC POINT with the Release `store` in `close`.
        self.ctl.0.closed.load(Ordering::Acquire) != 0
    }

    /// Puts `value`, waiting while the queue is full (and while the slot it needs is
    /// held by a live consumer's get in progress).
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`] (the queue is closed), [`PutError::Corrupted`]; each hands
    /// the value back.
    pub fn put(&self, value: T) -> Result<(), PutError<T>> {
        self.put_impl(value, Some(Deadline::NEVER), None)
    }

    /// Puts `value` if there is room now.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`]; [`PutError::Stalled`] if the queue is not full but the next
    /// slot is still held, after a bounded wait (about a millisecond), by an operation
    /// in progress; otherwise as [`put`](Self::put).
    pub fn try_put(&self, value: T) -> Result<(), PutError<T>> {
        self.put_impl(value, None, None)
    }

    /// Puts `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PutError::Timeout`] (never before `timeout`); [`PutError::Stalled`] if at the
    /// deadline the queue is not full but the next slot is held by an operation in
    /// progress; otherwise as [`put`](Self::put).
    pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_impl(value, Some(Deadline::after(timeout)), None)
    }

    /// Takes the oldest item, waiting while the queue is empty (and while the oldest
    /// item's put is in progress in a live process). After [`close`](Self::close), the
    /// queued items are still delivered, then `Closed`.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] (closed and drained), [`GetError::Corrupted`].
    pub fn get(&self) -> Result<T, GetError> {
        self.get_impl(Some(Deadline::NEVER), None)
    }

    /// Takes the oldest item if there is one now. If the oldest position is held by a
    /// put in progress and items are queued behind it, waits a bounded time (about a
    /// millisecond) for that put.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`]; [`GetError::Stalled`] if that put did not finish within
    /// the wait; otherwise as [`get`](Self::get).
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_impl(None, None)
    }

    /// Takes the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetError::Timeout`] (never before `timeout`); [`GetError::Stalled`] if at the
    /// deadline items are queued behind a put in progress; otherwise as
    /// [`get`](Self::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_impl(Some(Deadline::after(timeout)), None)
    }

    /// How many items are queued (a snapshot: puts and gets in progress may or may
    /// not be counted, and positions dropped by crashes are counted until a get
    /// passes them).
    pub fn len(&self) -> usize {
        let head = self.head.0.load(Ordering::Acquire);
        let tail = self.tail.0.load(Ordering::Acquire);
        (tail.saturating_sub(head) as usize).min(N)
    }

    /// Is the queue empty (a snapshot)?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Is the queue full (a snapshot)?
    pub fn is_full(&self) -> bool {
        self.len() == N
    }

    /// The capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Closes the queue: later puts fail with `Closed`; getters receive what is
    /// queued, then `Closed`. Wakes every waiter. Idempotent. (A put already under
    /// way — past its check of `closed` — may still complete and its item be
    /// delivered; until it completes, getters wait for it, or answer `Empty`,
    /// `Timeout` or `Stalled`, not `Closed`.)
    pub fn close(&self) {
        // SYNC POINT with the Acquire load in `closed_now`.
        self.ctl.0.closed.store(1, Ordering::Release);
        self.wake.0.not_empty.notify_all();
        self.wake.0.not_full.notify_all();
    }

    /// Has [`close`](Self::close) been called?
    pub fn is_closed(&self) -> bool {
        self.closed_now()
    }

    /// How many items were dropped because the process holding them died: a producer
    /// killed after claiming a slot and before publishing its item (its put never
    /// returned), or a consumer killed after claiming an item and before releasing
    /// its slot (its get never returned). See [Crashes](Self#crashes).
    ///
    /// First reclaims every slot held by a dead process, so the count is exact when it
    /// returns: it looks at all `N` slots (and asks the liveness of each holder).
    pub fn lost(&self) -> u64 {
        self.lost_impl(None)
    }

    pub(crate) fn lost_impl(&self, join: Option<&JoinCtl>) -> u64 {
        self.reclaim_dead(join);
        self.ctl.0.lost.load(Ordering::Acquire)
    }

    pub(crate) fn not_empty(&self) -> &Notifier {
        &self.wake.0.not_empty
    }
}

/// `N` zeroed slots.
#[cfg(not(shmkit_loom))]
const fn new_slots<T: Pod, const N: usize>() -> [Slot<T>; N] {
    [const {
        Slot {
            state: AtomicU64::new(0),
            // SAFETY: `T: Pod`, so the all-zero bit pattern is a valid `T`.
            value: UnsafeCell::new(unsafe { core::mem::zeroed() }),
        }
    }; N]
}

/// `N` zeroed slots (loom's cells are not `const`).
#[cfg(shmkit_loom)]
fn new_slots<T: Pod, const N: usize>() -> [Slot<T>; N] {
    core::array::from_fn(|_| Slot {
        state: AtomicU64::new(0),
        value: UnsafeCell::new(T::zeroed()),
    })
}

impl<T: Pod, const N: usize> Default for Queue<T, N> {
    fn default() -> Self {
        Queue::new()
    }
}

impl<T: Pod, const N: usize> fmt::Debug for Queue<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("capacity", &N)
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .field("lost", &self.ctl.0.lost.load(Ordering::Acquire))
            .finish()
    }
}

impl<T: Pod, const N: usize> sealed::Sealed for Queue<T, N> {
    fn ready_notifier(&self) -> sealed::ReadyNotifier<'_> {
        sealed::ReadyNotifier(self.not_empty())
    }
}

impl<T: Pod, const N: usize> Waitable for Queue<T, N> {
    fn is_ready(&self) -> bool {
        self.ready_now()
    }
}

// SAFETY: items are only touched by the process holding their slot (WRITING or
// READING with its id, claimed by CAS); everything else is atomic. Items move
// between threads and processes, hence `T: Send`.
unsafe impl<T: Pod + Send, const N: usize> Sync for Queue<T, N> {}
// SAFETY: repr(C), fixed-width atomics and `Pod` items (every bit pattern valid, no
// pointers a peer could mean), every state word validated before use, no Drop.
unsafe impl<T: Pod + Send, const N: usize> ShmSafe for Queue<T, N> {
    // Layout 2: the state word holds participant ids and 62/32-bit laps (state.rs).
    crate::segment::kit_identity!(Queue, 2, "shmkit::Queue", pod T, const N);
    const ITEM_STRIDE: u32 = core::mem::size_of::<Slot<T>>() as u32;
}

/// The layout and the slot states, for tools that read a queue from outside
/// (`crate::inspect`): offsets taken from the real types, so that the tools follow a
/// layout change.
#[cfg(all(feature = "std", not(shmkit_loom)))]
pub(crate) mod outside {
    use super::state::{FULL, READING, State, WRITING};
    use super::*;

    /// `head`, `tail`, `closed`, `lost`, the two notifiers and the slots.
    pub(crate) const HEAD: usize = core::mem::offset_of!(Queue<u64, 1>, head);
    pub(crate) const TAIL: usize = core::mem::offset_of!(Queue<u64, 1>, tail);
    pub(crate) const CLOSED: usize =
        core::mem::offset_of!(Queue<u64, 1>, ctl) + core::mem::offset_of!(Control, closed);
    pub(crate) const LOST: usize =
        core::mem::offset_of!(Queue<u64, 1>, ctl) + core::mem::offset_of!(Control, lost);
    pub(crate) const NOT_EMPTY: usize =
        core::mem::offset_of!(Queue<u64, 1>, wake) + core::mem::offset_of!(QueueWakers, not_empty);
    pub(crate) const NOT_FULL: usize =
        core::mem::offset_of!(Queue<u64, 1>, wake) + core::mem::offset_of!(QueueWakers, not_full);
    pub(crate) const SLOTS: usize = core::mem::offset_of!(Queue<u64, 1>, slots);
    /// A queue's size is a multiple of this (its 128-byte lines).
    pub(crate) const ALIGN: usize = core::mem::align_of::<Queue<u64, 1>>();
    /// Where a slot's state word sits in the slot.
    pub(crate) const STATE: usize = core::mem::offset_of!(Slot<u64>, state);

    /// What a slot's state word says.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum SlotState {
        /// FREE (of some lap).
        Free,
        /// FULL: an item is queued.
        Full,
        /// A put (`WRITING`) or get (`READING`) in progress by participant `id`.
        Claim { put: bool, id: u32 },
        /// A claim word with an id no participant has (scribbled).
        Invalid,
    }

    /// Decodes a slot's state word.
    pub(crate) fn slot(word: u64) -> SlotState {
        let state = State(word);
        if !state.is_valid() {
            return SlotState::Invalid;
        }
        match (state.kind(), state.holder()) {
            (FULL, _) => SlotState::Full,
            (kind @ (WRITING | READING), Some(id)) => SlotState::Claim {
                put: kind == WRITING,
                id,
            },
            _ => SlotState::Free,
        }
    }
}
// SAFETY: all-zero is the documented empty, open state (FREE(0) slots, zero indices).
#[cfg(not(shmkit_loom))]
unsafe impl<T: Pod, const N: usize> bytemuck::Zeroable for Queue<T, N> {}

#[cfg(all(test, not(shmkit_loom)))]
mod tests;

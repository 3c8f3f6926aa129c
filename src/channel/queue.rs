//! `Queue<T, N>`: a bounded MPMC queue of `Pod` items in shared memory.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue
//! (<https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue>),
//! as crossbeam's `ArrayQueue` implements it, with two changes for processes that
//! may be killed at any instruction:
//!
//! 1. **A claim names its claimer.** Each slot has one 64-bit state word; a producer
//!    claims a slot by a CAS that writes its pid into that word (`WRITING`), and a
//!    consumer likewise (`READING`). There is no instant at which a slot is taken
//!    but its taker unknown, so a process that finds a slot held too long can ask
//!    whether the holder lives — and if it is dead, *reclaim* the slot by a CAS from
//!    the exact state it saw (a live holder's own CAS then cannot collide with it).
//!    The item is dropped and counted in [`Queue::lost`].
//! 2. **`head` and `tail` are hints.** The claim CAS is on the slot, not on the index;
//!    the claimer then advances the index, and anyone who finds the slot at the index
//!    already claimed advances it for them. A process killed between its claim and
//!    its index update therefore wedges nobody.
//!
//! ## Slot states (one `AtomicU64` per slot)
//!
//! ```text
//! bits 63..25  lap   (pos / N) mod 2^39 for the position pos this state belongs to
//! bits 24..23  kind  FREE = 0, WRITING = 1, FULL = 2, READING = 3
//! bits 22..0   pid   the claimer (WRITING, READING); 0 otherwise (Linux pids < 2^22)
//!
//! FREE(l) --producer CAS--> WRITING(l, pid) --CAS--> FULL(l) --consumer CAS--> READING(l, pid)
//!    ^                          |  holder dead: reclaim                            |
//!    +--------------------------+---------------- FREE(l + 1) <---------CAS--------+
//! ```
//!
//! All-zero is `FREE(0)` in every slot with `head = tail = 0`: a zeroed mapping is an
//! empty queue. Laps are compared modulo 2^39: a process would have to stall while
//! one slot is reused 2^39 times for a stale value to match again.
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
//! ## What crashes are covered
//!
//! - A producer killed after its claim and before it publishes: the slot is reclaimed
//!   by the first consumer (or producer, a lap later) that waits on it and finds the
//!   producer dead (at once for `try_*`, within a sleep slice for blocking calls).
//! - A consumer killed after its claim: the item is lost with it; a producer that
//!   needs the slot reclaims it. Both count in `lost`.
//! - A process killed before its claim, or after its release, or between a claim
//!   and its index update: nothing is lost, the others advance the index.
//! - A holder that is alive but stopped (`SIGSTOP`) keeps its slot: consumers wait
//!   for that one position, as for any slow producer.
//!
//! Every state, index and lap read from shared memory is validated; a state that no
//! correct run can produce (confirmed with a fresh read-modify-write) gives
//! `Corrupted`, and no loop runs without some index or state changing.

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use bytemuck::Pod;

use super::block_on;
use super::joinable::JoinCtl;
use super::ring::Line;
use super::wait::{Waitable, sealed};
use crate::primitive::{
    AtomicU32, AtomicU64, Deadline, Liveness, Ordering, UnsafeCell, id_liveness, my_process_id,
};
use crate::segment::ShmSafe;
use crate::sync::notifier::Notifier;

const KIND_SHIFT: u32 = 23;
const LAP_SHIFT: u32 = 25;
const PID_MASK: u64 = (1 << KIND_SHIFT) - 1;
const LAP_MASK: u64 = (1 << (64 - LAP_SHIFT)) - 1;
const FREE: u64 = 0;
const WRITING: u64 = 1;
const FULL: u64 = 2;
const READING: u64 = 3;

#[inline]
const fn pack(lap: u64, kind: u64, pid: u32) -> u64 {
    ((lap & LAP_MASK) << LAP_SHIFT) | (kind << KIND_SHIFT) | (pid as u64 & PID_MASK)
}

#[inline]
const fn unpack(state: u64) -> (u64, u64, u32) {
    (
        state >> LAP_SHIFT,
        (state >> KIND_SHIFT) & 3,
        (state & PID_MASK) as u32,
    )
}

#[inline]
const fn next_lap(lap: u64) -> u64 {
    lap.wrapping_add(1) & LAP_MASK
}

#[inline]
const fn prev_lap(lap: u64) -> u64 {
    lap.wrapping_sub(1) & LAP_MASK
}

/// The calling process's pid as a claimer id.
#[inline]
fn my_pid() -> u32 {
    let pid = my_process_id();
    debug_assert!(u64::from(pid) <= PID_MASK, "Linux pids are below 2^22");
    pid
}

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
/// Capacity `N ≥ 1` (checked at compile time). Lock-free: no process waits for
/// another except for the one slot it needs. Put it in a [`Shared`](crate::Shared)
/// (for a large `N`, [`Shared::new_zeroed`](crate::Shared::new_zeroed) builds it in
/// place).
///
/// # Crashes
///
/// A producer killed mid-put never wedges the consumers: once it is found dead, its
/// slot is skipped and counted in [`lost`](Queue::lost); likewise a consumer killed
/// mid-get (its item is lost with it). See the module source for the state machine.
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

#[cfg(not(shmkit_loom))]
const _: () = {
    assert!(core::mem::offset_of!(Queue<u64, 4>, tail) == 128);
    assert!(core::mem::offset_of!(Queue<u64, 4>, ctl) == 256);
    assert!(core::mem::offset_of!(Queue<u64, 4>, wake) == 384);
    assert!(core::mem::offset_of!(Queue<u64, 4>, slots) == 512);
    assert!(core::mem::size_of::<Slot<u64>>() == 16);
    // The lines make the whole queue 128-aligned: its size rounds up to 128.
    assert!(core::mem::size_of::<Queue<u64, 4>>() == 640);
    assert!(core::mem::offset_of!(Control, lost) == 8);
};

/// An error from `put`: the item is handed back.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PutError<T> {
    /// The queue is full (`try_put`).
    Full(T),
    /// It stayed full until the timeout (`put_timeout`).
    Timeout(T),
    /// The queue is closed.
    Closed(T),
    /// The shared state failed validation.
    Corrupted(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(v)
            | PutError::Timeout(v)
            | PutError::Closed(v)
            | PutError::Corrupted(v) => v,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            PutError::Full(_) => "Full",
            PutError::Timeout(_) => "Timeout",
            PutError::Closed(_) => "Closed",
            PutError::Corrupted(_) => "Corrupted",
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(..)", self.name())
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "queue is full",
            PutError::Timeout(_) => "queue stayed full until the timeout",
            PutError::Closed(_) => "queue is closed",
            PutError::Corrupted(_) => "queue state failed validation (corrupted)",
        })
    }
}

impl<T> core::error::Error for PutError<T> {}

/// An error from `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GetError {
    /// The queue is empty (`try_get`).
    Empty,
    /// It stayed empty until the timeout (`get_timeout`).
    Timeout,
    /// The queue is closed and drained.
    Closed,
    /// The shared state failed validation.
    Corrupted,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GetError::Empty => "queue is empty",
            GetError::Timeout => "queue stayed empty until the timeout",
            GetError::Closed => "queue is closed and drained",
            GetError::Corrupted => "queue state failed validation (corrupted)",
        })
    }
}

impl core::error::Error for GetError {}

/// A slot held by some process, found where we needed it.
#[derive(Debug, Clone, Copy)]
struct Busy {
    index: usize,
    state: u64,
}

/// What one pass found.
enum Step<R> {
    Done(R),
    /// Full (put) or empty (get); `Some` if a holder, maybe dead, is in the way.
    Blocked(Option<Busy>),
    Closed,
    Corrupted,
}

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
    fn lap_of(pos: u64) -> u64 {
        (pos / N as u64) & LAP_MASK
    }

    #[inline]
    fn closed_now(&self) -> bool {
        // SYNC POINT with the Release `store` in `close`.
        self.ctl.0.closed.load(Ordering::Acquire) != 0
    }

    /// The latest value of an index (a read-modify-write reads the newest value).
    #[inline]
    fn latest(index: &AtomicU64) -> u64 {
        index.fetch_add(0, Ordering::AcqRel)
    }

    /// One pass of a put.
    fn put_step(&self, value: &T, me: u32) -> Step<()> {
        if self.closed_now() {
            return Step::Closed;
        }
        let mut confirmed = false;
        let mut pos = self.tail.0.load(Ordering::Acquire);
        loop {
            let index = (pos % N as u64) as usize;
            let slot = &self.slots[index];
            let lap = Self::lap_of(pos);
            let state = if confirmed {
                slot.state.fetch_add(0, Ordering::AcqRel)
            } else {
                // SYNC POINT with the Release CAS to FREE in `get_step` / `reclaim`:
                // the last reader of this slot is done with it.
                slot.state.load(Ordering::Acquire)
            };
            let (slap, kind, pid) = unpack(state);
            if (kind == FREE || kind == FULL) && pid != 0 {
                return Step::Corrupted;
            }
            if slap == lap && kind == FREE {
                let mine = pack(lap, WRITING, me);
                if slot
                    .state
                    .compare_exchange(state, mine, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    pos = self.tail.0.load(Ordering::Acquire);
                    continue;
                }
                // Claimed. Advance the hint (someone may have done it for us).
                let _ = self.tail.0.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                // SAFETY: the slot is ours (WRITING with our pid) until we publish it:
                // no other process reads or writes the value meanwhile.
                slot.value.with_mut(|p| unsafe { p.write(*value) });
                // SYNC POINT with the Acquire load / CAS of FULL in `get_step`.
                if slot
                    .state
                    .compare_exchange(
                        mine,
                        pack(lap, FULL, 0),
                        Ordering::Release,
                        Ordering::Relaxed,
                    )
                    .is_err()
                {
                    // Only a reclaimer that found us dead may take our claim: we live,
                    // so the word was scribbled on.
                    return Step::Corrupted;
                }
                self.wake.0.not_empty.notify_all();
                return Step::Done(());
            }
            if slap == lap || (slap == next_lap(lap) && kind == FREE) {
                // Position `pos` is taken already: help the hint along, go on.
                pos = match self.tail.0.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => pos.wrapping_add(1),
                    Err(now) => now,
                };
                confirmed = false;
                continue;
            }
            if !confirmed {
                // A decision is near: make it on fresh values.
                confirmed = true;
                pos = Self::latest(&self.tail.0);
                continue;
            }
            // The state is the newest; it belongs to `pos` only if the tail did not
            // move meanwhile (while the tail is at `pos`, the slot can only be FREE or
            // WRITING for `pos`, or still held for `pos - N`).
            let again = Self::latest(&self.tail.0);
            if again != pos {
                pos = again;
                continue;
            }
            if slap == prev_lap(lap) && kind != FREE {
                // The previous lap's item (or its holder) still occupies the slot.
                return Step::Blocked((kind != FULL).then_some(Busy { index, state }));
            }
            return Step::Corrupted;
        }
    }

    /// One pass of a get.
    fn get_step(&self, me: u32) -> Step<T> {
        let mut confirmed = false;
        let mut pos = self.head.0.load(Ordering::Acquire);
        loop {
            let index = (pos % N as u64) as usize;
            let slot = &self.slots[index];
            let lap = Self::lap_of(pos);
            // SYNC POINT with the Release `store` in `close` (read before the state).
            let closed = confirmed && self.closed_now();
            let state = if confirmed {
                slot.state.fetch_add(0, Ordering::AcqRel)
            } else {
                // SYNC POINT with the Release CAS to FULL in `put_step`.
                slot.state.load(Ordering::Acquire)
            };
            let (slap, kind, pid) = unpack(state);
            if (kind == FREE || kind == FULL) && pid != 0 {
                return Step::Corrupted;
            }
            if slap == lap && kind == FULL {
                let mine = pack(lap, READING, me);
                if slot
                    .state
                    .compare_exchange(state, mine, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    pos = self.head.0.load(Ordering::Acquire);
                    continue;
                }
                let _ = self.head.0.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                // SAFETY: the slot is ours (READING with our pid): no producer writes
                // it until we free it.
                let value = slot.value.with(|p| unsafe { p.read() });
                // SYNC POINT with the Acquire load / CAS of FREE in `put_step`.
                if slot
                    .state
                    .compare_exchange(
                        mine,
                        pack(next_lap(lap), FREE, 0),
                        Ordering::Release,
                        Ordering::Relaxed,
                    )
                    .is_err()
                {
                    return Step::Corrupted;
                }
                self.wake.0.not_full.notify_all();
                return Step::Done(value);
            }
            if (slap == lap && kind == READING) || (slap == next_lap(lap) && kind == FREE) {
                pos = match self.head.0.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => pos.wrapping_add(1),
                    Err(now) => now,
                };
                confirmed = false;
                continue;
            }
            if !confirmed {
                confirmed = true;
                pos = Self::latest(&self.head.0);
                continue;
            }
            // As in `put_step`: decide only if the head did not move meanwhile.
            let again = Self::latest(&self.head.0);
            if again != pos {
                pos = again;
                continue;
            }
            let nothing_claimed =
                (slap == lap && kind == FREE) || (slap == prev_lap(lap) && kind == READING);
            if nothing_claimed {
                // `closed` was read before the state: a put that came before the close
                // would be seen in the state.
                return if closed {
                    Step::Closed
                } else {
                    Step::Blocked(None)
                };
            }
            if slap == lap && kind == WRITING {
                return Step::Blocked(Some(Busy { index, state }));
            }
            return Step::Corrupted;
        }
    }

    /// If the holder of `busy` is dead, frees its slot (the item is lost). Returns
    /// whether the caller should try again at once.
    #[cold]
    fn reclaim(&self, busy: Busy, join: Option<&JoinCtl>) -> bool {
        let (lap, kind, pid) = unpack(busy.state);
        if id_liveness(pid) != Liveness::Dead {
            return false;
        }
        let slot = &self.slots[busy.index];
        // SYNC POINT with the Acquire claims in `put_step`: the next producer writes
        // the value after this (a dead holder's writes were done before its death,
        // which the liveness check observed).
        if slot
            .state
            .compare_exchange(
                busy.state,
                pack(next_lap(lap), FREE, 0),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.ctl.0.lost.fetch_add(1, Ordering::Relaxed);
            if kind == WRITING {
                if let Some(join) = join {
                    join.item_gone();
                }
            }
            self.wake.0.not_full.notify_all();
            self.wake.0.not_empty.notify_all();
        }
        true
    }

    /// One put attempt, reclaiming a dead holder's slot when `check`.
    fn put_attempt(
        &self,
        value: &T,
        me: u32,
        check: bool,
        join: Option<&JoinCtl>,
    ) -> Option<Step<()>> {
        loop {
            match self.put_step(value, me) {
                Step::Blocked(Some(busy)) if check => {
                    if !self.reclaim(busy, join) {
                        return None;
                    }
                }
                Step::Blocked(_) => return None,
                done => return Some(done),
            }
        }
    }

    /// One get attempt, reclaiming a dead holder's slot when `check`.
    fn get_attempt(&self, me: u32, check: bool, join: Option<&JoinCtl>) -> Option<Step<T>> {
        loop {
            match self.get_step(me) {
                Step::Blocked(Some(busy)) if check => {
                    if !self.reclaim(busy, join) {
                        return None;
                    }
                }
                Step::Blocked(_) => return None,
                done => return Some(done),
            }
        }
    }

    /// put / try_put / put_timeout (`deadline` `None` = don't wait).
    pub(crate) fn put_impl(
        &self,
        value: T,
        deadline: Option<Deadline>,
        join: Option<&JoinCtl>,
    ) -> Result<(), PutError<T>> {
        let me = my_pid();
        if let Some(join) = join {
            join.item_added();
        }
        let step = match self.put_attempt(&value, me, true, join) {
            Some(step) => Some(step),
            None => match deadline {
                None => None,
                Some(deadline) => block_on(&self.wake.0.not_full, deadline, |check| {
                    self.put_attempt(&value, me, check, join)
                }),
            },
        };
        let result = match step {
            Some(Step::Done(())) => return Ok(()),
            Some(Step::Closed) => PutError::Closed(value),
            Some(Step::Corrupted) => PutError::Corrupted(value),
            Some(Step::Blocked(_)) => unreachable!("attempts never return Blocked"),
            None if deadline.is_none() => PutError::Full(value),
            None => PutError::Timeout(value),
        };
        if let Some(join) = join {
            join.item_gone();
        }
        Err(result)
    }

    /// get / try_get / get_timeout (`deadline` `None` = don't wait).
    pub(crate) fn get_impl(
        &self,
        deadline: Option<Deadline>,
        join: Option<&JoinCtl>,
    ) -> Result<T, GetError> {
        let me = my_pid();
        let step = match self.get_attempt(me, true, join) {
            Some(step) => Some(step),
            None => match deadline {
                None => None,
                Some(deadline) => block_on(&self.wake.0.not_empty, deadline, |check| {
                    self.get_attempt(me, check, join)
                }),
            },
        };
        match step {
            Some(Step::Done(v)) => Ok(v),
            Some(Step::Closed) => Err(GetError::Closed),
            Some(Step::Corrupted) => Err(GetError::Corrupted),
            Some(Step::Blocked(_)) => unreachable!("attempts never return Blocked"),
            None if deadline.is_none() => Err(GetError::Empty),
            None => Err(GetError::Timeout),
        }
    }

    /// Puts `value`, waiting while the queue is full.
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
    /// [`PutError::Full`]; otherwise as [`put`](Self::put).
    pub fn try_put(&self, value: T) -> Result<(), PutError<T>> {
        self.put_impl(value, None, None)
    }

    /// Puts `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PutError::Timeout`] (never before `timeout`); otherwise as [`put`](Self::put).
    pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_impl(value, Some(Deadline::after(timeout)), None)
    }

    /// Takes the oldest item, waiting while the queue is empty. After
    /// [`close`](Self::close), the queued items are still delivered, then `Closed`.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] (closed and drained), [`GetError::Corrupted`].
    pub fn get(&self) -> Result<T, GetError> {
        self.get_impl(Some(Deadline::NEVER), None)
    }

    /// Takes the oldest item if there is one now.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] (also while the put of the oldest item is still in
    /// progress); otherwise as [`get`](Self::get).
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_impl(None, None)
    }

    /// Takes the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetError::Timeout`] (never before `timeout`); otherwise as [`get`](Self::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_impl(Some(Deadline::after(timeout)), None)
    }

    /// How many items are queued (a snapshot; puts and gets in progress may or may
    /// not be counted).
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
    /// queued, then `Closed`. Wakes every waiter. Idempotent. (An item whose put was
    /// already under way may still be delivered.)
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

    /// How many items were dropped because the process holding them died mid-put
    /// (or mid-get).
    pub fn lost(&self) -> u64 {
        self.ctl.0.lost.load(Ordering::Relaxed)
    }

    /// Loom models only: claims the slot at the tail for `value` like a put, then dies
    /// before publishing it (a `kill -9` in the middle of a put). With
    /// `advance_tail`, dies after moving the tail hint, else just before.
    #[cfg(shmkit_loom)]
    #[doc(hidden)]
    pub fn __loom_claim_then_die(&self, value: T, advance_tail: bool) {
        let me = my_pid();
        let mut claimed = None;
        for _ in 0..=N {
            let pos = Self::latest(&self.tail.0);
            let slot = &self.slots[(pos % N as u64) as usize];
            let lap = Self::lap_of(pos);
            let state = slot.state.fetch_add(0, Ordering::AcqRel);
            let (slap, kind, _) = unpack(state);
            if slap == lap && kind == FREE {
                if slot
                    .state
                    .compare_exchange(
                        state,
                        pack(lap, WRITING, me),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    claimed = Some((pos, slot));
                    break;
                }
            } else if slap == lap || (slap == next_lap(lap) && kind == FREE) {
                let _ = self.tail.0.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            } else {
                break; // full
            }
        }
        if let Some((pos, slot)) = claimed {
            if advance_tail {
                let _ = self.tail.0.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            // SAFETY: the slot is ours (WRITING with our pid).
            slot.value.with_mut(|p| unsafe { p.write(value) });
        }
        crate::primitive::loom_die();
    }

    /// Would a get return at once? (An item, closed and drained, or a dead holder to
    /// reclaim.) Claims nothing.
    pub(crate) fn ready_now(&self) -> bool {
        let mut pos = self.head.0.load(Ordering::Acquire);
        // The hint may lag by the gets in progress: look a little further.
        for _ in 0..N.min(64) {
            let (slap, kind, pid) = unpack(
                self.slots[(pos % N as u64) as usize]
                    .state
                    .load(Ordering::Acquire),
            );
            let lap = Self::lap_of(pos);
            match kind {
                FULL if slap == lap => return true,
                WRITING if slap == lap => {
                    return id_liveness(pid) == Liveness::Dead;
                }
                READING if slap == lap => pos = pos.wrapping_add(1),
                FREE if slap == next_lap(lap) => pos = pos.wrapping_add(1),
                _ => return self.closed_now(),
            }
        }
        self.closed_now()
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
            .field("lost", &self.lost())
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
// READING with its pid, claimed by CAS); everything else is atomic. Items move
// between threads and processes, hence `T: Send`.
unsafe impl<T: Pod + Send, const N: usize> Sync for Queue<T, N> {}
// SAFETY: repr(C), fixed-width atomics and `Pod` items (every bit pattern valid, no
// pointers a peer could mean), every state word validated before use, no Drop.
unsafe impl<T: Pod + Send, const N: usize> ShmSafe for Queue<T, N> {
    crate::segment::kit_identity!(Queue, 1, "shmkit::Queue", pod T, const N);
}
// SAFETY: all-zero is the documented empty, open state (FREE(0) slots, zero indices).
#[cfg(not(shmkit_loom))]
unsafe impl<T: Pod, const N: usize> bytemuck::Zeroable for Queue<T, N> {}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;

    #[test]
    fn state_word_roundtrip() {
        let s = pack(LAP_MASK, READING, 4_194_303);
        assert_eq!(unpack(s), (LAP_MASK, READING, 4_194_303));
        assert_eq!(next_lap(LAP_MASK), 0);
        assert_eq!(prev_lap(0), LAP_MASK);
        assert_eq!(pack(0, FREE, 0), 0);
    }

    #[test]
    fn fifo_wraps_many_laps() {
        let q = Queue::<u32, 3>::new();
        for round in 0..100u32 {
            for i in 0..3 {
                q.try_put(round * 3 + i).unwrap();
            }
            assert_eq!(q.try_put(7), Err(PutError::Full(7)));
            assert!(q.is_full());
            for i in 0..3 {
                assert_eq!(q.try_get(), Ok(round * 3 + i));
            }
            assert_eq!(q.try_get(), Err(GetError::Empty));
        }
    }

    #[test]
    fn corrupted_state_is_reported() {
        let q = Queue::<u64, 4>::new();
        q.try_put(1).unwrap();
        // A FULL state with a pid: impossible.
        q.slots[0].state.store(pack(0, FULL, 5), Ordering::Relaxed);
        assert_eq!(q.try_get(), Err(GetError::Corrupted));
        // A slot two laps ahead of both indices.
        q.slots[0].state.store(pack(2, FULL, 0), Ordering::Relaxed);
        assert_eq!(q.try_get(), Err(GetError::Corrupted));
        q.slots[1]
            .state
            .store(pack(3, WRITING, 1), Ordering::Relaxed);
        assert_eq!(q.try_put(9), Err(PutError::Corrupted(9)));
        // Indices far apart from the slots: every call still returns.
        q.tail.0.store(u64::MAX - 3, Ordering::Relaxed);
        assert!(q.try_put(9).is_err());
    }
}

//! The robust lock word shared by [`Mutex`](super::Mutex) and
//! [`ReentrantMutex`](super::ReentrantMutex).
//!
//! One `u32` in the kernel's robust-futex format (see the kernel's
//! `Documentation/locking/robust-futex-ABI.rst`), which is also the futex waiters
//! sleep on:
//!
//! ```text
//! bit 31      WAITERS      someone may be asleep on the word: unlock must FUTEX_WAKE
//! bit 30      OWNER_DIED   the lock was taken over from a dead owner and its data has
//!                          not been declared consistent yet
//! bits 0..=29 owner TID    the kernel-wide thread id of the holder, 0 = nobody
//! ```
//!
//! State table (`T` = a holder's participant id, `W` = WAITERS, `D` = OWNER_DIED):
//!
//! | word            | meaning                                              | left by |
//! |-----------------|------------------------------------------------------|---------|
//! | `0`             | unlocked, consistent (so zeroed memory is a valid lock) | unlock (swap to 0) |
//! | `T`             | held by `T`, nobody asleep                           | lock: CAS `0 -> T` |
//! | `T\|W`          | held by `T`, someone may sleep on the word           | a waiter: CAS `T -> T\|W`; a woken waiter's acquire |
//! | `T\|D`, `T\|D\|W` | held by `T`, who took it from a dead holder (`OwnerDead`) | takeover CAS `dead -> T\|D` |
//! | `D`, `D\|W`     | unlocked, inconsistent: the kernel's format for a dead robust owner (shmkit never writes it; accepted, the next locker gets `OwnerDead`) | the kernel |
//! | `0x3FFF_FFFF`   | not recoverable: an `OwnerDead` guard was dropped without `make_consistent` | unlock of a `D` word |
//!
//! Transitions:
//! - **lock** (fast path): CAS `0 -> T`, Acquire. No system call.
//! - **unlock** (only by the thread whose id is in the word): swap to `0`, Release;
//!   `FUTEX_WAKE(1)` only if `W` was set. If `D` is still set, the word becomes
//!   not recoverable instead and every sleeper is woken.
//! - **wait**: a contender spins briefly (per the process's
//!   [`WaitStrategy`](super::WaitStrategy)), then sets `W` and sleeps on the word in
//!   slices of [`SLICE`]. A contender that ever slept acquires with `W` set, since
//!   other sleepers may remain.
//! - **owner death**: after every sleep slice that ended without a wake-up, and once
//!   before giving up at its deadline, a contender asks whether the holder is still
//!   alive (a live holder's hand-off never pays for a check). `try_lock` asks too, at
//!   most once per [`SLICE`] per thread (a check can cost a system call).
//!   If the holder is dead, the contender CASes the exact word it inspected
//!   (`T_dead|flags`) to `mine|D|W?`: among several contenders racing, exactly one CAS
//!   succeeds and gets `OwnerDead`; the others see the new owner and keep waiting.
//!
//! ## Who `T` is
//!
//! `T` is the holding thread's *participant id* (`primitive::my_thread_id`, see
//! `sys::registry`): a registry slot and its generation, never a tid. A tid is reused
//! (a contender given a dead holder's tid would wait for itself, or re-enter a
//! `ReentrantMutex` it never took) and means nothing in another PID namespace (a live
//! holder there would be declared dead: two owners). A participant id is alive exactly
//! while its thread runs and its process holds the registry slot's lifeline, which the
//! kernel drops when the process dies, zombie or not, whatever its namespace. A thread
//! that exits holding no guard gives its slot back; one that leaked a guard
//! (`mem::forget`) keeps its id as long as its process lives, so the leaked lock stays
//! held, as `std`'s does — taking it over as a dead holder's could race with a
//! `&'static mut` into the data that the leak left in another thread. The id
//! is in the word from the very CAS that takes the lock, so no waiter can pair a fresh
//! holder with a stale record. Ids are below `2^30` (`primitive::ID_MASK`), so they fit
//! beside the two flags, and `ID_MASK` itself (`NOT_RECOVERABLE`) is never an id.
//!
//! ## Forked children
//!
//! Unlock compares the word's id with the caller's; a forked child has ids of its
//! own, so even a guard smuggled into a child (safe code cannot: see `Process::spawn`)
//! could not unlock its parent's lock.

use core::time::Duration;

use super::strategy::{Look, WaitStrategy, fixed_spin, spin_phase, wait_strategy};
use crate::primitive::{
    AtomicU32, Deadline, Liveness, Ordering, Wake, futex_wait, futex_wake, id_liveness,
    loom_const_fn, my_thread_id, spin_loop,
};

/// Bits 0..=29: the holder's participant id.
pub(crate) const TID_MASK: u32 = crate::primitive::ID_MASK;
/// The holder died; the data may be inconsistent.
pub(crate) const OWNER_DIED: u32 = 1 << 30;
/// Someone may sleep on the word.
pub(crate) const WAITERS: u32 = 1 << 31;
/// The lock can never be taken again (an `OwnerDead` guard was dropped unrepaired).
/// All id bits set: never a participant id.
pub(crate) const NOT_RECOVERABLE: u32 = TID_MASK;

/// How long a sleeping contender sleeps before it checks the holder's liveness again.
/// Bounds the time from a holder's death to the next locker's `OwnerDead`.
pub(crate) const SLICE: Duration = Duration::from_millis(5);

/// What an attempt to take the lock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// Taken; the data is consistent.
    Locked,
    /// Taken from a dead holder; `OWNER_DIED` is set until `make_consistent`.
    OwnerDead,
    /// The lock is not recoverable.
    NotRecoverable,
    /// Held by a live thread (try) or the deadline passed (timed).
    Busy,
}

impl Acquired {
    /// The caller's result: a guard (made by `guard`) for a taken lock, the guard in
    /// `OwnerDead` for a dead holder's, `busy` for a held one.
    #[inline]
    pub(crate) fn into_result<G>(
        self,
        guard: impl FnOnce() -> G,
        busy: super::LockError<G>,
    ) -> super::LockResult<G> {
        match self {
            Acquired::Locked => Ok(guard()),
            Acquired::OwnerDead => Err(super::LockError::OwnerDead(guard())),
            Acquired::NotRecoverable => Err(super::LockError::NotRecoverable),
            Acquired::Busy => Err(busy),
        }
    }
}

/// The lock word; see the module docs for its state table.
///
/// ```text
/// offset size field  written by
///      0    4 word   lockers (CAS), waiters (set WAITERS), the holder (unlock)
/// ```
#[repr(C)]
pub(crate) struct RawMutex {
    word: AtomicU32,
}

crate::layout::pin_layout!(RawMutex { word: 0 }, size 4, align 4);

/// The calling thread's participant id, as it appears in lock words.
#[inline]
pub(crate) fn my_tid() -> u32 {
    let id = my_thread_id();
    debug_assert!(id != 0 && id < TID_MASK, "id {id} does not fit a lock word");
    id
}

/// Under loom, whether a sleep slice "expires" (a yield, then another look at the
/// holder's liveness) instead of sleeping on the modelled futex until woken. Models of
/// owner death need it (a dead holder never wakes anyone); models of hand-off leave it
/// off so that a lost wake-up shows up as a deadlock.
#[cfg(shmkit_loom)]
static LOOM_SLICES_EXPIRE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Under loom: makes the mutexes' sleep slices expire (see `LOOM_SLICES_EXPIRE`).
#[cfg(shmkit_loom)]
pub fn loom_set_slices_expire(expire: bool) {
    LOOM_SLICES_EXPIRE.store(expire, std::sync::atomic::Ordering::SeqCst);
}

impl RawMutex {
    loom_const_fn! {
        /// An unlocked, consistent lock (all-zero).
        pub(crate) const fn new() -> Self {
            RawMutex { word: AtomicU32::new(0) }
        }
    }

    /// The raw word (for `Debug` and tests).
    #[inline]
    pub(crate) fn load(&self) -> u32 {
        self.word.load(Ordering::Relaxed)
    }

    /// One attempt to take the lock as thread `tid`, with no system call and no
    /// liveness check. `extra` is OR-ed into the word on success (`WAITERS` for a
    /// contender that slept).
    #[inline]
    pub(crate) fn try_lock_as(&self, tid: u32, extra: u32) -> Acquired {
        // SYNC POINT with the Release swap in `unlock_as` (the previous holder's
        // writes to the data happen before ours).
        match self
            .word
            .compare_exchange(0, tid | extra, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Acquired::Locked,
            Err(cur) => self.try_lock_contended(tid, extra, cur),
        }
    }

    /// One attempt to take the lock as `tid` (no waiting), which also detects a dead
    /// holder: if the lock is held, the holder's liveness is checked — at most once
    /// per [`SLICE`] per thread, since a check can cost a system call — and a dead
    /// holder's lock is taken over (`OwnerDead`).
    #[inline]
    pub(crate) fn try_lock_checked(&self, tid: u32, recover_unrecoverable: bool) -> Acquired {
        match self.try_lock_as(tid, 0) {
            Acquired::Busy => self.try_lock_busy(tid),
            Acquired::NotRecoverable if recover_unrecoverable => {
                self.take_over_unrecoverable(tid).unwrap_or(Acquired::Busy)
            }
            done => done,
        }
    }

    #[cold]
    #[inline(never)]
    fn try_lock_busy(&self, tid: u32) -> Acquired {
        if !crate::primitive::liveness_check_due(SLICE) {
            return Acquired::Busy;
        }
        self.take_over_if_dead(tid, 0).unwrap_or(Acquired::Busy)
    }

    /// Takes a not-recoverable word as from a dead holder (for cells).
    fn take_over_unrecoverable(&self, tid: u32) -> Option<Acquired> {
        let cur = self.word.load(Ordering::Relaxed);
        if cur & TID_MASK != NOT_RECOVERABLE {
            return None;
        }
        // SYNC POINT with the Release swap to NOT_RECOVERABLE in `mark_not_recoverable`.
        self.word
            .compare_exchange(
                cur,
                tid | OWNER_DIED | (cur & WAITERS),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()
            .map(|_| Acquired::OwnerDead)
    }

    /// The word was not 0: not recoverable, held, or free but inconsistent.
    fn try_lock_contended(&self, tid: u32, extra: u32, mut cur: u32) -> Acquired {
        loop {
            let owner = cur & TID_MASK;
            if owner == NOT_RECOVERABLE {
                return Acquired::NotRecoverable;
            }
            if owner != 0 {
                return Acquired::Busy;
            }
            // Free with flags (the kernel's dead-owner format, or WAITERS left over):
            // keep the flags, add our tid.
            // SYNC POINT with the Release swap in `unlock_as`.
            match self.word.compare_exchange(
                cur,
                cur | tid | extra,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) if cur & OWNER_DIED != 0 => return Acquired::OwnerDead,
                Ok(_) => return Acquired::Locked,
                Err(now) => cur = now,
            }
        }
    }

    /// Takes the lock, waiting until `deadline`; detects a dead holder. With
    /// `recover_unrecoverable`, a not-recoverable word is taken as from a dead holder
    /// (for cells, whose `Pod` data is valid whatever happened to it).
    #[inline]
    pub(crate) fn lock(
        &self,
        tid: u32,
        deadline: Deadline,
        recover_unrecoverable: bool,
    ) -> Acquired {
        match self.try_lock_as(tid, 0) {
            Acquired::Busy => self.lock_slow(tid, deadline, recover_unrecoverable),
            Acquired::NotRecoverable if recover_unrecoverable => {
                self.lock_slow(tid, deadline, true)
            }
            done => done,
        }
    }

    #[cold]
    fn lock_slow(&self, tid: u32, deadline: Deadline, recover_unrecoverable: bool) -> Acquired {
        let strategy = wait_strategy();
        // Phase 1: spin (per the strategy), retrying the cheap attempt.
        let (hints, yields) = fixed_spin(strategy);
        let mut next_check = Deadline::after(SLICE);
        let spun = spin_phase(hints, yields, deadline, |periodic| {
            match self.try_lock_as(tid, 0) {
                Acquired::Busy => {}
                Acquired::NotRecoverable if recover_unrecoverable => return Look::Stop,
                done => return Look::Ready(done),
            }
            // Busy-spinning never sleeps: look at the holder's liveness now and then.
            if periodic && next_check.expired() {
                if let Some(done) = self.take_over_if_dead(tid, 0) {
                    return Look::Ready(done);
                }
                next_check = Deadline::after(SLICE);
            }
            Look::NotYet
        });
        if let Some(done) = spun {
            return done;
        }
        // Phase 2: sleep on the word in slices, checking the holder's liveness after
        // every slice that ended without a wake-up (a live holder's hand-off costs no
        // liveness check), and once more before giving up at the deadline.
        let mut check_liveness = false;
        loop {
            let cur = self.word.load(Ordering::Relaxed);
            let owner = cur & TID_MASK;
            if owner == NOT_RECOVERABLE && !recover_unrecoverable {
                return Acquired::NotRecoverable;
            }
            if owner == 0 {
                // Free: take it, keeping WAITERS (other sleepers may remain).
                match self.try_lock_contended(tid, WAITERS, cur) {
                    Acquired::Busy => continue,
                    // The word became not recoverable between our two loads: for a
                    // cell, look again (the next round takes it over).
                    Acquired::NotRecoverable if recover_unrecoverable => continue,
                    done => return done,
                }
            }
            if owner == NOT_RECOVERABLE || (check_liveness && owner_is_dead(owner)) {
                // SYNC POINT with the Release swap in `unlock_as` / the takeover CAS of
                // a previous contender (the dead holder published nothing more).
                if self
                    .word
                    .compare_exchange(
                        cur,
                        tid | OWNER_DIED | (cur & WAITERS),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    return Acquired::OwnerDead;
                }
                continue;
            }
            if deadline.expired() {
                if !check_liveness {
                    if let Some(done) = self.take_over_if_dead(tid, 0) {
                        return done;
                    }
                }
                return Acquired::Busy;
            }
            if cur & WAITERS == 0
                && self
                    .word
                    .compare_exchange(cur, cur | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let woke = self.sleep_slice(cur | WAITERS, deadline, strategy);
            check_liveness = woke == Wake::TimedOut;
        }
    }

    /// Sleeps (or, under `Spin`, spins) while the word is `expected`, until woken, the
    /// deadline, or one [`SLICE`]. `TimedOut` = the slice or deadline ran out.
    fn sleep_slice(&self, expected: u32, deadline: Deadline, strategy: WaitStrategy) -> Wake {
        #[cfg(shmkit_loom)]
        if LOOM_SLICES_EXPIRE.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = (expected, deadline, strategy);
            crate::primitive::yield_now();
            return Wake::TimedOut;
        }
        let slice = Deadline::after(SLICE);
        let until = match (slice.as_ns(), deadline.as_ns()) {
            (Some(s), Some(d)) if d < s => deadline,
            _ => slice,
        };
        if strategy == WaitStrategy::Spin {
            let mut i: u32 = 0;
            loop {
                spin_loop();
                if self.word.load(Ordering::Relaxed) != expected {
                    return Wake::Woken;
                }
                if i % 64 == 63 && until.expired() {
                    return Wake::TimedOut;
                }
                i = i.wrapping_add(1);
            }
        }
        futex_wait(&self.word, expected, until)
    }

    /// One liveness check of the current holder; takes the lock over if it is dead.
    fn take_over_if_dead(&self, tid: u32, extra: u32) -> Option<Acquired> {
        let cur = self.word.load(Ordering::Relaxed);
        let owner = cur & TID_MASK;
        if owner == 0 || owner == NOT_RECOVERABLE || !owner_is_dead(owner) {
            return None;
        }
        // SYNC POINT with the takeover CAS of other contenders: exactly one wins.
        self.word
            .compare_exchange(
                cur,
                tid | OWNER_DIED | extra | (cur & WAITERS),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()
            .map(|_| Acquired::OwnerDead)
    }

    /// Is the lock word owned by `tid`?
    #[inline]
    pub(crate) fn is_owned_by(&self, tid: u32) -> bool {
        self.word.load(Ordering::Relaxed) & TID_MASK == tid
    }

    /// Releases the lock if `tid` holds it: back to free, or to not recoverable if it
    /// is still marked `OWNER_DIED`. Returns false (and changes nothing) if `tid` is not
    /// the holder (a forked child's inherited guard).
    #[inline]
    pub(crate) fn unlock_as(&self, tid: u32) -> bool {
        let cur = self.word.load(Ordering::Relaxed);
        if cur & TID_MASK != tid {
            return false;
        }
        if cur & OWNER_DIED != 0 {
            self.mark_not_recoverable();
            return true;
        }
        // Only WAITERS can change under us (contenders set it); the swap keeps that.
        // SYNC POINT with the Acquire CAS in `try_lock_as` / `lock_slow`.
        let prev = self.word.swap(0, Ordering::Release);
        if prev & WAITERS != 0 {
            self.wake_one();
        }
        true
    }

    #[cold]
    fn wake_one(&self) {
        futex_wake(&self.word, 1);
    }

    #[cold]
    fn mark_not_recoverable(&self) {
        // SYNC POINT with the Acquire loads of lockers that then report NotRecoverable.
        let prev = self.word.swap(NOT_RECOVERABLE, Ordering::Release);
        if prev & WAITERS != 0 {
            futex_wake(&self.word, u32::MAX);
        }
    }

    /// Clears `OWNER_DIED` if `tid` holds the lock.
    pub(crate) fn make_consistent_as(&self, tid: u32) {
        let cur = self.word.load(Ordering::Relaxed);
        if cur & TID_MASK == tid && cur & OWNER_DIED != 0 {
            self.word.fetch_and(!OWNER_DIED, Ordering::Relaxed);
        }
    }

    /// Is it held (or not recoverable, so never lockable)?
    pub(crate) fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & TID_MASK != 0
    }
}

/// Is participant `tid` (a lock word's owner) known to be dead? `Unknown` = alive.
fn owner_is_dead(tid: u32) -> bool {
    id_liveness(tid) == Liveness::Dead
}

/// Decodes a lock word for `Debug` output.
pub(crate) struct WordDebug(pub(crate) u32);

impl core::fmt::Debug for WordDebug {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let word = self.0;
        let owner = word & TID_MASK;
        if owner == NOT_RECOVERABLE {
            return f.write_str("NotRecoverable");
        }
        let mut s = f.debug_struct("Lock");
        if owner == 0 {
            s.field("owner", &None::<u32>);
        } else {
            s.field("owner", &Some(owner));
        }
        s.field("waiters", &(word & WAITERS != 0))
            .field("owner_died", &(word & OWNER_DIED != 0))
            .finish()
    }
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;

    // Pure word transitions: no tid lookup, no futex (nobody sleeps), no clock.
    #[test]
    fn miri_try_lock_unlock_word_transitions() {
        let m = RawMutex::new();
        assert_eq!(m.try_lock_as(7, 0), Acquired::Locked);
        assert_eq!(m.load(), 7);
        assert_eq!(m.try_lock_as(8, 0), Acquired::Busy);
        // Another tid (a forked child's guard) cannot unlock.
        assert!(!m.unlock_as(8));
        assert_eq!(m.load(), 7);
        assert!(m.unlock_as(7));
        assert_eq!(m.load(), 0);
        assert!(!m.is_locked());
    }

    #[test]
    fn miri_owner_died_then_consistent_or_not_recoverable() {
        // The kernel's dead-owner format: free, OWNER_DIED set.
        let m = RawMutex {
            word: AtomicU32::new(OWNER_DIED),
        };
        assert_eq!(m.try_lock_as(5, 0), Acquired::OwnerDead);
        assert_eq!(m.load(), 5 | OWNER_DIED);
        m.make_consistent_as(5);
        assert!(m.unlock_as(5));
        assert_eq!(m.try_lock_as(6, 0), Acquired::Locked);
        assert!(m.unlock_as(6));

        let m = RawMutex {
            word: AtomicU32::new(OWNER_DIED),
        };
        assert_eq!(m.try_lock_as(5, 0), Acquired::OwnerDead);
        // Released without make_consistent: not recoverable for good.
        assert!(m.unlock_as(5));
        assert_eq!(m.load(), NOT_RECOVERABLE);
        assert_eq!(m.try_lock_as(6, 0), Acquired::NotRecoverable);
        assert!(m.is_locked());
    }
}

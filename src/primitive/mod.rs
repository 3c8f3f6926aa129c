//! The primitive facade: the only place that names atomics, `UnsafeCell`, spin hints
//! and the futex pair for the algorithms above it.
//!
//! Built normally, these are `core`'s types and the shared futex of [`crate::sys`].
//! Built with `RUSTFLAGS="--cfg shmkit_loom"`, they come from [`loom`], so every lock,
//! ring and queue runs unchanged inside loom's model checker:
//!
//! - The futex is modelled exactly as the kernel defines it: `futex_wait` compares the
//!   word and enqueues the thread under one lock (the kernel's hash-bucket lock), then
//!   parks; `futex_wake` dequeues and unparks up to `count` waiters. A missed wake-up
//!   is therefore not papered over by polling: loom reports it as a deadlock.
//! - Time is a model thread's choice: a [`Deadline`] from a zero timeout has always
//!   expired; every other finite deadline expires at once, together, when some model
//!   thread calls [`loom_clock_tick`] (models that never call it keep time standing
//!   still). The tick also ends every timed futex sleep, so loom explores each
//!   timeout racing with each wake-up.
//! - A death ([`loom_die`], or a die point: [`loom_die_at`]) lets time pass too, but
//!   only as far as crash detection needs: each finite deadline whose thread has not
//!   yet seen that death expire one of its deadlines passes, and every timed sleep
//!   ends. So after each death, every waiting thread's current sleep slice ends once
//!   and it looks again (at the dead process's claims, say), as the real clock would
//!   make it, while a thread that sleeps again after that sleeps until woken.
//!
//! `clippy.toml` forbids naming `core::sync::atomic` and `core::cell::UnsafeCell`
//! anywhere else in the crate's algorithms.
#![allow(clippy::disallowed_types)]
// Each build of the crate (std or not, loom or not) uses a different subset.
#![allow(dead_code)]

use core::time::Duration;

#[cfg(not(shmkit_loom))]
#[allow(unused_imports)]
pub(crate) use core::sync::atomic::{Ordering, fence};

/// Defines the facade's atomics outside loom: `#[repr(transparent)]` newtypes over
/// `core`'s, so they have the same layout in shared memory, `const fn new` for statics,
/// and every method through `Deref`. Being types of their own lets `clippy.toml` forbid
/// `core::sync::atomic` everywhere but here.
#[cfg(not(shmkit_loom))]
macro_rules! facade_atomics {
    ($($name:ident($int:ty)),* $(,)?) => {
        $(
            #[doc = concat!("`core::sync::atomic::", stringify!($name), "` (loom's under `shmkit_loom`).")]
            #[repr(transparent)]
            #[derive(Default)]
            pub(crate) struct $name(core::sync::atomic::$name);

            impl $name {
                /// A new atomic holding `value`.
                #[inline]
                pub(crate) const fn new(value: $int) -> Self {
                    $name(core::sync::atomic::$name::new(value))
                }
            }

            impl core::ops::Deref for $name {
                type Target = core::sync::atomic::$name;
                #[inline]
                fn deref(&self) -> &Self::Target {
                    &self.0
                }
            }

            impl core::ops::DerefMut for $name {
                #[inline]
                fn deref_mut(&mut self) -> &mut Self::Target {
                    &mut self.0
                }
            }

            impl core::fmt::Debug for $name {
                fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                    core::fmt::Debug::fmt(&self.0, f)
                }
            }
        )*
    };
}

#[cfg(not(shmkit_loom))]
facade_atomics!(
    AtomicU8(u8),
    AtomicU32(u32),
    AtomicU64(u64),
    AtomicI32(i32),
    AtomicI64(i64),
);
#[cfg(shmkit_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::atomic::{
    AtomicI32, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering, fence,
};

/// Marks a `const fn` that can be `const` only outside loom (loom's atomics have no
/// `const` constructors). Write `loom_const_fn! { pub const fn new() -> Self { .. } }`.
macro_rules! loom_const_fn {
    ($(#[$meta:meta])* $vis:vis const fn $($rest:tt)*) => {
        #[cfg(not(shmkit_loom))]
        $(#[$meta])* $vis const fn $($rest)*
        #[cfg(shmkit_loom)]
        $(#[$meta])* $vis fn $($rest)*
    };
}
pub(crate) use loom_const_fn;

/// A spin-wait hint (`pause`); under loom, a yield to the model's scheduler.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(shmkit_loom))]
    core::hint::spin_loop();
    #[cfg(shmkit_loom)]
    loom::thread::yield_now();
}

/// `UnsafeCell` with the closure-based accessors loom needs to track accesses.
///
/// Outside loom it is `#[repr(transparent)]` over `core::cell::UnsafeCell<T>`, so it
/// has `T`'s layout and can sit in shared memory.
#[cfg(not(shmkit_loom))]
#[repr(transparent)]
#[derive(Default)]
pub(crate) struct UnsafeCell<T: ?Sized>(core::cell::UnsafeCell<T>);

#[cfg(not(shmkit_loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[inline]
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    /// Unwraps the value.
    #[inline]
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(shmkit_loom))]
impl<T: ?Sized> UnsafeCell<T> {
    /// Calls `f` with a shared raw pointer to the contents.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a unique raw pointer to the contents.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }

    /// The contents, through exclusive access.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

#[cfg(shmkit_loom)]
#[allow(unused_imports)]
pub(crate) use loom::cell::UnsafeCell;

/// An absolute `CLOCK_MONOTONIC` deadline, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// Nanoseconds on `CLOCK_MONOTONIC`; `u64::MAX` = never.
    at_ns: u64,
}

impl Deadline {
    /// No deadline: wait forever.
    pub const NEVER: Deadline = Deadline { at_ns: u64::MAX };

    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        #[cfg(not(shmkit_loom))]
        {
            Deadline {
                at_ns: crate::sys::time::deadline_after(timeout),
            }
        }
        #[cfg(shmkit_loom)]
        {
            // 0: expired; finite: expires at the model's clock tick, or at a death
            // that this thread had not seen when it made the deadline.
            Deadline {
                at_ns: if timeout.is_zero() {
                    0
                } else {
                    loom_ids::finite_deadline()
                },
            }
        }
    }

    /// From an optional timeout: `None` = [`Deadline::NEVER`].
    pub fn from_timeout(timeout: Option<Duration>) -> Deadline {
        timeout.map_or(Deadline::NEVER, Deadline::after)
    }

    /// Has it passed?
    #[inline]
    pub fn expired(&self) -> bool {
        if self.at_ns == u64::MAX {
            return false;
        }
        #[cfg(not(shmkit_loom))]
        {
            self.at_ns == 0 || crate::sys::time::monotonic_ns() >= self.at_ns
        }
        #[cfg(shmkit_loom)]
        {
            self.at_ns == 0 || loom_futex::ticked() || loom_ids::deadline_expired(self.at_ns)
        }
    }

    /// Is this a real deadline (not [`Deadline::NEVER`])?
    pub fn is_finite(&self) -> bool {
        self.at_ns != u64::MAX
    }

    /// The absolute time in nanoseconds, `None` for never.
    pub fn as_ns(&self) -> Option<u64> {
        self.is_finite().then_some(self.at_ns)
    }

    /// The earlier of `self` and `other`.
    #[inline]
    pub fn earlier(self, other: Deadline) -> Deadline {
        if other.at_ns < self.at_ns {
            other
        } else {
            self
        }
    }
}

/// How a [`futex_wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken, or spurious, or the word had changed: re-check the condition.
    Woken,
    /// The deadline passed.
    TimedOut,
}

/// Sleeps while `*word == expected`, until woken or `deadline`. May return spuriously.
#[inline]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, deadline: Deadline) -> Wake {
    #[cfg(not(shmkit_loom))]
    {
        if deadline.expired() {
            return Wake::TimedOut;
        }
        match crate::sys::futex::wait(word, expected, deadline.as_ns()) {
            crate::sys::futex::FutexWait::Woken => Wake::Woken,
            crate::sys::futex::FutexWait::TimedOut => Wake::TimedOut,
        }
    }
    #[cfg(shmkit_loom)]
    {
        if deadline.expired() {
            // A waiter that loops on an expired deadline must let others run.
            loom::thread::yield_now();
            return Wake::TimedOut;
        }
        loom_futex::wait(word, expected, deadline)
    }
}

/// Sleeps while every `(word, expected)` holds, until one of the words is woken or
/// changes, or `deadline` (`futex_waitv`, Linux 5.16; where the kernel lacks it, on the
/// first word in 1 ms slices). May return spuriously. At most 128 words.
pub(crate) fn futex_waitv(words: &[(&AtomicU32, u32)], deadline: Deadline) -> Wake {
    #[cfg(not(shmkit_loom))]
    {
        if deadline.expired() {
            return Wake::TimedOut;
        }
        let Some(&(first, first_expected)) = words.first() else {
            return Wake::Woken;
        };
        // The kernel-visible words behind the facade's atomics.
        let mut pairs = [(&first.0, 0u32); 128];
        let n = words.len().min(pairs.len());
        for (pair, (word, expected)) in pairs.iter_mut().zip(&words[..n]) {
            *pair = (&word.0, *expected);
        }
        match crate::sys::futex::waitv(&pairs[..n], deadline.as_ns()) {
            Ok(crate::sys::futex::FutexWait::Woken) => Wake::Woken,
            Ok(crate::sys::futex::FutexWait::TimedOut) => Wake::TimedOut,
            Err(crate::sys::futex::WaitvUnsupported) => {
                let short = deadline.earlier(Deadline::after(Duration::from_millis(1)));
                futex_wait(first, first_expected, short)
            }
        }
    }
    #[cfg(shmkit_loom)]
    {
        loom_futex::waitv(words, deadline)
    }
}

/// Wakes up to `count` sleepers on `word` (`u32::MAX`: all). Returns how many woke.
#[inline]
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> usize {
    #[cfg(not(shmkit_loom))]
    {
        crate::sys::futex::wake(word, count)
    }
    #[cfg(shmkit_loom)]
    {
        loom_futex::wake(word, count)
    }
}

/// The waker's half of an asymmetric StoreLoad barrier (see `sys::membarrier`): a
/// compiler fence once this process is registered for `membarrier`, else a real
/// fence. Under loom, `fence(SeqCst)`: the model checks the Dekker argument with the
/// pair of fences that the system call stands for.
#[inline]
pub(crate) fn light_barrier() {
    #[cfg(not(shmkit_loom))]
    crate::sys::membarrier::light();
    #[cfg(shmkit_loom)]
    fence(Ordering::SeqCst);
}

/// The waiter's half (see [`light_barrier`]): a fence plus
/// `membarrier(GLOBAL_EXPEDITED)`. `false`: wakers may have skipped their barrier
/// unseen, so the caller must sleep only in short slices.
#[inline]
pub(crate) fn heavy_barrier() -> bool {
    #[cfg(not(shmkit_loom))]
    {
        crate::sys::membarrier::heavy()
    }
    #[cfg(shmkit_loom)]
    {
        fence(Ordering::SeqCst);
        true
    }
}

/// Gives the CPU to another runnable thread (`sched_yield`); under loom, a yield to
/// the model's scheduler.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(shmkit_loom))]
    rustix::thread::sched_yield();
    #[cfg(shmkit_loom)]
    loom::thread::yield_now();
}

/// The futex modelled for loom: a registry of parked threads keyed by word address.
#[cfg(shmkit_loom)]
mod loom_futex {
    use super::{AtomicU32, Deadline, Ordering, Wake};
    use loom::sync::Mutex;
    use loom::thread::Thread;
    use std::vec::Vec;

    /// The parked: (word address, thread, sleeps with a finite deadline), in arrival
    /// order.
    struct Futexes {
        queue: Vec<(usize, Thread, bool)>,
    }

    loom::lazy_static! {
        static ref QUEUE: Mutex<Futexes> = Mutex::new(Futexes { queue: Vec::new() });
        /// Has the model's clock ticked? Set under the queue's lock; read with Relaxed
        /// outside it, so that looking at a deadline adds no happens-before edge that
        /// the real clock would not give.
        static ref TICKED: loom::sync::atomic::AtomicBool = loom::sync::atomic::AtomicBool::new(false);
    }

    fn key(word: &AtomicU32) -> usize {
        core::ptr::from_ref(word) as usize
    }

    pub(super) fn wait(word: &AtomicU32, expected: u32, deadline: Deadline) -> Wake {
        waitv(&[(word, expected)], deadline)
    }

    /// `futex_waitv`: sleeps on every word at once while each holds its expected value;
    /// a wake on any of them dequeues the sleeper from all (as the kernel does).
    pub(super) fn waitv(words: &[(&AtomicU32, u32)], deadline: Deadline) -> Wake {
        let me = loom::thread::current();
        let timed = deadline.is_finite();
        {
            let mut f = QUEUE.lock().unwrap();
            // The clock is read under the same lock the tick (and a death's wake-up)
            // takes: a timed sleep is either ended by them or sees them here.
            if timed && deadline.expired() {
                return Wake::TimedOut;
            }
            // The kernel compares and enqueues atomically with respect to wakers.
            if words
                .iter()
                .any(|(word, expected)| word.load(Ordering::SeqCst) != *expected)
            {
                return Wake::Woken;
            }
            for (word, _) in words {
                f.queue.push((key(word), me.clone(), timed));
            }
        }
        loom::thread::park();
        let mut f = QUEUE.lock().unwrap();
        f.queue.retain(|(_, t, _)| t.id() != me.id());
        if timed && deadline.expired() {
            Wake::TimedOut
        } else {
            Wake::Woken
        }
    }

    /// Has the clock ticked (every finite deadline passed)?
    pub(super) fn ticked() -> bool {
        TICKED.load(Ordering::Relaxed)
    }

    /// The clock ticks: every finite deadline passes, every timed sleep ends.
    pub(super) fn tick() {
        let mut f = QUEUE.lock().unwrap();
        TICKED.store(true, Ordering::Relaxed);
        end_timed_sleeps(&mut f);
    }

    /// A death: every timed sleep ends (its deadline has passed, see `loom_ids`).
    pub(super) fn death() {
        let mut f = QUEUE.lock().unwrap();
        end_timed_sleeps(&mut f);
    }

    fn end_timed_sleeps(f: &mut Futexes) {
        f.queue.retain(|(_, t, timed)| {
            if *timed {
                t.unpark();
            }
            !*timed
        });
    }

    pub(super) fn wake(word: &AtomicU32, count: u32) -> usize {
        let mut f = QUEUE.lock().unwrap();
        let queue = &mut f.queue;
        let k = key(word);
        let mut woken = 0usize;
        let mut i = 0;
        while i < queue.len() && woken < count as usize {
            if queue[i].0 == k {
                let (_, thread, _) = queue.remove(i);
                // A multi-word sleeper leaves every queue it was on.
                queue.retain(|(_, t, _)| t.id() != thread.id());
                i = queue
                    .iter()
                    .position(|(w, _, _)| *w == k)
                    .unwrap_or(queue.len());
                thread.unpark();
                woken += 1;
            } else {
                i += 1;
            }
        }
        woken
    }
}

pub(crate) use crate::sys::proc::Liveness;

// ---- identity and liveness ---------------------------------------------------------
//
// Shared words (lock words, queue claims, pipe-end owners) record *participant ids*,
// never pids or tids: see `sys::registry` for what an id is and why. Every algorithm
// asks these four functions and nothing else.

/// The bits a participant id may use: ids are non-zero and below `2^30`, so that they
/// fit a 32-bit futex word beside two flag bits. `ID_MASK` itself is never an id.
pub(crate) const ID_MASK: u32 = 0x3FFF_FFFF;

/// The calling process's participant id (non-zero, `< ID_MASK`): the owner of things a
/// process holds as a whole (pipe ends, queue claims). Under loom, the model thread's.
#[inline]
pub(crate) fn my_process_id() -> u32 {
    #[cfg(not(shmkit_loom))]
    {
        crate::sys::ids::process_id()
    }
    #[cfg(shmkit_loom)]
    {
        loom_ids::current() as u32
    }
}

/// The calling thread's participant id (non-zero, `< ID_MASK`): the owner of things a
/// thread holds (lock words). Under loom, the model thread's (each stands for a process).
#[inline]
pub(crate) fn my_thread_id() -> u32 {
    #[cfg(not(shmkit_loom))]
    {
        crate::sys::ids::thread_id()
    }
    #[cfg(shmkit_loom)]
    {
        loom_ids::current() as u32
    }
}

/// Is participant `id` (a process's or a thread's) alive? `Unknown` must be treated as
/// alive: a failed check may cost latency, never safety. `Dead` is final: an id that
/// was found dead never comes back to life. Under loom: dead once the model thread with
/// that id called [`loom_die`].
pub(crate) fn id_liveness(id: u32) -> Liveness {
    #[cfg(not(shmkit_loom))]
    {
        crate::sys::ids::liveness(id)
    }
    #[cfg(shmkit_loom)]
    {
        loom_ids::liveness(id as i32)
    }
}

/// Is a (possibly system-call priced) liveness check due on this thread? True at most
/// once per `period` per thread (with `std`; always without it, and under loom): for
/// non-blocking calls such as `try_lock`, which must notice a dead holder without
/// making every failed attempt a system call.
#[inline]
pub(crate) fn liveness_check_due(period: Duration) -> bool {
    #[cfg(all(feature = "std", not(shmkit_loom)))]
    {
        std::thread_local! {
            static NEXT: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
        }
        let now = crate::sys::time::monotonic_ns();
        NEXT.try_with(|next| {
            if now < next.get() {
                return false;
            }
            let period = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
            next.set(now.saturating_add(period));
            true
        })
        .unwrap_or(true)
    }
    #[cfg(not(all(feature = "std", not(shmkit_loom))))]
    {
        let _ = period;
        true
    }
}

/// The participant id of the child being handed values by [`crate::process`] right
/// now: set on the parent's side while it drops the closure it just forked with, so
/// that a handle moved into that closure can pass what it owns to the child (a pipe end
/// is pre-claimed for the child). `None` everywhere else.
#[inline]
pub(crate) fn handoff_target() -> Option<u32> {
    #[cfg(all(feature = "std", not(shmkit_loom)))]
    {
        crate::sys::ids::handoff_target()
    }
    #[cfg(not(all(feature = "std", not(shmkit_loom))))]
    {
        None
    }
}

/// Under loom: the model's clock ticks — every finite [`Deadline`] passes at once and
/// every sleep with one ends (see the module docs). Call it from a model thread to have
/// loom explore timeouts against every other step.
#[cfg(shmkit_loom)]
pub fn loom_clock_tick() {
    loom_futex::tick();
}

/// Under loom: marks the calling model thread as dead (a `kill -9` stand-in). The
/// thread should then return without running any more kit code (leak guards with
/// `mem::forget` to model dying while holding them).
#[cfg(shmkit_loom)]
pub fn loom_die() {
    loom_ids::die();
}

/// A "die here" point in the real code of a protocol, for loom models of a process
/// killed at that instruction: the model thread that asked for `name` (with
/// [`loom_die_at`]) is marked dead here and unwinds out of the kit without running
/// another line of it (see [`loom_until_death`]). Outside loom it is nothing at all.
#[inline(always)]
pub(crate) fn die_point(name: &'static str) {
    #[cfg(shmkit_loom)]
    loom_ids::die_point(name);
    #[cfg(not(shmkit_loom))]
    let _ = name;
}

/// Under loom: the calling model thread is to die at the [`die_point`] `name`.
#[cfg(shmkit_loom)]
pub fn loom_die_at(name: &'static str) {
    loom_ids::die_at(name);
}

/// Under loom: runs `f`, which may die at a [`die_point`]; `None` if it did. The
/// thread should then return without running any more kit code.
#[cfg(shmkit_loom)]
pub fn loom_until_death<R>(f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) if payload.is::<loom_ids::Died>() => None,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Process/thread identities for loom models.
#[cfg(shmkit_loom)]
mod loom_ids {
    use super::{Liveness, Ordering};
    use loom::sync::Mutex;
    use std::vec::Vec;

    loom::lazy_static! {
        /// Next id to hand out, and the ids that have "died".
        static ref IDS: Mutex<(i32, Vec<i32>)> = Mutex::new((1, Vec::new()));
    }
    loom::thread_local! {
        static MINE: core::cell::Cell<i32> = core::cell::Cell::new(0);
    }

    pub(super) fn current() -> i32 {
        MINE.with(|mine| {
            if mine.get() == 0 {
                let mut ids = IDS.lock().unwrap();
                mine.set(ids.0);
                ids.0 += 1;
            }
            mine.get()
        })
    }

    pub(super) fn liveness(id: i32) -> Liveness {
        if IDS.lock().unwrap().1.contains(&id) {
            Liveness::Dead
        } else {
            Liveness::Alive
        }
    }

    pub(super) fn die() {
        let me = current();
        IDS.lock().unwrap().1.push(me);
        DEATHS.fetch_add(1, Ordering::Relaxed);
        super::loom_futex::death();
    }

    loom::lazy_static! {
        /// How many model threads have died. Relaxed, as `TICKED`: looking at a
        /// deadline adds no happens-before edge (the futex queue's lock orders a death
        /// against a sleep).
        static ref DEATHS: loom::sync::atomic::AtomicU64 = loom::sync::atomic::AtomicU64::new(0);
    }

    /// The mark of a finite deadline (`Deadline::at_ns`), beside the deaths its thread
    /// had seen when it was made.
    const FINITE: u64 = 1 << 62;

    loom::thread_local! {
        /// How many deaths this thread's expired deadlines have accounted for.
        static SEEN: core::cell::Cell<u64> = core::cell::Cell::new(0);
    }

    /// A finite deadline made now.
    pub(super) fn finite_deadline() -> u64 {
        FINITE | SEEN.with(core::cell::Cell::get)
    }

    /// Has a finite deadline passed at a death? Once a death happened that its thread
    /// had not seen when the deadline was made.
    pub(super) fn deadline_expired(at_ns: u64) -> bool {
        let deaths = DEATHS.load(Ordering::Relaxed);
        if deaths > at_ns & !FINITE {
            SEEN.with(|seen| seen.set(seen.get().max(deaths)));
            true
        } else {
            false
        }
    }

    loom::thread_local! {
        /// The die point this model thread is to die at.
        static DIE_AT: core::cell::Cell<Option<&'static str>> = core::cell::Cell::new(None);
    }

    /// The unwinding payload of a death at a die point.
    pub(super) struct Died;

    pub(super) fn die_at(name: &'static str) {
        DIE_AT.with(|d| d.set(Some(name)));
    }

    pub(super) fn die_point(name: &'static str) {
        if DIE_AT.with(|d| d.get()) == Some(name) {
            die();
            // No panic hook, no message: a kill, not a bug.
            std::panic::resume_unwind(std::boxed::Box::new(Died));
        }
    }
}

//! Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event and Barrier proxies.

use core::time::Duration;

use super::{boolean, count, proxy, unit};
use crate::manager::protocol::{Kind, Op, Wait};
use crate::manager::{Error, Manager};

/// Maps a `try_`/timeout acquire's reply: taken, not taken, or an error.
fn taken(r: Result<(), Error>) -> Result<bool, Error> {
    match r {
        Ok(()) => Ok(true),
        Err(Error::WouldBlock | Error::Timeout) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `acquire`, `try_acquire` and `acquire_timeout`: of a lock (`held by "lock"`: what
/// the caller holds after `OwnerDead`) or of a semaphore's permits (`permit`).
macro_rules! acquire_methods {
    (held by $what:literal) => {
        acquire_methods!(
            @docs "Takes it, waiting as long as it is held.",
            concat!("[`Error::OwnerDead`]: taken, but its last holder's client died holding it (the caller holds the ", $what, " now). As any call."),
            "Takes it if it is free now; whether it was taken.",
            "Takes it, waiting at most `timeout`; whether it was taken."
        );
    };
    (permit) => {
        acquire_methods!(
            @docs "Takes a permit, waiting while there is none.",
            "As any call.",
            "Takes a permit if there is one now; whether it did.",
            "Takes a permit, waiting at most `timeout`; whether it did."
        );
    };
    (@docs $acquire:expr, $errors:expr, $try:expr, $timeout:expr) => {
        #[doc = $acquire]
        ///
        /// # Errors
        ///
        #[doc = $errors]
        pub fn acquire(&self) -> Result<(), Error> {
            self.h.call(Op::Acquire(Wait::Forever), unit)
        }

        #[doc = $try]
        ///
        /// # Errors
        ///
        /// As [`acquire`](Self::acquire).
        pub fn try_acquire(&self) -> Result<bool, Error> {
            taken(self.h.call(Op::Acquire(Wait::Now), unit))
        }

        #[doc = $timeout]
        ///
        /// # Errors
        ///
        /// As [`acquire`](Self::acquire).
        pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Error> {
            taken(self.h.call(Op::Acquire(Wait::from_timeout(timeout)), unit))
        }
    };
}

/// `wait` and `wait_timeout` through `$op`, whose reply says whether the wait ended
/// by its event (not by its timeout); with their docs: what `wait` does, its errors,
/// what `wait_timeout` does.
macro_rules! wait_methods {
    ($op:path, $wait:literal, $errors:literal, $timeout:literal) => {
        #[doc = $wait]
        ///
        /// # Errors
        ///
        #[doc = $errors]
        pub fn wait(&self) -> Result<(), Error> {
            self.h.call($op(Wait::Forever), boolean).map(|_| ())
        }

        #[doc = $timeout]
        ///
        /// # Errors
        ///
        /// As [`wait`](Self::wait).
        pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Error> {
            self.h.call($op(Wait::from_timeout(timeout)), boolean)
        }
    };
}

proxy! {
    /// A proxy for a manager lock (Python's `manager.Lock()`).
    ///
    /// Held by a thread of a client. Any client may release it (as Python's `Lock`). If
    /// the holder's client dies, the server releases it and the next
    /// [`acquire`](Self::acquire) returns [`Error::OwnerDead`] — with the lock taken.
    ///
    /// ```
    /// let m = shmkit::Manager::start()?;
    /// let lock = m.lock("l")?;
    /// lock.acquire()?;
    /// assert!(!lock.try_acquire()?);
    /// lock.release()?;
    /// # Ok::<(), shmkit::manager::Error>(())
    /// ```
    pub struct Lock = Kind::Lock;
}

proxy! {
    /// A proxy for a manager re-entrant lock (Python's `manager.RLock()`): its holder
    /// may take it again, and must release it as often; only the holder may release.
    pub struct RLock = Kind::RLock;
}

impl Lock {
    acquire_methods!(held by "lock");

    /// Releases it.
    ///
    /// # Errors
    ///
    /// [`Error::NotOwner`] if it is not held; as any call.
    pub fn release(&self) -> Result<(), Error> {
        self.h.call(Op::Release, unit)
    }

    /// Is it held now?
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn is_locked(&self) -> Result<bool, Error> {
        self.h.call(Op::Count, count).map(|n| n > 0)
    }
}

impl RLock {
    acquire_methods!(held by "lock");

    /// Releases one level of the caller's hold.
    ///
    /// # Errors
    ///
    /// [`Error::NotOwner`] if the calling thread does not hold it; as any call.
    pub fn release(&self) -> Result<(), Error> {
        self.h.call(Op::Release, unit)
    }

    /// Is it held now?
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn is_locked(&self) -> Result<bool, Error> {
        self.h.call(Op::Count, count).map(|n| n > 0)
    }
}

proxy! {
    /// A proxy for a manager semaphore (Python's `manager.Semaphore(value)`).
    ///
    /// Permits a client took and did not give back are returned when the client dies.
    pub struct Semaphore = Kind::Semaphore;
}

proxy! {
    /// A proxy for a manager bounded semaphore: releases may not raise the count past
    /// its initial value ([`Error::Overflow`]).
    pub struct BoundedSemaphore = Kind::BoundedSemaphore;
}

macro_rules! semaphore_methods {
    () => {
        acquire_methods!(permit);

        /// The number of permits now.
        ///
        /// # Errors
        ///
        /// As any call.
        pub fn value(&self) -> Result<u64, Error> {
            self.h.call(Op::Count, count)
        }
    };
}

impl Semaphore {
    semaphore_methods!();

    /// Gives a permit back.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn release(&self) -> Result<(), Error> {
        self.h.call(Op::Release, unit)
    }
}

impl BoundedSemaphore {
    semaphore_methods!();

    /// Gives a permit back.
    ///
    /// # Errors
    ///
    /// [`Error::Overflow`] past the initial value; as any call.
    pub fn release(&self) -> Result<(), Error> {
        self.h.call(Op::Release, unit)
    }
}

proxy! {
    /// A proxy for a manager condition variable with its own re-entrant lock (Python's
    /// `manager.Condition()`).
    ///
    /// ```
    /// let m = shmkit::Manager::start()?;
    /// let c = m.condition("c")?;
    /// c.acquire()?;
    /// assert!(!c.wait_timeout(core::time::Duration::from_millis(10))?); // nobody notifies
    /// c.notify_all()?;
    /// c.release()?;
    /// # Ok::<(), shmkit::manager::Error>(())
    /// ```
    pub struct Condition = Kind::Condition;
}

impl Condition {
    acquire_methods!(held by "condition's lock");

    /// Releases one level of the caller's hold on the lock.
    ///
    /// # Errors
    ///
    /// [`Error::NotOwner`]; as any call.
    pub fn release(&self) -> Result<(), Error> {
        self.h.call(Op::Release, unit)
    }

    wait_methods!(
        Op::CondWait,
        "Releases the lock (all levels), waits to be notified, takes it back.",
        "[`Error::NotOwner`] if the caller does not hold the lock; as any call.",
        "As [`wait`](Self::wait), for at most `timeout`; whether it was notified. The lock is held again either way."
    );

    /// Wakes one waiter.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn notify_one(&self) -> Result<(), Error> {
        self.notify(1)
    }

    /// Wakes up to `n` waiters.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn notify(&self, n: u32) -> Result<(), Error> {
        self.h.call(Op::Notify(n), unit)
    }

    /// Wakes every waiter.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn notify_all(&self) -> Result<(), Error> {
        self.h.call(Op::NotifyAll, unit)
    }
}

proxy! {
    /// A proxy for a manager event (Python's `manager.Event()`).
    pub struct Event = Kind::Event;
}

impl Event {
    /// Sets the flag, waking every waiter.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn set(&self) -> Result<(), Error> {
        self.h.call(Op::EventSet, unit)
    }

    /// Clears the flag.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn clear(&self) -> Result<(), Error> {
        self.h.call(Op::Clear, unit)
    }

    /// Is the flag set?
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn is_set(&self) -> Result<bool, Error> {
        self.h.call(Op::IsSet, boolean)
    }

    wait_methods!(
        Op::EventWait,
        "Waits until the flag is set.",
        "As any call.",
        "Waits at most `timeout` for the flag; whether it is set."
    );
}

proxy! {
    /// A proxy for a manager barrier (Python's `manager.Barrier(parties)`).
    ///
    /// A waiter that times out, or whose client dies while waiting, breaks the barrier:
    /// the others get [`Error::Broken`], until [`reset`](Self::reset).
    pub struct Barrier = Kind::Barrier;
}

impl Barrier {
    /// Waits until `parties` callers wait; returns this caller's arrival index
    /// (`0..parties`).
    ///
    /// # Errors
    ///
    /// [`Error::Broken`]; as any call.
    pub fn wait(&self) -> Result<u32, Error> {
        self.h
            .call(Op::BarrierWait(Wait::Forever), count)
            .map(|n| n as u32)
    }

    /// As [`wait`](Self::wait), for at most `timeout` (then the barrier breaks).
    ///
    /// # Errors
    ///
    /// [`Error::Broken`] (also when this call timed out); as any call.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, Error> {
        self.h
            .call(Op::BarrierWait(Wait::from_timeout(timeout)), count)
            .map(|n| n as u32)
    }

    /// Breaks the barrier: waiters now and later get [`Error::Broken`].
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn abort(&self) -> Result<(), Error> {
        self.h.call(Op::Abort, unit)
    }

    /// Back to empty and unbroken; current waiters get [`Error::Broken`].
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn reset(&self) -> Result<(), Error> {
        self.h.call(Op::Reset, unit)
    }

    /// The number of parties.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn parties(&self) -> Result<u32, Error> {
        self.h.call(Op::Parties, count).map(|n| n as u32)
    }

    /// How many wait now.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn n_waiting(&self) -> Result<u32, Error> {
        self.h.call(Op::NWaiting, count).map(|n| n as u32)
    }

    /// Is it broken?
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn is_broken(&self) -> Result<bool, Error> {
        self.h.call(Op::IsBroken, boolean)
    }
}

impl Manager {
    /// The lock `name`, created free if it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::WrongKind`] if `name` is another kind of object; as any call.
    pub fn lock(&self, name: &str) -> Result<Lock, Error> {
        self.open_proxy(name, &[], 0)
    }

    /// The re-entrant lock `name`.
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    pub fn rlock(&self, name: &str) -> Result<RLock, Error> {
        self.open_proxy(name, &[], 0)
    }

    /// The semaphore `name`, created with `value` permits.
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    pub fn semaphore(&self, name: &str, value: u32) -> Result<Semaphore, Error> {
        self.open_proxy(name, &[], u64::from(value))
    }

    /// The bounded semaphore `name`, created with `value` permits (its bound).
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    pub fn bounded_semaphore(&self, name: &str, value: u32) -> Result<BoundedSemaphore, Error> {
        self.open_proxy(name, &[], u64::from(value))
    }

    /// The condition variable `name`.
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    pub fn condition(&self, name: &str) -> Result<Condition, Error> {
        self.open_proxy(name, &[], 0)
    }

    /// The event `name`, created clear.
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    pub fn event(&self, name: &str) -> Result<Event, Error> {
        self.open_proxy(name, &[], 0)
    }

    /// The barrier `name`, created for `parties` callers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero parties; as [`lock`](Self::lock).
    pub fn barrier(&self, name: &str, parties: u32) -> Result<Barrier, Error> {
        self.open_proxy(name, &[], u64::from(parties))
    }
}

//! The policies on top of the claim skeleton: try once, wait until a deadline, or
//! wait out a put or get in progress; and what each reports.

use core::time::Duration;

use bytemuck::Pod;

use super::Queue;
use super::claim::{Side, Step};
use super::errors::{GetError, PutError};
use super::state::WRITING;
use super::tasks::JoinCtl;
use crate::channel::block_on;
use crate::primitive::{Deadline, UnsafeCell, my_process_id};

/// How long `try_put` and `try_get` wait for another process's operation in progress
/// that stands between them and room or an item (see [`Outcome::Stalled`]).
pub(super) const STALL_WAIT: Duration = Duration::from_millis(1);

#[cfg(shmkit_loom)]
std::thread_local! {
    /// Under loom: whether the queue's sleep slices expire (see
    /// [`loom_queue_slices_expire`]). Loom runs a model's threads on the test's one
    /// OS thread, so this is per model, not per process.
    static LOOM_SLICES_EXPIRE: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Under loom: makes the queue's sleep slices "expire" (a yield, then another look
/// with liveness checks) instead of sleeping on the modelled futex until woken, for
/// the calling test's models. Models of a dead holder need it (a dead process never
/// wakes anyone, and loom's time stands still); models of hand-off leave it off, so
/// that a lost wake-up shows up as a deadlock.
#[cfg(shmkit_loom)]
pub fn loom_queue_slices_expire(expire: bool) {
    LOOM_SLICES_EXPIRE.with(|e| e.set(expire));
}

/// What an attempt found.
pub(super) enum Outcome<R> {
    /// Moved an item.
    Done(R),
    /// Closed (put), or closed and drained (get).
    Closed,
    /// Shared state failed validation.
    Corrupted,
    /// Full (put) or empty (get) at an instant during the attempt.
    Refused,
    /// Not full (put) or not empty (get), but the position to use is held by a live
    /// process's get (put) or put (get) in progress.
    Stalled,
}

impl<T: Pod, const N: usize> Queue<T, N> {
    /// One attempt of `side`: a pass of the claim skeleton; when `check`, a dead
    /// holder in the way is reclaimed and the pass made again.
    #[inline(always)]
    fn attempt<R>(
        &self,
        side: Side,
        me: u32,
        check: bool,
        join: Option<&JoinCtl>,
        transfer: &impl Fn(&UnsafeCell<T>) -> R,
    ) -> Outcome<R> {
        loop {
            match self.step(side, me, transfer) {
                Step::Done(r) => return Outcome::Done(r),
                Step::Closed => return Outcome::Closed,
                Step::Corrupted => return Outcome::Corrupted,
                Step::Blocked { pos, busy } => {
                    if let Some(busy) = busy {
                        if check && self.reclaim(busy, join) {
                            continue;
                        }
                    }
                    let stalled = match side {
                        Side::Put => !self.full_at(pos),
                        Side::Get => {
                            busy.is_some_and(|b| b.state.kind() == WRITING) && self.item_behind(pos)
                        }
                    };
                    return if stalled {
                        Outcome::Stalled
                    } else {
                        Outcome::Refused
                    };
                }
            }
        }
    }

    /// Runs attempts by policy: `deadline` `None` is a `try_*` (no wait for room or an
    /// item, a bounded wait for an operation in progress in the way), else wait until
    /// the deadline, then report what the last attempt found.
    #[inline(always)]
    fn run<R>(
        &self,
        side: Side,
        deadline: Option<Deadline>,
        mut attempt: impl FnMut(bool) -> Outcome<R>,
    ) -> Outcome<R> {
        // The first attempt reads no clock and asks nobody's liveness: a full or empty
        // answer needs neither (a dead holder's operation never completes, so it may be
        // ordered after this one).
        match attempt(false) {
            Outcome::Refused if deadline.is_none() => return Outcome::Refused,
            Outcome::Refused | Outcome::Stalled => {}
            done => return done,
        }
        self.wait_on(side, deadline, attempt)
    }

    #[cold]
    fn wait_on<R>(
        &self,
        side: Side,
        deadline: Option<Deadline>,
        mut attempt: impl FnMut(bool) -> Outcome<R>,
    ) -> Outcome<R> {
        let notifier = match side {
            Side::Put => &self.wake.0.not_full,
            Side::Get => &self.wake.0.not_empty,
        };
        let try_once = deadline.is_none();
        #[cfg(shmkit_loom)]
        if LOOM_SLICES_EXPIRE.with(core::cell::Cell::get) {
            // Every sleep slice expires at once: a yield, then a look that reclaims
            // dead holders (a dead process wakes nobody).
            let _ = notifier;
            loop {
                match attempt(true) {
                    Outcome::Refused if try_once => return Outcome::Refused,
                    Outcome::Refused | Outcome::Stalled => crate::primitive::yield_now(),
                    done => return done,
                }
            }
        }
        let until = deadline.unwrap_or_else(|| Deadline::after(STALL_WAIT));
        let waited = block_on(notifier, until, |check| match attempt(check) {
            // A try stops at a full or empty answer, a wait goes on.
            Outcome::Refused if try_once => Some(Outcome::Refused),
            Outcome::Refused | Outcome::Stalled => None,
            done => Some(done),
        });
        // Past the deadline: the last attempt has the word.
        waited.unwrap_or_else(|| attempt(false))
    }

    /// put / try_put / put_timeout (`deadline` `None` = try).
    pub(crate) fn put_impl(
        &self,
        value: T,
        deadline: Option<Deadline>,
        join: Option<&JoinCtl>,
    ) -> Result<(), PutError<T>> {
        let me = my_process_id();
        if let Some(join) = join {
            join.item_added();
        }
        let write = |cell: &UnsafeCell<T>| {
            // SAFETY: the skeleton calls this only while the slot is claimed
            // (WRITING with our id): no other process reads or writes the value until
            // we publish it, or until we are dead.
            cell.with_mut(|p| unsafe { p.write(value) });
        };
        let outcome = self.run(Side::Put, deadline, |check| {
            self.attempt(Side::Put, me, check, join, &write)
        });
        let error = match outcome {
            Outcome::Done(()) => return Ok(()),
            Outcome::Closed => PutError::Closed(value),
            Outcome::Corrupted => PutError::Corrupted(value),
            Outcome::Stalled => PutError::Stalled(value),
            Outcome::Refused if deadline.is_none() => PutError::Full(value),
            Outcome::Refused => PutError::Timeout(value),
        };
        if let Some(join) = join {
            join.item_gone();
        }
        Err(error)
    }

    /// get / try_get / get_timeout (`deadline` `None` = try).
    pub(crate) fn get_impl(
        &self,
        deadline: Option<Deadline>,
        join: Option<&JoinCtl>,
    ) -> Result<T, GetError> {
        let me = my_process_id();
        let read = |cell: &UnsafeCell<T>| {
            // SAFETY: the skeleton calls this only while the slot is claimed
            // (READING with our id): no producer writes the value until we free it.
            // `T: Pod`: whatever bytes are there make a valid `T`.
            cell.with(|p| unsafe { p.read() })
        };
        match self.run(Side::Get, deadline, |check| {
            self.attempt(Side::Get, me, check, join, &read)
        }) {
            Outcome::Done(v) => Ok(v),
            Outcome::Closed => Err(GetError::Closed),
            Outcome::Corrupted => Err(GetError::Corrupted),
            Outcome::Stalled => Err(GetError::Stalled),
            Outcome::Refused if deadline.is_none() => Err(GetError::Empty),
            Outcome::Refused => Err(GetError::Timeout),
        }
    }
}

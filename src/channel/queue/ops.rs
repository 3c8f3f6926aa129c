//! The policies on top of the claim skeleton: try once, wait until a deadline, or
//! wait out a put or get in progress; and what each reports.

use core::time::Duration;

use bytemuck::Pod;

use super::Queue;
use super::claim::{Side, Step};
use super::errors::{GetError, PutError};
use super::state::WRITING;
use super::tasks::JoinCtl;
use crate::channel::block_on_hinted;
use crate::primitive::{Deadline, UnsafeCell, my_process_id};
use crate::sync::notifier::Notifier;

/// How long `try_put` and `try_get` wait for another process's operation in progress
/// that stands between them and room or an item (see [`Outcome::Stalled`]). They
/// sleep on the notifier of their side: a get in progress that frees the slot wakes
/// a stalled `try_put`, a put that publishes wakes a stalled `try_get`; a `try_put`
/// stalled on a put in progress (the newest position not yet published) is not
/// woken by it, and answers (`Full`) at the end of this wait.
pub(super) const STALL_WAIT: Duration = Duration::from_millis(1);

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

impl<R> Outcome<R> {
    /// Is this the answer, or should the caller wait? A try stops at a full or empty
    /// answer; a wait goes on through those, and both wait out a stall.
    #[inline(always)]
    fn final_for(self, try_once: bool) -> Option<Self> {
        match self {
            Outcome::Refused if try_once => Some(Outcome::Refused),
            Outcome::Refused | Outcome::Stalled => None,
            done => Some(done),
        }
    }
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
        let try_once = deadline.is_none();
        if let Some(done) = attempt(false).final_for(try_once) {
            return done;
        }
        let notifier = match side {
            Side::Put => &self.wake.0.not_full,
            Side::Get => &self.wake.0.not_empty,
        };
        if side == Side::Put && !try_once {
            self.await_room();
        }
        wait_on(notifier, deadline, || self.worth_a_pass(side), attempt)
    }
}

/// The waiting part of [`Queue::run`]: until `deadline`, or for a `try_*` (`None`)
/// [`STALL_WAIT`] at most, then the last attempt has the word.
#[cold]
fn wait_on<R>(
    notifier: &Notifier,
    deadline: Option<Deadline>,
    hint: impl FnMut() -> bool,
    mut attempt: impl FnMut(bool) -> Outcome<R>,
) -> Outcome<R> {
    let try_once = deadline.is_none();
    let until = deadline.unwrap_or_else(|| Deadline::after(STALL_WAIT));
    let waited = block_on_hinted(notifier, until, hint, |check| {
        attempt(check).final_for(try_once)
    });
    // Past the deadline: the last attempt has the word.
    waited.unwrap_or_else(|| attempt(false))
}

impl<T: Pod, const N: usize> Queue<T, N> {
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

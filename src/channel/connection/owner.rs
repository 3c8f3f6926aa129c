//! Who owns an end: claiming it, adopting it from a dead owner, handing it to a
//! forked child, closing it; and whether the peer's owner is gone.
//!
//! The owner record (`EndState::owner`, see `pipe.rs`) holds the owner's participant
//! id and its handle's token. Its transitions:
//!
//! ```text
//! from                  to                    by
//! 0                     (me, token)           first use (bind_slow)
//! (dead, any)           (me, token)           adoption (bind_slow): also resets the
//!                                             end's notifiers' sleeper counts
//! 0 or (me, token)      (child, token)        the parent dropping a spawn closure
//!                                             that holds the handle (hand_over)
//! ```
//!
//! Closing sets `END_CLOSED` in the flags instead (final); the owner word stays.

use super::super::liveness_period;
use super::super::pipe::{END_CLOSED, owner_id, owner_word};
use super::super::ring::failpoint::failpoint;
use super::Connection;
use crate::error::Error;
use crate::primitive::{Deadline, Liveness, Ordering, handoff_target, id_liveness, my_process_id};

impl<const CAP: usize> Connection<'_, CAP> {
    /// Claims this end for the calling process (fast: one compare once claimed).
    #[inline]
    pub(super) fn bind(&self) -> Result<(), Error> {
        let me = my_process_id();
        if self.bound.get() == me && !self.closed.get() {
            return Ok(());
        }
        self.bind_slow(me)
    }

    #[cold]
    #[inline(never)]
    fn bind_slow(&self, me: u32) -> Result<(), Error> {
        if self.closed.get() || self.pipe.end_closed(self.side) {
            return Err(Error::Closed);
        }
        let end = &self.pipe.ends[self.side].0;
        let mine = owner_word(me, self.token);
        // Compare-and-swap failures: each means another process claimed meanwhile (and
        // the next round sees whom), so a few at most — unless a scribbler keeps
        // changing the word, which must not keep us here.
        let mut races = 0u32;
        let adopted = loop {
            // SYNC POINT with the CAS below (a previous owner's, or a parent's in
            // `hand_over`): the indices we read next are the latest it published.
            let owner = end.owner.load(Ordering::Acquire);
            if owner == mine {
                break false;
            }
            if owner != 0 {
                let Some(id) = owner_id(owner) else {
                    return Err(Error::Corrupted);
                };
                let in_use = Error::EndpointInUse { owner: id };
                if id == me {
                    // Another handle of this process owns it.
                    return Err(in_use);
                }
                if id_liveness(id) != Liveness::Dead {
                    // A live owner: another process's handle, or this handle's
                    // original in the process that forked us and still owns it. (A
                    // handle moved into `Process::spawn` was handed to the child
                    // before the child started: it reads as ours above.)
                    return Err(in_use);
                }
            }
            // SYNC POINT with a previous owner's stores, through its claim (AcqRel).
            if end
                .owner
                .compare_exchange(owner, mine, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break owner != 0;
            }
            races += 1;
            if races > 64 {
                let owner = owner_id(end.owner.load(Ordering::Acquire)).unwrap_or(0);
                return Err(Error::EndpointInUse { owner });
            }
        };
        failpoint!("connection.bind.claimed");
        if adopted {
            // The dead owner was the only party that could sleep on these two
            // notifiers (this end's receiving side sleeps on `rx.data`, its sending
            // side on `tx.space`; the ends are SPSC and `wait` sleeps only for an
            // owner). A sleeper killed asleep never withdrew: forget it, or every
            // later wake would pay a FUTEX_WAKE for nobody. We sleep on them only
            // after this.
            self.rx().wake.0.data.reset_sleepers();
            self.tx().wake.0.space.reset_sleepers();
        }
        // A previous owner of this end may have died after publishing a record but
        // before advancing `tail`: pick up where its records end.
        self.tx().recover_tail();
        self.head_cache.set(self.tx().indices().0);
        self.bound.set(me);
        Ok(())
    }

    /// Closes this end. If this handle owns the end, the peer receives what was sent
    /// and then [`Error::Disconnected`]; if it never used the end, only this handle is
    /// closed. Idempotent; later operations on this handle return [`Error::Closed`].
    /// Dropping the handle closes it too — except the parent's copy of a handle moved
    /// into a `Process::spawn` closure, which hands the end to the child instead (see
    /// [`Connection`]).
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        if let Some(child) = handoff_target() {
            self.hand_over(child);
            return;
        }
        let end = &self.pipe.ends[self.side].0;
        if end.owner.load(Ordering::Acquire) == owner_word(my_process_id(), self.token) {
            // SYNC POINT with the Acquire loads of the flags in `Pipe::end_closed`:
            // every message published before this is visible to the peer after it
            // sees the flag.
            end.flags.fetch_or(END_CLOSED, Ordering::AcqRel);
            self.tx().wake.0.data.notify_all();
            self.rx().wake.0.space.notify_all();
        }
    }

    /// The parent's copy of this handle is being dropped with the closure it moved
    /// into a forked child `child`: claim the end for the child, whether it was unused
    /// (owner 0) or ours. The child's copy of the handle has the same token, so its
    /// first use finds the end its own.
    #[cold]
    fn hand_over(&self, child: u32) {
        if self.pipe.end_closed(self.side) {
            return;
        }
        let end = &self.pipe.ends[self.side].0;
        let mine = owner_word(my_process_id(), self.token);
        let owner = end.owner.load(Ordering::Acquire);
        if owner == 0 || owner == mine {
            // SYNC POINT with the Acquire load of the owner in the child's
            // `bind_slow`: what this handle published is visible to the child. A
            // failure means the child claimed the unused end first, with the same
            // word.
            let _ = end.owner.compare_exchange(
                owner,
                owner_word(child, self.token),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// Was this handle, or its end, closed?
    pub fn is_closed(&self) -> bool {
        self.closed.get() || self.pipe.end_closed(self.side)
    }

    /// Has the peer closed its end, or (when `check_liveness` and a check is due)
    /// has its owner died? An unclaimed peer end is neither.
    #[inline]
    pub(super) fn peer_gone(&self, check_liveness: bool) -> bool {
        if self.pipe.end_closed(1 - self.side) {
            return true;
        }
        if !check_liveness && self.dead_peer.get() == 0 {
            return false;
        }
        self.peer_gone_slow(check_liveness)
    }

    #[cold]
    #[inline(never)]
    fn peer_gone_slow(&self, check_liveness: bool) -> bool {
        let peer = 1 - self.side;
        let owner_of = || self.pipe.ends[peer].0.owner.load(Ordering::Acquire);
        let dead = self.dead_peer.get();
        if dead != 0 && owner_of() == dead {
            return true;
        }
        if !check_liveness || self.next_check.get().is_some_and(|d| !d.expired()) {
            return false;
        }
        self.next_check
            .set(Some(Deadline::after(liveness_period())));
        let owner = owner_of();
        // Nobody yet (0) is not gone; an id out of range (scribbled) is not known
        // to be dead.
        if owner_id(owner).is_some_and(|id| id_liveness(id) == Liveness::Dead) {
            self.dead_peer.set(owner);
            return true;
        }
        false
    }
}

//! Who owns an end of an [`Spsc`](super::Spsc): the claim a handle holds, its hand-off
//! to a forked child, closing, and the checks on the peer.
//!
//! An owner record is `(participant id << 32) | token`: the id of the process that
//! owns the end and a token that tells that process's handles apart. A handle claims
//! its end on first use by a compare-exchange from 0 (or from a dead owner's record:
//! adoption). A handle moved into a `Process::spawn` closure is re-claimed for the
//! child while the parent drops its copy (`primitive::handoff_target`); a handle that
//! finds itself in another process than the one it was claimed in waits (briefly) for
//! that hand-off, and refuses to run otherwise.

use core::time::Duration;

use crate::channel::liveness_period;
use crate::error::Error;
use crate::primitive::{
    AtomicU64, Deadline, Liveness, Ordering, handoff_target, id_liveness, my_process_id,
};

use super::{CONSUMER_CLOSED, Ends, PRODUCER_CLOSED};

/// Hands out handle tokens, unique within a process. Process-local, never shared.
#[allow(clippy::disallowed_types)]
static NEXT_TOKEN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(1);

/// How long a handle claimed in another process waits for the hand-off to this one.
const HANDOFF_WAIT: Duration = Duration::from_secs(1);

/// The process-local claim state of one handle.
#[derive(Debug)]
pub(crate) struct EndClaim {
    /// 0 = producer, 1 = consumer.
    side: usize,
    /// This handle's token (low half of the owner record).
    token: u32,
    /// The participant id under which this handle owns its end; 0 = not claimed.
    bound: u32,
    /// `close` was called on this handle.
    closed: bool,
    /// When the peer's liveness may be checked again (`None`: now).
    next_check: Option<Deadline>,
    /// The peer's owner record last found dead (0: none).
    dead_peer: u64,
}

/// What [`EndClaim::bind_slow`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// This very handle, carried over from another process or freshly claimed: its
    /// process-local indices are still right only in the first case.
    Continued,
    /// A fresh claim (or an adoption): reload the indices from the segment.
    Fresh,
}

impl EndClaim {
    pub(crate) fn new(side: usize) -> Self {
        EndClaim {
            side,
            token: NEXT_TOKEN.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
            bound: 0,
            closed: false,
            next_check: None,
            dead_peer: 0,
        }
    }

    fn record(&self, id: u32) -> u64 {
        (u64::from(id) << 32) | u64::from(self.token)
    }

    fn owner<'e>(&self, ends: &'e Ends) -> &'e AtomicU64 {
        &ends.owner[self.side]
    }

    fn my_bit(&self) -> u32 {
        if self.side == 0 {
            PRODUCER_CLOSED
        } else {
            CONSUMER_CLOSED
        }
    }

    /// Is this handle bound in the calling process (the fast path's one check)?
    #[inline(always)]
    pub(crate) fn is_bound_here(&self) -> bool {
        self.bound == my_process_id()
    }

    /// Claims the end for the calling process. `Ok(Fresh)`: the caller must load its
    /// indices from the segment.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] (this handle or the end was closed), [`Error::EndpointInUse`].
    #[cold]
    #[inline(never)]
    pub(crate) fn bind_slow(&mut self, ends: &Ends) -> Result<Bound, Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let me = my_process_id();
        let mine = self.record(me);
        // SYNC POINT with the Release `fetch_or` in `close`.
        if ends.flags.load(Ordering::Acquire) & self.my_bit() != 0 {
            return Err(Error::Closed);
        }
        let owner = self.owner(ends);
        let carried = self.bound != 0 && self.bound != me;
        let handoff_deadline = Deadline::after(HANDOFF_WAIT);
        loop {
            let current = owner.load(Ordering::Acquire);
            if current == mine {
                // Handed to this process by the parent that forked it (or claimed
                // here earlier by this very handle).
                let how = if carried {
                    Bound::Continued
                } else {
                    Bound::Fresh
                };
                self.bound = me;
                return Ok(how);
            }
            if carried && current == self.record(self.bound) {
                // This handle was claimed in the process that forked us and moved into
                // the child's closure: the parent re-claims it for us while it drops
                // its copy. Wait for that, briefly; a handle that was only borrowed
                // into the child never gets handed over, and must not run here while
                // its owner may still use it.
                if handoff_deadline.expired() {
                    return Err(Error::EndpointInUse { owner: self.bound });
                }
                crate::primitive::yield_now();
                continue;
            }
            if current != 0 {
                let id = (current >> 32) as u32;
                // Another handle of this process, or a live (or unknown) owner.
                if id == me || id_liveness(id) != Liveness::Dead {
                    return Err(Error::EndpointInUse { owner: id });
                }
            }
            // SYNC POINT with a previous owner's stores, through its claim (AcqRel):
            // the indices we read next are at least as new as its claim.
            if owner
                .compare_exchange(current, mine, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.bound = me;
                return Ok(Bound::Fresh);
            }
        }
    }

    /// Has the peer closed its end, or (when `check_liveness` and a check is due)
    /// has its owner died? Called only when the ring looks full or empty.
    pub(crate) fn peer_gone(&mut self, ends: &Ends, check_liveness: bool) -> bool {
        let peer_bit = if self.side == 0 {
            CONSUMER_CLOSED
        } else {
            PRODUCER_CLOSED
        };
        // SYNC POINT with the Release `fetch_or` in `close`: the peer's last index
        // store is visible after this.
        if ends.flags.load(Ordering::Acquire) & peer_bit != 0 {
            return true;
        }
        let peer = &ends.owner[1 - self.side];
        if self.dead_peer != 0 && peer.load(Ordering::Acquire) == self.dead_peer {
            return true;
        }
        if !check_liveness || self.next_check.is_some_and(|d| !d.expired()) {
            return false;
        }
        self.next_check = Some(Deadline::after(liveness_period()));
        let current = peer.load(Ordering::Acquire);
        if current != 0 && id_liveness((current >> 32) as u32) == Liveness::Dead {
            self.dead_peer = current;
            return true;
        }
        false
    }

    /// Closes this handle: if it owns its end, marks the end closed (final) and wakes
    /// the peer. Idempotent.
    pub(crate) fn close(&mut self, ends: &Ends) {
        if core::mem::replace(&mut self.closed, true) {
            return;
        }
        let me = my_process_id();
        // The fast path's one check (`is_bound_here`) now fails: every later call
        // goes to `bind_slow`, which reports `Closed`.
        let bound = core::mem::replace(&mut self.bound, 0);
        if bound == me && self.owner(ends).load(Ordering::Acquire) == self.record(me) {
            // SYNC POINT with the Acquire loads of the flags in `Spsc::closed`,
            // `peer_gone` and `bind_slow`: every index published before this is visible
            // to the peer once it sees the flag.
            ends.flags.fetch_or(self.my_bit(), Ordering::AcqRel);
            ends.data.notify_all();
            ends.space.notify_all();
        }
    }

    /// Was this handle or its end closed?
    pub(crate) fn is_closed(&self, ends: &Ends) -> bool {
        // SYNC POINT with the Release `fetch_or` in `close`.
        self.closed || ends.flags.load(Ordering::Acquire) & self.my_bit() != 0
    }

    /// The handle is being dropped: hand the end to the child being forked (see
    /// `primitive::handoff_target`), or close it.
    pub(crate) fn drop_or_hand_off(&mut self, ends: &Ends) {
        let Some(child) = handoff_target() else {
            self.close(ends);
            return;
        };
        if self.closed {
            return;
        }
        let me = my_process_id();
        let from = if self.bound == me {
            self.record(me)
        } else if self.bound == 0 {
            // Never used here: pre-claim it for the child, so that its death is seen
            // even if it dies before using the end.
            0
        } else {
            return;
        };
        // SYNC POINT with the Acquire loads of the owner in the child's `bind_slow`:
        // our index stores (made before the fork anyway) come with the claim.
        let _ = self.owner(ends).compare_exchange(
            from,
            self.record(child),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

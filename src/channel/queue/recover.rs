//! What the queue does about other processes' claims: reclaiming those of dead
//! processes, and telling a queue that is full or empty from one that waits on a
//! live process's operation in progress.

use bytemuck::Pod;

use super::Queue;
use super::claim::Busy;
use super::state::{FREE, FULL, READING, Rel, State, WRITING};
use super::tasks::JoinCtl;
use crate::primitive::{Liveness, Ordering, id_liveness};

impl<T: Pod, const N: usize> Queue<T, N> {
    /// If the holder of `busy` is dead, frees its slot for the put one lap on (the
    /// item is dropped and counted in `lost`). Returns whether it is dead: then the
    /// slot has moved on (by our CAS or another's), and the caller should look again.
    #[cold]
    pub(super) fn reclaim(&self, busy: Busy, join: Option<&JoinCtl>) -> bool {
        let Some(id) = busy.state.holder() else {
            return false;
        };
        if id_liveness(id) != Liveness::Dead {
            return false;
        }
        let slot = &self.slots[busy.index];
        // SYNC POINT with the Acquire claim CAS of the next producer: it writes the
        // value after this. (The dead holder's accesses to the value all came before
        // its death, which the liveness check observed.)
        let freed = State::free(busy.lap.wrapping_add(1));
        if slot
            .state
            .compare_exchange(busy.state.0, freed.0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.ctl.0.lost.fetch_add(1, Ordering::AcqRel);
            if busy.state.kind() == WRITING {
                if let Some(join) = join {
                    join.item_gone();
                }
            }
            self.wake.0.not_full.notify_all();
            self.wake.0.not_empty.notify_all();
        }
        true
    }

    /// Reclaims every slot held by a dead process (`lost` calls it, so that its count
    /// is exact when it returns). O(N).
    #[cold]
    pub(super) fn reclaim_dead(&self, join: Option<&JoinCtl>) {
        for (index, slot) in self.slots.iter().enumerate() {
            let state = State(slot.state.load(Ordering::Acquire));
            if !state.is_claim() || !state.is_valid() {
                continue;
            }
            // A claim is at most one lap behind the tail (the put one lap on waits for
            // it), and not ahead of it (claims are made at the tail). Read after the
            // state, the tail is at or past the claimed position.
            let tail = Self::latest(&self.tail.0);
            let lap = state.claim_lap_at_most(tail / N as u64);
            let Some(at) = lap
                .checked_mul(N as u64)
                .and_then(|p| p.checked_add(index as u64))
            else {
                continue;
            };
            if at > tail || tail - at > N as u64 {
                continue;
            }
            self.reclaim(Busy { index, state, lap }, join);
        }
    }

    /// A get found position `pos` held by a put in progress: is a completed item
    /// queued behind it? If not, the queue was empty when the head was read (every put
    /// in progress can take effect after that instant). Reads at most `N - 1` slots.
    ///
    /// Puts claim positions in order, so the first unclaimed position ends the scan;
    /// consumers cannot pass `pos` while it is claimed for writing, so nothing behind
    /// it has been taken. A state seen later than the head's that is not complete was
    /// not complete then either (states only move forward).
    #[cold]
    pub(super) fn item_behind(&self, pos: u64) -> bool {
        for k in 1..N as u64 {
            let at = pos.wrapping_add(k);
            let state = State(
                self.slots[(at % N as u64) as usize]
                    .state
                    .load(Ordering::Acquire),
            );
            match (state.kind(), state.rel(at / N as u64)) {
                (WRITING, Rel::Same) => {}
                // Not claimed yet: neither is anything after it.
                (FREE, Rel::Same) | (READING, Rel::Prev) => return false,
                // A complete item (or a state we cannot place): say so, rather than
                // claim the queue is empty.
                _ => return true,
            }
        }
        false
    }

    /// A put found the slot of position `pos` still held by a get in progress (of
    /// position `pos - N`): has any of the positions between been consumed already?
    /// If not, the queue was full when the tail was read (every get in progress can
    /// take effect after that instant). Reads at most `N - 1` slots.
    ///
    /// Consumers claim positions in order: the first one not yet claimed by a
    /// consumer ends the scan.
    #[cold]
    pub(super) fn room_behind(&self, pos: u64) -> bool {
        for k in (1..N as u64).rev() {
            let at = pos.wrapping_sub(k);
            let state = State(
                self.slots[(at % N as u64) as usize]
                    .state
                    .load(Ordering::Acquire),
            );
            match (state.kind(), state.rel(at / N as u64)) {
                // Being read: still counts as queued.
                (READING, Rel::Same) => {}
                // Not yet taken by a consumer: neither is anything after it.
                (FULL | WRITING, Rel::Same) => return false,
                // Taken and released (or reclaimed), or a state we cannot place.
                _ => return true,
            }
        }
        false
    }

    /// Would a get return at once? (An item, closed and drained, or a dead holder to
    /// pass.) Claims nothing, reclaims nothing.
    pub(crate) fn ready_now(&self) -> bool {
        let mut pos = self.head.0.load(Ordering::Acquire);
        // The hint may lag by the gets in progress: look a little further.
        for _ in 0..N.min(64) {
            let state = State(
                self.slots[(pos % N as u64) as usize]
                    .state
                    .load(Ordering::Acquire),
            );
            match (state.kind(), state.rel(pos / N as u64)) {
                (FULL, Rel::Same) => return true,
                (WRITING, Rel::Same) => match state.holder() {
                    // A get reclaims it and goes on.
                    Some(id) if id_liveness(id) == Liveness::Dead => {}
                    // A get waits for that put.
                    _ => return false,
                },
                (READING, Rel::Same) | (_, Rel::Later(_)) => {}
                _ => return self.closed_now(),
            }
            pos = pos.wrapping_add(1);
        }
        self.closed_now()
    }
}

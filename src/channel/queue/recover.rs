//! What the queue does about other processes' claims: reclaiming those of dead
//! processes, and telling a queue that is full or empty from one that waits on a
//! live process's operation in progress.
//!
//! What counts as queued at an instant — the same for every `Empty` and `Full`
//! answer, so that all of them fit one order: a get takes effect at its claim (a
//! READING slot no longer holds a queued item), and a put no later than the
//! publication of any later position (a WRITING slot holds a queued item once a
//! later position is FULL: consumers will take it first). Producers claim positions
//! in order, and so do consumers.

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
    /// queued behind it? If not, the queue was empty when the head was read: no
    /// position at or after `pos` was FULL (states seen later that are not FULL were
    /// not FULL then either: a slot's states only move forward). Reads at most
    /// `N - 1` slots.
    #[cold]
    pub(super) fn item_behind(&self, pos: u64) -> bool {
        for k in 1..N as u64 {
            let at = pos.wrapping_add(k);
            let state = self.state_at(at);
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

    /// A put is blocked at `pos` (the slot still holds position `pos - N`): was the
    /// queue full at one instant? It was if position `pos - N` was not yet claimed by a
    /// consumer (FULL or WRITING) — so none after it was — while position `pos - 1`
    /// was FULL — so every put before it counts as queued. (Every position before
    /// `pos - N` was consumed: the put of each one's slot-mate after it claimed it.)
    /// `pos - N` is read after `pos - 1`: unclaimed then, it was unclaimed at the read
    /// of `pos - 1` (a claim is never undone).
    #[cold]
    pub(super) fn full_at(&self, pos: u64) -> bool {
        let first = pos.wrapping_sub(N as u64);
        let last = pos.wrapping_sub(1);
        let unclaimed = |state: State| {
            matches!(
                (state.kind(), state.rel(first / N as u64)),
                (FULL | WRITING, Rel::Same)
            )
        };
        let newest = self.state_at(last);
        newest.kind() == FULL
            && newest.rel(last / N as u64) == Rel::Same
            && unclaimed(self.state_at(first))
    }

    /// The state of the slot of position `at`.
    #[inline]
    fn state_at(&self, at: u64) -> State {
        State(
            self.slots[(at % N as u64) as usize]
                .state
                .load(Ordering::Acquire),
        )
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

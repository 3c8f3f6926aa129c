//! The one claim skeleton that `put` and `get` share.
//!
//! Both sides do the same thing at their own index (`tail` for puts, `head` for
//! gets): look at the slot of the position the index names, and either claim it
//! (a CAS from the unclaimed state to a claim naming the caller), pass it (someone
//! else took that position: help the index along), or stop (full or empty, or a
//! claim of another process in the way). What differs between the sides is a table
//! ([`decide`]), the state a claim is released to, and what is done with the item
//! while the slot is claimed (written or read).

use bytemuck::Pod;

use super::Queue;
use super::state::{FREE, FULL, READING, Rel, State, WRITING};
use crate::primitive::{AtomicU64, Ordering, UnsafeCell, die_point};

/// Which side of the queue an operation works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// A producer, at `tail`.
    Put,
    /// A consumer, at `head`.
    Get,
}

impl Side {
    /// The kind of this side's claim.
    #[inline(always)]
    const fn claim_kind(self) -> u64 {
        match self {
            Side::Put => WRITING,
            Side::Get => READING,
        }
    }

    /// The state this side's claim of position `lap·N + i` is released to.
    #[inline(always)]
    const fn released(self, lap: u64) -> State {
        match self {
            // The item is there for a consumer.
            Side::Put => State::full(lap),
            // The slot is free for the put one lap on.
            Side::Get => State::free(lap.wrapping_add(1)),
        }
    }

    /// The loom models' "die here" points, in the order they are passed.
    #[inline(always)]
    const fn die_points(self) -> [&'static str; 3] {
        match self {
            Side::Put => [
                "queue.put.claimed",
                "queue.put.advanced",
                "queue.put.written",
            ],
            Side::Get => ["queue.get.claimed", "queue.get.advanced", "queue.get.read"],
        }
    }
}

/// What to do with the state found at the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Claim the slot for this position.
    Claim,
    /// The position is taken (in this lap): help the index past it.
    Pass,
    /// The slot is this many laps further on: the position was passed.
    PassLater(u64),
    /// Full (put) or empty (get) here; `Some(lap)`: a claim of position `lap·N + i`
    /// is in the way (its holder may be dead).
    Wait(Option<u64>),
    /// No correct run leaves this state here.
    Corrupt,
}

/// The state table of the module docs of `state`, for one side: what to do at
/// position `lap·N + i` whose slot holds `state`.
#[inline(always)]
fn decide(side: Side, state: State, lap: u64) -> Action {
    let kind = state.kind();
    match (side, state.rel(lap)) {
        (_, Rel::Later(laps)) => Action::PassLater(laps),
        (Side::Put, Rel::Same) if kind == FREE => Action::Claim,
        (Side::Put, Rel::Same) => Action::Pass,
        (Side::Put, Rel::Prev) => match kind {
            FULL => Action::Wait(None),
            WRITING | READING => Action::Wait(Some(lap.wrapping_sub(1))),
            _ => Action::Corrupt,
        },
        (Side::Get, Rel::Same) => match kind {
            FULL => Action::Claim,
            READING => Action::Pass,
            FREE => Action::Wait(None),
            _ => Action::Wait(Some(lap)),
        },
        (Side::Get, Rel::Prev) if kind == READING => Action::Wait(Some(lap.wrapping_sub(1))),
        _ => Action::Corrupt,
    }
}

/// A claim of another process, found where we needed the slot.
#[derive(Debug, Clone, Copy)]
pub(super) struct Busy {
    /// The slot.
    pub(super) index: usize,
    /// The claim word, exactly as seen.
    pub(super) state: State,
    /// The full lap of the claimed position.
    pub(super) lap: u64,
}

/// What one pass found.
pub(super) enum Step<R> {
    /// Claimed, transferred, released.
    Done(R),
    /// Closed (a put), or closed and drained (a get).
    Closed,
    /// Shared state that no correct run produces.
    Corrupted,
    /// Full (put) or empty (get) at position `pos`, the index's latest value;
    /// `busy`: a claim of another process is in the way.
    Blocked { pos: u64, busy: Option<Busy> },
}

/// How many positions one pass may pass because their slot was already a lap (or
/// more) further on, beyond `N`. Legitimately a head is left that far behind only
/// when more producers than this were killed mid-put while no consumer took
/// anything; more is taken as corruption (it bounds the walk over a scribbled
/// segment).
const LATER_PASS_LIMIT: usize = 1 << 16;

/// How much room, at most, a put that found the queue full waits for before it tries
/// again: an eighth of the queue, at least one slot and at most this many (see
/// [`Queue::await_room`]).
const PUT_SLACK: u64 = 32;

/// How long [`Queue::await_room`] spins at most, in `spin_loop` hints (it looks at
/// every eighth): about as long as a consumer takes to free [`PUT_SLACK`] slots, a few
/// times over.
#[cfg(not(shmkit_loom))]
const ROOM_SPIN: u32 = 1024;
/// Under loom: one look, so the model keeps the step without multiplying its states.
#[cfg(shmkit_loom)]
const ROOM_SPIN: u32 = 8;

impl<T: Pod, const N: usize> Queue<T, N> {
    /// The index a side works at.
    #[inline(always)]
    fn index(&self, side: Side) -> &AtomicU64 {
        match side {
            Side::Put => &self.tail.0,
            Side::Get => &self.head.0,
        }
    }

    /// The latest value of an index (a read-modify-write reads the newest value).
    #[inline]
    pub(super) fn latest(index: &AtomicU64) -> u64 {
        index.fetch_add(0, Ordering::AcqRel)
    }

    /// One pass of a put or a get: finds the position to work on and claims it, or
    /// reports why not. `transfer` runs once, while the slot is claimed (the caller
    /// owns the item cell then).
    #[inline(always)]
    pub(super) fn step<R>(
        &self,
        side: Side,
        me: u32,
        transfer: impl FnOnce(&UnsafeCell<T>) -> R,
    ) -> Step<R> {
        if side == Side::Put && self.closed_now() {
            return Step::Closed;
        }
        let index = self.index(side);
        let mut pos = index.load(Ordering::Acquire);
        // Decisions to stop are made on fresh values (read-modify-writes): a plain
        // load may be stale, and a stale state or index may look full, empty or
        // impossible when it is not.
        let mut confirmed = false;
        let mut later_passes = 0usize;
        loop {
            let slot_index = (pos % N as u64) as usize;
            let slot = &self.slots[slot_index];
            let lap = pos / N as u64;
            // A get reads `closed` before the state: a put that came before the close
            // is then seen in the state. SYNC POINT with the Release store in `close`.
            let closed = side == Side::Get && confirmed && self.closed_now();
            let state = State(if confirmed {
                slot.state.fetch_add(0, Ordering::AcqRel)
            } else {
                // SYNC POINT with the Release CAS of the other side's release (FULL for
                // a get, FREE for a put) and with `reclaim`'s CAS.
                slot.state.load(Ordering::Acquire)
            });
            if !state.is_valid() {
                return Step::Corrupted;
            }
            let mut action = decide(side, state, lap);
            if let Action::PassLater(laps) = action {
                // Passing on a later lap is safe on any observation (laps only grow),
                // but a stale index would only fail its CAS below: reload it first.
                let now = index.load(Ordering::Acquire);
                if now != pos {
                    pos = now;
                    confirmed = false;
                    continue;
                }
                later_passes += 1;
                if later_passes > N.saturating_add(LATER_PASS_LIMIT)
                    || !self.later_is_plausible(state, laps, pos)
                {
                    action = Action::Corrupt;
                }
            }
            match action {
                Action::Claim => {
                    let mine = State::claim(side.claim_kind(), lap, me);
                    // SYNC POINT (Acquire) with the Release that made `state`: the other
                    // side's release, or `reclaim`.
                    if slot
                        .state
                        .compare_exchange(state.0, mine.0, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        pos = index.load(Ordering::Acquire);
                        confirmed = false;
                        continue;
                    }
                    let [claimed, advanced, transferred] = side.die_points();
                    die_point(claimed);
                    // Advance the index (someone may have done it for us).
                    let _ = index.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    die_point(advanced);
                    let result = transfer(&slot.value);
                    die_point(transferred);
                    // SYNC POINT with the Acquire load / claim CAS of the other side.
                    if slot
                        .state
                        .compare_exchange(
                            mine.0,
                            side.released(lap).0,
                            Ordering::Release,
                            Ordering::Relaxed,
                        )
                        .is_err()
                    {
                        // Only a reclaimer that found us dead may take our claim: we
                        // live, so the word was scribbled on.
                        return Step::Corrupted;
                    }
                    match side {
                        Side::Put => self.wake.0.not_empty.notify_all(),
                        Side::Get => self.wake.0.not_full.notify_all(),
                    }
                    return Step::Done(result);
                }
                Action::Pass | Action::PassLater(_) => {
                    pos = match index.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => pos.wrapping_add(1),
                        Err(now) => now,
                    };
                    confirmed = false;
                }
                Action::Wait(_) | Action::Corrupt if !confirmed => {
                    confirmed = true;
                    pos = Self::latest(index);
                }
                Action::Wait(held) => {
                    // The state is the newest; it belongs to `pos` only if the index did
                    // not move meanwhile.
                    let again = Self::latest(index);
                    if again != pos {
                        pos = again;
                        continue;
                    }
                    // Closed and nothing claimed at the head: drained. (A put claimed
                    // before the close is waited for: its item is delivered.)
                    if closed && state.kind() != WRITING {
                        return Step::Closed;
                    }
                    let busy = held.map(|lap| Busy {
                        index: slot_index,
                        state,
                        lap,
                    });
                    return Step::Blocked { pos, busy };
                }
                Action::Corrupt => {
                    let again = Self::latest(index);
                    if again != pos {
                        pos = again;
                        continue;
                    }
                    return Step::Corrupted;
                }
            }
        }
    }

    /// Is a pass of `side` worth making while we wait? A read-only look (plain loads)
    /// for the spin phase of a wait. A pass that finds the queue full or empty confirms
    /// it with read-modify-writes of the slot's state: spinning on passes would take
    /// that slot's line, at every poll, from the process about to fill or empty it.
    /// `false` may be stale: it only delays the next pass (see `block_on_hinted`).
    #[inline]
    pub(super) fn worth_a_pass(&self, side: Side) -> bool {
        // Relaxed: a hint; the pass it lets through reads everything again.
        let pos = self.index(side).load(Ordering::Relaxed);
        self.claimable_hint(side, pos) || self.closed_now()
    }

    /// A put found the queue full: before it waits as usual, spin (briefly, and not
    /// under [`WaitStrategy::Park`](crate::WaitStrategy::Park)) until there is room
    /// for a run of puts, looking only at the slot [`PUT_SLACK`] positions on. A
    /// producer that outruns its consumer otherwise takes each slot the moment the
    /// consumer frees it, and the two then work on the same lines at every item; with
    /// the slack, the producer fills a run of slots while the consumer works further
    /// back. The spin is its own (bounded by [`ROOM_SPIN`]), not the wait's adaptive
    /// one: a wait that spun for the slack and failed would teach the process that
    /// spinning does not pay.
    #[cold]
    pub(super) fn await_room(&self) {
        if crate::sync::wait_strategy() == crate::sync::WaitStrategy::Park {
            return;
        }
        let slack = (N as u64 / 8).clamp(1, PUT_SLACK);
        for i in 0..ROOM_SPIN {
            core::hint::spin_loop();
            if i % 8 == 7 {
                // Relaxed: a hint, as in `worth_a_pass`.
                let ahead = self.tail.0.load(Ordering::Relaxed).wrapping_add(slack - 1);
                if self.claimable_hint(Side::Put, ahead) || self.closed_now() {
                    return;
                }
            }
        }
    }

    /// Would `side` find the slot of position `pos` its to claim or pass (a plain look)?
    #[inline]
    fn claimable_hint(&self, side: Side, pos: u64) -> bool {
        let slot = &self.slots[(pos % N as u64) as usize];
        let state = State(slot.state.load(Ordering::Relaxed));
        !matches!(decide(side, state, pos / N as u64), Action::Wait(_))
    }

    /// Can the slot of position `pos` legitimately hold `state`, `laps` laps on?
    /// Every claimed position is at most the tail (claims are made at the tail); a
    /// FREE state speaks for the put after its last claimed position.
    #[cold]
    fn later_is_plausible(&self, state: State, laps: u64, pos: u64) -> bool {
        let laps = if state.kind() == FREE { laps - 1 } else { laps };
        let fits =
            |tail: u64| tail >= pos && u128::from(laps) * N as u128 <= u128::from(tail - pos);
        fits(self.tail.0.load(Ordering::Acquire)) || fits(Self::latest(&self.tail.0))
    }
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_complete_and_as_documented() {
        let id = 7;
        let l = 10;
        let put = |s| decide(Side::Put, s, l);
        let get = |s| decide(Side::Get, s, l);
        assert_eq!(put(State::free(l)), Action::Claim);
        assert_eq!(get(State::free(l)), Action::Wait(None));
        assert_eq!(put(State::claim(WRITING, l, id)), Action::Pass);
        assert_eq!(get(State::claim(WRITING, l, id)), Action::Wait(Some(l)));
        assert_eq!(put(State::full(l)), Action::Pass);
        assert_eq!(get(State::full(l)), Action::Claim);
        assert_eq!(put(State::claim(READING, l, id)), Action::Pass);
        assert_eq!(get(State::claim(READING, l, id)), Action::Pass);
        assert_eq!(put(State::full(l - 1)), Action::Wait(None));
        assert_eq!(get(State::full(l - 1)), Action::Corrupt);
        assert_eq!(
            put(State::claim(WRITING, l - 1, id)),
            Action::Wait(Some(l - 1))
        );
        assert_eq!(get(State::claim(WRITING, l - 1, id)), Action::Corrupt);
        assert_eq!(
            put(State::claim(READING, l - 1, id)),
            Action::Wait(Some(l - 1))
        );
        assert_eq!(
            get(State::claim(READING, l - 1, id)),
            Action::Wait(Some(l - 1))
        );
        assert_eq!(put(State::free(l - 1)), Action::Corrupt);
        assert_eq!(get(State::free(l - 1)), Action::Corrupt);
        for s in [
            State::free(l + 1),
            State::claim(WRITING, l + 1, id),
            State::full(l + 1),
            State::claim(READING, l + 1, id),
        ] {
            assert_eq!(put(s), Action::PassLater(1));
            assert_eq!(get(s), Action::PassLater(1));
        }
        assert_eq!(get(State::full(l + 5)), Action::PassLater(5));
        assert_eq!(get(State::full(l - 2)), Action::Corrupt);
        assert_eq!(put(State::claim(READING, l - 2, id)), Action::Corrupt);
    }
}

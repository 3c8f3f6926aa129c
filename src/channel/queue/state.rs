//! The slot state word: its encoding, and how a state stands to the position a
//! process is looking at.
//!
//! ## Encoding (one `u64` per slot)
//!
//! ```text
//! bits 63..62  kind   FREE = 0, WRITING = 1, FULL = 2, READING = 3
//! FREE, FULL:
//!   bits 61..0  lap   (pos / N) mod 2^62 of the position this state belongs to
//! WRITING, READING (a claim):
//!   bits 61..30 lap   (pos / N) mod 2^32
//!   bits 29..0  id    the claimer's participant id (`my_process_id`: non-zero, < ID_MASK)
//! ```
//!
//! All-zero is `FREE(0)`. A claim carries only 32 bits of lap to make room for its
//! claimer's id; the unclaimed states, which are what a claim CAS compares against,
//! carry 62. A claim word cannot recur while its claimer lives (the claimer's own
//! lap only grows), nor after it died (its id is never handed out again), so the
//! short lap never makes an ABA; a process stopped between loading an unclaimed
//! state and its CAS would have to sleep while one slot is reused 2^62 times.
//!
//! ## States by position
//!
//! Slot `i` serves positions `i, i + N, i + 2N, …`; lap `l` of slot `i` is position
//! `l·N + i`. Seen from a process working on position `pos` (lap `l`):
//!
//! ```text
//! state         producer at tail = pos            consumer at head = pos
//! FREE(l)       claim: -> WRITING(l, me)          nothing put yet: empty
//! WRITING(l)    taken by another producer: pass   a put in progress: empty, or
//!                                                 stalled if a later item is FULL
//! FULL(l)       taken: pass                       claim: -> READING(l, me)
//! READING(l)    taken: pass                       taken by another consumer: pass
//! FULL(l-1),    pos - N not yet consumed: full    (impossible: corrupted)
//! WRITING(l-1)  if pos - 1 is FULL, else stalled
//!               (a put in progress)
//! READING(l-1)  stalled: a get in progress        nothing put yet: empty
//!               (its item is taken: not full)
//! any lap > l   pos was passed: pass              pos was passed: pass
//!               (checked: at most the tail's)     (checked: at most the tail's)
//! else          corrupted                         corrupted
//!
//! FREE(l) -> WRITING(l, id) -> FULL(l) -> READING(l, id) -> FREE(l + 1)
//!               |  id dead: reclaim -> FREE(l + 1)   |  id dead: reclaim -> FREE(l + 1)
//! ```
//!
//! A state from a later lap at the index means the position was passed: its claimer
//! died and the slot was reclaimed and reused (by a producer one lap on), before
//! the index got there.

use crate::primitive::ID_MASK;

/// The kinds (bits 63..62).
pub(super) const FREE: u64 = 0;
pub(super) const WRITING: u64 = 1;
pub(super) const FULL: u64 = 2;
pub(super) const READING: u64 = 3;

const KIND_SHIFT: u32 = 62;
const ID_BITS: u32 = 30;
/// The lap bits of FREE and FULL.
const LONG_LAP: u64 = (1 << KIND_SHIFT) - 1;
/// The lap bits of a claim.
const SHORT_LAP: u64 = (1 << 32) - 1;

const _: () = assert!(ID_MASK as u64 == (1 << ID_BITS) - 1);

/// A slot state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct State(pub(super) u64);

/// How a state's lap stands to the lap of the position being looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rel {
    /// The same lap.
    Same,
    /// One lap before.
    Prev,
    /// This many laps after (at least 1, less than half the lap range).
    Later(u64),
    /// Two or more laps before (never legitimate).
    Older,
}

impl State {
    /// `FREE(lap)`.
    #[inline]
    pub(super) const fn free(lap: u64) -> State {
        State(lap & LONG_LAP)
    }

    /// `FULL(lap)`.
    #[inline]
    pub(super) const fn full(lap: u64) -> State {
        State((FULL << KIND_SHIFT) | (lap & LONG_LAP))
    }

    /// A claim (`WRITING` or `READING`) of lap `lap` by participant `id`.
    #[inline]
    pub(super) const fn claim(kind: u64, lap: u64, id: u32) -> State {
        State((kind << KIND_SHIFT) | ((lap & SHORT_LAP) << ID_BITS) | (id as u64 & ID_MASK as u64))
    }

    /// The kind (FREE, WRITING, FULL, READING).
    #[inline]
    pub(super) const fn kind(self) -> u64 {
        self.0 >> KIND_SHIFT
    }

    /// Is this a claim (WRITING or READING)?
    #[inline]
    pub(super) const fn is_claim(self) -> bool {
        self.kind() & 1 == 1
    }

    /// The claimer of a claim; `None` for FREE and FULL.
    #[inline]
    pub(super) const fn holder(self) -> Option<u32> {
        if self.is_claim() {
            Some((self.0 & ID_MASK as u64) as u32)
        } else {
            None
        }
    }

    /// Can a correct run write this word? (A claim's id is non-zero and `< ID_MASK`.)
    #[inline]
    pub(super) const fn is_valid(self) -> bool {
        match self.holder() {
            Some(id) => id != 0 && id < ID_MASK,
            None => true,
        }
    }

    /// The lap bits this state carries, and their mask.
    #[inline]
    const fn lap_bits(self) -> (u64, u64) {
        if self.is_claim() {
            ((self.0 >> ID_BITS) & SHORT_LAP, SHORT_LAP)
        } else {
            (self.0 & LONG_LAP, LONG_LAP)
        }
    }

    /// How this state's lap stands to `lap` (a full lap, `pos / N`), compared modulo
    /// the lap bits the state carries.
    #[inline]
    pub(super) const fn rel(self, lap: u64) -> Rel {
        let (slap, mask) = self.lap_bits();
        let d = slap.wrapping_sub(lap) & mask;
        if d == 0 {
            Rel::Same
        } else if d == mask {
            Rel::Prev
        } else if d <= mask >> 1 {
            Rel::Later(d)
        } else {
            Rel::Older
        }
    }

    /// The full lap of a claim, taken to be the latest one not after `reference`
    /// that agrees with its 32 lap bits (a held claim is at most a lap behind the
    /// tail: see `Queue::reclaim_dead`).
    #[inline]
    pub(super) const fn claim_lap_at_most(self, reference: u64) -> u64 {
        let (slap, mask) = self.lap_bits();
        reference.wrapping_sub(reference.wrapping_sub(slap) & mask)
    }
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;

    #[test]
    fn encoding_roundtrips() {
        assert_eq!(State::free(0).0, 0);
        let s = State::claim(READING, u64::MAX, ID_MASK - 1);
        assert_eq!(s.kind(), READING);
        assert_eq!(s.holder(), Some(ID_MASK - 1));
        assert!(s.is_valid());
        assert!(!State::claim(WRITING, 3, 0).is_valid());
        assert!(!State(State::claim(WRITING, 3, 1).0 | ID_MASK as u64).is_valid());
        assert_eq!(State::full(7).kind(), FULL);
        assert_eq!(State::full(7).holder(), None);
        assert_eq!(State::free(u64::MAX).kind(), FREE);
    }

    #[test]
    fn laps_compare_modulo_their_bits() {
        assert_eq!(State::free(5).rel(5), Rel::Same);
        assert_eq!(State::free(5).rel(6), Rel::Prev);
        assert_eq!(State::free(6).rel(5), Rel::Later(1));
        assert_eq!(State::free(9).rel(5), Rel::Later(4));
        assert_eq!(State::free(3).rel(5), Rel::Older);
        // Long laps wrap at 2^62, short ones at 2^32.
        assert_eq!(State::full(0).rel(LONG_LAP), Rel::Later(1));
        assert_eq!(State::full(LONG_LAP).rel(1 << 62), Rel::Prev);
        let c = State::claim(WRITING, (1 << 32) + 4, 9);
        assert_eq!(c.rel(4), Rel::Same);
        assert_eq!(c.rel((7 << 32) + 4), Rel::Same);
        assert_eq!(c.rel(5), Rel::Prev);
        assert_eq!(c.rel(3), Rel::Later(1));
        assert_eq!(c.claim_lap_at_most((7 << 32) + 9), (7 << 32) + 4);
        assert_eq!(c.claim_lap_at_most((7 << 32) + 4), (7 << 32) + 4);
        assert_eq!(c.claim_lap_at_most((7 << 32) + 3), (6 << 32) + 4);
    }
}

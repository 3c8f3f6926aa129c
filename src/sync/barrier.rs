//! [`Barrier`]: `n` parties meet, then go on together, round after round (Python's
//! `Barrier`).

use core::fmt;
use core::time::Duration;

use super::notifier::Notifier;
use crate::primitive::{AtomicU32, AtomicU64, Deadline, Ordering};
use crate::segment::ShmSafe;

/// Bits 0..=23: parties arrived in the current round.
pub(crate) const COUNT_MASK: u64 = (1 << 24) - 1;
/// Bit 24: the current round is broken (abort, or a party timed out).
pub(crate) const BROKEN: u64 = 1 << 24;
/// Bits 25..=39: how the last 15 rounds ended, newest in bit 25: 1 = broken/reset.
const HISTORY_SHIFT: u32 = 25;
const HISTORY_BITS: u32 = 15;
const HISTORY_MASK: u64 = ((1 << HISTORY_BITS) - 1) << HISTORY_SHIFT;
/// Bits 40..=63: the round (generation) number, wrapping.
pub(crate) const GEN_SHIFT: u32 = 40;
const GEN_MASK: u64 = !0 << GEN_SHIFT;

fn generation(s: u64) -> u64 {
    s >> GEN_SHIFT
}

/// The state that starts the next round after `s`, recording whether `s`'s round
/// ended broken.
fn next_round(s: u64, broken: bool) -> u64 {
    let history = ((s & HISTORY_MASK) << 1) & HISTORY_MASK;
    let history = history | if broken { 1 << HISTORY_SHIFT } else { 0 };
    (s & GEN_MASK).wrapping_add(1 << GEN_SHIFT) | history
}

/// How round `round` ended, seen from the later state `s`: true = broken. Rounds too
/// far back to be in the history count as broken.
fn round_was_broken(s: u64, round: u64) -> bool {
    let back = generation(s).wrapping_sub(round) & (GEN_MASK >> GEN_SHIFT);
    if back == 0 || back > u64::from(HISTORY_BITS) {
        return true;
    }
    (s >> (HISTORY_SHIFT + back as u32 - 1)) & 1 != 0
}

/// What a party gets from a completed [`Barrier::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BarrierWaitResult {
    index: u32,
    leader: bool,
}

impl BarrierWaitResult {
    /// This party's arrival order in the round: distinct, in `0..parties`.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Is this the round's one leader (the last to arrive)?
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

/// Why a [`Barrier::wait`] did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BarrierError {
    /// The round was aborted, reset, or broken by another party's timeout.
    Broken,
    /// This party's own timeout passed; the round is now broken for the others.
    Timeout,
    /// The barrier's shared state failed validation (a peer scribbled a party count
    /// of 0 or more than [`Barrier::MAX_PARTIES`]).
    Corrupted,
}

impl BarrierError {
    /// Is this [`Timeout`](BarrierError::Timeout)?
    pub fn is_timeout(&self) -> bool {
        matches!(self, BarrierError::Timeout)
    }
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BarrierError::Broken => "the barrier is broken (aborted, reset, or a party timed out)",
            BarrierError::Timeout => "timed out waiting at the barrier (it is now broken)",
            BarrierError::Corrupted => "the barrier's shared state failed validation (corrupted)",
        })
    }
}

impl core::error::Error for BarrierError {}

/// `parties` processes (or threads) wait until all have arrived, then all go on; the
/// barrier then serves the next round (Python's `Barrier`).
///
/// A party that times out breaks the round: every party waiting in it, and every later
/// one, gets [`BarrierError::Broken`] until [`reset`](Barrier::reset). A party that
/// dies while waiting leaves the round one short forever: wait with a timeout where
/// that can happen.
///
/// # Layout and states
///
/// ```text
/// offset size field     written by
///      0    8 state     every party (CAS): see below
///      8    4 parties   set once by `new`
///     12    4 (padding, zero)
///     16    8 notifier  waiters, and whoever ends a round
/// ```
///
/// `state` (one `u64`, so that a round's end is one CAS):
///
/// | bits    | field   | meaning |
/// |---------|---------|---------|
/// | 0..=23  | count   | parties arrived in this round |
/// | 24      | broken  | this round is broken |
/// | 25..=39 | history | how each of the last 15 rounds ended (1 = broken/reset), newest first |
/// | 40..=63 | round   | round number, wrapping |
///
/// Arrival: CAS `count -> count+1`; the last arrival instead CASes to the next round
/// (count 0, history bit 0) and wakes everyone. A waiter of round `r` returns when the
/// round number moves on — successfully, unless the history says round `r` was broken
/// — or when `broken` is set while the round is still `r`. `reset` of a round that has
/// waiters or is broken moves to the next round with history bit 1, so the old round's
/// waiters get `Broken` even if they look only afterwards.
///
/// # Examples
///
/// ```
/// use shmkit::{Barrier, Process, Shared};
///
/// let barrier = Shared::new(Barrier::new(2))?;
/// let mut child = Process::spawn(|| barrier.wait().map_or(1, |_| 0))?;
/// let mine = barrier.wait().unwrap();
/// assert!(child.join()?.success());
/// assert!(mine.index() < 2);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct Barrier {
    pub(crate) state: AtomicU64,
    /// Written once by `new`; atomic because a peer may scribble on it.
    pub(crate) parties: AtomicU32,
    _pad: u32,
    pub(crate) notifier: Notifier,
}

crate::layout::pin_layout!(Barrier { state: 0, parties: 8, _pad: 12, notifier: 16 }, size 24);

// SAFETY: repr(C), integer words (every value decodes: a scribbled count at or past
// `parties` is treated as a full round), no pointers, no Drop.
unsafe impl ShmSafe for Barrier {
    crate::segment::kit_identity!(Barrier, 1, "shmkit::Barrier");
}

impl Barrier {
    /// The largest number of parties a barrier takes (2^24 - 1).
    pub const MAX_PARTIES: u32 = COUNT_MASK as u32;

    crate::primitive::loom_const_fn! {
        /// A barrier for `parties` parties.
        ///
        /// # Panics
        ///
        /// If `parties` is 0 or more than [`Barrier::MAX_PARTIES`].
        pub const fn new(parties: u32) -> Self {
            assert!(parties > 0, "a Barrier needs at least one party");
            assert!(parties <= Barrier::MAX_PARTIES, "too many parties for a Barrier");
            Barrier {
                state: AtomicU64::new(0),
                parties: AtomicU32::new(parties),
                _pad: 0,
                notifier: Notifier::new(),
            }
        }
    }

    /// Waits until all parties have arrived in this round.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Broken`] if the round is (or becomes) broken: aborted, reset,
    /// or another party timed out.
    pub fn wait(&self) -> Result<BarrierWaitResult, BarrierError> {
        self.wait_deadline(Deadline::NEVER)
    }

    /// Waits at most `timeout` for all parties.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Timeout`] once `timeout` has passed (the round is then broken
    /// for every other party); [`BarrierError::Broken`] as for [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<BarrierWaitResult, BarrierError> {
        self.wait_deadline(Deadline::after(timeout))
    }

    fn wait_deadline(&self, deadline: Deadline) -> Result<BarrierWaitResult, BarrierError> {
        let parties = u64::from(self.parties.load(Ordering::Relaxed));
        if parties == 0 || parties > COUNT_MASK {
            return Err(BarrierError::Corrupted);
        }
        let mut s = self.state.load(Ordering::Acquire);
        let (round, index) = loop {
            if s & BROKEN != 0 {
                return Err(BarrierError::Broken);
            }
            let count = s & COUNT_MASK;
            let last = count + 1 >= parties;
            let next = if last { next_round(s, false) } else { s + 1 };
            // SYNC POINT with the other parties' CASes on `state`: AcqRel, so that
            // everything each party did before arriving happens before what every party
            // does after leaving.
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if last => {
                    self.notifier.notify_all();
                    return Ok(BarrierWaitResult {
                        index: count.min(parties - 1) as u32,
                        leader: true,
                    });
                }
                Ok(_) => break (generation(s), count as u32),
                Err(now) => s = now,
            }
        };
        let done = self.notifier.wait_until(deadline, || {
            // SYNC POINT with the CAS that ends the round.
            let s = self.state.load(Ordering::Acquire);
            self.outcome(s, round, index)
        });
        if let Some(result) = done {
            return result;
        }
        // Timed out: break the round, unless it ended meanwhile.
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if let Some(result) = self.outcome(s, round, index) {
                return result;
            }
            match self.state.compare_exchange_weak(
                s,
                s | BROKEN,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.notifier.notify_all();
        Err(BarrierError::Timeout)
    }

    /// How round `round` ended for the party that arrived `index`-th, seen from `s`;
    /// `None` while it is still open.
    fn outcome(
        &self,
        s: u64,
        round: u64,
        index: u32,
    ) -> Option<Result<BarrierWaitResult, BarrierError>> {
        if generation(s) == round {
            return (s & BROKEN != 0).then_some(Err(BarrierError::Broken));
        }
        Some(if round_was_broken(s, round) {
            Err(BarrierError::Broken)
        } else {
            Ok(BarrierWaitResult {
                index,
                leader: false,
            })
        })
    }

    /// Breaks the current round: every party waiting in it, and every later one, gets
    /// [`BarrierError::Broken`] until [`reset`](Self::reset).
    pub fn abort(&self) {
        let prev = self.state.fetch_or(BROKEN, Ordering::AcqRel);
        if prev & BROKEN == 0 {
            self.notifier.notify_all();
        }
    }

    /// Returns the barrier to its empty state, for a new round. Parties waiting in the
    /// current round get [`BarrierError::Broken`]. Does nothing to an empty, unbroken
    /// barrier.
    pub fn reset(&self) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & (BROKEN | COUNT_MASK) == 0 {
                return;
            }
            match self.state.compare_exchange_weak(
                s,
                next_round(s, true),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.notifier.notify_all();
    }

    /// The number of parties per round.
    pub fn parties(&self) -> u32 {
        self.parties.load(Ordering::Relaxed)
    }

    /// How many parties wait in the current round (0 if it is broken). A snapshot.
    pub fn n_waiting(&self) -> u32 {
        let s = self.state.load(Ordering::Relaxed);
        if s & BROKEN != 0 {
            0
        } else {
            (s & COUNT_MASK) as u32
        }
    }

    /// Is the current round broken?
    pub fn is_broken(&self) -> bool {
        self.state.load(Ordering::Relaxed) & BROKEN != 0
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("waiting", &(s & COUNT_MASK))
            .field("broken", &(s & BROKEN != 0))
            .field("round", &generation(s))
            .finish()
    }
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;

    #[test]
    fn miri_single_party_rounds_and_history() {
        let b = Barrier::new(1);
        for _ in 0..20 {
            let r = b.wait().unwrap();
            assert!(r.is_leader());
            assert_eq!(r.index(), 0);
        }
        assert_eq!(generation(b.state.load(Ordering::Relaxed)), 20);
        b.abort();
        assert!(b.is_broken());
        assert_eq!(b.wait(), Err(BarrierError::Broken));
        b.reset();
        assert!(!b.is_broken());
        let s = b.state.load(Ordering::Relaxed);
        assert!(round_was_broken(s, 20));
        assert!(b.wait().is_ok());
        let s = b.state.load(Ordering::Relaxed);
        assert!(!round_was_broken(s, 21));
        assert!(round_was_broken(s, 20));
        assert!(!round_was_broken(s, 19));
        // An empty, unbroken barrier: reset changes nothing.
        b.reset();
        assert_eq!(b.state.load(Ordering::Relaxed), s);
    }
}

//! `Barrier`: parties, arrivals in the current round, broken flag, sleepers.

use super::sleepers::{self, Sleepers};
use super::view::{Corrupted, View, corrupt};
use crate::sync::Barrier;
use crate::sync::barrier::{BROKEN, COUNT_MASK, GEN_SHIFT};

/// The live state of a barrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierState {
    /// How many parties each round waits for.
    pub parties: u32,
    /// How many have arrived in the current round.
    pub arrived: u32,
    /// Is the current round broken (aborted, or a party timed out)?
    pub broken: bool,
    /// The round number (wrapping at 2^24).
    pub round: u64,
    /// Parties asleep in the current round.
    pub sleepers: Sleepers,
}

const STATE: usize = core::mem::offset_of!(Barrier, state);
const PARTIES: usize = core::mem::offset_of!(Barrier, parties);
const SLEEPERS: usize = core::mem::offset_of!(Barrier, notifier) + sleepers::IN_NOTIFIER;

/// Decodes a `Barrier`.
pub(crate) fn decode(value: &View<'_>, stamp_now: u32) -> Result<BarrierState, Corrupted> {
    value.expect_len("a Barrier", core::mem::size_of::<Barrier>())?;
    let parties = value.u32(PARTIES)?;
    if parties == 0 || parties > Barrier::MAX_PARTIES {
        corrupt!(
            "a Barrier of {parties} parties (1 to {})",
            Barrier::MAX_PARTIES
        );
    }
    let state = value.u64(STATE)?;
    let arrived = (state & COUNT_MASK) as u32;
    if arrived >= parties {
        // The last arrival starts the next round instead of counting itself.
        corrupt!("{arrived} parties arrived at a Barrier of {parties}");
    }
    Ok(BarrierState {
        parties,
        arrived,
        broken: state & BROKEN != 0,
        round: state >> GEN_SHIFT,
        sleepers: sleepers::at(value, SLEEPERS, stamp_now)?,
    })
}

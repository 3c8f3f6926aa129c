//! `Event`: the flag, its generation, and its sleepers.

use super::sleepers::{self, Sleepers};
use super::view::{Corrupted, View};
use crate::sync::Event;
use crate::sync::event::{GEN_ONE, SET};

/// The live state of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventState {
    /// Is the flag set?
    pub set: bool,
    /// How many times a clear flag was set (mod 2^31).
    pub sets: u32,
    /// Waiters asleep, waiting for the flag.
    pub sleepers: Sleepers,
}

const STATE: usize = core::mem::offset_of!(Event, state);
const SLEEPERS: usize = core::mem::offset_of!(Event, notifier) + sleepers::IN_NOTIFIER;

/// Decodes an `Event`. Every state word decodes.
pub(crate) fn decode(value: &View<'_>, stamp_now: u32) -> Result<EventState, Corrupted> {
    value.expect_len("an Event", core::mem::size_of::<Event>())?;
    let state = value.u32(STATE)?;
    Ok(EventState {
        set: state & SET != 0,
        sets: state / GEN_ONE,
        sleepers: sleepers::at(value, SLEEPERS, stamp_now)?,
    })
}

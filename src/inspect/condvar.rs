//! `Condvar`: notifications so far and waiters.

use super::sleepers::{self, Sleepers};
use super::view::{Corrupted, View};
use crate::sync::Condvar;

/// The live state of a condition variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CondvarState {
    /// Notifications so far (mod 2^32).
    pub notifications: u32,
    /// Waiters (counted the way notifiers count sleepers).
    pub waiters: Sleepers,
}

const SEQ: usize = core::mem::offset_of!(Condvar, seq);
const WAITERS: usize = core::mem::offset_of!(Condvar, waiters);

/// Decodes a `Condvar`. Every word decodes.
pub(crate) fn decode(value: &View<'_>, stamp_now: u32) -> Result<CondvarState, Corrupted> {
    value.expect_len("a Condvar", core::mem::size_of::<Condvar>())?;
    Ok(CondvarState {
        notifications: value.u32(SEQ)?,
        waiters: sleepers::at(value, WAITERS, stamp_now)?,
    })
}

//! `Semaphore` and `BoundedSemaphore`: the permit count and its sleepers.

use super::sleepers::{self, Sleepers};
use super::view::{Corrupted, View, corrupt};
use crate::sync::notifier::Notifier;
use crate::sync::{BoundedSemaphore, Semaphore};

/// The live state of a semaphore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemaphoreState {
    /// Permits free now.
    pub value: u32,
    /// For a `BoundedSemaphore`: the most permits it holds.
    pub bound: Option<u32>,
    /// Acquirers asleep, waiting for a permit.
    pub sleepers: Sleepers,
}

const COUNT: usize = core::mem::offset_of!(Semaphore, count);
const SLEEPERS: usize = core::mem::offset_of!(Semaphore, notifier) + sleepers::IN_NOTIFIER;
const INNER: usize = core::mem::offset_of!(BoundedSemaphore, inner);
const BOUND: usize = core::mem::offset_of!(BoundedSemaphore, bound);
const _: () = assert!(core::mem::size_of::<Notifier>() == 8);

/// Decodes a `Semaphore` (`bounded == false`) or a `BoundedSemaphore`.
pub(crate) fn decode(
    value: &View<'_>,
    bounded: bool,
    stamp_now: u32,
) -> Result<SemaphoreState, Corrupted> {
    let (size, base) = if bounded {
        (core::mem::size_of::<BoundedSemaphore>(), INNER)
    } else {
        (core::mem::size_of::<Semaphore>(), 0)
    };
    value.expect_len("a semaphore", size)?;
    let count = value.u32(base + COUNT)?;
    let bound = if bounded {
        let bound = value.u32(BOUND)?;
        if count > bound {
            corrupt!("{count} permits free, above the bound of {bound}");
        }
        Some(bound)
    } else {
        None
    };
    Ok(SemaphoreState {
        value: count,
        bound,
        sleepers: sleepers::at(value, base + SLEEPERS, stamp_now)?,
    })
}

//! The sleeper word every notifier (and `Condvar`) keeps beside its futex word.

use super::view::{Corrupted, View};
use crate::sync::notifier::{COUNT_MASK, STALE_SECS, STAMP_SHIFT};

/// Waiters announced asleep on one notifier (a queue's "not empty", a pipe's "data",
/// a semaphore's permits...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sleepers {
    /// How many waiters have announced themselves (and not withdrawn).
    pub count: u32,
    /// Seconds since the latest announcement, when `count > 0` (a live sleeper
    /// announces itself again every second).
    pub age_secs: Option<u32>,
    /// The latest announcement is older than a live sleeper lets it get: the count
    /// belongs to sleepers that died asleep (the next waker clears it).
    pub stale: bool,
}

/// Decodes the sleeper word at `offset` (`count | stamp << 16`) against the current
/// coarse time `stamp_now` (seconds of `CLOCK_MONOTONIC`, mod 2^16).
pub(crate) fn at(view: &View<'_>, offset: usize, stamp_now: u32) -> Result<Sleepers, Corrupted> {
    let word = view.u32(offset)?;
    Ok(decode(word, stamp_now))
}

/// See [`at`]. Every word decodes.
pub(crate) fn decode(word: u32, stamp_now: u32) -> Sleepers {
    let count = word & COUNT_MASK;
    if count == 0 {
        return Sleepers {
            count,
            age_secs: None,
            stale: false,
        };
    }
    let age = stamp_now.wrapping_sub(word >> STAMP_SHIFT) & COUNT_MASK;
    Sleepers {
        count,
        age_secs: Some(age),
        stale: age > STALE_SECS,
    }
}

/// The current coarse time of announcements (as `sync::notifier` stamps them).
pub(crate) fn stamp_now() -> u32 {
    ((crate::sys::time::monotonic_ns() / 1_000_000_000) as u32) & COUNT_MASK
}

/// Offset of the sleeper word inside a `Notifier`.
pub(crate) const IN_NOTIFIER: usize =
    core::mem::offset_of!(crate::sync::notifier::Notifier, sleepers);

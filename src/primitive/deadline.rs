//! [`Deadline`]: an absolute point on `CLOCK_MONOTONIC`, or never; every timed call of
//! the kit carries one instead of a `Duration`, so retries never stretch a timeout.
//!
//! Under loom the clock is the model's (see `loom_clock`): a zero timeout has always
//! expired, every other finite deadline expires at the model's clock tick or at a
//! death its thread had not yet seen.

use core::time::Duration;

/// An absolute `CLOCK_MONOTONIC` deadline, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// Nanoseconds on `CLOCK_MONOTONIC`; `u64::MAX` = never.
    at_ns: u64,
}

impl Deadline {
    /// No deadline: wait forever.
    pub const NEVER: Deadline = Deadline { at_ns: u64::MAX };

    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        #[cfg(not(shmkit_loom))]
        {
            Deadline {
                at_ns: crate::sys::time::deadline_after(timeout),
            }
        }
        #[cfg(shmkit_loom)]
        {
            // 0: expired; finite: expires at the model's clock tick, or at a death
            // that this thread had not seen when it made the deadline.
            Deadline {
                at_ns: if timeout.is_zero() {
                    0
                } else {
                    super::loom_clock::finite_deadline()
                },
            }
        }
    }

    /// From an optional timeout: `None` = [`Deadline::NEVER`].
    pub fn from_timeout(timeout: Option<Duration>) -> Deadline {
        timeout.map_or(Deadline::NEVER, Deadline::after)
    }

    /// Has it passed?
    #[inline]
    pub fn expired(&self) -> bool {
        if self.at_ns == u64::MAX {
            return false;
        }
        #[cfg(not(shmkit_loom))]
        {
            self.at_ns == 0 || crate::sys::time::monotonic_ns() >= self.at_ns
        }
        #[cfg(shmkit_loom)]
        {
            self.at_ns == 0
                || super::loom_clock::ticked()
                || super::loom_clock::deadline_expired(self.at_ns)
        }
    }

    /// Is this a real deadline (not [`Deadline::NEVER`])?
    pub fn is_finite(&self) -> bool {
        self.at_ns != u64::MAX
    }

    /// The absolute time in nanoseconds, `None` for never.
    pub fn as_ns(&self) -> Option<u64> {
        self.is_finite().then_some(self.at_ns)
    }

    /// The earlier of `self` and `other`.
    #[inline]
    pub fn earlier(self, other: Deadline) -> Deadline {
        if other.at_ns < self.at_ns {
            other
        } else {
            self
        }
    }
}

//! [`Event`]: a flag that processes can wait for (Python's `Event`).

use core::fmt;
use core::time::Duration;

use super::notifier::Notifier;
use crate::primitive::{AtomicU32, Deadline, Ordering, loom_const_fn};
use crate::segment::ShmSafe;

/// Bit 0 of the state: the flag.
pub(crate) const SET: u32 = 1;
/// The generation counts `set`s in bits 1..=31.
pub(crate) const GEN_ONE: u32 = 2;

/// A flag that processes set, clear and wait for (Python's `Event`).
///
/// A waiter returns once the flag is set — even if it is cleared again before the
/// waiter gets to look: each `set` of a clear flag starts a new generation, and a
/// waiter also returns when the generation it started under has passed.
///
/// # Layout and states
///
/// ```text
/// offset size field     written by
///      0    4 state     set (CAS), clear (fetch_and): bit 0 = set, bits 1..=31 = generation
///      4    8 notifier  waiters and `set`
/// ```
///
/// | state       | meaning |
/// |-------------|---------|
/// | `g<<1`      | clear; `g` sets so far (mod 2^31) |
/// | `g<<1 \| 1` | set, by the `g`-th set |
///
/// `set` of a clear flag: CAS `g<<1 -> (g+1)<<1|1` (Release), then wakes every
/// sleeper. `clear`: clears bit 0. A waiter that saw `s0` returns when bit 0 is set or
/// the generation differs from `s0`'s. All-zero is a clear event.
///
/// # Examples
///
/// ```
/// use core::time::Duration;
/// use shmkit::Event;
///
/// let e = Event::new();
/// assert!(!e.wait_timeout(Duration::from_millis(1)));
/// e.set();
/// e.wait();
/// assert!(e.is_set());
/// ```
#[repr(C)]
pub struct Event {
    pub(crate) state: AtomicU32,
    pub(crate) notifier: Notifier,
}

crate::layout::pin_layout!(Event { state: 0, notifier: 4 }, size 12);

// SAFETY: repr(C), u32 words (every value decodes), no pointers, no Drop.
unsafe impl ShmSafe for Event {
    crate::segment::kit_identity!(Event, 1, "shmkit::Event");
}
// SAFETY: all-zero = clear, generation 0, nobody asleep.
#[cfg(not(shmkit_loom))]
unsafe impl bytemuck::Zeroable for Event {}

impl Event {
    loom_const_fn! {
        /// A clear event.
        pub const fn new() -> Self {
            Event {
                state: AtomicU32::new(0),
                notifier: Notifier::new(),
            }
        }
    }

    /// Sets the flag and wakes every waiter. Setting a set flag does nothing.
    pub fn set(&self) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & SET != 0 {
                return;
            }
            let next = (s & !SET).wrapping_add(GEN_ONE) | SET;
            // SYNC POINT with the Acquire loads in `wait_deadline` (what the setter
            // did before `set` happens before what a woken waiter does next).
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.notifier.notify_all();
    }

    /// Clears the flag. Waiters woken by an earlier `set` still return.
    pub fn clear(&self) {
        self.state.fetch_and(!SET, Ordering::Relaxed);
    }

    /// Is the flag set (a snapshot)?
    pub fn is_set(&self) -> bool {
        // SYNC POINT with the Release CAS in `set`.
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// Waits until the flag is set (or was set since this call began).
    pub fn wait(&self) {
        let _ = self.wait_deadline(Deadline::NEVER);
    }

    /// Waits at most `timeout`; true = the flag was set (false only once `timeout`
    /// has passed).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Deadline::after(timeout))
    }

    fn wait_deadline(&self, deadline: Deadline) -> bool {
        // SYNC POINT with the Release CAS in `set`.
        let start = self.state.load(Ordering::Acquire);
        if start & SET != 0 {
            return true;
        }
        self.notifier
            .wait_until(deadline, || {
                // SYNC POINT with the Release CAS in `set`.
                let s = self.state.load(Ordering::Acquire);
                (s & SET != 0 || s >> 1 != start >> 1).then_some(())
            })
            .is_some()
    }
}

impl Default for Event {
    /// A clear event.
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("notifier", &self.notifier)
            .finish()
    }
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use super::*;

    #[test]
    fn miri_set_clear_and_generations() {
        let e = Event::new();
        assert!(!e.is_set());
        e.set();
        e.set();
        assert!(e.is_set());
        assert_eq!(e.state.load(Ordering::Relaxed), GEN_ONE | SET);
        e.clear();
        assert!(!e.is_set());
        e.set();
        assert_eq!(e.state.load(Ordering::Relaxed), (2 * GEN_ONE) | SET);
        // A set flag returns at once, without sleeping.
        e.wait();
    }
}

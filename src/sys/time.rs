//! `CLOCK_MONOTONIC`, the only clock shmkit's timeouts use.

use core::time::Duration;

use rustix::thread::Timespec;

/// `clock_gettime(clock)` through the C library, not rustix: both are served by the
/// vDSO (no trap), but rustix finds the vDSO itself and its lookup crashes under
/// valgrind (which hides the vDSO), so callgrind could not count the kit's paths.
fn clock_gettime(clock: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks we pass exist on every
    // Linux, so the call cannot fail (and would leave `ts` zero if it did).
    let _ = unsafe { libc::clock_gettime(clock, &mut ts) };
    ts
}

/// Nanoseconds on `CLOCK_MONOTONIC` (`clock_gettime`, served by the vDSO: no trap).
pub(crate) fn monotonic_ns() -> u64 {
    let ts = clock_gettime(libc::CLOCK_MONOTONIC);
    // CLOCK_MONOTONIC is never negative.
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`): for display only (when a
/// segment or participant was made), never for a timeout.
pub(crate) fn realtime_ns() -> u64 {
    let ts = clock_gettime(libc::CLOCK_REALTIME);
    (ts.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The absolute monotonic time `timeout` from now, saturating far in the future.
pub(crate) fn deadline_after(timeout: Duration) -> u64 {
    let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    monotonic_ns().saturating_add(ns)
}

/// Converts nanoseconds to a `Timespec` (clamped to what the kernel accepts).
pub(crate) fn timespec_from_ns(ns: u64) -> Timespec {
    let secs = (ns / 1_000_000_000).min(i64::MAX as u64);
    Timespec {
        tv_sec: secs as i64,
        tv_nsec: (ns % 1_000_000_000) as _,
    }
}

/// `nanosleep` for `ns` nanoseconds (restarted after a signal until the time is served).
pub(crate) fn sleep_ns(ns: u64) {
    let mut request = timespec_from_ns(ns);
    while let rustix::thread::NanosleepRelativeResult::Interrupted(rest) =
        rustix::thread::nanosleep(&request)
    {
        request = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_moves_forward_and_sleep_serves_its_time() {
        let a = monotonic_ns();
        sleep_ns(2_000_000);
        let b = monotonic_ns();
        assert!(b >= a + 2_000_000, "{a} -> {b}");
    }

    #[test]
    fn deadline_saturates() {
        assert_eq!(deadline_after(Duration::MAX), u64::MAX);
        let ts = timespec_from_ns(1_500_000_001);
        assert_eq!((ts.tv_sec, ts.tv_nsec), (1, 500_000_001));
    }
}

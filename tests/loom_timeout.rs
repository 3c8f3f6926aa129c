//! Loom models of deadlines that expire: a clock thread ticks (`loom_clock_tick`) at
//! an arbitrary point, which passes every finite deadline and ends every timed sleep,
//! so loom explores each timeout racing each wake-up, arrival and release.
//!
//! Each model fails when the step it guards is removed (checked): the barrier's look
//! at whether the round ended before it breaks it; the notifier's `end_sleep` after a
//! timed-out sleep; reporting the permit that the last look after a timed-out sleep
//! took.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_timeout`.
#![cfg(shmkit_loom)]

use core::time::Duration;

use loom::sync::Arc;
use loom::thread;
use shmkit::__loom::{Deadline, Notifier, loom_clock_tick};
use shmkit::{Barrier, BarrierError, Semaphore};

/// A long timeout, finite: it passes only when the clock ticks.
const LATER: Duration = Duration::from_secs(3600);

/// A model thread whose only step is the clock's tick. Waiters in these models park
/// at once (`WaitStrategy::Park`): loom schedules away from a spinning or yielding
/// thread, so a spinning waiter would always see the tick before it slept.
fn clock() -> thread::JoinHandle<()> {
    shmkit::set_wait_strategy(shmkit::WaitStrategy::Park);
    thread::spawn(loom_clock_tick)
}

/// Party A waits with a timeout while party B arrives and the clock ticks. Either the
/// round completes for both, or A times out, breaks it, and B — still waiting or
/// arriving late — is told `Broken`. Never A `Timeout` with B let through (that needs
/// the "unless the round ended meanwhile" look before A breaks the round).
#[test]
fn barrier_timeout_races_the_last_arrival() {
    loom::model(|| {
        let b = Arc::new(Barrier::new(2));
        let tick = clock();
        let other = {
            let b = b.clone();
            thread::spawn(move || b.wait_timeout(LATER).map(|r| r.is_leader()))
        };
        let mine = b.wait_timeout(LATER).map(|r| r.is_leader());
        let theirs = other.join().unwrap();
        tick.join().unwrap();
        match (mine, theirs) {
            (Ok(a), Ok(b)) => assert!(a != b, "exactly one leader"),
            (Err(BarrierError::Timeout), Err(BarrierError::Broken | BarrierError::Timeout))
            | (Err(BarrierError::Broken), Err(BarrierError::Timeout)) => {}
            other => panic!("inconsistent round: {other:?}"),
        }
    });
}

/// A waiter whose deadline passes withdraws its sleeper announcement (else every later
/// wake would pay a system call), whether it got to sleep or not.
#[test]
fn timed_out_waiter_withdraws_its_announcement() {
    loom::model(|| {
        let n = Arc::new(Notifier::new());
        let tick = clock();
        let got: Option<()> = n.wait_until(Deadline::after(LATER), || None);
        assert!(got.is_none());
        tick.join().unwrap();
        assert!(!n.has_sleepers());
    });
}

/// A timed acquire racing a release and the clock: the permit is either taken (the
/// acquire says so) or still there — never lost, never taken twice.
#[test]
fn semaphore_timeout_keeps_the_permit() {
    loom::model(|| {
        let s = Arc::new(Semaphore::new(0));
        let tick = clock();
        let releaser = {
            let s = s.clone();
            thread::spawn(move || s.release())
        };
        let got = s.acquire_timeout(LATER);
        releaser.join().unwrap();
        tick.join().unwrap();
        assert_eq!(s.value(), if got { 0 } else { 1 });
    });
}

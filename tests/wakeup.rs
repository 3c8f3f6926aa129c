//! No lost wake-ups across processes, with the real asymmetric barrier.
//!
//! loom checks the sleep/wake hand-shake with both barriers modelled as SeqCst fences;
//! these tests check the real thing: the waker's compiler fence paired with the
//! sleeper's `membarrier(GLOBAL_EXPEDITED)`. Two processes bounce a message many times,
//! each side sleeping on the futex every time it waits (`WaitStrategy::Park`), so that
//! every hand-off goes through the window a missing barrier would open.
//!
//! - Through semaphores, a lost wake-up would show up as a timed-out acquire.
//! - Through a `Pipe`, blocked calls sleep in slices (so a dead peer is noticed), and a
//!   lost wake-up only costs the rest of a slice. The kit counts sleeps that ran out and
//!   then found their state ready (`stats::slice_rescues`); with the barrier removed from the
//!   sleeper's side this test saw 5 to 10 of them per 5,000 round trips, with it none.
#![allow(clippy::disallowed_types)]

mod common;

use std::time::Duration;

use common::Child;
use shmkit::{ExitStatus, Pipe, Semaphore, Shared, WaitStrategy, set_wait_strategy};

/// Round trips per test: each is two sleeps and two wake-ups.
const ROUNDS: u32 = 5_000;
/// Round trips through the pipe: enough that a missing barrier shows several times.
const PIPE_ROUNDS: u32 = 20_000;
/// Far longer than any hand-off, even on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// Bounces a token `ROUNDS` times between this process and a child, both using
/// `strategy`; returns the rounds the parent completed.
fn bounce(strategy: WaitStrategy) -> u32 {
    let ping = Shared::new(Semaphore::new(0)).unwrap();
    let pong = Shared::new(Semaphore::new(0)).unwrap();
    let child = Child::spawn(|| {
        set_wait_strategy(strategy);
        for _ in 0..ROUNDS {
            if !ping.acquire_timeout(PATIENCE) {
                return 3;
            }
            pong.release();
        }
        0
    });
    let before = shmkit::wait_strategy();
    set_wait_strategy(strategy);
    let mut done = 0;
    for _ in 0..ROUNDS {
        ping.release();
        if !pong.acquire_timeout(PATIENCE) {
            break;
        }
        done += 1;
    }
    set_wait_strategy(before);
    assert_eq!(child.join(), ExitStatus::Exited(0), "the child timed out");
    done
}

/// Bounces an 8-byte message `PIPE_ROUNDS` times through a `Pipe` between this process and
/// a child, both using `strategy`; returns the sleeps rescued by their time running out,
/// in both processes together.
fn bounce_pipe(strategy: WaitStrategy) -> u64 {
    let pipe = Shared::new(Pipe::<1024>::new()).unwrap();
    let child = Child::spawn(|| {
        set_wait_strategy(strategy);
        let (_, b) = pipe.ends();
        let mut buf = [0u8; 8];
        for _ in 0..PIPE_ROUNDS {
            let Ok(n) = b.recv_bytes_into(&mut buf) else {
                return 101;
            };
            if b.send_bytes(&buf[..n]).is_err() {
                return 102;
            }
        }
        // The exit code carries this process's count (capped below the error codes).
        shmkit::stats::slice_rescues().min(100) as i32
    });
    let before = shmkit::wait_strategy();
    set_wait_strategy(strategy);
    let rescued_before = shmkit::stats::slice_rescues();
    let (a, _) = pipe.ends();
    let mut buf = [0u8; 8];
    for i in 0..u64::from(PIPE_ROUNDS) {
        a.send_bytes(&i.to_le_bytes()).unwrap();
        assert_eq!(a.recv_bytes_into(&mut buf).unwrap(), 8);
        assert_eq!(u64::from_le_bytes(buf), i);
    }
    let mine = shmkit::stats::slice_rescues() - rescued_before;
    set_wait_strategy(before);
    match child.join() {
        ExitStatus::Exited(code) if code <= 100 => mine + code as u64,
        other => panic!("child failed: {other:?}"),
    }
}

/// One test for all: the strategy is process-wide, and tests in one binary run on
/// parallel threads.
#[test]
fn sleepers_are_always_woken() {
    assert_eq!(bounce(WaitStrategy::Park), ROUNDS, "Park");
    assert_eq!(bounce(WaitStrategy::Adaptive), ROUNDS, "Adaptive");
    // One rescue may be a change that landed just as a sleep ran out (a VM that stalls
    // a CPU for a millisecond); a lost wake-up per few thousand messages is a bug.
    let rescued = bounce_pipe(WaitStrategy::Park);
    assert!(
        rescued <= 1,
        "{rescued} sleeps ended by their slice, not a wake-up"
    );
}

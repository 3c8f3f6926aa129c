//! Loom model of `Barrier`: rounds reuse the state word (generations).
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_barrier`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::thread;
use shmkit::{Barrier, BarrierError};

/// Two parties, two rounds: each round gives indices {0, 1} and exactly one leader,
/// and nobody leaves a round before both arrived.
#[test]
fn two_parties_two_rounds() {
    loom::model(|| {
        let b = Arc::new(Barrier::new(2));
        let other = {
            let b = b.clone();
            thread::spawn(move || {
                let r1 = b.wait().unwrap();
                let r2 = b.wait().unwrap();
                (r1, r2)
            })
        };
        let m1 = b.wait().unwrap();
        let m2 = b.wait().unwrap();
        let (o1, o2) = other.join().unwrap();
        for (a, b) in [(m1, o1), (m2, o2)] {
            assert_ne!(a.index(), b.index());
            assert!(a.index() < 2 && b.index() < 2);
            assert!(a.is_leader() ^ b.is_leader());
        }
        assert_eq!(b.n_waiting(), 0);
    });
}

/// `abort` while a party waits: it gets `Broken`; after `reset` the barrier works.
#[test]
fn abort_breaks_waiter_then_reset() {
    loom::model(|| {
        let b = Arc::new(Barrier::new(2));
        let waiter = {
            let b = b.clone();
            thread::spawn(move || b.wait())
        };
        b.abort();
        assert_eq!(waiter.join().unwrap(), Err(BarrierError::Broken));
        assert_eq!(
            b.wait_timeout(core::time::Duration::ZERO),
            Err(BarrierError::Broken)
        );
        b.reset();
        assert!(!b.is_broken());
        assert_eq!(b.n_waiting(), 0);
    });
}

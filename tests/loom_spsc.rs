//! Loom models of the typed SPSC ring: items and batches through a ring smaller than
//! the stream (laps; both sides block, so a lost wake-up is reported as a deadlock),
//! close racing with a blocked push, and a producer killed in the middle of a push.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_spsc`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::thread;
use shmkit::spsc::PushError;
use shmkit::{Error, Spsc};

/// Three items through two slots: the producer blocks on the full ring, the consumer
/// on the empty one; then the producer's drop closes its end.
#[test]
fn items_lap_a_tiny_ring_with_blocking_both_ways() {
    loom::model(|| {
        let ring = Arc::new(Spsc::<u64, 2>::new());
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut tx = ring.producer();
                for i in 1..=3 {
                    tx.push(i).unwrap();
                }
            })
        };
        let mut rx = ring.consumer();
        for i in 1..=3 {
            assert_eq!(rx.pop(), Ok(i));
        }
        assert_eq!(rx.pop(), Err(Error::Disconnected));
        producer.join().unwrap();
    });
}

/// A batch larger than the ring goes in two publications; the consumer takes batches.
#[test]
fn batches_lap_a_tiny_ring() {
    loom::model(|| {
        let ring = Arc::new(Spsc::<u32, 2>::new());
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut tx = ring.producer();
                let items = [10u32, 11, 12];
                let mut sent = 0;
                while sent < items.len() {
                    sent += tx.push_slice(&items[sent..]).unwrap();
                }
            })
        };
        let mut rx = ring.consumer();
        let mut got = Vec::new();
        let mut buf = [0u32; 2];
        loop {
            match rx.pop_slice(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(Error::Disconnected) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, [10, 11, 12]);
        producer.join().unwrap();
    });
}

/// The consumer closes while the producer is (about to be) blocked on a full ring:
/// the producer wakes with `Disconnected`.
#[test]
fn close_races_with_a_blocked_push() {
    loom::model(|| {
        let ring = Arc::new(Spsc::<u64, 1>::new());
        let consumer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut rx = ring.consumer();
                // Claim the end (so that closing it counts), then close.
                assert!(rx.len().is_ok());
                rx.close();
            })
        };
        let mut tx = ring.producer();
        tx.push(1).unwrap();
        assert!(matches!(tx.push(2), Err(PushError::Disconnected(2))));
        consumer.join().unwrap();
    });
}

/// A producer killed while writing its second item: the consumer gets the first, never
/// the unpublished second, then `Disconnected`.
#[test]
fn an_unpublished_item_is_never_delivered() {
    loom::model(|| {
        let ring = Arc::new(Spsc::<u64, 2>::new());
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut tx = ring.producer();
                tx.push(5).unwrap();
                tx.__loom_die_mid_push(6);
            })
        };
        let mut rx = ring.consumer();
        assert_eq!(rx.pop(), Ok(5));
        assert_eq!(rx.pop(), Err(Error::Disconnected));
        producer.join().unwrap();
    });
}

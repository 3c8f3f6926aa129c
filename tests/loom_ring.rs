//! Loom models of the byte ring under `Pipe`/`Connection`: records that wrap with a
//! padding record, blocking on a full and an empty ring (the sleep/wake protocol: a
//! lost wake-up would be reported as a deadlock), close racing with send and recv,
//! and a sender killed in the middle of a record.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_ring`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::thread;
use shmkit::{Error, Pipe};

fn msg(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|j| tag.wrapping_add(j as u8)).collect()
}

/// Three messages through a 64-byte ring: 32 + 24 bytes of records, then one that
/// needs an 8-byte padding record and the space of the first. Both sides block.
#[test]
fn wrap_with_padding_and_blocking_both_ways() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let producer = {
            let pipe = pipe.clone();
            thread::spawn(move || {
                let (a, _) = pipe.ends();
                a.send_bytes(&msg(1, 20)).unwrap();
                a.send_bytes(&msg(2, 12)).unwrap();
                a.send_bytes(&msg(3, 20)).unwrap();
            })
        };
        let (_, b) = pipe.ends();
        let mut buf = [0u8; 64];
        for (tag, len) in [(1, 20), (2, 12), (3, 20)] {
            let n = b.recv_bytes_into(&mut buf).unwrap();
            assert_eq!(&buf[..n], &msg(tag, len)[..]);
        }
        producer.join().unwrap();
        // The producer's handle dropped: closed.
        assert_eq!(b.recv_bytes_into(&mut buf), Err(Error::Disconnected));
    });
}

/// The sender closes right after sending; the blocked receiver gets the message,
/// then `Disconnected`.
#[test]
fn close_races_with_recv() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let producer = {
            let pipe = pipe.clone();
            thread::spawn(move || {
                let (a, _) = pipe.ends();
                a.send(&7u64).unwrap();
                a.close();
            })
        };
        let (_, b) = pipe.ends();
        assert_eq!(b.recv::<u64>(), Ok(7));
        assert_eq!(b.recv::<u64>(), Err(Error::Disconnected));
        producer.join().unwrap();
    });
}

/// The receiver closes while the sender is (about to be) blocked on a full ring:
/// the sender wakes with `Disconnected`.
#[test]
fn close_races_with_blocked_send() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let receiver = {
            let pipe = pipe.clone();
            thread::spawn(move || {
                let (_, b) = pipe.ends();
                // Claim the end (so that closing it counts), then close.
                assert!(b.poll(Some(core::time::Duration::ZERO)).is_ok());
                b.close();
            })
        };
        let (a, _) = pipe.ends();
        let first = a.send_bytes(&[0u8; 56]);
        assert!(
            first == Ok(()) || first == Err(Error::Disconnected),
            "{first:?}"
        );
        assert_eq!(a.send_bytes(&[1u8; 8]), Err(Error::Disconnected));
        receiver.join().unwrap();
    });
}

/// A sender killed while writing its second record: the receiver gets the first,
/// never the half-written second, then `Disconnected`.
#[test]
fn half_written_record_is_never_delivered() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let producer = {
            let pipe = pipe.clone();
            thread::spawn(move || {
                let (a, _) = pipe.ends();
                a.send_bytes(&msg(5, 8)).unwrap();
                a.__loom_die_mid_send(16);
            })
        };
        let (_, b) = pipe.ends();
        let mut buf = [0u8; 64];
        // Concurrently with the sender: the first message or nothing yet.
        let mut got_first = match b.try_recv_bytes_into(&mut buf) {
            Ok(n) => {
                assert_eq!(&buf[..n], &msg(5, 8)[..]);
                true
            }
            Err(e) => {
                assert_eq!(e, Error::WouldBlock);
                false
            }
        };
        producer.join().unwrap();
        if !got_first {
            let n = b.try_recv_bytes_into(&mut buf).unwrap();
            assert_eq!(&buf[..n], &msg(5, 8)[..]);
            got_first = true;
        }
        assert!(got_first);
        assert_eq!(b.try_recv_bytes_into(&mut buf), Err(Error::Disconnected));
    });
}

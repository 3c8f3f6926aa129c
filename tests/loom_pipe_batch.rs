//! Loom models of the Pipe's batched transfers (`send_many` / `recv_many`): the
//! sender publishes a batch by one store (its first header, written last) and wakes
//! the receiver once per call; the receiver publishes `head` once per batch, lazily. Through a 64-byte ring the batches do not fit at once, so both
//! sides block: a wake-up lost to the lazy `head` or the single wake would be reported
//! as a deadlock, and a sender overwriting bytes the receiver still reads as a
//! causality violation on the ring's cells.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_pipe_batch`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::thread;
use shmkit::__loom::{loom_die_at, loom_until_death};
use shmkit::{Error, Pipe};

fn msg(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|j| tag.wrapping_add(j as u8)).collect()
}

/// Four 16-byte records (24 bytes each) through 64 bytes, sent as one batch and
/// received in batches: both sides wait, the ring wraps with padding.
#[test]
fn batches_through_a_ring_smaller_than_the_batch() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let producer = {
            let pipe = pipe.clone();
            thread::spawn(move || {
                let (a, _) = pipe.ends();
                let msgs: Vec<Vec<u8>> = (1..=4).map(|t| msg(t, 16)).collect();
                let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
                let mut sent = 0;
                while sent < refs.len() {
                    sent += a.send_many(&refs[sent..]).unwrap();
                }
                // Stay open until the receiver has everything: only the batch's own
                // wake-up may end its wait for the last records (not our close).
                assert_eq!(a.recv::<u8>(), Ok(1));
            })
        };
        let (_, b) = pipe.ends();
        let mut got = Vec::new();
        while got.len() < 4 {
            let n = b.recv_many(8, |m| got.push(m.to_vec())).unwrap();
            assert!(n >= 1);
        }
        b.send(&1u8).unwrap();
        assert_eq!(b.recv_many(8, |_| ()), Err(Error::Disconnected));
        let expect: Vec<Vec<u8>> = (1..=4).map(|t| msg(t, 16)).collect();
        assert_eq!(got, expect);
        producer.join().unwrap();
    });
}

/// A single-message sender against a batch receiver whose `head` lags: the sender,
/// blocked on a full ring, is woken by the batch's one publication.
#[test]
fn lazy_head_wakes_a_blocked_sender() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let producer = {
            let pipe = pipe.clone();
            thread::spawn(move || {
                let (a, _) = pipe.ends();
                for t in 1..=3 {
                    a.send_bytes(&msg(t, 20)).unwrap();
                }
            })
        };
        let (_, b) = pipe.ends();
        let mut got = Vec::new();
        while got.len() < 3 {
            b.recv_many(2, |m| got.push(m.to_vec())).unwrap();
        }
        let expect: Vec<Vec<u8>> = (1..=3).map(|t| msg(t, 20)).collect();
        assert_eq!(got, expect);
        producer.join().unwrap();
    });
}

/// A sender killed inside a batch, after its second record was published but before
/// the store of the first header that publishes the batch; the receiver runs
/// concurrently; a second sender adopts the end and sends two messages over the
/// dead batch's bytes: the first ends where the dead batch's second record starts,
/// whose sealed header is still there. The receiver gets exactly the adopter's two
/// messages — nothing of the dead batch, and never that stale header as a record.
///
/// Fails when `end_batch` stores `tail` before the first header (the adopter
/// continues after the batch while the receiver waits at its zero first header).
/// (Without the zeroing of the word after a batch's first record in `batch_commit`,
/// `batches_through_a_ring_smaller_than_the_batch` fails: a one-record batch leaves
/// an earlier lap's bytes where the receiver looks next, `Corrupted`.)
#[test]
fn a_sender_killed_inside_a_batch_publishes_nothing_of_it() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let dead = {
            let pipe = pipe.clone();
            thread::spawn(move || {
                let (a, _) = pipe.ends();
                let batch = [msg(0xd1, 8), msg(0xd2, 8)];
                let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                loom_die_at("pipe.batch.before_first");
                assert!(
                    loom_until_death(|| a.send_many(&refs)).is_none(),
                    "did not die"
                );
                std::mem::forget(a);
            })
        };
        let receiver = {
            let pipe = pipe.clone();
            thread::spawn(move || {
                let (_, b) = pipe.ends();
                let mut got = Vec::new();
                while got.len() < 2 {
                    match b.try_recv_many(4, |m| got.push(m.to_vec())) {
                        Ok(_) => {}
                        // Nothing yet, or the dead sender is not adopted yet.
                        Err(Error::WouldBlock | Error::Disconnected) => thread::yield_now(),
                        Err(e) => panic!("{e:?} after {got:?}"),
                    }
                }
                assert_eq!(got, vec![msg(0xa1, 8), msg(0xa2, 8)]);
            })
        };
        dead.join().unwrap();
        let (a2, _) = pipe.ends();
        assert_eq!(a2.send_bytes(&msg(0xa1, 8)), Ok(()));
        assert_eq!(a2.send_bytes(&msg(0xa2, 8)), Ok(()));
        receiver.join().unwrap();
    });
}

/// Why no record of a batch but the first may start a lap (position 0): a sender
/// sends m0 (a 48-byte record), then a batch d1, d2 whose d1 ends at the end of the
/// array, and is killed before the store that publishes the batch. A second sender
/// adopts the end and sends a1 (ending at the end of the array, where nothing is
/// zeroed ahead) and a2. The receiver gets m0, a1, a2.
///
/// Fails when `try_reserve_at` lets d2 into the batch at position 0: its header,
/// sealed for exactly the index where a1 ends, is still there, and the receiver
/// takes the dead batch's d2 after a1.
#[test]
fn no_record_of_a_batch_but_the_first_starts_a_lap() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let dead = {
            let pipe = pipe.clone();
            thread::spawn(move || {
                let (a, _) = pipe.ends();
                a.send_bytes(&msg(0x10, 40)).unwrap();
                let batch = [msg(0xd1, 8), msg(0xd2, 8)];
                let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                loom_die_at("pipe.batch.before_first");
                assert!(
                    loom_until_death(|| a.send_many(&refs)).is_none(),
                    "did not die"
                );
                std::mem::forget(a);
            })
        };
        let receiver = {
            let pipe = pipe.clone();
            thread::spawn(move || {
                let (_, b) = pipe.ends();
                let mut got = Vec::new();
                while got.len() < 3 {
                    match b.recv_many(4, |m| got.push(m.to_vec())) {
                        Ok(_) => {}
                        // The dead sender is not adopted yet.
                        Err(Error::Disconnected) => thread::yield_now(),
                        Err(e) => panic!("{e:?} after {got:?}"),
                    }
                }
                assert_eq!(got, vec![msg(0x10, 40), msg(0xa1, 8), msg(0xa2, 8)]);
            })
        };
        dead.join().unwrap();
        let (a2, _) = pipe.ends();
        assert_eq!(a2.send_bytes(&msg(0xa1, 8)), Ok(()));
        assert_eq!(a2.send_bytes(&msg(0xa2, 8)), Ok(()));
        receiver.join().unwrap();
    });
}

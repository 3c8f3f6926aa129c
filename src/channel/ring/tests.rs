//! Unit tests of the ring over ordinary memory (run under Miri too: `miri_` prefix).

extern crate std;
use core::cell::Cell;
use std::boxed::Box;
use std::vec::Vec;

use super::layout::{Ring, header_word, record_len};
use crate::error::Error;

fn send<const CAP: usize>(r: &Ring<CAP>, cache: &Cell<u64>, msg: &[u8]) -> Result<bool, Error> {
    match r.try_reserve(cache, msg.len())? {
        Some(res) => {
            r.fill(&res, |b| b.copy_from_slice(msg))?;
            r.commit(res);
            Ok(true)
        }
        None => Ok(false),
    }
}

fn recv<const CAP: usize>(r: &Ring<CAP>) -> Result<Option<Vec<u8>>, Error> {
    match r.peek()? {
        Some(m) => {
            let v = r.read(&m, |b| b.to_vec())?;
            r.release(m);
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

/// Writes `bytes` at `offset` of the ring (see `Ring::scribble`).
fn scribble<const CAP: usize>(r: &Ring<CAP>, offset: usize, bytes: &[u8]) {
    // SAFETY: the ring is this test's alone; nothing else accesses it.
    unsafe { r.scribble(offset, bytes) };
}

#[test]
fn miri_ring_roundtrip_and_wrap() {
    let r = Box::new(Ring::<64>::new());
    let ph = Cell::new(0);
    for round in 0..20u8 {
        let msg: Vec<u8> = (0..(round % 13) as usize)
            .map(|i| i as u8 ^ round)
            .collect();
        assert!(send(&r, &ph, &msg).unwrap());
        assert_eq!(recv(&r).unwrap().as_deref(), Some(&msg[..]));
    }
    assert_eq!(recv(&r).unwrap(), None);
}

#[test]
fn miri_ring_full_message_after_padding() {
    let r = Box::new(Ring::<64>::new());
    let ph = Cell::new(0);
    assert!(send(&r, &ph, &[1; 3]).unwrap());
    // 56 bytes need the whole ring, from position 0: the padding to the end (48
    // bytes, plus 8 of slack) does not fit yet.
    assert!(!send(&r, &ph, &[9; 56]).unwrap());
    assert_eq!(recv(&r).unwrap(), Some(std::vec![1; 3]));
    // Now the padding is published, and the record waits for the receiver to pass it.
    assert!(!send(&r, &ph, &[9; 56]).unwrap());
    assert_eq!(recv(&r).unwrap(), None);
    assert!(send(&r, &ph, &[9; 56]).unwrap());
    assert!(!send(&r, &ph, &[]).unwrap());
    assert_eq!(recv(&r).unwrap(), Some(std::vec![9; 56]));
    // The consumer is at position 0 of the next lap, where the word is the header
    // of the record it just read: nothing new, not corruption.
    assert_eq!(recv(&r).unwrap(), None);
    assert!(send(&r, &ph, &[7; 5]).unwrap());
    assert_eq!(recv(&r).unwrap(), Some(std::vec![7; 5]));
}

/// Issue 10, defect 5: a `Ring<64>` filled with 8-byte messages; each receive makes
/// room for exactly one more send of the same size, lap after lap (the old rule took
/// no slack for the record ending at the array's end, and then refused the first
/// record of the next lap).
#[test]
fn miri_one_receive_makes_room_for_one_send_of_its_size() {
    let r = Box::new(Ring::<64>::new());
    let ph = Cell::new(0);
    let mut sent = 0u8;
    while send(&r, &ph, &[sent; 8]).unwrap() {
        sent += 1;
    }
    // 16-byte records, and 8 bytes always kept free: three fit.
    assert_eq!(sent, 3);
    let mut received = 0u8;
    for _ in 0..40 {
        assert_eq!(recv(&r).unwrap(), Some(std::vec![received; 8]));
        received += 1;
        assert!(
            send(&r, &ph, &[sent; 8]).unwrap(),
            "after {received} receives"
        );
        sent += 1;
        assert!(!send(&r, &ph, &[sent; 8]).unwrap(), "full again");
    }
}

/// The rule of "Room" in general: whatever state random sends and receives of any
/// size leave, after a send of `n` bytes is refused, one receive of a message of at
/// least `n` bytes makes room for it, unless the send must pad to the array's end.
#[test]
fn one_receive_makes_room_for_a_send_that_needs_no_padding() {
    fn run<const CAP: usize>(seed: u64) {
        let r = Box::new(Ring::<CAP>::new());
        let ph = Cell::new(0);
        let mut rng = seed;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut queued: std::collections::VecDeque<usize> = Default::default();
        let mut checked = 0;
        for _ in 0..4000 {
            let n = (next() % (CAP as u64 - 8 + 1)) as usize;
            let n = if next() % 2 == 0 { n / 8 } else { n };
            if send(&r, &ph, &std::vec![0xa5; n]).unwrap() {
                queued.push_back(n);
                continue;
            }
            // Refused. Does the record fit before the end of the array as things are?
            let (_, tail) = r.indices();
            let pads = record_len(n) > CAP - Ring::<CAP>::pos(tail);
            let front = queued.front().copied();
            let m = recv(&r).unwrap().map(|m| m.len());
            assert_eq!(m, front);
            queued.pop_front();
            if !pads && m.is_some_and(|m| m >= n) {
                assert!(
                    send(&r, &ph, &std::vec![0x5a; n]).unwrap(),
                    "{n} after {m:?}"
                );
                queued.push_back(n);
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} cases checked");
    }
    for seed in 1..=8u64 {
        run::<64>(seed * 0x9E37_79B9);
        run::<256>(seed * 0x9E37_79B9);
    }
}

#[test]
fn miri_ring_corruption_is_reported() {
    let r = Box::new(Ring::<64>::new());
    let ph = Cell::new(0);
    assert!(send(&r, &ph, &[5; 8]).unwrap());
    // A length the seal does not match.
    scribble(&r, 384, &40u32.to_le_bytes());
    assert_eq!(recv(&r), Err(Error::Corrupted));
    // An unknown seal.
    scribble(&r, 384, &8u32.to_le_bytes());
    scribble(&r, 388, b"XXXX");
    assert_eq!(recv(&r), Err(Error::Corrupted));
    // A misaligned head.
    scribble(&r, 128, &3u64.to_le_bytes());
    assert_eq!(recv(&r), Err(Error::Corrupted));
    // tail - head > CAP.
    scribble(&r, 128, &0u64.to_le_bytes());
    scribble(&r, 0, &1000u64.to_le_bytes());
    assert_eq!(r.try_reserve(&ph, 1), Err(Error::Corrupted));
}

/// A hostile peer can compute seals (they are not secret): correctly sealed headers
/// with impossible lengths are reported, never trusted, never overflow.
#[test]
fn miri_sealed_headers_with_impossible_lengths_are_corruption() {
    for len in [u32::MAX, u32::MAX - 7, 64, 57, (1 << 31) + 8] {
        for padding in [false, true] {
            let r = Box::new(Ring::<64>::new());
            let ph = Cell::new(0);
            // At position 8 (head 8), after one consumed record.
            assert!(send(&r, &ph, &[]).unwrap());
            assert_eq!(recv(&r).unwrap(), Some(std::vec![]));
            scribble(&r, 384 + 8, &header_word(8, len, padding).to_le_bytes());
            assert_eq!(
                recv(&r),
                Err(Error::Corrupted),
                "len {len} padding {padding}"
            );
            // The adopting producer's walk stops there, without panicking.
            r.recover_tail();
            assert_eq!(r.indices(), (8, 8));
        }
    }
}

#[test]
fn miri_ring_stale_header_is_not_a_record() {
    let r = Box::new(Ring::<64>::new());
    let ph = Cell::new(0);
    assert!(send(&r, &ph, &[5; 8]).unwrap());
    let mut word = [0u8; 8];
    r.data.read(0, 8, |b| word.copy_from_slice(b)).unwrap();
    assert_eq!(recv(&r).unwrap(), Some(std::vec![5; 8]));
    // The same header bytes one record further on (as a stale header of an
    // earlier lap, or a payload that looks like one, would be): the seal ties a
    // header to its index, so this is corruption, not a message.
    scribble(&r, 384 + 16, &word);
    assert_eq!(recv(&r), Err(Error::Corrupted));
}

#[test]
fn miri_ring_adopting_producer_recovers_tail() {
    let r = Box::new(Ring::<64>::new());
    let ph = Cell::new(0);
    r.recover_tail();
    assert_eq!(r.indices(), (0, 0));
    assert!(send(&r, &ph, &[1; 8]).unwrap());
    assert!(send(&r, &ph, &[2; 3]).unwrap());
    // A producer that died after publishing both records but before storing
    // `tail` for them.
    scribble(&r, 0, &0u64.to_le_bytes());
    r.recover_tail();
    assert_eq!(r.indices(), (0, 32));
    assert!(send(&r, &ph, &[3; 1]).unwrap());
    for expect in [std::vec![1; 8], std::vec![2; 3], std::vec![3; 1]] {
        assert_eq!(recv(&r).unwrap(), Some(expect));
    }
    assert_eq!(recv(&r).unwrap(), None);
}

/// Issue 10, defect 7: the producer died between publishing a record and storing
/// `tail`, and the consumer has consumed that record since: `head` is past `tail`.
/// Recovery carries on from `head` (it used to stop at its index check, leaving
/// every later send `Corrupted`).
#[test]
fn miri_recovery_starts_where_the_consumer_is_when_it_is_ahead() {
    for (laps, second) in [(0u64, 8usize), (3, 8), (5, 16), (7, 0), (2, 24)] {
        let r = Box::new(Ring::<64>::new());
        let ph = Cell::new(0);
        // Run some laps first, so the state lies anywhere in the array.
        for i in 0..laps {
            assert!(send(&r, &ph, &[i as u8; 20]).unwrap());
            assert!(recv(&r).unwrap().is_some());
        }
        assert!(send(&r, &ph, &[1; 8]).unwrap());
        assert!(send(&r, &ph, &std::vec![2; second]).unwrap());
        // The kill: `tail` not stored for the second record.
        let (_, tail) = r.indices();
        let start = tail - record_len(second) as u64;
        scribble(&r, 0, &start.to_le_bytes());
        assert_eq!(recv(&r).unwrap(), Some(std::vec![1; 8]));
        assert_eq!(recv(&r).unwrap(), Some(std::vec![2; second]));
        let (head, tail) = r.indices();
        assert!(head > tail, "head {head} tail {tail}");
        r.recover_tail();
        assert_eq!(r.indices(), (head, head));
        let ph = Cell::new(0);
        for i in 0..10u8 {
            assert!(send(&r, &ph, &[i; 12]).unwrap());
            assert_eq!(recv(&r).unwrap(), Some(std::vec![i; 12]));
        }
    }
}

/// Recovery with indices that are garbage both ways leaves them (sends then report
/// `Corrupted`) and does not panic.
#[test]
fn miri_recovery_leaves_garbage_indices_alone() {
    let r = Box::new(Ring::<64>::new());
    scribble(&r, 0, &1000u64.to_le_bytes());
    scribble(&r, 128, &5u64.to_le_bytes());
    r.recover_tail();
    assert_eq!(r.indices(), (5, 1000));
    assert_eq!(r.try_reserve(&Cell::new(5), 1), Err(Error::Corrupted));
    assert_eq!(r.peek(), Err(Error::Corrupted));
}

//! The Pipe's batched transfers: `send_many` / `recv_many` (and their `try_` forms)
//! across forked processes through a small ring (laps, padding, both sides waiting),
//! mixed with single-message calls, and their errors.
#![allow(clippy::disallowed_types)]

mod common;

use common::Child;
use shmkit::{Error, Pipe, Shared};

fn msg(i: u64) -> Vec<u8> {
    let len = (i * 7 % 41) as usize;
    let mut m = vec![(i % 251) as u8; len.max(8)];
    m[..8].copy_from_slice(&i.to_le_bytes());
    m
}

#[test]
fn batches_across_processes_keep_order_and_disconnect_after_drain() {
    let pipe = Shared::<Pipe<256>>::new_zeroed().unwrap();
    let (a, b) = pipe.ends();
    const TOTAL: u64 = 20_000;
    let child = Child::spawn(move || {
        let msgs: Vec<Vec<u8>> = (0..TOTAL).map(msg).collect();
        let mut i = 0usize;
        let mut round = 0usize;
        while i < msgs.len() {
            round += 1;
            if round % 5 == 0 {
                if b.send_bytes(&msgs[i]).is_err() {
                    return 2;
                }
                i += 1;
                continue;
            }
            let k = (round % 13 + 1).min(msgs.len() - i);
            let refs: Vec<&[u8]> = msgs[i..i + k].iter().map(Vec::as_slice).collect();
            match b.send_many(&refs) {
                Ok(n) if n >= 1 => i += n,
                _ => return 3,
            }
        }
        0
    });
    let mut expect = 0u64;
    let mut round = 0usize;
    let mut buf = [0u8; 64];
    loop {
        round += 1;
        let r = if round % 4 == 0 {
            a.recv_bytes_into(&mut buf).map(|n| {
                assert_eq!(&buf[..n], &msg(expect)[..]);
                expect += 1;
                1
            })
        } else {
            a.recv_many(round % 9 + 1, |m| {
                assert_eq!(m, &msg(expect)[..]);
                expect += 1;
            })
        };
        match r {
            Ok(n) => assert!(n >= 1),
            Err(Error::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(expect, TOTAL);
    assert!(child.join().success());
}

#[test]
fn try_forms_and_errors() {
    let pipe = Box::new(Pipe::<64>::new());
    let (a, b) = pipe.ends();
    assert_eq!(b.try_recv_many(4, |_| ()), Err(Error::WouldBlock));
    assert_eq!(a.try_send_many(&[]), Ok(0));
    // 64 bytes hold two 16-byte records (24 each, plus slack): a prefix is sent.
    let m = [1u8; 16];
    assert_eq!(a.try_send_many(&[&m, &m, &m]), Ok(2));
    assert_eq!(a.try_send_many(&[&m]), Err(Error::WouldBlock));
    let too_big = [0u8; 57];
    assert_eq!(
        a.send_many(&[&m, &too_big]),
        Err(Error::MessageTooLarge { len: 57, max: 56 })
    );
    let mut seen = 0;
    assert_eq!(b.try_recv_many(1, |_| seen += 1), Ok(1));
    assert_eq!(b.try_recv_many(0, |_| seen += 1), Ok(0));
    assert_eq!(b.try_recv_many(8, |_| seen += 1), Ok(1));
    assert_eq!(seen, 2);
    drop(a);
    assert_eq!(b.recv_many(8, |_| ()), Err(Error::Disconnected));
}

#[test]
fn a_batch_runs_on_past_the_padding_at_the_wrap() {
    // 256 bytes: records of 8 + 24 bytes, 8 per lap minus slack; batches of 5 wrap
    // at every position, with padding (a 40-byte message leaves gaps).
    let pipe = Box::new(Pipe::<256>::new());
    let (a, b) = pipe.ends();
    let small = [7u8; 24];
    let odd = [9u8; 40];
    for round in 0..200 {
        let batch: Vec<&[u8]> = (0..5)
            .map(|i| {
                if (round + i) % 3 == 0 {
                    &odd[..]
                } else {
                    &small[..]
                }
            })
            .collect();
        assert_eq!(a.try_send_many(&batch), Ok(5), "round {round}");
        let mut got = Vec::new();
        // Everything queued is handed over in one call, padding or not.
        assert_eq!(
            b.try_recv_many(64, |m| got.push(m.to_vec())),
            Ok(5),
            "round {round}"
        );
        for (g, e) in got.iter().zip(&batch) {
            assert_eq!(&g[..], *e);
        }
    }
}

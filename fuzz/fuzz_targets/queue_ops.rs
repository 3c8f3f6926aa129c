//! Random operation sequences on a `Queue` (try_put, try_get, put_timeout and
//! get_timeout with a zero timeout, close, len, lost), checked against a `VecDeque`
//! model, for capacities 1, 2, 3, 5 and 8. One process, so no operation is ever in
//! progress in another: `Stalled` never happens, and nothing is ever lost.
//!
//! Then the tail of the input is written over the queue's shared words (indices and
//! slot states, at their documented offsets) between further operations: from there
//! on the model no longer holds, but every call must return — a value or an error —
//! never panic or hang (libFuzzer's `-timeout` catches a hang).
#![no_main]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmkit::{GetError, PutError, Queue};

/// The 8-byte words of the queue that hold protocol state: head (0), tail (128),
/// closed and lost (256, 264), then one state word per 16-byte slot from 512.
fn word<const N: usize>(q: &Queue<u32, N>, pick: u8) -> &AtomicU64 {
    let offset = match pick % 4 {
        0 => 0,
        1 => 128,
        2 => 264,
        _ => 512 + 16 * (pick as usize / 4 % N),
    };
    // SAFETY: `Queue<u32, N>` is repr(C) with these 8-aligned atomic words at these
    // offsets (asserted in the crate); they are only ever accessed atomically.
    unsafe { &*std::ptr::from_ref(q).cast::<u8>().add(offset).cast::<AtomicU64>() }
}

fn run<const N: usize>(data: &[u8]) {
    let q = Box::new(Queue::<u32, N>::new());
    let mut model = VecDeque::new();
    let mut closed = false;
    let split = data.iter().position(|&b| b == 0xff).unwrap_or(data.len());
    let (ops, scribbles) = data.split_at(split);
    for (i, &op) in ops.iter().enumerate() {
        let v = (i as u32) << 8 | u32::from(op);
        match op % 16 {
            0 => {
                q.close();
                closed = true;
            }
            1..=7 => {
                let expect = if closed {
                    Err(PutError::Closed(v))
                } else if model.len() == N {
                    Err(if op % 2 == 0 { PutError::Timeout(v) } else { PutError::Full(v) })
                } else {
                    model.push_back(v);
                    Ok(())
                };
                let got = if op % 2 == 0 {
                    q.put_timeout(v, Duration::ZERO)
                } else {
                    q.try_put(v)
                };
                assert_eq!(got, expect);
            }
            _ => {
                let timed = op % 2 == 0;
                let expect = match model.pop_front() {
                    Some(v) => Ok(v),
                    None if closed => Err(GetError::Closed),
                    None if timed => Err(GetError::Timeout),
                    None => Err(GetError::Empty),
                };
                let got = if timed {
                    q.get_timeout(Duration::ZERO)
                } else {
                    q.try_get()
                };
                assert_eq!(got, expect);
            }
        }
        assert_eq!(q.len(), model.len());
        assert_eq!(q.is_full(), model.len() == N);
        assert_eq!(q.is_empty(), model.is_empty());
    }
    assert_eq!(q.lost(), 0);
    // Scribbles: (word, 8 bytes) then an operation, over and over.
    for chunk in scribbles[1.min(scribbles.len())..].chunks(10) {
        let [pick, b @ .., op] = chunk else {
            break;
        };
        let mut bytes = [0u8; 8];
        bytes[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        word(&q, *pick).store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        match op % 6 {
            0 => drop(q.try_put(u32::from(*op))),
            1 => drop(q.put_timeout(u32::from(*op), Duration::ZERO)),
            2 => drop(q.try_get()),
            3 => drop(q.get_timeout(Duration::ZERO)),
            4 => drop(q.lost()),
            _ => drop((q.len(), shmkit::wait(&[&*q], Some(Duration::ZERO)))),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => run::<1>(rest),
        1 => run::<2>(rest),
        2 => run::<3>(rest),
        3 => run::<5>(rest),
        _ => run::<8>(rest),
    }
});

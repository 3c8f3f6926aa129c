//! Model-based tests of the typed SPSC ring: random operation sequences (single items,
//! batches, chunks with partial commits) checked step by step against a bounded
//! `VecDeque`, in one process; and across fork, a child producing with random batch
//! shapes while the parent consumes with random shapes, checked against the sequence.
#![allow(clippy::disallowed_types)]

mod common;

use std::collections::VecDeque;

use common::Child;
use proptest::prelude::*;
use shmkit::spsc::PushError;
use shmkit::{Error, Shared, Spsc};

#[derive(Debug, Clone)]
enum Op {
    Push,
    PushSlice(usize),
    WriteChunk { max: usize, commit: usize },
    Pop,
    PopSlice(usize),
    ReadChunk { max: usize, commit: usize },
    Len,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            3 => Just(Op::Push),
            2 => (0usize..12).prop_map(Op::PushSlice),
            2 => (0usize..12, 0usize..12).prop_map(|(max, commit)| Op::WriteChunk { max, commit }),
            3 => Just(Op::Pop),
            2 => (0usize..12).prop_map(Op::PopSlice),
            2 => (0usize..12, 0usize..12).prop_map(|(max, commit)| Op::ReadChunk { max, commit }),
            1 => Just(Op::Len),
        ],
        1..300,
    )
}

fn run<const N: usize>(ops: &[Op]) {
    let ring = Box::new(Spsc::<u64, N>::new());
    let (mut tx, mut rx) = ring.split();
    let mut model: VecDeque<u64> = VecDeque::new();
    let mut next = 0u64;
    // A producer handle that never ran an operation never claimed its end, and its
    // drop closes nothing.
    let mut producer_used = false;
    for op in ops {
        let free = N - model.len();
        producer_used |= matches!(op, Op::Push | Op::PushSlice(_) | Op::WriteChunk { .. });
        match *op {
            Op::Push => match tx.try_push(next) {
                Ok(()) => {
                    assert!(free > 0);
                    model.push_back(next);
                    next += 1;
                }
                Err(PushError::Full(v)) => {
                    assert_eq!(free, 0);
                    assert_eq!(v, next);
                }
                Err(e) => panic!("{e:?}"),
            },
            Op::PushSlice(len) => {
                let items: Vec<u64> = (next..next + len as u64).collect();
                match tx.try_push_slice(&items) {
                    Ok(n) => {
                        assert_eq!(n, len.min(free));
                        assert!(n > 0 || len == 0);
                        model.extend(&items[..n]);
                        next += n as u64;
                    }
                    Err(Error::WouldBlock) => assert!(free == 0 && len > 0),
                    Err(e) => panic!("{e}"),
                }
            }
            Op::WriteChunk { max, commit } => match tx.try_write_chunk(max) {
                Ok(mut chunk) => {
                    assert_eq!(chunk.len(), max.min(free));
                    for (i, slot) in chunk.iter_mut().enumerate() {
                        *slot = next + i as u64;
                    }
                    let k = commit.min(chunk.len());
                    chunk.commit(commit);
                    model.extend(next..next + k as u64);
                    next += k as u64;
                }
                Err(Error::WouldBlock) => assert_eq!(free, 0),
                Err(e) => panic!("{e}"),
            },
            Op::Pop => match rx.try_pop() {
                Ok(v) => assert_eq!(Some(v), model.pop_front()),
                Err(Error::WouldBlock) => assert!(model.is_empty()),
                Err(e) => panic!("{e}"),
            },
            Op::PopSlice(len) => {
                let mut out = vec![0u64; len];
                match rx.try_pop_slice(&mut out) {
                    Ok(n) => {
                        assert_eq!(n, len.min(model.len()));
                        for v in &out[..n] {
                            assert_eq!(Some(*v), model.pop_front());
                        }
                    }
                    Err(Error::WouldBlock) => assert!(model.is_empty() && len > 0),
                    Err(e) => panic!("{e}"),
                }
            }
            Op::ReadChunk { max, commit } => match rx.try_read_chunk(max) {
                Ok(chunk) => {
                    assert_eq!(chunk.len(), max.min(model.len()));
                    for (v, m) in chunk.iter().zip(&model) {
                        assert_eq!(v, m);
                    }
                    let k = commit.min(chunk.len());
                    chunk.commit(commit);
                    model.drain(..k);
                }
                Err(Error::WouldBlock) => assert!(model.is_empty()),
                Err(e) => panic!("{e}"),
            },
            Op::Len => assert_eq!(rx.len(), Ok(model.len())),
        }
    }
    drop(tx);
    for v in model {
        assert_eq!(rx.try_pop(), Ok(v));
    }
    let end = if producer_used {
        Error::Disconnected
    } else {
        Error::WouldBlock
    };
    assert_eq!(rx.try_pop(), Err(end));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn spsc_matches_model_n1(ops in ops()) { run::<1>(&ops); }

    #[test]
    fn spsc_matches_model_n2(ops in ops()) { run::<2>(&ops); }

    #[test]
    fn spsc_matches_model_n8(ops in ops()) { run::<8>(&ops); }
}

/// The producer's side of the fork test: batch shapes (0 = one `push`, k = a
/// `push_slice` of up to k items, `k + 100` = a chunk of up to k).
fn produce<const N: usize>(
    tx: &mut shmkit::spsc::Producer<'_, u64, N>,
    shapes: &[usize],
    total: u64,
) -> i32 {
    let mut next = 0u64;
    let mut i = 0;
    while next < total {
        let shape = shapes[i % shapes.len()];
        i += 1;
        let left = (total - next) as usize;
        if shape == 0 {
            if tx.push(next).is_err() {
                return 2;
            }
            next += 1;
        } else if shape < 100 {
            let items: Vec<u64> = (next..next + shape.min(left) as u64).collect();
            match tx.push_slice(&items) {
                Ok(n) => next += n as u64,
                Err(_) => return 3,
            }
        } else {
            let Ok(mut chunk) = tx.write_chunk((shape - 100).min(left)) else {
                return 4;
            };
            let n = chunk.len() as u64;
            for (j, slot) in chunk.iter_mut().enumerate() {
                *slot = next + j as u64;
            }
            chunk.commit_all();
            next += n;
        }
    }
    0
}

fn across_fork<const N: usize>(prod: &[usize], cons: &[usize], total: u64) {
    let ring = Shared::<Spsc<u64, N>>::new_zeroed().unwrap();
    let (tx, mut rx) = ring.split();
    let prod = prod.to_vec();
    let child = Child::spawn(move || {
        let mut tx = tx;
        produce(&mut tx, &prod, total)
    });
    let mut expect = 0u64;
    let mut i = 0;
    let mut buf = [0u64; 16];
    loop {
        let shape = cons[i % cons.len()];
        i += 1;
        let got: Result<Vec<u64>, Error> = if shape == 0 {
            rx.pop().map(|v| vec![v])
        } else if shape < 100 {
            rx.pop_slice(&mut buf[..shape.min(16)])
                .map(|n| buf[..n].to_vec())
        } else {
            rx.read_chunk(shape - 100).map(|chunk| {
                let v: Vec<u64> = chunk.iter().copied().collect();
                // Commit half: the rest must come again.
                let k = v.len().div_ceil(2);
                chunk.commit(k);
                v[..k].to_vec()
            })
        };
        match got {
            Ok(v) => {
                for x in v {
                    assert_eq!(x, expect);
                    expect += 1;
                }
            }
            Err(Error::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(expect, total);
    assert!(child.join().success());
}

fn shape() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), 1usize..10, 101usize..110]
}

proptest! {
    // Each case forks: fewer cases.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn spsc_across_fork(
        prod in proptest::collection::vec(shape(), 1..20),
        cons in proptest::collection::vec(shape(), 1..20),
        total in 1u64..3000,
        which in 0usize..3,
    ) {
        match which {
            0 => across_fork::<1>(&prod, &cons, total),
            1 => across_fork::<4>(&prod, &cons, total),
            _ => across_fork::<64>(&prod, &cons, total),
        }
    }
}

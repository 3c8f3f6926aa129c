//! Model-based tests: random operation sequences on `Semaphore`, `BoundedSemaphore`,
//! `Barrier` (single-threaded generations), `Value` and `Array`, each checked against
//! a plain sequential model; and a semaphore driven by a forked process.
// Tests use std's atomics as plain shared counters; only the kit's algorithms must
// take theirs from the loom facade.
#![allow(clippy::disallowed_types)]

mod common;

use std::time::Duration;

use proptest::prelude::*;
use shmkit::{Array, Barrier, BarrierError, BoundedSemaphore, Error, Semaphore, Shared, Value};

#[derive(Debug, Clone)]
enum SemOp {
    TryAcquire,
    AcquireZeroTimeout,
    Release,
}

fn sem_op() -> impl Strategy<Value = SemOp> {
    prop_oneof![
        Just(SemOp::TryAcquire),
        Just(SemOp::AcquireZeroTimeout),
        Just(SemOp::Release),
    ]
}

#[derive(Debug, Clone)]
enum CellOp {
    Get(usize),
    Set(usize, u32),
    Add(usize, u32),
    CopyFrom(Vec<u32>),
    CopyTo(usize),
}

fn cell_op() -> impl Strategy<Value = CellOp> {
    prop_oneof![
        (0usize..10).prop_map(CellOp::Get),
        (0usize..10, any::<u32>()).prop_map(|(i, v)| CellOp::Set(i, v)),
        (0usize..10, any::<u32>()).prop_map(|(i, v)| CellOp::Add(i, v)),
        proptest::collection::vec(any::<u32>(), 0..10).prop_map(CellOp::CopyFrom),
        (0usize..10).prop_map(CellOp::CopyTo),
    ]
}

#[derive(Debug, Clone)]
enum BarrierOp {
    /// One party arrives with a zero timeout (parties > 1: times out unless last).
    Arrive,
    Abort,
    Reset,
}

fn barrier_op() -> impl Strategy<Value = BarrierOp> {
    prop_oneof![
        6 => Just(BarrierOp::Arrive),
        1 => Just(BarrierOp::Abort),
        2 => Just(BarrierOp::Reset),
    ]
}

proptest! {
    #[test]
    fn semaphore_matches_a_counter(init in 0u32..5, ops in proptest::collection::vec(sem_op(), 0..64)) {
        let s = Semaphore::new(init);
        let b = BoundedSemaphore::new(init);
        let mut count = init;
        let mut bcount = init;
        for op in ops {
            match op {
                SemOp::TryAcquire => {
                    prop_assert_eq!(s.try_acquire(), count > 0);
                    prop_assert_eq!(b.try_acquire(), bcount > 0);
                    count = count.saturating_sub(1);
                    bcount = bcount.saturating_sub(1);
                }
                SemOp::AcquireZeroTimeout => {
                    prop_assert_eq!(s.acquire_timeout(Duration::ZERO), count > 0);
                    prop_assert_eq!(b.acquire_timeout(Duration::ZERO), bcount > 0);
                    count = count.saturating_sub(1);
                    bcount = bcount.saturating_sub(1);
                }
                SemOp::Release => {
                    s.release();
                    count += 1;
                    if bcount < init {
                        prop_assert_eq!(b.release(), Ok(()));
                        bcount += 1;
                    } else {
                        prop_assert_eq!(b.release(), Err(Error::Overflow));
                    }
                }
            }
            prop_assert_eq!(s.value(), count);
            prop_assert_eq!(b.value(), bcount);
        }
    }

    #[test]
    fn value_and_array_match_a_plain_array(ops in proptest::collection::vec(cell_op(), 0..64)) {
        const N: usize = 6;
        let a = Array::new([0u32; N]);
        let total = Value::new(0u64);
        let mut model = [0u32; N];
        let mut model_total = 0u64;
        for op in ops {
            match op {
                CellOp::Get(i) => prop_assert_eq!(a.get(i), model.get(i).copied()),
                CellOp::Set(i, v) => {
                    if i < N {
                        prop_assert_eq!(a.set(i, v), Ok(()));
                        model[i] = v;
                    } else {
                        prop_assert_eq!(a.set(i, v), Err(Error::IndexOutOfBounds { index: i, len: N }));
                    }
                }
                CellOp::Add(i, v) => {
                    let i = i % N;
                    a.lock()[i] = a.get(i).unwrap().wrapping_add(v);
                    model[i] = model[i].wrapping_add(v);
                    total.update(|t| *t += u64::from(v));
                    model_total += u64::from(v);
                }
                CellOp::CopyFrom(src) => {
                    let n = a.copy_from(&src);
                    prop_assert_eq!(n, src.len().min(N));
                    model[..n].copy_from_slice(&src[..n]);
                }
                CellOp::CopyTo(len) => {
                    let mut out = vec![0u32; len];
                    let n = a.copy_to(&mut out);
                    prop_assert_eq!(n, len.min(N));
                    prop_assert_eq!(&out[..n], &model[..n]);
                }
            }
            prop_assert_eq!(*a.lock(), model);
            prop_assert_eq!(total.get(), model_total);
        }
    }

    /// One thread, zero timeouts: an arrival completes the round only if it is the
    /// last; otherwise it times out and breaks the round. The model tracks arrivals,
    /// broken state and rounds.
    #[test]
    fn barrier_generations_match_a_model(parties in 1u32..4, ops in proptest::collection::vec(barrier_op(), 0..64)) {
        let b = Barrier::new(parties);
        let mut waiting = 0u32; // arrivals that count in the current round
        let mut broken = false;
        let mut rounds = 0u32;
        for op in ops {
            match op {
                BarrierOp::Arrive => {
                    let got = b.wait_timeout(Duration::ZERO);
                    if broken {
                        prop_assert_eq!(got, Err(BarrierError::Broken));
                    } else if waiting + 1 == parties {
                        let r = got.unwrap();
                        prop_assert!(r.is_leader());
                        prop_assert_eq!(r.index(), parties - 1);
                        waiting = 0;
                        rounds += 1;
                    } else {
                        // Arrived, then timed out: the round is broken.
                        prop_assert_eq!(got, Err(BarrierError::Timeout));
                        waiting += 1;
                        broken = true;
                    }
                }
                BarrierOp::Abort => {
                    b.abort();
                    broken = true;
                }
                BarrierOp::Reset => {
                    b.reset();
                    waiting = 0;
                    broken = false;
                }
            }
            prop_assert_eq!(b.is_broken(), broken);
            prop_assert_eq!(b.n_waiting(), if broken { 0 } else { waiting });
        }
        let _ = rounds;
    }
}

/// A forked process releases a random number of permits while this one acquires
/// them: in the end the count is exactly what a counter says.
#[test]
fn semaphore_across_processes_matches_counter() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(8));
    runner
        .run(&(0u32..50, 0u32..50), |(releases, acquires)| {
            let acquires = acquires.min(releases);
            let s = Shared::new(Semaphore::new(0)).unwrap();
            let child = common::Child::spawn(|| {
                for _ in 0..releases {
                    s.release();
                }
                0
            });
            for _ in 0..acquires {
                prop_assert!(s.acquire_timeout(Duration::from_secs(20)));
            }
            prop_assert!(child.join().success());
            prop_assert_eq!(s.value(), releases - acquires);
            Ok(())
        })
        .unwrap();
}

//! `Queue` and `JoinableQueue`: FIFO, full/empty, timeouts, closing, task counting,
//! across forked processes.
#![allow(clippy::disallowed_types)]

mod common;

use std::time::{Duration, Instant};

use common::Child;
use shmkit::{Error, ExitStatus, GetError, JoinableQueue, Pod, PutError, Queue, Shared, Zeroable};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Job {
    id: u64,
    payload: [u32; 6],
}

#[test]
fn capacity_one_alternates() {
    let q = Queue::<u64, 1>::new();
    assert_eq!(q.capacity(), 1);
    for i in 0..50 {
        assert!(q.is_empty());
        q.try_put(i).unwrap();
        assert!(q.is_full());
        assert_eq!(q.len(), 1);
        assert_eq!(q.try_put(99), Err(PutError::Full(99)));
        assert_eq!(q.try_get(), Ok(i));
        assert_eq!(q.try_get(), Err(GetError::Empty));
    }
    assert_eq!(q.lost(), 0);
}

#[test]
fn timeouts_hand_back_and_never_return_early() {
    let q = Queue::<Job, 2>::new();
    let job = Job {
        id: 1,
        payload: [7; 6],
    };
    q.put(job).unwrap();
    q.put(job).unwrap();
    let d = Duration::from_millis(30);
    let start = Instant::now();
    let err = q.put_timeout(job, d).unwrap_err();
    assert!(start.elapsed() >= d);
    assert_eq!(err, PutError::Timeout(job));
    assert_eq!(err.into_inner(), job);
    assert_eq!(format!("{err:?}"), "Timeout(..)");
    q.get().unwrap();
    q.get().unwrap();
    let start = Instant::now();
    assert_eq!(q.get_timeout(d), Err(GetError::Timeout));
    assert!(start.elapsed() >= d);
}

#[test]
fn close_drains_then_reports_closed() {
    let q = Queue::<u32, 4>::new();
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.close();
    assert!(q.is_closed());
    assert_eq!(q.put(3), Err(PutError::Closed(3)));
    assert_eq!(q.try_put(3), Err(PutError::Closed(3)));
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.try_get(), Ok(2));
    assert_eq!(q.get(), Err(GetError::Closed));
    assert_eq!(q.get_timeout(Duration::from_secs(5)), Err(GetError::Closed));
}

#[test]
fn close_wakes_blocked_getters_in_other_processes() {
    let q = Shared::new(Queue::<u32, 4>::new()).unwrap();
    let child = Child::spawn(|| match q.get() {
        Err(GetError::Closed) => 0,
        _ => 1,
    });
    std::thread::sleep(Duration::from_millis(20));
    q.close();
    assert_eq!(child.join(), ExitStatus::Exited(0));
}

#[test]
fn fifo_across_processes_with_blocking_on_both_sides() {
    let q = Shared::new(Queue::<Job, 8>::new()).unwrap();
    const N: u64 = 20_000;
    let child = Child::spawn(|| {
        for id in 0..N {
            let job = Job {
                id,
                payload: [id as u32; 6],
            };
            if q.put(job).is_err() {
                return 1;
            }
        }
        0
    });
    for id in 0..N {
        let job = q.get().unwrap();
        assert_eq!(job.id, id);
        assert_eq!(job.payload, [id as u32; 6]);
    }
    assert_eq!(child.join(), ExitStatus::Exited(0));
    assert_eq!(q.lost(), 0);
}

#[test]
fn joinable_counts_tasks() {
    let q = Shared::new(JoinableQueue::<u64, 16>::new()).unwrap();
    assert_eq!(q.task_done(), Err(Error::Overflow));
    assert!(q.join_timeout(Duration::ZERO));
    for i in 0..10 {
        q.put(i).unwrap();
    }
    assert_eq!(q.unfinished(), 10);
    let d = Duration::from_millis(20);
    let start = Instant::now();
    assert!(!q.join_timeout(d));
    assert!(start.elapsed() >= d);
    let worker = Child::spawn(|| {
        while let Ok(_x) = q.get() {
            if q.task_done().is_err() {
                return 1;
            }
        }
        0
    });
    q.join();
    assert_eq!(q.unfinished(), 0);
    assert!(q.is_empty());
    // A failed put does not count.
    q.close();
    assert_eq!(q.put(1), Err(PutError::Closed(1)));
    assert_eq!(q.unfinished(), 0);
    assert_eq!(worker.join(), ExitStatus::Exited(0));
    assert_eq!(q.task_done(), Err(Error::Overflow));
}

#[test]
fn zeroed_in_place_is_an_empty_queue() {
    let q = Shared::<Queue<u64, 100_000>>::new_zeroed().unwrap();
    assert!(q.is_empty());
    q.put(3).unwrap();
    assert_eq!(q.get(), Ok(3));
    let p = Shared::<shmkit::Pipe<65536>>::new_zeroed().unwrap();
    let (a, b) = p.ends();
    a.send(&1u8).unwrap();
    assert_eq!(b.recv::<u8>(), Ok(1));
}

/// A put waiting on a full queue waits (while it spins) for a run of free slots, not
/// for one: it must still finish when a consumer frees a single slot and stops. Every
/// strategy, the big queue (slack of 128) and a small one (slack of 1).
#[test]
fn a_blocked_put_finishes_when_one_slot_frees() {
    fn run<const N: usize>() {
        let q = Queue::<u64, N>::new();
        for i in 0..N as u64 {
            q.try_put(i).unwrap();
        }
        std::thread::scope(|s| {
            let putter = s.spawn(|| {
                let start = Instant::now();
                let r = q.put_timeout(u64::MAX, Duration::from_secs(20));
                (r, start.elapsed())
            });
            // Let the put reach its wait (any order works: the put must finish either way).
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(q.get(), Ok(0));
            let (r, waited) = putter.join().unwrap();
            assert_eq!(r, Ok(()), "the put waited {waited:?} and failed");
            // Not a timing test: a put that only the deadline's last try let through
            // would have waited the whole 20 s.
            assert!(
                waited < Duration::from_secs(10),
                "the put starved for {waited:?}"
            );
        });
        // The queue holds 1..N, then the late item, in order.
        for i in 1..N as u64 {
            assert_eq!(q.try_get(), Ok(i));
        }
        assert_eq!(q.try_get(), Ok(u64::MAX));
        assert_eq!(q.try_get(), Err(GetError::Empty));
    }
    for strategy in [
        shmkit::WaitStrategy::Adaptive,
        shmkit::WaitStrategy::Spin,
        shmkit::WaitStrategy::Park,
    ] {
        shmkit::set_wait_strategy(strategy);
        run::<1024>();
        run::<4>();
    }
    shmkit::set_wait_strategy(shmkit::WaitStrategy::Adaptive);
}

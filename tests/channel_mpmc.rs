//! Cross-process MPMC: 2 producer and 2 consumer processes move 10^6 items through
//! one `Queue`; each item arrives exactly once (a shared bitmap, count and sum).
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::Child;
use shmkit::{ExitStatus, Queue, Shared};

const ITEMS: u64 = 1_000_000;
const WORDS: usize = (ITEMS as usize).div_ceil(64);

#[test]
fn two_producers_two_consumers_exactly_once() {
    let q = Shared::new(Queue::<u64, 1024>::new()).unwrap();
    let seen = Shared::new([const { AtomicU64::new(0) }; WORDS]).unwrap();
    // count, sum, duplicates
    let stats = Shared::new([const { AtomicU64::new(0) }; 3]).unwrap();

    let producer = |p: u64| {
        let (q, _) = (&q, p);
        move || {
            let mut i = p;
            while i < ITEMS {
                if q.put(i).is_err() {
                    return 1;
                }
                i += 2;
            }
            0
        }
    };
    let consumer = || {
        let (mut count, mut sum) = (0u64, 0u64);
        while let Ok(x) = q.get() {
            if x >= ITEMS {
                return 2;
            }
            let bit = 1u64 << (x % 64);
            if seen[(x / 64) as usize].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
                stats[2].fetch_add(1, Ordering::Relaxed);
            }
            count += 1;
            sum += x;
        }
        stats[0].fetch_add(count, Ordering::Relaxed);
        stats[1].fetch_add(sum, Ordering::Relaxed);
        0
    };
    let consumers = [Child::spawn(consumer), Child::spawn(consumer)];
    let producers = [Child::spawn(producer(0)), Child::spawn(producer(1))];
    for p in producers {
        assert_eq!(p.join(), ExitStatus::Exited(0));
    }
    q.close();
    for c in consumers {
        assert_eq!(c.join(), ExitStatus::Exited(0));
    }
    let (count, sum, dups) = (
        stats[0].load(Ordering::Relaxed),
        stats[1].load(Ordering::Relaxed),
        stats[2].load(Ordering::Relaxed),
    );
    println!(
        "mpmc: {count} items, sum {sum}, duplicates {dups}, lost {}",
        q.lost()
    );
    assert_eq!(dups, 0);
    assert_eq!(count, ITEMS);
    assert_eq!(sum, ITEMS * (ITEMS - 1) / 2);
    assert!(seen.iter().enumerate().all(|(w, bits)| {
        let expect = if (w + 1) * 64 <= ITEMS as usize {
            u64::MAX
        } else {
            (1u64 << (ITEMS as usize - w * 64)) - 1
        };
        bits.load(Ordering::Relaxed) == expect
    }));
    assert_eq!(q.lost(), 0);
}

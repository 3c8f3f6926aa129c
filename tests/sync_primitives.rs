//! `Semaphore`, `BoundedSemaphore`, `Condvar`, `Event` and `Barrier` across threads
//! and forked processes.
// Tests use std's atomics as plain shared counters; only the kit's algorithms must
// take theirs from the loom facade.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::Child;
use shmkit::{
    Barrier, BarrierError, BoundedSemaphore, Condvar, Error, Event, Mutex, Semaphore, Shared,
    ShmSafe,
};

/// Every wait in these tests has a deadline this long.
const LONG: Duration = Duration::from_secs(20);

#[test]
fn semaphore_basics_and_timeout() {
    let s = Semaphore::new(2);
    assert!(s.try_acquire());
    assert!(s.acquire_timeout(Duration::ZERO));
    assert!(!s.try_acquire());
    let start = Instant::now();
    let d = Duration::from_millis(30);
    assert!(!s.acquire_timeout(d));
    assert!(start.elapsed() >= d, "returned before its deadline");
    s.release();
    assert_eq!(s.value(), 1);
    s.acquire();
    assert_eq!(s.value(), 0);
    assert_eq!(Semaphore::default().value(), 0);
    assert!(format!("{s:?}").contains("value: 0"));
}

#[test]
fn semaphore_release_wakes_a_sleeper() {
    let s = Semaphore::new(0);
    std::thread::scope(|scope| {
        let t = scope.spawn(|| s.acquire_timeout(LONG));
        std::thread::sleep(Duration::from_millis(20));
        s.release();
        assert!(t.join().unwrap());
    });
    assert_eq!(s.value(), 0);
}

#[test]
fn bounded_semaphore_refuses_release_past_bound() {
    let s = BoundedSemaphore::new(2);
    assert_eq!(s.bound(), 2);
    assert_eq!(s.release(), Err(Error::Overflow));
    assert_eq!(s.value(), 2);
    s.acquire();
    assert!(s.acquire_timeout(Duration::from_millis(1)));
    assert!(!s.try_acquire());
    assert_eq!(s.release(), Ok(()));
    assert_eq!(s.release(), Ok(()));
    assert_eq!(s.release(), Err(Error::Overflow));
    assert_eq!(s.value(), 2);
}

/// A semaphore and a count of processes inside the section it guards.
#[repr(C)]
struct Gate {
    sem: Semaphore,
    inside: AtomicU32,
    max_inside: AtomicU32,
}
// SAFETY: repr(C), a kit semaphore and atomics.
unsafe impl ShmSafe for Gate {}

#[test]
fn semaphore_admits_at_most_k_processes() {
    const K: u32 = 2;
    let gate = Shared::new(Gate {
        sem: Semaphore::new(K),
        inside: AtomicU32::new(0),
        max_inside: AtomicU32::new(0),
    })
    .unwrap();
    let children: Vec<_> = (0..5)
        .map(|_| {
            Child::spawn(|| {
                for i in 0..300 {
                    if !gate.sem.acquire_timeout(LONG) {
                        return 2;
                    }
                    let now = gate.inside.fetch_add(1, Ordering::SeqCst) + 1;
                    gate.max_inside.fetch_max(now, Ordering::SeqCst);
                    if now > K {
                        return 1;
                    }
                    if i % 16 == 0 {
                        std::thread::yield_now();
                    }
                    gate.inside.fetch_sub(1, Ordering::SeqCst);
                    gate.sem.release();
                }
                0
            })
        })
        .collect();
    for c in children {
        assert_eq!(c.join().code(), Some(0));
    }
    let max = gate.max_inside.load(Ordering::SeqCst);
    println!("Semaphore({K}): at most {max} of 5 processes inside at once");
    assert!((1..=K).contains(&max));
    assert_eq!(gate.sem.value(), K);
}

#[repr(C)]
struct Channel {
    m: Mutex<Ring>,
    not_empty: Condvar,
    not_full: Condvar,
}
#[repr(C)]
#[derive(Clone, Copy)]
struct Ring {
    buf: [u64; 4],
    head: u64,
    len: u64,
}
// SAFETY: repr(C), integers only.
unsafe impl ShmSafe for Ring {}
// SAFETY: repr(C), kit types over ShmSafe data.
unsafe impl ShmSafe for Channel {}

#[test]
fn condvar_producer_consumer_across_processes() {
    const N: u64 = 2_000;
    let ch = Shared::new(Channel {
        m: Mutex::new(Ring {
            buf: [0; 4],
            head: 0,
            len: 0,
        }),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    })
    .unwrap();
    let producer = Child::spawn(|| {
        for i in 1..=N {
            let g = ch.m.lock().unwrap();
            let (mut g, r) = ch
                .not_full
                .wait_timeout_while(g, LONG, |r| r.len == 4)
                .unwrap();
            if r.timed_out() {
                return 2;
            }
            let tail = ((g.head + g.len) % 4) as usize;
            g.buf[tail] = i;
            g.len += 1;
            drop(g);
            ch.not_empty.notify_one();
        }
        0
    });
    let mut sum = 0;
    for expect in 1..=N {
        let g = ch.m.lock().unwrap();
        let (mut g, r) = ch
            .not_empty
            .wait_timeout_while(g, LONG, |r| r.len == 0)
            .unwrap();
        assert!(!r.timed_out(), "producer stalled");
        let v = g.buf[g.head as usize];
        assert_eq!(v, expect, "in order, none lost");
        g.head = (g.head + 1) % 4;
        g.len -= 1;
        sum += v;
        drop(g);
        ch.not_full.notify_one();
    }
    assert_eq!(producer.join().code(), Some(0));
    assert_eq!(sum, N * (N + 1) / 2);
}

#[test]
fn condvar_notify_is_not_stored_and_timeout_reports() {
    let m = Mutex::new(());
    let cv = Condvar::new();
    cv.notify_one();
    cv.notify_all();
    let start = Instant::now();
    let d = Duration::from_millis(30);
    let (g, r) = cv.wait_timeout(m.lock().unwrap(), d).unwrap();
    assert!(r.timed_out(), "an earlier notify woke a later waiter");
    assert!(start.elapsed() >= d);
    drop(g);
    let (_g, r) = cv
        .wait_timeout_while(m.lock().unwrap(), Duration::ZERO, |_| true)
        .unwrap();
    assert!(r.timed_out());
}

#[test]
fn condvar_notify_all_wakes_every_thread() {
    let m = Mutex::new(0u32);
    let cv = Condvar::new();
    std::thread::scope(|s| {
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let g = m.lock().unwrap();
                    let (g, r) = cv.wait_timeout_while(g, LONG, |v| *v == 0).unwrap();
                    assert!(!r.timed_out());
                    *g
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        *m.lock().unwrap() = 1;
        cv.notify_all();
        for w in waiters {
            assert_eq!(w.join().unwrap(), 1);
        }
    });
}

#[test]
fn condvar_relock_reports_a_dead_holder() {
    #[repr(C)]
    struct S {
        m: Mutex<u32>,
        cv: Condvar,
        holding: AtomicU32,
    }
    // SAFETY: repr(C), kit types and an atomic.
    unsafe impl ShmSafe for S {}
    let s = Shared::new(S {
        m: Mutex::new(0),
        cv: Condvar::new(),
        holding: AtomicU32::new(0),
    })
    .unwrap();
    // The child takes the lock once we wait, notifies, and dies holding it. (It is
    // forked before we lock: no guard may be alive at a fork.)
    let child = Child::spawn(|| {
        while s.holding.load(Ordering::SeqCst) != 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut g = s.m.lock().unwrap();
        *g = 1;
        s.cv.notify_all();
        s.holding.store(1, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let g = s.m.lock().unwrap();
    s.holding.store(2, Ordering::SeqCst);
    std::thread::scope(|scope| {
        let holding = &s.holding;
        let killer = scope.spawn(move || {
            let mut child = child;
            assert!(common::eventually(LONG, || holding.load(Ordering::SeqCst) == 1));
            child.process().kill().unwrap();
            child
        });
        let (g, r) = match s.cv.wait_timeout(g, LONG) {
            Err(shmkit::LockError::OwnerDead(pair)) => pair,
            other => panic!("expected OwnerDead, got {:?}", other.map(|_| ())),
        };
        assert!(!r.timed_out());
        assert_eq!(*g, 1);
        g.make_consistent();
        drop(g);
        assert!(killer.join().unwrap().join().signal().is_some());
    });
    assert_eq!(*s.m.lock().unwrap(), 1);
}

#[test]
fn event_set_clear_wait() {
    let e = Event::new();
    assert!(!e.is_set());
    let start = Instant::now();
    let d = Duration::from_millis(20);
    assert!(!e.wait_timeout(d));
    assert!(start.elapsed() >= d);
    e.set();
    assert!(e.is_set());
    assert!(e.wait_timeout(Duration::ZERO));
    e.clear();
    assert!(!e.is_set());
    assert!(!Event::default().is_set());
}

#[test]
fn event_set_then_clear_wakes_every_process() {
    #[repr(C)]
    struct S {
        e: Event,
        waiting: AtomicU32,
    }
    // SAFETY: repr(C), a kit event and an atomic.
    unsafe impl ShmSafe for S {}
    let s = Shared::new(S {
        e: Event::new(),
        waiting: AtomicU32::new(0),
    })
    .unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Child::spawn(|| {
                s.waiting.fetch_add(1, Ordering::SeqCst);
                if s.e.wait_timeout(LONG) { 0 } else { 1 }
            })
        })
        .collect();
    assert!(common::eventually(LONG, || s
        .waiting
        .load(Ordering::SeqCst)
        == 3));
    std::thread::sleep(Duration::from_millis(20)); // let them fall asleep
    s.e.set();
    s.e.clear();
    for c in children {
        assert_eq!(c.join().code(), Some(0));
    }
    assert!(!s.e.is_set());
}

#[test]
fn barrier_four_processes_many_rounds() {
    const ROUNDS: u32 = 1_000;
    const P: u32 = 4;
    #[repr(C)]
    struct S {
        b: Barrier,
        // Per round (mod 2), a bitmask of indices and a count of leaders.
        seen: [AtomicU32; 2],
        leaders: [AtomicU32; 2],
        bad: AtomicU32,
    }
    // SAFETY: repr(C), a kit barrier and atomics.
    unsafe impl ShmSafe for S {}
    let s = Shared::new(S {
        b: Barrier::new(P),
        seen: [AtomicU32::new(0), AtomicU32::new(0)],
        leaders: [AtomicU32::new(0), AtomicU32::new(0)],
        bad: AtomicU32::new(0),
    })
    .unwrap();
    let party = || -> i32 {
        for round in 0..ROUNDS {
            let slot = (round % 2) as usize;
            let r = match s.b.wait_timeout(LONG) {
                Ok(r) => r,
                Err(_) => return 2,
            };
            let bit = 1 << r.index();
            if s.seen[slot].fetch_or(bit, Ordering::SeqCst) & bit != 0 {
                s.bad.fetch_add(1, Ordering::SeqCst);
            }
            if r.is_leader() {
                s.leaders[slot].fetch_add(1, Ordering::SeqCst);
            }
            // Second barrier: everyone has recorded this round; the leader checks
            // and clears the slot for round + 2.
            let r2 = match s.b.wait_timeout(LONG) {
                Ok(r) => r,
                Err(_) => return 3,
            };
            if r2.is_leader()
                && (s.seen[slot].swap(0, Ordering::SeqCst) != (1 << P) - 1
                    || s.leaders[slot].swap(0, Ordering::SeqCst) != 1)
            {
                s.bad.fetch_add(1, Ordering::SeqCst);
            }
        }
        0
    };
    let children: Vec<_> = (0..P - 1).map(|_| Child::spawn(party)).collect();
    assert_eq!(party(), 0);
    for c in children {
        assert_eq!(c.join().code(), Some(0));
    }
    assert_eq!(s.bad.load(Ordering::SeqCst), 0);
    assert_eq!(s.b.n_waiting(), 0);
}

#[test]
fn barrier_timeout_breaks_it_for_others_until_reset() {
    let b = Barrier::new(3);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| b.wait_timeout(LONG));
        assert!(common::eventually(LONG, || b.n_waiting() == 1));
        let start = Instant::now();
        let d = Duration::from_millis(20);
        assert_eq!(b.wait_timeout(d), Err(BarrierError::Timeout));
        assert!(start.elapsed() >= d);
        assert_eq!(waiter.join().unwrap(), Err(BarrierError::Broken));
    });
    assert!(b.is_broken());
    assert_eq!(b.n_waiting(), 0);
    assert_eq!(b.wait(), Err(BarrierError::Broken));
    b.reset();
    assert!(!b.is_broken());
    // Works again: three threads pass.
    std::thread::scope(|s| {
        let ts: Vec<_> = (0..3).map(|_| s.spawn(|| b.wait_timeout(LONG))).collect();
        let mut idx: Vec<u32> = ts
            .into_iter()
            .map(|t| t.join().unwrap().unwrap().index())
            .collect();
        idx.sort();
        assert_eq!(idx, [0, 1, 2]);
    });
    assert_eq!(b.parties(), 3);
    assert!(BarrierError::Broken.to_string().contains("broken"));
}

#[test]
fn barrier_reset_breaks_current_waiters() {
    let b = Barrier::new(2);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| b.wait_timeout(LONG));
        assert!(common::eventually(LONG, || b.n_waiting() == 1));
        b.reset();
        assert_eq!(waiter.join().unwrap(), Err(BarrierError::Broken));
    });
    assert!(!b.is_broken());
    assert_eq!(b.n_waiting(), 0);
}

#[test]
#[should_panic(expected = "at least one party")]
fn barrier_of_zero_panics() {
    let _ = Barrier::new(0);
}

//! Crash tests: a process hammering a `Mutex` is `kill -9`ed at random points, over
//! and over; the survivor always recovers (every wait has a deadline). Also measures
//! the time from a holder's death to a waiter's `OwnerDead`.
//!
//! Knobs: `SHMKIT_CRASH_ITERS` (kills in the crash loop, default 200),
//! `SHMKIT_CRASH_SEED` (the loop's seed, default from the clock),
//! `SHMKIT_LATENCY_KILLS` (kills measured for the latency, default 50). Print the
//! latency with `cargo test --release --test sync_crash -- --nocapture owner_dead`.
// Tests use std's atomics as plain shared counters; only the kit's algorithms must
// take theirs from the loom facade.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Child, eventually};
use shmkit::{LockError, Mutex, Shared, ShmSafe};

const LONG: Duration = Duration::from_secs(20);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: a small seeded generator (the seed is printed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Two halves that a holder keeps equal; a death between the writes leaves them
/// unequal, which the next holder repairs.
#[repr(C)]
#[derive(Clone, Copy)]
struct Pair {
    a: u64,
    b: u64,
}
// SAFETY: repr(C), integers.
unsafe impl ShmSafe for Pair {}

#[repr(C)]
struct Hammered {
    m: Mutex<Pair>,
    started: AtomicU32,
}
// SAFETY: repr(C), a kit mutex and an atomic.
unsafe impl ShmSafe for Hammered {}

#[test]
fn crash_loop_survivor_always_recovers() {
    let iters = env_or("SHMKIT_CRASH_ITERS", 200);
    let seed = env_or(
        "SHMKIT_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    println!("crash loop: {iters} kills, seed {seed} (SHMKIT_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let h = Shared::new(Hammered {
        m: Mutex::new(Pair { a: 0, b: 0 }),
        started: AtomicU32::new(0),
    })
    .unwrap();
    let (mut owner_dead, mut torn, mut clean) = (0u64, 0u64, 0u64);
    for _ in 0..iters {
        h.started.store(0, Ordering::SeqCst);
        let mut child = Child::spawn(|| {
            h.started.store(1, Ordering::SeqCst);
            loop {
                let mut g = match h.m.lock() {
                    Ok(g) => g,
                    Err(LockError::OwnerDead(g)) => {
                        g.make_consistent();
                        g
                    }
                    Err(_) => return 3,
                };
                g.a += 1;
                std::hint::black_box(&mut *g);
                g.b = g.a;
            }
        });
        assert!(eventually(LONG, || h.started.load(Ordering::SeqCst) == 1));
        // Let it run for 0..2 ms, then kill it at whatever instruction it is at.
        std::thread::sleep(Duration::from_micros(rng.next() % 2_000));
        child.process().kill().unwrap();
        // Recover before reaping (the child may be a zombie), with a deadline.
        let g = match h.m.lock_timeout(LONG) {
            Ok(g) => {
                clean += 1;
                g
            }
            Err(LockError::OwnerDead(mut g)) => {
                owner_dead += 1;
                if g.a != g.b {
                    torn += 1;
                    g.b = g.a;
                }
                g.make_consistent();
                g
            }
            Err(e) => panic!("the survivor could not recover: {e}"),
        };
        assert_eq!(g.a, g.b, "the pair is consistent after recovery");
        drop(g);
        assert!(child.join().signal().is_some());
        // The mutex is normal again.
        assert!(h.m.try_lock().is_ok());
    }
    println!(
        "crash loop: {iters} kills: {owner_dead} while holding (OwnerDead, {torn} torn pairs repaired), {clean} while not holding"
    );
}

#[test]
fn owner_dead_latency() {
    let kills = env_or("SHMKIT_LATENCY_KILLS", 50) as usize;
    let h = Shared::new(Hammered {
        m: Mutex::new(Pair { a: 0, b: 0 }),
        started: AtomicU32::new(0),
    })
    .unwrap();
    let mut lat = Vec::with_capacity(kills);
    for _ in 0..kills {
        h.started.store(0, Ordering::SeqCst);
        let mut child = Child::spawn(|| {
            let _g = h.m.lock();
            h.started.store(1, Ordering::SeqCst);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        assert!(eventually(LONG, || h.started.load(Ordering::SeqCst) == 1));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| match h.m.lock_timeout(LONG) {
                Err(LockError::OwnerDead(g)) => {
                    let at = Instant::now();
                    g.make_consistent();
                    Some(at)
                }
                _ => None,
            });
            // Let the waiter fall asleep on the lock word, at a random phase of its
            // 5 ms slice.
            std::thread::sleep(Duration::from_millis(10 + (lat.len() as u64 % 7)));
            let killed = Instant::now();
            child.process().kill().unwrap();
            let got = waiter.join().unwrap().expect("OwnerDead");
            lat.push(got.duration_since(killed));
        });
        assert!(child.join().signal().is_some());
    }
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    println!(
        "OwnerDead latency over {kills} kills of a holder (waiter asleep, holder not reaped): p50 {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(99),
        lat[lat.len() - 1]
    );
}

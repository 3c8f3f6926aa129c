//! Crash tests of the typed SPSC ring: producers and consumers killed (`kill -9`) at
//! random moments, again and again, each replaced by a new process that adopts the
//! dead one's end. Items carry a generation, a sequence number and a checksum: the
//! survivor must never see a torn, duplicated or reordered item, must get
//! `Disconnected` within the deadline once its peer is dead and drained, and the
//! adopter must carry on exactly where the dead one's last completed operation left
//! the ring.
//!
//! `SHMKIT_CRASH_ITERS` (default 100) sets the kills per test, `SHMKIT_CRASH_SEED` the
//! seed (printed).
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Child;
use shmkit::{Error, Shared, Spsc};

/// The whole test must finish within this.
const DEADLINE: Duration = Duration::from_secs(120);

fn iterations() -> u64 {
    std::env::var("SHMKIT_CRASH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

fn seed() -> u64 {
    std::env::var("SHMKIT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// xorshift64.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn check(generation: u64, k: u64) -> u64 {
    (generation.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ k).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

type Item = [u64; 3];

fn item(generation: u64, k: u64) -> Item {
    [generation, k, check(generation, k)]
}

fn kill(child: &mut Child) {
    child.process().kill().unwrap();
}

#[test]
fn killed_producers_never_tear_or_duplicate_and_are_adopted() {
    let seed = seed();
    println!("seed {seed}, {} kills", iterations());
    let mut rng = Rng(seed);
    let ring = Shared::<Spsc<Item, 8>>::new_zeroed().unwrap();
    let claimed = Shared::new(AtomicU64::new(0)).unwrap();
    let mut rx = ring.consumer();
    let start = Instant::now();
    let (mut last_gen, mut next_k) = (0u64, 0u64);
    for generation in 1..=iterations() {
        let (r, claimed) = (&ring, &claimed);
        let mut child = Child::spawn(move || {
            // Adopts the end of the previous (dead) producer.
            let mut tx = r.producer();
            if tx.slots().is_err() {
                return 3;
            }
            claimed.store(generation, Ordering::Release);
            let mut k = 0;
            loop {
                if tx.push(item(generation, k)).is_err() {
                    return 2;
                }
                k += 1;
            }
        });
        // Until the new producer adopts the end, the consumer rightly sees the dead
        // one's: `Disconnected`.
        assert!(common::eventually(DEADLINE, || claimed
            .load(Ordering::Acquire)
            == generation));
        // Take a random number of items, then kill the producer wherever it is.
        let take = rng.below(40);
        for _ in 0..take {
            let [g, k, c] = rx.pop().expect("pop while the producer lives");
            assert_eq!(c, check(g, k), "torn item");
            if g != last_gen {
                assert!(
                    g > last_gen && k == 0,
                    "generation {g} item {k} after {last_gen}"
                );
                (last_gen, next_k) = (g, 0);
            }
            assert_eq!(k, next_k, "generation {g}: lost, duplicated or reordered");
            next_k += 1;
        }
        if rng.below(2) == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(300)));
        }
        kill(&mut child);
        // Drain what it published; then `Disconnected`, never a hang.
        loop {
            assert!(start.elapsed() < DEADLINE, "drain did not end");
            match rx.pop() {
                Ok([g, k, c]) => {
                    assert_eq!(c, check(g, k), "torn item");
                    if g != last_gen {
                        assert!(g > last_gen && k == 0);
                        (last_gen, next_k) = (g, 0);
                    }
                    assert_eq!(k, next_k);
                    next_k += 1;
                }
                Err(Error::Disconnected) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let status = child.join();
        assert_eq!(status.signal(), Some(9), "{status}");
    }
}

#[test]
fn killed_consumers_lose_nothing_that_was_not_popped() {
    let seed = seed();
    println!("seed {seed}, {} kills", iterations());
    let mut rng = Rng(seed);
    let ring = Shared::<Spsc<Item, 8>>::new_zeroed().unwrap();
    // The last item index each consumer reported as fully popped (+1; 0 = none).
    let progress = Shared::new(AtomicU64::new(0)).unwrap();
    let claimed = Shared::new(AtomicU64::new(0)).unwrap();
    let mut tx = ring.producer();
    let start = Instant::now();
    let mut pushed = 0u64;
    for generation in 1..=iterations() {
        let (r, p, claimed) = (&ring, &progress, &claimed);
        let mut child = Child::spawn(move || {
            let mut rx = r.consumer();
            if rx.len().is_err() {
                return 6;
            }
            claimed.store(generation, Ordering::Release);
            // The first item must be right after what the last consumer reported
            // (or one later: it may have died between its pop and its report).
            let reported = p.load(Ordering::Acquire);
            let mut first = true;
            loop {
                let Ok([g, k, c]) = rx.pop() else { return 2 };
                if c != check(g, k) {
                    return 3;
                }
                if first {
                    if k != reported && k != reported + 1 {
                        return 4;
                    }
                    first = false;
                } else if k != p.load(Ordering::Relaxed) {
                    return 5;
                }
                p.store(k + 1, Ordering::Release);
            }
        });
        // Until the new consumer adopts the end, a full ring rightly reports the dead
        // one's: `Disconnected`.
        assert!(common::eventually(DEADLINE, || claimed
            .load(Ordering::Acquire)
            == generation));
        let burst = 1 + rng.below(40);
        let mut disconnected = false;
        for _ in 0..burst {
            match tx.push(item(0, pushed)) {
                Ok(()) => pushed += 1,
                Err(_) => {
                    disconnected = true;
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(300)));
        kill(&mut child);
        let status = child.join();
        assert_eq!(status.signal(), Some(9), "consumer failed: {status}");
        assert!(!disconnected, "disconnected while the consumer lived");
        // Fill the ring: the producer must see the dead consumer, not hang.
        loop {
            assert!(
                start.elapsed() < DEADLINE,
                "producer never saw the dead consumer"
            );
            match tx.push_timeout(item(0, pushed), Duration::from_secs(10)) {
                Ok(()) => pushed += 1,
                Err(e) => {
                    assert_eq!(e.error(), Error::Disconnected);
                    break;
                }
            }
        }
    }
    // A last consumer (adopting) drains exactly what is left.
    let mut rx = ring.consumer();
    let reported = progress.load(Ordering::Acquire);
    let mut expect: Option<u64> = None;
    while let Ok([g, k, c]) = rx.try_pop() {
        assert_eq!((g, c), (0, check(0, k)), "torn item");
        match expect {
            None => assert!(k == reported || k == reported + 1, "{k} after {reported}"),
            Some(e) => assert_eq!(k, e, "lost, duplicated or reordered"),
        }
        expect = Some(k + 1);
    }
    assert_eq!(expect.unwrap_or(pushed), pushed, "items lost at the end");
}

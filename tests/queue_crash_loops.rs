//! Crash loops over the shapes of a `Queue`: producers × consumers ∈ {1, 2, 3}²,
//! capacities 1, 2, 3 and 16 (so laps happen all the time), every role killed
//! (`SIGKILL`) at random moments and replaced, and paused (`SIGSTOP` … `SIGCONT`).
//! Producers use `put`, `try_put` or `put_timeout`, consumers `get`, `try_get` or
//! `get_timeout`.
//!
//! Checked: no item is delivered twice, none is invented, each consumer sees each
//! producer's items in order, no call returns `Corrupted`, nothing wedges (every
//! wait has a deadline); and the accounting the docs promise — every item whose
//! put returned `Ok` is delivered, or counted in `lost()`, or was taken by a
//! consumer killed in the window after it released the slot (at most one item per
//! killed consumer):
//!
//! ```text
//! lost <= missing_ok + missing_pending       (what lost counts was never delivered)
//! missing_ok <= lost + consumer_kills        (every Ok item accounted for)
//! lost <= producer_kills + consumer_kills    (a death drops at most one item)
//! ```
//!
//! `SHMKIT_QUEUE_KILLS` sets the kills per shape (default 5: 180 kills, a few
//! seconds); the documented long run is `SHMKIT_QUEUE_KILLS=30` (1,080 kills):
//!
//! ```text
//! SHMKIT_QUEUE_KILLS=30 cargo test --release --test queue_crash_loops -- --nocapture
//! ```
//!
//! `SHMKIT_QUEUE_CRASH_SEED` sets the seed (printed).
#![allow(clippy::disallowed_types)]

mod common;
#[path = "common/queue_probe.rs"]
mod queue_probe;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Child;
use queue_probe::Rng;
use shmkit::{ExitStatus, GetError, PutError, Queue, Shared};

/// Items per producer lane at most (the size of the delivered bitmap).
const SEQ_LIMIT: u64 = 1 << 20;
const WORDS: usize = (SEQ_LIMIT / 64) as usize;
const LANES: usize = 3;

/// Control words: [STOP], [STARTED: children that began], then per lane
/// [attempt (seq + 1), ok (seq + 1), next seq].
const STOP: usize = 0;
const STARTED: usize = 1;
const CTL: usize = 2 + 3 * LANES;
fn attempt(lane: usize) -> usize {
    2 + 3 * lane
}
fn ok(lane: usize) -> usize {
    3 + 3 * lane
}
fn next(lane: usize) -> usize {
    4 + 3 * lane
}

fn item(lane: usize, seq: u64) -> u64 {
    ((lane as u64) << 40) | seq
}

type Ctl = [AtomicU64; CTL];
/// The delivered bitmap: bit `seq` of lane `l` at word `l * WORDS + seq / 64`.
#[repr(transparent)]
struct Seen([AtomicU64; LANES * WORDS]);
// SAFETY: atomics only, all-zero is valid, no pointers, no Drop.
unsafe impl shmkit::ShmSafe for Seen {}
// SAFETY: all-zero `AtomicU64`s are zeros.
unsafe impl shmkit::Zeroable for Seen {}
impl std::ops::Deref for Seen {
    type Target = [AtomicU64];
    fn deref(&self) -> &[AtomicU64] {
        &self.0
    }
}

/// Exit codes of the children.
const CORRUPTED: i32 = 5;
const DUPLICATE: i32 = 4;
const OUT_OF_ORDER: i32 = 3;
const INVENTED: i32 = 6;

/// A producer for `lane`, from where the last one stopped.
fn produce<const CAP: usize>(q: &Queue<u64, CAP>, ctl: &Ctl, lane: usize, style: u64) -> i32 {
    ctl[STARTED].fetch_add(1, Ordering::SeqCst);
    let mut seq = ctl[next(lane)].load(Ordering::SeqCst);
    while seq < SEQ_LIMIT && ctl[STOP].load(Ordering::SeqCst) == 0 {
        // Before the call: a put of `seq` may take effect from here on.
        ctl[attempt(lane)].store(seq + 1, Ordering::SeqCst);
        let r = match style % 3 {
            0 => q.put(item(lane, seq)),
            1 => q.try_put(item(lane, seq)),
            _ => q.put_timeout(item(lane, seq), Duration::from_millis(2)),
        };
        match r {
            Ok(()) => {
                ctl[ok(lane)].store(seq + 1, Ordering::SeqCst);
                seq += 1;
                ctl[next(lane)].store(seq, Ordering::SeqCst);
            }
            Err(PutError::Full(_) | PutError::Timeout(_) | PutError::Stalled(_)) => {
                std::thread::yield_now();
            }
            Err(PutError::Closed(_)) => return 0,
            Err(PutError::Corrupted(_)) => return CORRUPTED,
        }
    }
    0
}

/// A consumer: records what it gets, checks order and duplicates.
fn consume<const CAP: usize>(q: &Queue<u64, CAP>, ctl: &Ctl, seen: &Seen, style: u64) -> i32 {
    ctl[STARTED].fetch_add(1, Ordering::SeqCst);
    let mut last = [None::<u64>; LANES];
    loop {
        let r = match style % 3 {
            0 => q.get(),
            1 => q.try_get(),
            _ => q.get_timeout(Duration::from_millis(2)),
        };
        match r {
            Ok(v) => {
                let (lane, seq) = ((v >> 40) as usize, v & ((1 << 40) - 1));
                if lane >= LANES || seq >= SEQ_LIMIT {
                    return INVENTED;
                }
                if last[lane].is_some_and(|p| seq <= p) {
                    return OUT_OF_ORDER;
                }
                last[lane] = Some(seq);
                let (word, bit) = (lane * WORDS + (seq / 64) as usize, 1u64 << (seq % 64));
                if seen[word].fetch_or(bit, Ordering::SeqCst) & bit != 0 {
                    return DUPLICATE;
                }
            }
            Err(GetError::Closed) => return 0,
            Err(GetError::Empty | GetError::Timeout | GetError::Stalled) => {
                std::thread::yield_now();
            }
            Err(GetError::Corrupted) => return CORRUPTED,
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    producer_kills: u64,
    consumer_kills: u64,
    stops: u64,
    delivered: u64,
    lost: u64,
    missing_ok: u64,
    missing_pending: u64,
}

fn run_shape<const CAP: usize>(
    producers: usize,
    consumers: usize,
    kills: u64,
    rng: &mut Rng,
) -> Tally {
    let q = Shared::new(Queue::<u64, CAP>::new()).unwrap();
    let ctl = Shared::new([const { AtomicU64::new(0) }; CTL]).unwrap();
    let seen = Shared::<Seen>::new_zeroed().unwrap();
    let (q, ctl, seen) = (&q, &ctl, &seen);
    // Each spawn waits until the child runs: kills land in its work, not its start.
    let spawned = std::cell::Cell::new(0);
    let started = |child: Child| {
        spawned.set(spawned.get() + 1);
        assert!(common::eventually(common::CHILD_DEADLINE, || {
            ctl[STARTED].load(Ordering::SeqCst) >= spawned.get()
        }));
        child
    };
    let spawn_producer =
        |lane: usize, style: u64| started(Child::spawn(move || produce(q, ctl, lane, style)));
    let spawn_consumer = |style: u64| started(Child::spawn(move || consume(q, ctl, seen, style)));
    // (child, Some(lane) for a producer, None for a consumer)
    let mut live: Vec<(Child, Option<usize>)> = Vec::new();
    for lane in 0..producers {
        live.push((spawn_producer(lane, rng.next()), Some(lane)));
    }
    for _ in 0..consumers {
        live.push((spawn_consumer(rng.next()), None));
    }
    // Killed children stay unreaped (zombies) until the end: their ids stay dead.
    let mut graveyard = Vec::new();
    let mut pending: Vec<Vec<u64>> = vec![Vec::new(); LANES];
    let mut tally = Tally::default();
    while tally.producer_kills + tally.consumer_kills < kills {
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        let victim = rng.below(live.len() as u64) as usize;
        let pid = live[victim].0.pid();
        if queue_probe::chance(rng, 25) {
            // A pause: the others must wait for what it holds, or get past it.
            if queue_probe::stop(pid) {
                tally.stops += 1;
                std::thread::sleep(Duration::from_micros(200 + rng.below(3000)));
                queue_probe::signal(pid, libc::SIGCONT);
            }
            continue;
        }
        let (mut child, role) = live.swap_remove(victim);
        child.process().kill().unwrap();
        assert!(
            common::eventually(common::CHILD_DEADLINE, || queue_probe::is_stopped(pid)
                .is_none()),
            "{pid} did not die"
        );
        graveyard.push(child);
        match role {
            Some(lane) => {
                tally.producer_kills += 1;
                let tried = ctl[attempt(lane)].load(Ordering::SeqCst);
                if tried > ctl[ok(lane)].load(Ordering::SeqCst) {
                    pending[lane].push(tried - 1);
                }
                let from = tried.max(ctl[next(lane)].load(Ordering::SeqCst));
                ctl[next(lane)].store(from, Ordering::SeqCst);
                live.push((spawn_producer(lane, rng.next()), Some(lane)));
            }
            None => {
                tally.consumer_kills += 1;
                live.push((spawn_consumer(rng.next()), None));
            }
        }
    }
    // Wind down: producers stop between puts, then the queue closes and consumers
    // drain it.
    ctl[STOP].store(1, Ordering::SeqCst);
    let (producers_left, consumers_left): (Vec<_>, Vec<_>) =
        live.into_iter().partition(|(_, role)| role.is_some());
    for (p, lane) in producers_left {
        assert_eq!(p.join(), ExitStatus::Exited(0), "producer of lane {lane:?}");
    }
    q.close();
    for (c, _) in consumers_left {
        let status = c.join();
        assert_eq!(
            status,
            ExitStatus::Exited(0),
            "consumer: 3 order, 4 duplicate, 5 corrupted, 6 invented"
        );
    }
    drop(graveyard);
    tally.lost = q.lost();
    for (lane, pending) in pending.iter().enumerate().take(producers) {
        let end = ctl[next(lane)].load(Ordering::SeqCst);
        let delivered = |seq: u64| {
            seen[lane * WORDS + (seq / 64) as usize].load(Ordering::SeqCst) & (1 << (seq % 64)) != 0
        };
        for seq in 0..end {
            if delivered(seq) {
                tally.delivered += 1;
            } else if pending.contains(&seq) {
                tally.missing_pending += 1;
            } else {
                tally.missing_ok += 1;
            }
        }
        assert!(
            (end..SEQ_LIMIT).all(|s| !delivered(s)),
            "an item never put was delivered"
        );
    }
    tally
}

#[test]
fn every_shape_with_kills_and_pauses() {
    let kills = queue_probe::env_count("SHMKIT_QUEUE_KILLS", 5);
    let seed = queue_probe::seed("SHMKIT_QUEUE_CRASH_SEED");
    let mut rng = Rng(seed);
    let start = Instant::now();
    let mut total = Tally::default();
    for producers in 1..=3 {
        for consumers in 1..=3 {
            for cap in [1, 2, 3, 16] {
                let t0 = Instant::now();
                let t = match cap {
                    1 => run_shape::<1>(producers, consumers, kills, &mut rng),
                    2 => run_shape::<2>(producers, consumers, kills, &mut rng),
                    3 => run_shape::<3>(producers, consumers, kills, &mut rng),
                    _ => run_shape::<16>(producers, consumers, kills, &mut rng),
                };
                println!(
                    "{producers}x{consumers} cap {cap:>2}: kills {}p+{}c, stops {}, delivered {}, \
                     lost {}, missing: ok {} pending {} ({:?})",
                    t.producer_kills,
                    t.consumer_kills,
                    t.stops,
                    t.delivered,
                    t.lost,
                    t.missing_ok,
                    t.missing_pending,
                    t0.elapsed()
                );
                let shape = format!("{producers}x{consumers} cap {cap}, seed {seed}: {t:?}");
                assert!(
                    t.lost <= t.missing_ok + t.missing_pending,
                    "lost counts a delivered item: {shape}"
                );
                assert!(
                    t.missing_ok <= t.lost + t.consumer_kills,
                    "an Ok item unaccounted for: {shape}"
                );
                assert!(
                    t.lost <= t.producer_kills + t.consumer_kills,
                    "more lost than deaths: {shape}"
                );
                total.producer_kills += t.producer_kills;
                total.consumer_kills += t.consumer_kills;
                total.stops += t.stops;
                total.delivered += t.delivered;
                total.lost += t.lost;
                total.missing_ok += t.missing_ok;
                total.missing_pending += t.missing_pending;
            }
        }
    }
    println!(
        "queue crash loops: 36 shapes, {} kills ({} producers, {} consumers), {} stops, \
         {} items delivered, {} lost, {} Ok items missing, seed {seed}, {:?}",
        total.producer_kills + total.consumer_kills,
        total.producer_kills,
        total.consumer_kills,
        total.stops,
        total.delivered,
        total.lost,
        total.missing_ok,
        start.elapsed()
    );
}

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
//! consumer killed in the window after it released the slot. A consumer is stopped
//! before it is killed, and its record says where it was: inside a get (it may have
//! been in that window: at most one item), or past a get's return with the item not
//! yet marked delivered (the test marks it), or between gets:
//!
//! ```text
//! lost <= missing_ok + missing_pending       (what lost counts was never delivered)
//! missing_ok <= lost + in_get_kills          (every Ok item accounted for)
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

/// What a child does.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Produces this lane.
    Producer(usize),
    /// Consumes, with this record.
    Consumer(usize),
}

/// The consumers' records (see [`RECORDS`]).
#[repr(transparent)]
struct Records([AtomicU64; 2 * RECORDS]);
// SAFETY: atomics only, all-zero is valid, no pointers, no Drop.
unsafe impl shmkit::ShmSafe for Records {}
// SAFETY: all-zero `AtomicU64`s are zeros.
unsafe impl shmkit::Zeroable for Records {}
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

/// Each consumer's record: [phase, item]. Phase 1: inside a get; 2: the get returned
/// `item`, not yet marked delivered; 0: neither. A consumer killed in phase 2 has its
/// item marked by the test; one killed in phase 1 may have lost an item in the queue's
/// one uncounted window (after the release of the slot).
const RECORDS: usize = 4096;
const IDLE: u64 = 0;
const IN_GET: u64 = 1;
const GOT: u64 = 2;

/// A consumer: records what it gets, checks order and duplicates.
fn consume<const CAP: usize>(
    q: &Queue<u64, CAP>,
    ctl: &Ctl,
    seen: &Seen,
    record: &[AtomicU64],
    style: u64,
) -> i32 {
    ctl[STARTED].fetch_add(1, Ordering::SeqCst);
    let mut last = [None::<u64>; LANES];
    loop {
        record[0].store(IN_GET, Ordering::SeqCst);
        let r = match style % 3 {
            0 => q.get(),
            1 => q.try_get(),
            _ => q.get_timeout(Duration::from_millis(2)),
        };
        if let Ok(v) = r {
            record[1].store(v, Ordering::SeqCst);
            record[0].store(GOT, Ordering::SeqCst);
        }
        let code = check_and_mark(r, seen, &mut last);
        record[0].store(IDLE, Ordering::SeqCst);
        if let Some(code) = code {
            return code;
        }
    }
}

/// Checks a get's result and marks its item delivered; `Some(exit code)` to stop.
fn check_and_mark(r: Result<u64, GetError>, seen: &Seen, last: &mut [Option<u64>]) -> Option<i32> {
    {
        match r {
            Ok(v) => {
                let (lane, seq) = ((v >> 40) as usize, v & ((1 << 40) - 1));
                if lane >= LANES || seq >= SEQ_LIMIT {
                    return Some(INVENTED);
                }
                if last[lane].is_some_and(|p| seq <= p) {
                    return Some(OUT_OF_ORDER);
                }
                last[lane] = Some(seq);
                if mark(seen, v) {
                    return Some(DUPLICATE);
                }
            }
            Err(GetError::Closed) => return Some(0),
            Err(GetError::Empty | GetError::Timeout | GetError::Stalled) => {
                std::thread::yield_now();
            }
            Err(GetError::Corrupted) => return Some(CORRUPTED),
        }
    }
    None
}

/// Is stopped process `pid` inside a `FUTEX_WAKE` system call? (x86-64 only.)
fn in_futex_wake(pid: i32) -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let call = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let words: Vec<&str> = call.split_whitespace().collect();
    let op = words
        .get(2)
        .and_then(|op| u64::from_str_radix(op.trim_start_matches("0x"), 16).ok());
    // futex(2) is system call 202; its second argument is the op (FUTEX_WAKE = 1,
    // without the private flag: the kit's futexes are shared).
    words.first() == Some(&"202") && op.map(|op| op & 0x7f) == Some(1)
}

/// Marks item `v` delivered; was it already?
fn mark(seen: &Seen, v: u64) -> bool {
    let (lane, seq) = ((v >> 40) as usize, v & ((1 << 40) - 1));
    let (word, bit) = (lane * WORDS + (seq / 64) as usize, 1u64 << (seq % 64));
    seen[word].fetch_or(bit, Ordering::SeqCst) & bit != 0
}

#[derive(Debug, Default)]
struct Tally {
    producer_kills: u64,
    consumer_kills: u64,
    /// Consumer kills inside a get (phase 1): each may cost one uncounted item.
    in_get_kills: u64,
    /// Consumer kills after a get returned, before the item was marked: marked here.
    got_kills: u64,
    /// Consumer kills inside a get, stopped in a `FUTEX_WAKE`: the wake-up of
    /// producers after the release of a slot, the bulk of the uncounted window (shown,
    /// not asserted: the rest of the window is a few instructions).
    wake_kills: u64,
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
    let records = Shared::<Records>::new_zeroed().unwrap();
    let (q, ctl, seen, records) = (&q, &ctl, &seen, &records);
    let next_record = std::cell::Cell::new(0usize);
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
    let spawn_consumer = |style: u64| {
        let k = next_record.get();
        assert!(k < RECORDS, "more consumers than records");
        next_record.set(k + 1);
        let record = &records.0[2 * k..2 * k + 2];
        (
            started(Child::spawn(move || consume(q, ctl, seen, record, style))),
            Role::Consumer(k),
        )
    };
    let mut live: Vec<(Child, Role)> = Vec::new();
    for lane in 0..producers {
        live.push((spawn_producer(lane, rng.next()), Role::Producer(lane)));
    }
    for _ in 0..consumers {
        live.push(spawn_consumer(rng.next()));
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
        if let Role::Consumer(k) = role {
            // Stopped first, so that its record says where it dies.
            if queue_probe::stop(pid) {
                match records.0[2 * k].load(Ordering::SeqCst) {
                    IN_GET => {
                        tally.in_get_kills += 1;
                        tally.wake_kills += u64::from(in_futex_wake(pid));
                    }
                    GOT => {
                        tally.got_kills += 1;
                        mark(seen, records.0[2 * k + 1].load(Ordering::SeqCst));
                    }
                    _ => {}
                }
            }
        }
        child.process().kill().unwrap();
        assert!(
            common::eventually(common::CHILD_DEADLINE, || queue_probe::is_stopped(pid)
                .is_none()),
            "{pid} did not die"
        );
        graveyard.push(child);
        match role {
            Role::Producer(lane) => {
                tally.producer_kills += 1;
                let tried = ctl[attempt(lane)].load(Ordering::SeqCst);
                if tried > ctl[ok(lane)].load(Ordering::SeqCst) {
                    pending[lane].push(tried - 1);
                }
                let from = tried.max(ctl[next(lane)].load(Ordering::SeqCst));
                ctl[next(lane)].store(from, Ordering::SeqCst);
                live.push((spawn_producer(lane, rng.next()), Role::Producer(lane)));
            }
            Role::Consumer(_) => {
                tally.consumer_kills += 1;
                live.push(spawn_consumer(rng.next()));
            }
        }
    }
    // Wind down: producers stop between puts, then the queue closes and consumers
    // drain it.
    ctl[STOP].store(1, Ordering::SeqCst);
    let (producers_left, consumers_left): (Vec<_>, Vec<_>) = live
        .into_iter()
        .partition(|(_, role)| matches!(role, Role::Producer(_)));
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
                    "{producers}x{consumers} cap {cap:>2}: kills {}p+{}c ({} in a get), stops {}, delivered {}, \
                     lost {}, missing: ok {} pending {} ({:?})",
                    t.producer_kills,
                    t.consumer_kills,
                    t.in_get_kills,
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
                    t.missing_ok <= t.lost + t.in_get_kills,
                    "an Ok item unaccounted for: {shape}"
                );
                assert!(
                    t.lost <= t.producer_kills + t.consumer_kills,
                    "more lost than deaths: {shape}"
                );
                total.producer_kills += t.producer_kills;
                total.consumer_kills += t.consumer_kills;
                total.in_get_kills += t.in_get_kills;
                total.got_kills += t.got_kills;
                total.wake_kills += t.wake_kills;
                total.stops += t.stops;
                total.delivered += t.delivered;
                total.lost += t.lost;
                total.missing_ok += t.missing_ok;
                total.missing_pending += t.missing_pending;
            }
        }
    }
    println!(
        "queue crash loops: 36 shapes, {} kills ({} producers, {} consumers: {} inside a \
         get, {} of them in a FUTEX_WAKE, {} after one returned), {} stops, {} items \
         delivered, {} lost, {} Ok items missing, seed {seed}, {:?}",
        total.producer_kills + total.consumer_kills,
        total.producer_kills,
        total.consumer_kills,
        total.in_get_kills,
        total.wake_kills,
        total.got_kills,
        total.stops,
        total.delivered,
        total.lost,
        total.missing_ok,
        start.elapsed()
    );
}

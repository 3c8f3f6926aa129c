//! `Queue` crash scenarios with real processes, each built to the exact state that
//! issue 10 describes (defects 1, 2, 6, 8), plus the `SIGSTOP` behaviour the docs
//! promise.
//!
//! To catch a process *inside* a put or get, items are large (128 KiB, so the copy
//! in or out of the slot takes microseconds), the process starts its operation when
//! the test says go, and the test stops it (`SIGSTOP`) at a random point within the
//! time the operation took on the last try, then at random moments, looks at the
//! slot states through the documented layout, and lets it go on (`SIGCONT`) until it
//! is caught holding its claim (`queue_probe::Aim`). Then it is killed (`SIGKILL`)
//! or kept stopped. `SHMKIT_QUEUE_CRASH_SEED` sets the seed.
#![allow(clippy::disallowed_types)]

mod common;
#[path = "common/queue_probe.rs"]
mod queue_probe;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::Child;
use queue_probe::{Aim, READING, Rng, WRITING, slot_state, slots_of_kind};
use shmkit::{GetError, PutError, Queue, Shared};

/// 128 KiB: word 0 is the item's number, the rest a pattern derived from it.
type Big = [u64; 16384];

fn big(n: u64) -> Big {
    let mut b = [0u64; 16384];
    for (i, w) in b.iter_mut().enumerate() {
        *w = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64;
    }
    b[0] = n;
    b
}

/// The number of an item, after checking it is not torn.
fn number(b: &Big) -> u64 {
    let n = b[0];
    assert_eq!(
        b[16383],
        n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 16383,
        "torn item {n}"
    );
    assert_eq!(
        b[8191],
        n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 8191,
        "torn item {n}"
    );
    n
}

fn got(r: Result<Big, GetError>) -> Result<u64, GetError> {
    r.map(|b| number(&b))
}

/// Kills a stopped child and waits until it is dead (a zombie: its id stays dead).
fn kill_stopped(child: &mut Child) {
    let pid = child.pid();
    child.process().kill().unwrap();
    assert!(
        common::eventually(common::CHILD_DEADLINE, || queue_probe::is_stopped(pid)
            .is_none()),
        "{pid} did not die"
    );
}

/// Forks a child that runs `op` once, when the test says go (see `Aim`).
fn spawn_op<F: FnOnce() + Send>(aim: &Aim, op: F) -> Child {
    Child::spawn(move || if aim.run(op) { 0 } else { 2 })
}

/// Until a child is caught holding a claim of `kind` in a fresh queue that `setup`
/// prepared, with `op` as the child's operation: (queue, handshake, the stopped
/// child).
fn caught<const N: usize>(
    rng: &mut Rng,
    kind: u64,
    setup: impl Fn(&Queue<Big, N>),
    op: impl Fn(&Queue<Big, N>) + Sync,
) -> (Shared<Queue<Big, N>>, Shared<Aim>, Child) {
    let mut span = Duration::from_micros(200);
    for attempt in 0..1000 {
        let q = Shared::<Queue<Big, N>>::new_zeroed().unwrap();
        setup(&q);
        let aim = Shared::<Aim>::new_zeroed().unwrap();
        let child = spawn_op(&aim, || op(&q));
        if aim.catch(child.pid(), rng, &mut span, || {
            !slots_of_kind(&q, kind).is_empty()
        }) {
            println!("caught holding {kind} after {attempt} misses (span {span:?})");
            return (q, aim, child);
        }
        assert_eq!(child.join(), shmkit::ExitStatus::Exited(0));
    }
    panic!("never caught a claim of kind {kind}");
}

/// Issue 10, defects 8 and 6: a consumer killed holding its item (READING); its item
/// is counted in `lost` at once (not only when a producer laps onto the slot), and
/// when a producer laps onto that slot while the head still points at it, the next
/// `get` passes it instead of returning `Corrupted`.
///
/// Round 0 and 2 ask `lost` first (it reclaims the dead claim); round 1 lets the
/// producer reclaim it.
#[test]
fn consumer_killed_holding_its_item_is_counted_and_passed() {
    let mut rng = Rng(queue_probe::seed("SHMKIT_QUEUE_CRASH_SEED"));
    for round in 0..3 {
        let (q, _flags, mut dead) = caught::<2>(
            &mut rng,
            READING,
            |q| {
                q.put(big(1)).unwrap();
                q.put(big(2)).unwrap();
            },
            |q| {
                let _ = q.get();
            },
        );
        kill_stopped(&mut dead);
        // As if it died before moving the head: the head still at its position.
        queue_probe::index_word(&q, false).store(0, Ordering::SeqCst);
        if round != 1 {
            assert_eq!(
                q.lost(),
                1,
                "defect 8: a dead reader's item is counted at once"
            );
        }
        // A producer laps onto the dead reader's slot: position 2 in slot 0.
        let producer = Child::spawn(|| {
            q.put(big(3)).unwrap();
            q.put(big(4)).unwrap();
            0
        });
        assert!(common::eventually(common::CHILD_DEADLINE, || {
            queue_probe::long_lap(slot_state(&q, 0)) == 1
                && queue_probe::kind(slot_state(&q, 0)) == queue_probe::FULL
        }));
        assert_eq!(
            got(q.get()),
            Ok(2),
            "defect 6: the head passes the dead position"
        );
        assert_eq!(got(q.get()), Ok(3));
        assert_eq!(got(q.get()), Ok(4));
        assert_eq!(producer.join(), shmkit::ExitStatus::Exited(0));
        assert_eq!(got(q.try_get()), Err(GetError::Empty));
        assert_eq!(q.lost(), 1);
        drop(dead);
    }
}

/// Issue 10, defect 1: a producer killed holding its claim (WRITING) at position 0; a
/// second producer comes round a lap later, reclaims the slot and publishes position
/// 2 there, before any consumer looked at position 0. The consumer passes position 0
/// and gets everything else, in order; the dead producer's item is counted lost.
#[test]
fn producer_killed_mid_put_then_its_slot_reused_a_lap_on() {
    let mut rng = Rng(queue_probe::seed("SHMKIT_QUEUE_CRASH_SEED"));
    for _ in 0..3 {
        let (q, _flags, mut dead) = caught::<2>(
            &mut rng,
            WRITING,
            |_| {},
            |q| {
                let _ = q.put(big(1));
            },
        );
        kill_stopped(&mut dead);
        let producer = Child::spawn(|| {
            for n in 2..=4 {
                q.put(big(n)).unwrap();
            }
            0
        });
        assert!(common::eventually(common::CHILD_DEADLINE, || {
            queue_probe::long_lap(slot_state(&q, 0)) == 1
                && queue_probe::kind(slot_state(&q, 0)) == queue_probe::FULL
        }));
        for n in 2..=4 {
            assert_eq!(got(q.get()), Ok(n), "defect 1");
        }
        assert_eq!(producer.join(), shmkit::ExitStatus::Exited(0));
        assert_eq!(got(q.try_get()), Err(GetError::Empty));
        assert_eq!(q.lost(), 1);
        drop(dead);
    }
}

/// Issue 10, defect 2, and what a stopped producer does to the consumers: a producer
/// stopped (SIGSTOP) holding position 0, a completed put at position 1 behind it.
/// `try_get` does not say `Empty`: it waits its bounded time, then says `Stalled`;
/// `get_timeout` says `Stalled` at its deadline; `get` waits, and returns the stopped
/// producer's item once it continues. Killed instead, it is reclaimed: `try_get`
/// gets the item behind it, and `lost` counts it.
#[test]
fn stopped_producer_stalls_the_head_without_a_false_empty() {
    let mut rng = Rng(queue_probe::seed("SHMKIT_QUEUE_CRASH_SEED"));
    for kill in [false, true] {
        let (q, flags, mut stopped) = caught::<4>(
            &mut rng,
            WRITING,
            |_| {},
            |q| {
                let _ = q.put(big(1));
            },
        );
        q.put(big(2)).unwrap();
        let start = Instant::now();
        assert_eq!(got(q.try_get()), Err(GetError::Stalled), "defect 2");
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "try_get waits a bounded time"
        );
        let start = Instant::now();
        assert_eq!(
            got(q.get_timeout(Duration::from_millis(20))),
            Err(GetError::Stalled)
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
        if kill {
            kill_stopped(&mut stopped);
            assert_eq!(got(q.try_get()), Ok(2));
            assert_eq!(q.lost(), 1);
        } else {
            std::thread::scope(|s| {
                let getter = s.spawn(|| got(q.get()));
                std::thread::sleep(Duration::from_millis(20));
                assert!(!getter.is_finished(), "get waits for the stopped producer");
                queue_probe::signal(stopped.pid(), libc::SIGCONT);
                assert_eq!(getter.join().unwrap(), Ok(1));
            });
            assert_eq!(got(q.try_get()), Ok(2));
            assert_eq!(stopped.join(), shmkit::ExitStatus::Exited(0));
            assert!(flags.finished());
            assert_eq!(q.lost(), 0);
        }
        assert_eq!(got(q.try_get()), Err(GetError::Empty));
    }
}

/// The mirror: a consumer stopped holding position 0 of a capacity-2 queue whose
/// position 1 was consumed. `try_put` and `put_timeout` say `Stalled` (there is
/// room, but not in the slot the next put needs), not `Full`; once the consumer
/// continues, the put goes through.
#[test]
fn stopped_consumer_stalls_the_tail_without_a_false_full() {
    let mut rng = Rng(queue_probe::seed("SHMKIT_QUEUE_CRASH_SEED"));
    let (q, _flags, stopped) = caught::<2>(
        &mut rng,
        READING,
        |q| {
            q.put(big(1)).unwrap();
            q.put(big(2)).unwrap();
        },
        |q| {
            let _ = q.get();
        },
    );
    assert_eq!(got(q.try_get()), Ok(2));
    let r = q
        .try_put(big(3))
        .map_err(|e| matches!(e, PutError::Stalled(_)));
    assert_eq!(r, Err(true), "not Full: position 1 is free");
    let r = q
        .put_timeout(big(3), Duration::from_millis(20))
        .map_err(|e| matches!(e, PutError::Stalled(_)));
    assert_eq!(r, Err(true));
    queue_probe::signal(stopped.pid(), libc::SIGCONT);
    assert_eq!(stopped.join(), shmkit::ExitStatus::Exited(0));
    assert!(q.try_put(big(3)).is_ok());
    assert!(q.try_put(big(4)).is_ok());
    assert!(matches!(q.try_put(big(5)), Err(PutError::Full(_))));
    assert_eq!((got(q.get()), got(q.get())), (Ok(3), Ok(4)));
    assert_eq!(q.lost(), 0);
}

//! Loom models of `Queue`: 2 producers with 1 and 2 consumers, blocking on full and
//! empty (no lost wake-up), close racing with get, `JoinableQueue::join`, `wait` on a
//! queue; and the crash paths, each driven through the real `put`/`get` code with a
//! "die here" point (`shmkit::__loom::loom_die_at`): a producer killed at each step
//! of its put, a consumer killed at each step of its get (its READING claim is
//! reclaimed one lap on and counted), a reclaim racing the next lap and a live
//! publish, and `try_get`/`try_put` never answering `Empty`/`Full` behind another
//! process's operation in progress.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_queue`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::thread;
use shmkit::__loom::{loom_die_at, loom_until_death};
use shmkit::{GetError, JoinableQueue, PutError, Queue};

/// Four threads, or three with a death and the sleeps it ends: explored with at most
/// 2 preemptions (3 takes many minutes each here; CI's budget is a few minutes per
/// file).
fn model_bounded(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(2, |b| b.min(2)));
    builder.check(f);
}

/// Drains with `try_get` until `Empty`; any other error fails the model.
fn drain<const N: usize>(q: &Queue<u32, N>) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match q.try_get() {
            Ok(v) => got.push(v),
            Err(GetError::Empty) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn two_producers_one_consumer() {
    loom::model(|| {
        let q = Arc::new(Queue::<u32, 2>::new());
        let producers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|v| {
                let q = q.clone();
                thread::spawn(move || q.put(v).unwrap())
            })
            .collect();
        let mut got = [q.get().unwrap(), q.get().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(q.try_get(), Err(GetError::Empty));
    });
}

/// Two producers and two consumers (one of them the main thread) racing on the
/// same slots with `try_get`; then the rest is drained: each item exactly once.
#[test]
fn two_producers_two_consumers() {
    model_bounded(|| {
        let q = Arc::new(Queue::<u32, 2>::new());
        let mut producers = Vec::new();
        for v in [1u32, 2] {
            let q = q.clone();
            producers.push(thread::spawn(move || q.put(v).unwrap()));
        }
        let consumer = {
            let q = q.clone();
            thread::spawn(move || q.try_get().ok())
        };
        let mut got: Vec<u32> = q.try_get().ok().into_iter().collect();
        got.extend(consumer.join().unwrap());
        for p in producers {
            p.join().unwrap();
        }
        got.extend(drain(&q));
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert_eq!(q.lost(), 0);
    });
}

/// Capacity 1: the producer blocks on full, the consumer on empty, both ways.
#[test]
fn blocking_put_and_get_hand_over() {
    loom::model(|| {
        let q = Arc::new(Queue::<u32, 1>::new());
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(1).unwrap();
                q.put(2).unwrap();
            })
        };
        assert_eq!(q.get(), Ok(1));
        assert_eq!(q.get(), Ok(2));
        producer.join().unwrap();
    });
}

/// A getter blocked on an empty queue is woken by close; items put before the close
/// are still delivered.
#[test]
fn close_races_with_get() {
    loom::model(|| {
        let q = Arc::new(Queue::<u32, 2>::new());
        let closer = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(5).unwrap();
                q.close();
            })
        };
        assert_eq!(q.get(), Ok(5));
        assert_eq!(q.get(), Err(GetError::Closed));
        closer.join().unwrap();
    });
}

/// A producer killed at `point` of the real `put`, beside a live producer and a
/// consumer: the dead claim is reclaimed (never delivered, counted once), the live
/// item arrives exactly once, and the queue keeps its full capacity.
fn producer_killed_at(point: &'static str) {
    model_bounded(move || {
        let q = Arc::new(Queue::<u32, 2>::new());
        let dying = {
            let q = q.clone();
            thread::spawn(move || {
                loom_die_at(point);
                assert!(loom_until_death(|| q.put(7)).is_none(), "did not die");
            })
        };
        let live = {
            let q = q.clone();
            thread::spawn(move || q.put(8).unwrap())
        };
        // A consumer running alongside: whatever it finds, it is never 7.
        let early = q.try_get();
        assert!(matches!(early, Ok(8) | Err(GetError::Empty)), "{early:?}");
        dying.join().unwrap();
        live.join().unwrap();
        let mut got: Vec<u32> = early.ok().into_iter().collect();
        got.extend(drain(&q));
        assert_eq!(got, [8]);
        assert_eq!(q.lost(), 1);
        // And the queue still works at full capacity.
        q.try_put(1).unwrap();
        q.try_put(2).unwrap();
        assert_eq!((q.try_get(), q.try_get()), (Ok(1), Ok(2)));
    });
}

#[test]
fn producer_killed_after_its_claim() {
    producer_killed_at("queue.put.claimed");
}

#[test]
fn producer_killed_after_moving_the_tail() {
    producer_killed_at("queue.put.advanced");
}

#[test]
fn producer_killed_after_writing_the_item() {
    producer_killed_at("queue.put.written");
}

/// A consumer killed at `point` of the real `get` (holding its READING claim) on a
/// capacity-1 queue, while the main thread laps onto that slot with a put (which
/// reclaims it) and then gets: it gets the new item, not `Corrupted` (issue 10,
/// defect 6), even when the dead consumer left the head at its position. The dead
/// consumer's item is never delivered and is counted in `lost` exactly once
/// (defect 8).
fn consumer_killed_at(point: &'static str) {
    loom::model(move || {
        let q = Arc::new(Queue::<u32, 1>::new());
        q.put(1).unwrap();
        let dying = {
            let q = q.clone();
            thread::spawn(move || {
                loom_die_at(point);
                assert!(loom_until_death(|| q.get()).is_none(), "did not die");
            })
        };
        // Item 1 is the dying consumer's (this put waits until its slot is reclaimed).
        q.put(2).unwrap();
        assert_eq!(q.get(), Ok(2));
        dying.join().unwrap();
        assert_eq!(q.lost(), 1);
        assert_eq!(q.try_get(), Err(GetError::Empty));
        q.try_put(3).unwrap();
        assert_eq!(q.try_get(), Ok(3));
    });
}

#[test]
fn consumer_killed_after_its_claim() {
    consumer_killed_at("queue.get.claimed");
}

#[test]
fn consumer_killed_after_moving_the_head() {
    consumer_killed_at("queue.get.advanced");
}

#[test]
fn consumer_killed_after_reading_the_item() {
    consumer_killed_at("queue.get.read");
}

/// Issue 10, defect 8: a consumer killed holding its item, and no producer comes
/// round to that slot: `lost` still counts the item, exactly once, as soon as it is
/// asked (it reclaims dead claims first), and the other item is delivered.
#[test]
fn dead_reader_is_counted_at_once() {
    loom::model(|| {
        let q = Arc::new(Queue::<u32, 4>::new());
        q.put(1).unwrap();
        q.put(2).unwrap();
        let dying = {
            let q = q.clone();
            thread::spawn(move || {
                loom_die_at("queue.get.read");
                assert!(loom_until_death(|| q.get()).is_none());
            })
        };
        let lost = q.lost();
        let got = q.try_get();
        dying.join().unwrap();
        // Whichever item the dying consumer took is lost; the other arrives.
        let mut delivered: Vec<u32> = got.ok().into_iter().collect();
        delivered.extend(drain(&q));
        assert_eq!(delivered.len(), 1, "{delivered:?}");
        assert!(lost <= 1);
        assert_eq!(q.lost(), 1);
        assert_eq!(q.lost(), 1);
    });
}

/// Issue 10, defect 1: a producer dies holding position 0 of a capacity-1 queue; a
/// second producer laps onto the slot (reclaims it and reuses it for position 1)
/// while the consumer may still be at position 0. The consumer passes position 0
/// and gets the second item; the first is counted lost.
#[test]
fn reclaim_races_the_next_lap() {
    model_bounded(|| {
        let q = Arc::new(Queue::<u32, 1>::new());
        let dying = {
            let q = q.clone();
            thread::spawn(move || {
                loom_die_at("queue.put.claimed");
                assert!(loom_until_death(|| q.put(1)).is_none());
            })
        };
        let next = {
            let q = q.clone();
            thread::spawn(move || q.put(2).unwrap())
        };
        assert_eq!(q.get(), Ok(2));
        dying.join().unwrap();
        next.join().unwrap();
        assert_eq!(q.lost(), 1);
        assert_eq!(q.try_get(), Err(GetError::Empty));
    });
}

/// A reclaim racing a live publish: the consumer finds a producer's claim of item 1
/// (WRITING, the producer alive) and looks at its liveness while the producer
/// publishes item 1 and dies in its next put (position 1 of a capacity-2 queue). A
/// reclaim may only take the exact claim it saw, and the claim it saw was
/// published, not abandoned: item 1 is delivered; the dead claim of position 1 is
/// reclaimed, once, when an item behind it (the consumer's own put) needs it passed.
#[test]
fn reclaim_races_a_live_publish() {
    loom::model(|| {
        let q = Arc::new(Queue::<u32, 2>::new());
        let dying = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(1).unwrap();
                loom_die_at("queue.put.claimed");
                assert!(loom_until_death(|| q.put(3)).is_none());
            })
        };
        assert_eq!(q.get(), Ok(1));
        dying.join().unwrap();
        q.put(2).unwrap();
        assert_eq!(q.get(), Ok(2));
        assert_eq!(q.lost(), 1);
        assert_eq!(q.try_get(), Err(GetError::Empty));
    });
}

/// Issue 10, defect 2: once a put has returned, `try_get` never says `Empty`, even
/// while another producer's earlier-claimed put is still in progress (it waits for
/// it).
#[test]
fn try_get_never_empty_after_a_put_returned() {
    loom::model(|| {
        let q = Arc::new(Queue::<u32, 2>::new());
        let first = {
            let q = q.clone();
            thread::spawn(move || q.put(1).unwrap())
        };
        let second = {
            let q = q.clone();
            thread::spawn(move || q.put(2).unwrap())
        };
        second.join().unwrap();
        let got = q.try_get();
        assert!(matches!(got, Ok(1 | 2)), "{got:?}");
        first.join().unwrap();
    });
}

/// The mirror: once a get has returned (and the queue holds at most `N - 1` items),
/// `try_put` never says `Full`, even while another consumer's earlier-claimed get is
/// still reading the slot the put needs (it waits for it).
#[test]
fn try_put_never_full_after_a_get_returned() {
    loom::model(|| {
        let q = Arc::new(Queue::<u32, 2>::new());
        q.put(1).unwrap();
        q.put(2).unwrap();
        let first = {
            let q = q.clone();
            thread::spawn(move || q.get().unwrap())
        };
        let second = {
            let q = q.clone();
            thread::spawn(move || q.get().unwrap())
        };
        let _ = second.join().unwrap();
        assert!(matches!(q.try_put(3), Ok(())), "Full with room");
        let _ = first.join().unwrap();
        assert_eq!(q.try_put(4), Ok(()));
        assert_eq!(q.try_put(5), Err(PutError::Full(5)));
    });
}

/// `join` sleeps until the consumer's `task_done`: no lost wake-up.
#[test]
fn join_waits_for_task_done() {
    loom::model(|| {
        let q = Arc::new(JoinableQueue::<u32, 1>::new());
        q.put(3).unwrap();
        let worker = {
            let q = q.clone();
            thread::spawn(move || {
                assert_eq!(q.get(), Ok(3));
                q.task_done().unwrap();
            })
        };
        q.join();
        assert_eq!(q.unfinished(), 0);
        worker.join().unwrap();
    });
}

/// `wait` on a queue sleeps on its futex and is woken by a put.
#[test]
fn wait_is_woken_by_put() {
    loom::model(|| {
        let q = Arc::new(Queue::<u32, 1>::new());
        let producer = {
            let q = q.clone();
            thread::spawn(move || q.put(1).unwrap())
        };
        let ready = shmkit::wait(&[&*q], None).unwrap();
        assert!(ready.contains(0));
        producer.join().unwrap();
    });
}

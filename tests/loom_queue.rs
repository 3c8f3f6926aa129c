//! Loom models of `Queue`: 2 producers with 1 and 2 consumers, blocking on full and
//! empty (no lost wake-up), close racing with get, a producer killed between its
//! claim and its publish (the slot is reclaimed, not wedged), `JoinableQueue::join`,
//! and `wait` on a queue.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_queue`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::thread;
use shmkit::{GetError, JoinableQueue, Queue};

/// Four threads: explored with at most 2 preemptions (3 takes many minutes here;
/// CI's budget is about two per file).
fn model_4_threads(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(2, |b| b.min(2)));
    builder.check(f);
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
    model_4_threads(|| {
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
        while let Ok(v) = q.try_get() {
            got.push(v);
        }
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

fn dead_producer(advance_tail: bool) {
    loom::model(move || {
        let q = Arc::new(Queue::<u32, 2>::new());
        let dying = {
            let q = q.clone();
            thread::spawn(move || q.__loom_claim_then_die(7, advance_tail))
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
        // The dead producer's slot is reclaimed; 8 arrives exactly once.
        let mut got = Vec::new();
        if early == Ok(8) {
            got.push(8);
        }
        loop {
            match q.try_get() {
                Ok(v) => got.push(v),
                Err(GetError::Empty) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, [8]);
        // The dying producer always finds a slot (capacity 2): it is reclaimed.
        assert_eq!(q.lost(), 1);
        // And the queue still works at full capacity.
        q.try_put(1).unwrap();
        q.try_put(2).unwrap();
        assert_eq!((q.try_get(), q.try_get()), (Ok(1), Ok(2)));
    });
}

#[test]
fn producer_killed_after_claim_is_skipped() {
    dead_producer(true);
}

#[test]
fn producer_killed_before_moving_the_tail_is_skipped() {
    dead_producer(false);
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

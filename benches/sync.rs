//! Sync primitives: uncontended lock+unlock against `std::sync::Mutex` and
//! `parking_lot::Mutex`, and a lock contended by a second process.
//!
//! `cargo bench --bench sync`
// Benches use std's atomics as plain flags; only the kit's algorithms must take theirs
// from the loom facade.
#![allow(clippy::disallowed_types)]
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use shmkit::{Event, Mutex, Process, Semaphore, Shared, ShmSafe, Value};

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock+unlock uncontended");
    let kit = Mutex::new(0u64);
    g.bench_function("shmkit::Mutex", |b| {
        b.iter(|| *black_box(&kit).lock().unwrap() += 1)
    });
    let std_mutex = std::sync::Mutex::new(0u64);
    g.bench_function("std::sync::Mutex", |b| {
        b.iter(|| *black_box(&std_mutex).lock().unwrap() += 1)
    });
    let pl = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot::Mutex", |b| {
        b.iter(|| *black_box(&pl).lock() += 1)
    });
    g.finish();

    let mut g = c.benchmark_group("other uncontended");
    let sem = Semaphore::new(1);
    g.bench_function("Semaphore acquire+release", |b| {
        b.iter(|| {
            black_box(&sem).acquire();
            sem.release();
        })
    });
    let ev = Event::new();
    g.bench_function("Event set+clear", |b| {
        b.iter(|| {
            black_box(&ev).set();
            ev.clear();
        })
    });
    let v = Value::new(0u64);
    g.bench_function("Value update", |b| {
        b.iter(|| black_box(&v).update(|x| *x += 1))
    });
    g.finish();
}

#[repr(C)]
struct Contended {
    m: Mutex<u64>,
    stop: AtomicU32,
}
// SAFETY: repr(C), a kit mutex and an atomic.
unsafe impl ShmSafe for Contended {}

fn contended(c: &mut Criterion) {
    let shared = Shared::new(Contended {
        m: Mutex::new(0),
        stop: AtomicU32::new(0),
    })
    .expect("segment");
    // A second process takes and releases the same lock in a loop.
    let mut child = Process::spawn(|| {
        while shared.stop.load(Ordering::Relaxed) == 0 {
            *shared.m.lock().unwrap() += 1;
        }
        0
    })
    .expect("fork");
    let mut g = c.benchmark_group("lock+unlock contended by another process");
    g.bench_function("shmkit::Mutex", |b| {
        b.iter(|| *shared.m.lock().unwrap() += 1)
    });
    g.finish();
    shared.stop.store(1, Ordering::Relaxed);
    match child.join_timeout(Duration::from_secs(10)) {
        Ok(Some(_)) => {}
        _ => {
            let _ = child.kill();
            let _ = child.join();
        }
    }
    let total = *shared.m.lock().unwrap();
    println!("contended bench: {total} lock+unlocks by both processes together");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = uncontended, contended
}
criterion_main!(benches);

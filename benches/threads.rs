//! Between threads, against the in-process anchors: shmkit `Queue` vs crossbeam
//! `ArrayQueue` (2x2 and 1x1), and the typed `Spsc` and the byte ring vs `rtrb`
//! (8-byte items). (`Mutex`
//! against `std` and `parking_lot` is in `benches/sync.rs`.)
#![allow(clippy::disallowed_types)]
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

mod ipc;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipc::{baseline, kit};

fn queues(c: &mut Criterion) {
    for (p, q) in [(2u64, 2u64), (1, 1)] {
        let mut g = c.benchmark_group(format!("mpmc_{p}x{q}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("shmkit_queue", |b| {
            b.iter_custom(|n| kit::mpmc_queue(n.max(p), p, q))
        });
        g.bench_function("crossbeam_array_queue", |b| {
            b.iter_custom(|n| baseline::mpmc_crossbeam(n.max(p), p, q))
        });
        g.finish();
    }
    let mut g = c.benchmark_group("spsc_u64");
    g.throughput(Throughput::Elements(1));
    g.bench_function("shmkit_spsc", |b| b.iter_custom(kit::spsc_typed));
    g.bench_function("shmkit_ring", |b| b.iter_custom(kit::spsc_ring));
    g.bench_function("rtrb", |b| b.iter_custom(baseline::spsc_rtrb));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = queues
}
criterion_main!(benches);

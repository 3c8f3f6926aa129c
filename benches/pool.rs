//! Pool benches: speed-up of a CPU-bound `fn` on 2 workers over sequential code, and the
//! per-task overhead of a trivial `fn` against rayon on 2 threads.
//!
//! `cargo bench --bench pool`. The speed-up needs two otherwise idle cores.
#![allow(missing_docs)] // criterion_group! generates undocumented items
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use shmkit::Pool;

/// About 20 µs of integer work per item.
fn cpu_bound(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..10_000 {
        h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0xbf58_476d_1ce4_e5b9;
    }
    h
}

fn trivial(x: u64) -> u64 {
    x + 1
}

fn cpu(c: &mut Criterion) {
    let pool = Pool::new(2).unwrap();
    let items: Vec<u64> = (0..512).collect();
    let mut g = c.benchmark_group("pool_cpu_bound_512_items");
    g.throughput(Throughput::Elements(items.len() as u64));
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    g.bench_function("sequential", |b| {
        b.iter(|| {
            black_box(&items)
                .iter()
                .map(|&x| cpu_bound(x))
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("pool_map_2_workers", |b| {
        b.iter(|| pool.map(cpu_bound, black_box(&items)).unwrap())
    });
    // The control: what two threads get on this machine right now (a busy core
    // elsewhere caps both the same way).
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    g.bench_function("rayon_2_threads", |b| {
        b.iter(|| {
            rayon.install(|| {
                black_box(&items)
                    .par_iter()
                    .map(|&x| cpu_bound(x))
                    .collect::<Vec<_>>()
            })
        })
    });
    g.finish();
}

fn overhead(c: &mut Criterion) {
    let pool = Pool::new(2).unwrap();
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut g = c.benchmark_group("pool_trivial_fn");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for n in [1_000usize, 100_000] {
        let items: Vec<u64> = (0..n as u64).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("sequential", n), &items, |b, items| {
            b.iter(|| items.iter().map(|&x| trivial(x)).collect::<Vec<_>>())
        });
        g.bench_with_input(BenchmarkId::new("pool_map", n), &items, |b, items| {
            b.iter(|| pool.map(trivial, items).unwrap())
        });
        g.bench_with_input(
            BenchmarkId::new("rayon_2_threads", n),
            &items,
            |b, items| {
                b.iter(|| {
                    rayon.install(|| items.par_iter().map(|&x| trivial(x)).collect::<Vec<_>>())
                })
            },
        );
    }
    // One task at a time: the full round trip (post, wake, run, collect).
    g.throughput(Throughput::Elements(1));
    g.bench_function("pool_apply_one_task", |b| {
        b.iter(|| pool.apply(trivial, black_box(7)).unwrap())
    });
    g.bench_function("rayon_install_one_task", |b| {
        b.iter(|| rayon.install(|| trivial(black_box(7))))
    });
    g.finish();
}

criterion_group!(benches, cpu, overhead);
criterion_main!(benches);

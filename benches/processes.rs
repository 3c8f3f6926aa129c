//! Across processes: `Value` increments from two processes, locked (`Value::update`)
//! vs a bare shared atomic; the typed `Spsc` one way vs the naive spinning slot ring
//! (8 and 64 bytes, pinned apart). (A `Mutex` contended by two processes is in
//! `benches/sync.rs`.)
#![allow(clippy::disallowed_types)]
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

mod ipc;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipc::{Placement, baseline, kit};

fn processes(c: &mut Criterion) {
    let mut g = c.benchmark_group("two_processes");
    // Each criterion iteration is one increment per process.
    g.bench_function("value_locked_update", |b| {
        b.iter_custom(|n| kit::value_locked(n, 2))
    });
    g.bench_function("atomic_fetch_add", |b| {
        b.iter_custom(|n| baseline::value_atomic(n, 2))
    });
    g.finish();
    let p = Placement::Pinned;
    let mut g = c.benchmark_group("spsc_oneway_8B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("shmkit_spsc", |b| {
        b.iter_custom(|n| kit::tput_spsc::<8, 8192>(n, p))
    });
    g.bench_function("naive_spin_ring", |b| {
        b.iter_custom(|n| baseline::tput_spin_ring(8, n, p))
    });
    g.finish();
    let mut g = c.benchmark_group("spsc_oneway_64B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("shmkit_spsc", |b| {
        b.iter_custom(|n| kit::tput_spsc::<64, 1024>(n, p))
    });
    g.bench_function("naive_spin_ring", |b| {
        b.iter_custom(|n| baseline::tput_spin_ring(64, n, p))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = processes
}
criterion_main!(benches);

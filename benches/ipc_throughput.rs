//! One-way throughput between two forked processes: shmkit `Pipe` and `Queue` vs
//! `pipe(2)` and a Unix socketpair (one write per message, and batched: the Pipe's
//! `send_many`/`recv_many` against `pipe(2)` with 64 messages per write).
#![allow(clippy::disallowed_types)]
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

mod ipc;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipc::{Placement, baseline, kit};

fn throughput(c: &mut Criterion) {
    let p = Placement::Pinned;
    for size in [8usize, 64, 4096] {
        let mut g = c.benchmark_group(format!("oneway_{size}B"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("shmkit_pipe", |b| {
            b.iter_custom(|n| kit::tput_pipe(size, n, p))
        });
        g.bench_function("pipe2_1_write_per_msg", |b| {
            b.iter_custom(|n| baseline::tput_pipe2(size, n, 1, p))
        });
        g.bench_function("shmkit_pipe_batched_64", |b| {
            b.iter_custom(|n| kit::tput_pipe_batched(size, n, 64, p))
        });
        g.bench_function("pipe2_batched_64", |b| {
            b.iter_custom(|n| baseline::tput_pipe2(size, n, 64, p))
        });
        g.bench_function("uds_1_write_per_msg", |b| {
            b.iter_custom(|n| baseline::tput_uds(size, n, 1, p))
        });
        g.bench_function("uds_batched_64", |b| {
            b.iter_custom(|n| baseline::tput_uds(size, n, 64, p))
        });
        if size == 64 {
            g.bench_function("shmkit_queue", |b| {
                b.iter_custom(|n| kit::tput_queue64(n, p))
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = throughput
}
criterion_main!(benches);

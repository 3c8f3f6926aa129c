//! Round trip of an 8-byte message between two forked processes: shmkit `Pipe`
//! (default wait strategy, and busy-spin) vs `pipe(2)`, a Unix socketpair, `eventfd`,
//! and the floor — a bare shared flag bounced by busy-spinning.
#![allow(clippy::disallowed_types)]
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

mod ipc;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ipc::{Placement, baseline, kit};
use shmkit::WaitStrategy;

fn rtt(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtt_8B");
    for placement in [Placement::Pinned, Placement::SameCore] {
        let l = placement.label();
        g.bench_function(format!("shmkit_pipe_default/{l}"), |b| {
            b.iter_custom(|n| kit::rtt_pipe(n, placement, WaitStrategy::Adaptive))
        });
        g.bench_function(format!("eventfd/{l}"), |b| {
            b.iter_custom(|n| baseline::rtt_eventfd(n, placement))
        });
    }
    let p = Placement::Pinned;
    g.bench_function("shmkit_pipe_spin/pinned", |b| {
        b.iter_custom(|n| kit::rtt_pipe(n, p, WaitStrategy::Spin))
    });
    g.bench_function("spin_floor/pinned", |b| {
        b.iter_custom(|n| baseline::rtt_spin_floor(n, p))
    });
    g.bench_function("pipe2/pinned", |b| {
        b.iter_custom(|n| baseline::rtt_pipe2(n, p))
    });
    g.bench_function("unix_socketpair/pinned", |b| {
        b.iter_custom(|n| baseline::rtt_uds(n, p))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = rtt
}
criterion_main!(benches);

//! Criterion benches of the manager: one proxy call locally (Unix socket) and over
//! TCP loopback, dict set+get and queue put+get, beside bare socket round trips.
//! CPython's Manager is measured by `examples/compare.rs` (it needs `python3`).
#![allow(clippy::disallowed_types)]
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

#[path = "manager_ops/mod.rs"]
mod manager_ops;

use criterion::{Criterion, criterion_group, criterion_main};
use shmkit::manager::Manager;

fn bench(c: &mut Criterion) {
    let local = Manager::start().unwrap();
    let tcp = manager_ops::TcpManager::start();
    let mut g = c.benchmark_group("manager");
    g.bench_function("value get (unix)", |b| {
        b.iter_custom(|n| manager_ops::value_get(&local, n))
    });
    g.bench_function("value get (tcp)", |b| {
        b.iter_custom(|n| manager_ops::value_get(&tcp.manager, n))
    });
    g.bench_function("dict set+get (unix)", |b| {
        b.iter_custom(|n| manager_ops::dict_set_get(&local, n))
    });
    g.bench_function("queue put+get (unix)", |b| {
        b.iter_custom(|n| manager_ops::queue_put_get(&local, n))
    });
    g.bench_function("bare unix socket rtt", |b| {
        b.iter_custom(manager_ops::uds_rtt)
    });
    g.bench_function("bare tcp rtt", |b| b.iter_custom(manager_ops::tcp_rtt));
    g.finish();
    tcp.stop();
    let _ = local.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);

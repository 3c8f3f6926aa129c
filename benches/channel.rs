//! Pipe and Queue throughput: in one thread (the cost of the operations alone) and
//! streaming to a forked process (the cost with cache lines moving between cores).
//! `cargo bench --bench channel`. The benchmark issue adds the comparisons.
#![allow(clippy::disallowed_types)]
// criterion_group! and criterion_main! generate undocumented items.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shmkit::{Pipe, Process, Queue, Shared};

fn same_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("same_thread");
    g.throughput(Throughput::Elements(1));
    let pipe = Box::new(Pipe::<65536>::new());
    let (a, b) = pipe.ends();
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    g.bench_function("pipe_send_recv_64B", |bch| {
        bch.iter(|| {
            a.send_bytes(&msg).unwrap();
            b.recv_bytes_into(&mut buf).unwrap()
        })
    });
    let q = Box::new(Queue::<u64, 1024>::new());
    g.bench_function("queue_put_get_u64", |bch| {
        bch.iter(|| {
            q.put(1).unwrap();
            q.get().unwrap()
        })
    });
    g.finish();
}

/// Streams `iters` items to a forked consumer; times until it has them all.
fn cross_process(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_process");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("pipe_stream_64B", |bch| {
        bch.iter_custom(|iters| {
            let pipe = Shared::new(Pipe::<65536>::new()).unwrap();
            let (a, b) = pipe.ends();
            let msg = [7u8; 64];
            let mut child = Process::spawn(move || {
                let mut buf = [0u8; 64];
                for _ in 0..iters {
                    if b.recv_bytes_into(&mut buf).is_err() {
                        return 1;
                    }
                }
                0
            })
            .unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                a.send_bytes(&msg).unwrap();
            }
            assert!(child.join().unwrap().success());
            start.elapsed()
        })
    });
    g.bench_function("queue_stream_u64", |bch| {
        bch.iter_custom(|iters| {
            let q = Shared::new(Queue::<u64, 4096>::new()).unwrap();
            let mut child = Process::spawn(|| {
                for _ in 0..iters {
                    if q.get().is_err() {
                        return 1;
                    }
                }
                0
            })
            .unwrap();
            let start = Instant::now();
            for i in 0..iters {
                q.put(i).unwrap();
            }
            assert!(child.join().unwrap().success());
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, same_thread, cross_process);
criterion_main!(benches);

//! Manager measurement kernels, shared by `benches/manager.rs` (criterion) and the
//! manager section of `examples/compare.rs`, so both measure the same code.
//!
//! Every kernel returns the time of its measured loop only. Servers and echo peers
//! are forked processes; nothing is pinned (a manager server runs a thread per
//! connection, and pinning it would measure the scheduler instead).
#![allow(dead_code, clippy::disallowed_types)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use shmkit::Process;
use shmkit::manager::Manager;

/// A manager server forked on TCP loopback, and a handle on it. The server stops
/// when the handle's `shutdown` is called (see [`TcpManager::stop`]).
pub struct TcpManager {
    pub manager: Manager,
    server: Process,
}

impl TcpManager {
    pub fn start() -> TcpManager {
        let server = Manager::bind("tcp:127.0.0.1:0", b"bench").unwrap();
        let address = server.address().clone();
        let process = Process::spawn(move || server.serve().map_or(1, |()| 0)).unwrap();
        TcpManager {
            manager: Manager::connect(&address, b"bench").unwrap(),
            server: process,
        }
    }

    pub fn stop(mut self) {
        let _ = self.manager.shutdown();
        if self
            .server
            .join_timeout(Duration::from_secs(10))
            .ok()
            .flatten()
            .is_none()
        {
            let _ = self.server.kill();
            let _ = self.server.join();
        }
    }
}

/// `iters` gets of a manager `Value<u64>`: one call each.
pub fn value_get(m: &Manager, iters: u64) -> Duration {
    let v = m.value("bench-value", &7u64).unwrap();
    let start = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(v.get().unwrap());
    }
    start.elapsed()
}

/// `iters` × (dict insert + get): two calls each.
pub fn dict_set_get(m: &Manager, iters: u64) -> Duration {
    let d = m.dict::<u64, u64>("bench-dict").unwrap();
    let start = Instant::now();
    for i in 0..iters {
        d.insert(&1, &i).unwrap();
        std::hint::black_box(d.get(&1).unwrap());
    }
    start.elapsed()
}

/// `iters` × (queue put + get): two calls each.
pub fn queue_put_get(m: &Manager, iters: u64) -> Duration {
    let q = m.queue::<u64>("bench-queue", 0).unwrap();
    let start = Instant::now();
    for i in 0..iters {
        q.put(&i).unwrap();
        std::hint::black_box(q.get().unwrap());
    }
    start.elapsed()
}

/// 8-byte round trips with a forked echo process over `a`/`b`.
fn echo_rtt<S: Read + Write + Send>(iters: u64, mut ours: S, mut theirs: S) -> Duration {
    let mut peer = Process::spawn(move || {
        let mut buf = [0u8; 8];
        for _ in 0..iters {
            if theirs.read_exact(&mut buf).is_err() || theirs.write_all(&buf).is_err() {
                return 1;
            }
        }
        0
    })
    .unwrap();
    let mut buf = [7u8; 8];
    let start = Instant::now();
    for _ in 0..iters {
        ours.write_all(&buf).unwrap();
        ours.read_exact(&mut buf).unwrap();
    }
    let elapsed = start.elapsed();
    assert!(peer.join().unwrap().success());
    elapsed
}

/// Bare TCP loopback round trips of 8 bytes (`TCP_NODELAY`), between two processes.
pub fn tcp_rtt(iters: u64) -> Duration {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (theirs, _) = l.accept().unwrap();
    ours.set_nodelay(true).unwrap();
    theirs.set_nodelay(true).unwrap();
    echo_rtt(iters, ours, theirs)
}

/// Bare Unix-socket round trips of 8 bytes, between two processes.
pub fn uds_rtt(iters: u64) -> Duration {
    let (ours, theirs) = UnixStream::pair().unwrap();
    echo_rtt(iters, ours, theirs)
}

/// Nanoseconds per operation of CPython's own `multiprocessing.Manager` doing `op`
/// (`value`, `dict` or `queue`), or `None` where `python3` is not there.
pub fn cpython(op: &str, iters: u64) -> Option<f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/manager_bench.py");
    let out = Command::new("python3")
        .args([script, op, &iters.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Median and spread ((max − min) / median) of `runs` samples of `f`.
pub fn median_spread(runs: usize, mut f: impl FnMut() -> f64) -> (f64, f64) {
    let mut v: Vec<f64> = (0..runs.max(1)).map(|_| f()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let med = v[v.len() / 2];
    (med, (v[v.len() - 1] - v[0]) / med)
}

//! Side-by-side comparison of shmkit against what a program would use otherwise:
//! `cargo run --release --example compare`.
//!
//! Each pair is measured back to back in this one run, as the median of several
//! runs; cross-process pairs run the two processes pinned to different CPUs where
//! there are at least two. Prints a table (operation, shmkit, baseline, ratio) and the
//! issue's targets, and writes `target/shmkit-compare.json`.
//!
//! `SHMKIT_COMPARE_RUNS` (default 5) sets the runs per median; `SHMKIT_COMPARE_SCALE`
//! (default 1.0) scales every iteration count; `SHMKIT_COMPARE_ONLY` (a comma-separated
//! list of `rtt`, `shared-cpu`, `oneway`, `threads`, `mutex`, `value`, `manager`) picks sections.
#![allow(clippy::disallowed_types)]

#[path = "../benches/ipc/mod.rs"]
mod ipc;

#[cfg(feature = "manager")]
#[path = "../benches/manager_ops/mod.rs"]
mod manager_ops;

use std::fmt::Write as _;

use ipc::{Placement, baseline, kit, median};
use shmkit::WaitStrategy;

struct Row {
    op: String,
    kit: f64,
    base: f64,
    unit: &'static str,
    /// true: higher is better (throughput); false: lower is better (time).
    higher_better: bool,
    base_name: &'static str,
}

impl Row {
    /// How many times better shmkit is (>1 = shmkit wins).
    fn advantage(&self) -> f64 {
        if self.higher_better {
            self.kit / self.base
        } else {
            self.base / self.kit
        }
    }
}

fn main() {
    let runs: usize = env_or("SHMKIT_COMPARE_RUNS", 5.0) as usize;
    let scale = env_or("SHMKIT_COMPARE_SCALE", 1.0);
    let n = |base: u64| ((base as f64 * scale) as u64).max(10);
    let cpus = ipc::allowed_cpus().len();
    println!("shmkit compare: {runs} runs per median, {cpus} CPUs, scale {scale}");
    println!("machine: {}\n", machine());

    let ns_per = |d: std::time::Duration, iters: u64| d.as_nanos() as f64 / iters as f64;
    let per_s = |d: std::time::Duration, items: u64| items as f64 / d.as_secs_f64();
    let mut rows: Vec<Row> = Vec::new();
    let mut json: Vec<(&str, f64)> = Vec::new();
    let p = Placement::Pinned;
    let only = std::env::var("SHMKIT_COMPARE_ONLY").unwrap_or_default();
    let want = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);

    // --- Round trips, 8 bytes, two processes on two CPUs.
    if want("rtt") {
        let it = n(20_000);
        let kit_rtt = median(runs, || {
            ns_per(kit::rtt_pipe(it, p, WaitStrategy::Adaptive), it)
        });
        let it_spin = n(20_000);
        let kit_spin = median(runs, || {
            ns_per(kit::rtt_pipe(it_spin, p, WaitStrategy::Spin), it_spin)
        });
        let floor = median(runs, || {
            ns_per(baseline::rtt_spin_floor(it_spin, p), it_spin)
        });
        let it_k = n(4_000);
        let pipe2 = median(runs, || ns_per(baseline::rtt_pipe2(it_k, p), it_k));
        let uds = median(runs, || ns_per(baseline::rtt_uds(it_k, p), it_k));
        let efd = median(runs, || ns_per(baseline::rtt_eventfd(it_k, p), it_k));
        for (op, base, name) in [
            ("round trip 8 B (default wait)", pipe2, "pipe(2)"),
            ("round trip 8 B (default wait)", uds, "unix socket"),
            ("round trip 8 B (default wait)", efd, "eventfd"),
        ] {
            rows.push(row(op, kit_rtt, base, "ns", false, name));
        }
        rows.push(row(
            "round trip 8 B (busy-spin)",
            kit_spin,
            floor,
            "ns",
            false,
            "spin floor",
        ));
        rows.push(row(
            "round trip 8 B (default wait)",
            kit_rtt,
            floor,
            "ns",
            false,
            "spin floor",
        ));
        json.extend([
            ("pipe_rtt_ns", kit_rtt),
            ("pipe_spin_rtt_ns", kit_spin),
            ("pipe2_rtt_ns", pipe2),
            ("uds_rtt_ns", uds),
            ("eventfd_rtt_ns", efd),
            ("spin_floor_rtt_ns", floor),
        ]);
    }

    // --- Round trips where the peer cannot run at once: unpinned, and one shared CPU.
    if want("shared-cpu") {
        for placement in [Placement::Unpinned, Placement::SameCore] {
            let it = n(4_000);
            let kit = median(runs, || {
                ns_per(kit::rtt_pipe(it, placement, WaitStrategy::Adaptive), it)
            });
            let efd = median(runs, || ns_per(baseline::rtt_eventfd(it, placement), it));
            let op = format!("round trip 8 B, {}", placement.label());
            rows.push(row(&op, kit, efd, "ns", false, "eventfd"));
            let key = if placement == Placement::SameCore {
                "same_core"
            } else {
                "unpinned"
            };
            json.push((leak(format!("pipe_rtt_{key}_ns")), kit));
            json.push((leak(format!("eventfd_rtt_{key}_ns")), efd));
        }
    }

    // --- One-way throughput, 64 B and 4 KiB.
    if want("oneway") {
        let m64 = n(2_000_000);
        let kit64 = median(runs, || per_s(kit::tput_pipe(64, m64, p), m64));
        let m64k = n(200_000);
        let pipe2_64 = median(runs, || per_s(baseline::tput_pipe2(64, m64k, 1, p), m64k));
        let pipe2_64b = median(runs, || per_s(baseline::tput_pipe2(64, m64, 64, p), m64));
        let uds_64 = median(runs, || per_s(baseline::tput_uds(64, m64k, 1, p), m64k));
        let q64 = median(runs, || per_s(kit::tput_queue64(m64, p), m64));
        let ring64 = median(runs, || per_s(baseline::tput_spin_ring(64, m64, p), m64));
        rows.push(row(
            "one-way 64 B msgs/s",
            kit64,
            pipe2_64,
            "msg/s",
            true,
            "pipe(2) 1 write/msg",
        ));
        rows.push(row(
            "one-way 64 B msgs/s",
            kit64,
            pipe2_64b,
            "msg/s",
            true,
            "pipe(2) 64 msgs/write",
        ));
        rows.push(row(
            "one-way 64 B msgs/s",
            kit64,
            uds_64,
            "msg/s",
            true,
            "unix socket 1 write/msg",
        ));
        rows.push(row(
            "one-way 64 B msgs/s",
            kit64,
            ring64,
            "msg/s",
            true,
            "naive spinning ring",
        ));
        rows.push(row(
            "one-way 64 B Queue msgs/s",
            q64,
            pipe2_64,
            "msg/s",
            true,
            "pipe(2) 1 write/msg",
        ));
        let m4k = n(200_000);
        let kit4k = median(runs, || per_s(kit::tput_pipe(4096, m4k, p), m4k) * 4096.0);
        let pipe2_4k = median(runs, || {
            per_s(baseline::tput_pipe2(4096, m4k, 1, p), m4k) * 4096.0
        });
        let ring4k = median(runs, || {
            per_s(baseline::tput_spin_ring(4096, m4k, p), m4k) * 4096.0
        });
        rows.push(row(
            "one-way 4 KiB bytes/s",
            kit4k,
            pipe2_4k,
            "B/s",
            true,
            "pipe(2)",
        ));
        rows.push(row(
            "one-way 4 KiB bytes/s",
            kit4k,
            ring4k,
            "B/s",
            true,
            "naive spinning ring",
        ));
        json.extend([
            ("pipe_tput_64b_msgs_s", kit64),
            ("pipe2_tput_64b_msgs_s", pipe2_64),
            ("pipe2_batched_tput_64b_msgs_s", pipe2_64b),
            ("uds_tput_64b_msgs_s", uds_64),
            ("queue_tput_64b_msgs_s", q64),
            ("pipe_tput_4k_bytes_s", kit4k),
            ("pipe2_tput_4k_bytes_s", pipe2_4k),
            ("spin_ring_tput_64b_msgs_s", ring64),
            ("spin_ring_tput_4k_bytes_s", ring4k),
        ]);
    }

    // --- Between threads.
    if want("threads") {
        let mq = n(2_000_000);
        let kq = median(runs, || per_s(kit::mpmc_queue(mq, 2, 2), mq));
        let cb = median(runs, || per_s(baseline::mpmc_crossbeam(mq, 2, 2), mq));
        let kq1 = median(runs, || per_s(kit::mpmc_queue(mq, 1, 1), mq));
        let cb1 = median(runs, || per_s(baseline::mpmc_crossbeam(mq, 1, 1), mq));
        let ms = n(5_000_000);
        let ring = median(runs, || per_s(kit::spsc_ring(ms), ms));
        let rtrb = median(runs, || per_s(baseline::spsc_rtrb(ms), ms));
        rows.push(row(
            "threads MPMC 2x2 u64/s",
            kq,
            cb,
            "msg/s",
            true,
            "crossbeam ArrayQueue",
        ));
        rows.push(row(
            "threads MPMC 1x1 u64/s",
            kq1,
            cb1,
            "msg/s",
            true,
            "crossbeam ArrayQueue",
        ));
        rows.push(row("threads SPSC u64/s", ring, rtrb, "msg/s", true, "rtrb"));
        json.extend([
            ("queue_mpmc_msgs_s", kq),
            ("crossbeam_mpmc_msgs_s", cb),
            ("queue_spsc_1x1_msgs_s", kq1),
            ("crossbeam_1x1_msgs_s", cb1),
            ("ring_spsc_msgs_s", ring),
            ("rtrb_spsc_msgs_s", rtrb),
        ]);
    }

    // --- Mutex, uncontended.
    if want("mutex") {
        let mi = n(20_000_000);
        let km = median(runs, || ns_per(kit::mutex_kit(mi), mi));
        let sm = median(runs, || ns_per(baseline::mutex_std(mi), mi));
        let pm = median(runs, || ns_per(baseline::mutex_parking_lot(mi), mi));
        rows.push(row(
            "Mutex lock+unlock",
            km,
            sm,
            "ns",
            false,
            "std::sync::Mutex",
        ));
        rows.push(row(
            "Mutex lock+unlock",
            km,
            pm,
            "ns",
            false,
            "parking_lot::Mutex",
        ));
        json.extend([
            ("mutex_uncontended_ns", km),
            ("std_mutex_uncontended_ns", sm),
            ("parking_lot_mutex_uncontended_ns", pm),
        ]);
    }

    // --- Value increments from two processes: locked vs atomic.
    if want("value") {
        let vi = n(1_000_000);
        let locked = median(runs, || ns_per(kit::value_locked(vi, 2), 2 * vi));
        let atomic = median(runs, || ns_per(baseline::value_atomic(vi, 2), 2 * vi));
        rows.push(row(
            "2-process increments (Value vs atomic)",
            locked,
            atomic,
            "ns",
            false,
            "AtomicU64",
        ));
        json.extend([("value_locked_incr_ns", locked), ("atomic_incr_ns", atomic)]);
    }

    #[cfg(feature = "manager")]
    if want("manager") {
        manager_section(&mut rows, &mut json, runs, scale);
    }

    print_table(&rows);
    print_targets(&json);
    write_json(&json);
}

fn row(
    op: &str,
    kit: f64,
    base: f64,
    unit: &'static str,
    higher_better: bool,
    base_name: &'static str,
) -> Row {
    Row {
        op: op.to_string(),
        kit,
        base,
        unit,
        higher_better,
        base_name,
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn env_or(key: &str, default: f64) -> f64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn human(v: f64, unit: &str) -> String {
    match unit {
        "ns" if v >= 1000.0 => format!("{:.2} µs", v / 1000.0),
        "ns" => format!("{v:.1} ns"),
        "B/s" => format!("{:.2} GB/s", v / 1e9),
        _ => format!("{:.2} M/s", v / 1e6),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<40} {:>12} {:>12}  {:<24} {:>9}",
        "operation", "shmkit", "baseline", "baseline is", "shmkit ×"
    );
    println!("{}", "-".repeat(104));
    for r in rows {
        println!(
            "{:<40} {:>12} {:>12}  {:<24} {:>8.2}×",
            r.op,
            human(r.kit, r.unit),
            human(r.base, r.unit),
            r.base_name,
            r.advantage()
        );
    }
    println!("(shmkit × = how many times better shmkit is: >1 means shmkit wins)\n");
}

fn get(json: &[(&str, f64)], key: &str) -> f64 {
    json.iter()
        .find(|(k, _)| *k == key)
        .map_or(f64::NAN, |(_, v)| *v)
}

/// Which way a target's ratio must go.
#[derive(Clone, Copy)]
enum Need {
    AtLeast(f64),
    AtMost(f64),
}

/// The targets: (name, numerator key, denominator key, bound on the ratio).
const TARGETS: &[(&str, &str, &str, Need)] = &[
    (
        "Pipe RTT: pipe(2) / Pipe",
        "pipe2_rtt_ns",
        "pipe_rtt_ns",
        Need::AtLeast(100.0),
    ),
    (
        "Pipe RTT: Pipe / spin floor",
        "pipe_rtt_ns",
        "spin_floor_rtt_ns",
        Need::AtMost(1.5),
    ),
    (
        "64 B one-way: Pipe / pipe(2) one write each",
        "pipe_tput_64b_msgs_s",
        "pipe2_tput_64b_msgs_s",
        Need::AtLeast(20.0),
    ),
    (
        "64 B one-way: Pipe / pipe(2) batched",
        "pipe_tput_64b_msgs_s",
        "pipe2_batched_tput_64b_msgs_s",
        Need::AtLeast(1.0),
    ),
    (
        "4 KiB one-way: Pipe / pipe(2)",
        "pipe_tput_4k_bytes_s",
        "pipe2_tput_4k_bytes_s",
        Need::AtLeast(2.5),
    ),
    (
        "MPMC 2x2: Queue / crossbeam ArrayQueue",
        "queue_mpmc_msgs_s",
        "crossbeam_mpmc_msgs_s",
        Need::AtLeast(1.0),
    ),
    (
        "SPSC: ring / rtrb",
        "ring_spsc_msgs_s",
        "rtrb_spsc_msgs_s",
        Need::AtLeast(1.0),
    ),
    (
        "uncontended: Mutex / std::sync::Mutex",
        "mutex_uncontended_ns",
        "std_mutex_uncontended_ns",
        Need::AtMost(1.1),
    ),
    (
        "RTT one core: Pipe / eventfd",
        "pipe_rtt_same_core_ns",
        "eventfd_rtt_same_core_ns",
        Need::AtMost(1.1),
    ),
    (
        "RTT unpinned: Pipe / eventfd",
        "pipe_rtt_unpinned_ns",
        "eventfd_rtt_unpinned_ns",
        Need::AtMost(1.1),
    ),
    (
        "Manager op over TCP / bare TCP RTT",
        "manager_tcp_call_ns",
        "tcp_rtt_ns",
        Need::AtMost(1.5),
    ),
    (
        "local: CPython Manager op / Manager op",
        "cpython_manager_call_ns",
        "manager_call_ns",
        Need::AtLeast(5.0),
    ),
];

fn print_targets(json: &[(&str, f64)]) {
    println!(
        "{:<44} {:>9} {:>9}  result",
        "target (ratio)", "measured", "needed"
    );
    println!("{}", "-".repeat(74));
    for &(name, num, den, need) in TARGETS {
        let got = get(json, num) / get(json, den);
        let (bound, ok) = match need {
            Need::AtLeast(b) => (format!("≥ {b:.1}"), got >= b),
            Need::AtMost(b) => (format!("≤ {b:.1}"), got <= b),
        };
        let result = if got.is_nan() {
            "not run"
        } else if ok {
            "met"
        } else {
            "MISSED"
        };
        println!("{name:<44} {got:>9.2} {bound:>9}  {result}");
    }
    println!();
}

fn write_json(json: &[(&str, f64)]) {
    let mut out = String::from("{\n");
    for (i, (k, v)) in json.iter().enumerate() {
        let sep = if i + 1 == json.len() { "" } else { "," };
        let _ = writeln!(out, "  \"{k}\": {v:.3}{sep}");
    }
    out.push_str("}\n");
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = std::path::Path::new(&dir).join("shmkit-compare.json");
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, out)) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, Linux {}", kernel.trim())
}

/// The manager section (`SHMKIT_COMPARE_ONLY=manager`): one proxy call (a `Value`
/// get) locally and over TCP loopback, dict set+get and queue put+get, beside bare
/// socket round trips and CPython's own Manager. The kernels run interleaved, one
/// sample of each per round, so that a noisy minute hits every side alike.
#[cfg(feature = "manager")]
fn manager_section(
    rows: &mut Vec<Row>,
    json: &mut Vec<(&'static str, f64)>,
    runs: usize,
    scale: f64,
) {
    use manager_ops as mo;
    let it = ((5_000.0 * scale) as u64).max(10);
    let py_it = ((2_000.0 * scale) as u64).max(10);
    let ns = |d: std::time::Duration, iters: u64| d.as_nanos() as f64 / iters as f64;
    let local = shmkit::Manager::start().expect("Manager::start");
    let tcp = mo::TcpManager::start();
    let python = mo::cpython("value", 10).is_some();
    if !python {
        println!("(python3 not found: CPython's Manager is not measured)");
    }
    let names = [
        "manager_call_ns",
        "manager_tcp_call_ns",
        "tcp_rtt_ns",
        "manager_uds_rtt_ns",
        "manager_dict_set_get_ns",
        "manager_queue_put_get_ns",
        "cpython_manager_call_ns",
        "cpython_dict_set_get_ns",
        "cpython_queue_put_get_ns",
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..runs.max(1) {
        samples[0].push(ns(mo::value_get(&local, it), it));
        samples[1].push(ns(mo::value_get(&tcp.manager, it), it));
        samples[2].push(ns(mo::tcp_rtt(it), it));
        samples[3].push(ns(mo::uds_rtt(it), it));
        samples[4].push(ns(mo::dict_set_get(&local, it), it));
        samples[5].push(ns(mo::queue_put_get(&local, it), it));
        if python {
            for (i, op) in [(6, "value"), (7, "dict"), (8, "queue")] {
                if let Some(v) = mo::cpython(op, py_it) {
                    samples[i].push(v);
                }
            }
        }
    }
    tcp.stop();
    let _ = local.shutdown();
    let mut got = std::collections::HashMap::new();
    for (name, s) in names.iter().zip(&samples) {
        if s.is_empty() {
            continue;
        }
        let mut it = s.iter().copied();
        let (med, spread) = mo::median_spread(s.len(), || it.next().unwrap_or(f64::NAN));
        got.insert(*name, med);
        json.push((name, med));
        json.push((
            leak(format!("{}_spread", name.trim_end_matches("_ns"))),
            spread,
        ));
    }
    let g = |k: &str| got.get(k).copied().unwrap_or(f64::NAN);
    rows.push(row(
        "manager Value get, TCP",
        g("manager_tcp_call_ns"),
        g("tcp_rtt_ns"),
        "ns",
        false,
        "bare TCP RTT",
    ));
    rows.push(row(
        "manager Value get, local",
        g("manager_call_ns"),
        g("manager_uds_rtt_ns"),
        "ns",
        false,
        "bare unix socket RTT",
    ));
    if python {
        rows.push(row(
            "manager Value get, local",
            g("manager_call_ns"),
            g("cpython_manager_call_ns"),
            "ns",
            false,
            "CPython Manager",
        ));
        rows.push(row(
            "manager dict set+get, local",
            g("manager_dict_set_get_ns"),
            g("cpython_dict_set_get_ns"),
            "ns",
            false,
            "CPython Manager",
        ));
        rows.push(row(
            "manager queue put+get, local",
            g("manager_queue_put_get_ns"),
            g("cpython_queue_put_get_ns"),
            "ns",
            false,
            "CPython Manager",
        ));
    }
}

//! Side-by-side comparison of shmkit against what a program would use otherwise:
//! `cargo run --release --example compare [-- --plot]`.
//!
//! Each section measures its kernels *interleaved*: one warm-up call each, then many
//! short repetitions, every repetition calling every kernel of the section once in a
//! shuffled order (see `benches/ipc/stats.rs`). A ratio is taken within each
//! repetition and reported as the median over repetitions with its spread (min–max)
//! and the repetition count, so a machine whose speed drifts between repetitions (a VM
//! whose vCPUs the host moves) moves both sides of a ratio alike. Cross-process pairs
//! run the two processes pinned to different CPUs where there are at least two.
//!
//! Prints a table of pairs and the targets, and writes
//! `target/shmkit-compare.json`: each kernel's median under its key, `<key>_spread`
//! beside it (`[min, max]` over the repetitions), `<key>_reps`, and for each target the
//! paired ratio (`ratio_<num>_over_<den>`, with its `_spread`). `--plot` also draws
//! every pair's per-repetition ratios to `target/shmkit-compare.svg`.
//!
//! `--paths [N [NAME]]` runs only instruction paths (or the one named) for callgrind,
//! without any waiting: N
//! in-process round trips of each kind (Pipe, Spsc, the floor's word), N items
//! pushed and popped through the Spsc and through rtrb, and N 64-byte messages through
//! a Pipe one call each and 64 per call.
//!
//! `SHMKIT_COMPARE_REPS` (default 21) sets the repetitions; `SHMKIT_COMPARE_SCALE`
//! (default 1.0) scales every iteration count; `SHMKIT_COMPARE_SEED` the shuffle seed;
//! `SHMKIT_COMPARE_ONLY` (a comma-separated list of section names: `rtt`, `shared-cpu`,
//! `oneway`, `oneway-4k`, `spsc`, `threads`, `mutex`, `value`, `manager` with the
//! `manager` feature) picks sections.
//!
//! To add a section: write a `fn(&mut Compare)` that builds a [`Group`], runs it with
//! [`Compare::measure`] and adds its rows with [`Compare::row`], then list it in
//! [`SECTIONS`].
#![allow(clippy::disallowed_types)]

#[path = "../benches/ipc/mod.rs"]
mod ipc;

#[cfg(feature = "manager")]
#[path = "../benches/manager_ops/mod.rs"]
mod manager_ops;

use std::fmt::Write as _;
use std::time::Duration;

use ipc::stats::{Group, Ratio, Series};
use ipc::{Placement, baseline, kit};
use shmkit::WaitStrategy;

/// The sections, in the order they run: (name for `SHMKIT_COMPARE_ONLY`, function).
const SECTIONS: &[(&str, Section)] = &[
    ("rtt", section_rtt),
    ("shared-cpu", section_shared_cpu),
    ("oneway", section_oneway_64),
    ("oneway-4k", section_oneway_4k),
    ("spsc", section_spsc_processes),
    ("threads", section_threads),
    ("mutex", section_mutex),
    ("value", section_value),
    #[cfg(feature = "manager")]
    ("manager", section_manager),
];

/// An instruction path for callgrind (`--paths`): runs N iterations, returns a checksum.
type Path = fn(u64) -> u64;

/// A section of the comparison: measures a group and adds its rows.
type Section = fn(&mut Compare);

/// One pair of the table: two kernels of one section.
struct Row {
    op: String,
    kit: &'static str,
    base: &'static str,
    unit: &'static str,
    /// true: higher is better (throughput); false: lower is better (time).
    higher_better: bool,
    base_name: &'static str,
}

/// The state of a run: settings, every series measured, every row.
struct Compare {
    reps: usize,
    scale: f64,
    seed: u64,
    series: Vec<Series>,
    rows: Vec<Row>,
}

impl Compare {
    /// `base` iterations, scaled (at least 10).
    fn n(&self, base: u64) -> u64 {
        ((base as f64 * self.scale) as u64).max(10)
    }

    /// Runs a group interleaved and keeps its series.
    fn measure(&mut self, group: Group<'_>) {
        let id = self.series.iter().map(|s| s.group + 1).max().unwrap_or(0);
        let seed = self.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.series.extend(group.run(self.reps, id, seed));
    }

    /// Adds a row pairing two measured kernels.
    fn row(
        &mut self,
        op: &str,
        kit: &'static str,
        base: &'static str,
        unit: &'static str,
        higher_better: bool,
        base_name: &'static str,
    ) {
        self.rows.push(Row {
            op: op.to_string(),
            kit,
            base,
            unit,
            higher_better,
            base_name,
        });
    }

    fn get(&self, key: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.key == key)
    }

    /// The paired ratio num/den, if both were measured together.
    fn ratio(&self, num: &str, den: &str) -> Option<Ratio> {
        Ratio::paired(self.get(num)?, self.get(den)?)
    }

    /// How many times better shmkit is in `row`, per repetition (>1 = shmkit wins).
    fn advantage(&self, row: &Row) -> Option<Ratio> {
        let r = self.ratio(row.kit, row.base)?;
        Some(if row.higher_better { r } else { r.inverse() })
    }
}

fn main() {
    if let Some(i) = std::env::args().position(|a| a == "--paths") {
        // For callgrind: the instruction paths (or the one named), nothing else.
        let args: Vec<String> = std::env::args().collect();
        let iters = args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(100_000);
        let only = args.get(i + 2).map(String::as_str);
        let paths: [(&str, Path); 7] = [
            ("rtt_pipe_path", kit::rtt_pipe_path),
            ("rtt_spsc_path", kit::rtt_spsc_path),
            ("rtt_floor_path", baseline::rtt_floor_path),
            ("spsc_path", kit::spsc_path),
            ("rtrb_path", baseline::rtrb_path),
            ("oneway_pipe_single_path", kit::oneway_pipe_single_path),
            ("oneway_pipe_batched_path", kit::oneway_pipe_batched_path),
        ];
        for (name, path) in paths {
            if only.is_none_or(|o| o == name) {
                println!("{name}: {}", path(iters));
            }
        }
        return;
    }
    let plot = std::env::args().any(|a| a == "--plot");
    let mut cx = Compare {
        reps: (env_or("SHMKIT_COMPARE_REPS", 21.0) as usize).max(1),
        scale: env_or("SHMKIT_COMPARE_SCALE", 1.0),
        seed: env_or("SHMKIT_COMPARE_SEED", 12345.0) as u64,
        series: Vec::new(),
        rows: Vec::new(),
    };
    let cpus = ipc::allowed_cpus().len();
    println!(
        "shmkit compare: {} interleaved repetitions per section, {cpus} CPUs, scale {}",
        cx.reps, cx.scale
    );
    println!("machine: {}", machine());
    println!("load before: {}\n", load());
    let only = std::env::var("SHMKIT_COMPARE_ONLY").unwrap_or_default();
    let want = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    for &(name, section) in SECTIONS {
        if want(name) {
            let t = std::time::Instant::now();
            section(&mut cx);
            eprintln!("[{name}: {:.1} s]", t.elapsed().as_secs_f64());
        }
    }
    println!("load after: {}\n", load());
    print_table(&cx);
    print_targets(&cx);
    write_json(&cx);
    if plot {
        match plot_svg(&cx) {
            Ok(path) => println!("wrote {path}"),
            Err(e) => eprintln!("could not plot: {e}"),
        }
    }
}

// ---- sections --------------------------------------------------------------------

fn ns_per(d: Duration, iters: u64) -> f64 {
    d.as_nanos() as f64 / iters as f64
}

fn per_s(d: Duration, items: u64) -> f64 {
    items as f64 / d.as_secs_f64()
}

/// Round trips, 8 bytes, two processes on two CPUs.
fn section_rtt(cx: &mut Compare) {
    let p = Placement::Pinned;
    let (it, it_k) = (cx.n(20_000), cx.n(400));
    let mut g = Group::new();
    g.add("pipe_rtt_ns", move || {
        ns_per(kit::rtt_pipe(it, p, WaitStrategy::Adaptive), it)
    })
    .add("pipe_spin_rtt_ns", move || {
        ns_per(kit::rtt_pipe(it, p, WaitStrategy::Spin), it)
    })
    .add("spin_floor_rtt_ns", move || {
        ns_per(baseline::rtt_spin_floor(it, p), it)
    })
    .add("spsc_spin_rtt_ns", move || {
        ns_per(kit::rtt_spsc(it, p, WaitStrategy::Spin), it)
    })
    .add("pipe2_rtt_ns", move || {
        ns_per(baseline::rtt_pipe2(it_k, p), it_k)
    })
    .add("uds_rtt_ns", move || {
        ns_per(baseline::rtt_uds(it_k, p), it_k)
    })
    .add("eventfd_rtt_ns", move || {
        ns_per(baseline::rtt_eventfd(it_k, p), it_k)
    });
    cx.measure(g);
    let op = "round trip 8 B (default wait)";
    cx.row(op, "pipe_rtt_ns", "pipe2_rtt_ns", "ns", false, "pipe(2)");
    cx.row(op, "pipe_rtt_ns", "uds_rtt_ns", "ns", false, "unix socket");
    cx.row(op, "pipe_rtt_ns", "eventfd_rtt_ns", "ns", false, "eventfd");
    cx.row(
        "round trip 8 B (busy-spin)",
        "pipe_spin_rtt_ns",
        "spin_floor_rtt_ns",
        "ns",
        false,
        "spin floor",
    );
    cx.row(
        op,
        "pipe_rtt_ns",
        "spin_floor_rtt_ns",
        "ns",
        false,
        "spin floor",
    );
    cx.row(
        "round trip 8 B Spsc pair (busy-spin)",
        "spsc_spin_rtt_ns",
        "spin_floor_rtt_ns",
        "ns",
        false,
        "spin floor",
    );
}

/// Round trips where the peer cannot run at once: unpinned, and one shared CPU.
fn section_shared_cpu(cx: &mut Compare) {
    let it = cx.n(2_000);
    for (placement, kit_key, efd_key) in [
        (
            Placement::Unpinned,
            "pipe_rtt_unpinned_ns",
            "eventfd_rtt_unpinned_ns",
        ),
        (
            Placement::SameCore,
            "pipe_rtt_same_core_ns",
            "eventfd_rtt_same_core_ns",
        ),
    ] {
        let mut g = Group::new();
        g.add(kit_key, move || {
            ns_per(kit::rtt_pipe(it, placement, WaitStrategy::Adaptive), it)
        })
        .add(efd_key, move || {
            ns_per(baseline::rtt_eventfd(it, placement), it)
        });
        cx.measure(g);
        let op = format!("round trip 8 B, {}", placement.label());
        cx.row(&op, kit_key, efd_key, "ns", false, "eventfd");
    }
}

/// One-way 64-byte messages across processes: unbatched against unbatched, batched
/// against batched, and the naive spinning ring.
fn section_oneway_64(cx: &mut Compare) {
    let p = Placement::Pinned;
    let (m, m_k) = (cx.n(200_000), cx.n(20_000));
    let mut g = Group::new();
    g.add("pipe_tput_64b_msgs_s", move || {
        per_s(kit::tput_pipe(64, m, p), m)
    })
    .add("pipe2_tput_64b_msgs_s", move || {
        per_s(baseline::tput_pipe2(64, m_k, 1, p), m_k)
    })
    .add("pipe2_batched_tput_64b_msgs_s", move || {
        per_s(baseline::tput_pipe2(64, m, 64, p), m)
    })
    .add("pipe_batched_tput_64b_msgs_s", move || {
        per_s(kit::tput_pipe_batched(64, m, 64, p), m)
    })
    .add("uds_tput_64b_msgs_s", move || {
        per_s(baseline::tput_uds(64, m_k, 1, p), m_k)
    })
    .add("queue_tput_64b_msgs_s", move || {
        per_s(kit::tput_queue64(m, p), m)
    })
    .add("spin_ring_tput_64b_msgs_s", move || {
        per_s(baseline::tput_spin_ring(64, m, p), m)
    })
    .add("spsc_proc_tput_64b_msgs_s", move || {
        per_s(kit::tput_spsc::<64, 1024>(m, p), m)
    });
    cx.measure(g);
    let op = "one-way 64 B msgs/s";
    let k = "pipe_tput_64b_msgs_s";
    cx.row(
        op,
        k,
        "pipe2_tput_64b_msgs_s",
        "msg/s",
        true,
        "pipe(2) 1 write/msg",
    );
    cx.row(
        op,
        k,
        "uds_tput_64b_msgs_s",
        "msg/s",
        true,
        "unix socket 1 write/msg",
    );
    cx.row(
        op,
        k,
        "spin_ring_tput_64b_msgs_s",
        "msg/s",
        true,
        "naive spinning ring",
    );
    let kb = "pipe_batched_tput_64b_msgs_s";
    let op_b = "one-way 64 B msgs/s, 64 per call";
    cx.row(
        op_b,
        kb,
        "pipe2_batched_tput_64b_msgs_s",
        "msg/s",
        true,
        "pipe(2) 64 msgs/write",
    );
    cx.row(
        op_b,
        kb,
        "spin_ring_tput_64b_msgs_s",
        "msg/s",
        true,
        "naive spinning ring",
    );
    cx.row(
        "one-way 64 B msgs/s (unbatched Pipe)",
        k,
        "pipe2_batched_tput_64b_msgs_s",
        "msg/s",
        true,
        "pipe(2) 64 msgs/write",
    );
    cx.row(
        "one-way 64 B Spsc msgs/s",
        "spsc_proc_tput_64b_msgs_s",
        "spin_ring_tput_64b_msgs_s",
        "msg/s",
        true,
        "naive spinning ring",
    );
    cx.row(
        "one-way 64 B Queue msgs/s",
        "queue_tput_64b_msgs_s",
        "pipe2_tput_64b_msgs_s",
        "msg/s",
        true,
        "pipe(2) 1 write/msg",
    );
}

/// One-way 4 KiB messages across processes.
fn section_oneway_4k(cx: &mut Compare) {
    let p = Placement::Pinned;
    let m = cx.n(10_000);
    let mut g = Group::new();
    g.add("pipe_tput_4k_bytes_s", move || {
        per_s(kit::tput_pipe(4096, m, p), m) * 4096.0
    })
    .add("pipe2_tput_4k_bytes_s", move || {
        per_s(baseline::tput_pipe2(4096, m, 1, p), m) * 4096.0
    })
    .add("spin_ring_tput_4k_bytes_s", move || {
        per_s(baseline::tput_spin_ring(4096, m, p), m) * 4096.0
    });
    cx.measure(g);
    let op = "one-way 4 KiB bytes/s";
    let k = "pipe_tput_4k_bytes_s";
    cx.row(op, k, "pipe2_tput_4k_bytes_s", "B/s", true, "pipe(2)");
    cx.row(
        op,
        k,
        "spin_ring_tput_4k_bytes_s",
        "B/s",
        true,
        "naive spinning ring",
    );
}

/// The typed SPSC ring across processes (pinned apart) against the naive spinning
/// slot ring, 8-byte items, one push and one pop per item (64 bytes: `oneway`).
fn section_spsc_processes(cx: &mut Compare) {
    let p = Placement::Pinned;
    let m = cx.n(400_000);
    let mut g = Group::new();
    g.add("spsc_proc_tput_8b_msgs_s", move || {
        per_s(kit::tput_spsc::<8, 8192>(m, p), m)
    })
    .add("spin_ring_tput_8b_msgs_s", move || {
        per_s(baseline::tput_spin_ring(8, m, p), m)
    });
    cx.measure(g);
    cx.row(
        "one-way 8 B Spsc msgs/s",
        "spsc_proc_tput_8b_msgs_s",
        "spin_ring_tput_8b_msgs_s",
        "msg/s",
        true,
        "naive spinning ring",
    );
}

/// Between threads, against the in-process anchors.
fn section_threads(cx: &mut Compare) {
    let (mq, ms) = (cx.n(200_000), cx.n(1_000_000));
    let mut g = Group::new();
    g.add("queue_mpmc_msgs_s", move || {
        per_s(kit::mpmc_queue(mq, 2, 2), mq)
    })
    .add("crossbeam_mpmc_msgs_s", move || {
        per_s(baseline::mpmc_crossbeam(mq, 2, 2), mq)
    })
    .add("queue_spsc_1x1_msgs_s", move || {
        per_s(kit::mpmc_queue(mq, 1, 1), mq)
    })
    .add("crossbeam_1x1_msgs_s", move || {
        per_s(baseline::mpmc_crossbeam(mq, 1, 1), mq)
    })
    .add("ring_spsc_msgs_s", move || per_s(kit::spsc_ring(ms), ms))
    .add("spsc_tput_8b_msgs_s", move || {
        per_s(kit::spsc_typed(ms), ms)
    })
    .add("rtrb_spsc_msgs_s", move || {
        per_s(baseline::spsc_rtrb(ms), ms)
    });
    cx.measure(g);
    let cb = "crossbeam ArrayQueue";
    cx.row(
        "threads MPMC 2x2 u64/s",
        "queue_mpmc_msgs_s",
        "crossbeam_mpmc_msgs_s",
        "msg/s",
        true,
        cb,
    );
    cx.row(
        "threads MPMC 1x1 u64/s",
        "queue_spsc_1x1_msgs_s",
        "crossbeam_1x1_msgs_s",
        "msg/s",
        true,
        cb,
    );
    cx.row(
        "threads SPSC u64/s (Spsc)",
        "spsc_tput_8b_msgs_s",
        "rtrb_spsc_msgs_s",
        "msg/s",
        true,
        "rtrb",
    );
    cx.row(
        "threads SPSC u64/s (Pipe ring)",
        "ring_spsc_msgs_s",
        "rtrb_spsc_msgs_s",
        "msg/s",
        true,
        "rtrb",
    );
}

/// Mutex, uncontended.
fn section_mutex(cx: &mut Compare) {
    let mi = cx.n(2_000_000);
    let mut g = Group::new();
    g.add("mutex_uncontended_ns", move || {
        ns_per(kit::mutex_kit(mi), mi)
    })
    .add("std_mutex_uncontended_ns", move || {
        ns_per(baseline::mutex_std(mi), mi)
    })
    .add("parking_lot_mutex_uncontended_ns", move || {
        ns_per(baseline::mutex_parking_lot(mi), mi)
    });
    cx.measure(g);
    let op = "Mutex lock+unlock";
    let k = "mutex_uncontended_ns";
    cx.row(
        op,
        k,
        "std_mutex_uncontended_ns",
        "ns",
        false,
        "std::sync::Mutex",
    );
    cx.row(
        op,
        k,
        "parking_lot_mutex_uncontended_ns",
        "ns",
        false,
        "parking_lot::Mutex",
    );
}

/// Value increments from two processes: locked vs atomic.
fn section_value(cx: &mut Compare) {
    let vi = cx.n(200_000);
    let mut g = Group::new();
    g.add("value_locked_incr_ns", move || {
        ns_per(kit::value_locked(vi, 2), 2 * vi)
    })
    .add("atomic_incr_ns", move || {
        ns_per(baseline::value_atomic(vi, 2), 2 * vi)
    });
    cx.measure(g);
    cx.row(
        "2-process increments (Value vs atomic)",
        "value_locked_incr_ns",
        "atomic_incr_ns",
        "ns",
        false,
        "AtomicU64",
    );
}

/// The Manager (feature `manager`): one proxy call (a `Value` get) locally and over
/// TCP against the bare socket round trip, and against CPython's Manager where
/// `python3` is there.
#[cfg(feature = "manager")]
fn section_manager(cx: &mut Compare) {
    use manager_ops as mo;
    let (it, py_it) = (cx.n(5_000), cx.n(2_000));
    let local = shmkit::Manager::start().expect("Manager::start");
    let tcp = mo::TcpManager::start();
    let python = mo::cpython("value", 10).is_some();
    if !python {
        println!("(python3 not found: CPython's Manager is not measured)");
    }
    {
        let (local, tcp) = (&local, &tcp);
        let mut g = Group::new();
        g.add("manager_call_ns", move || {
            ns_per(mo::value_get(local, it), it)
        })
        .add("manager_tcp_call_ns", move || {
            ns_per(mo::value_get(&tcp.manager, it), it)
        })
        .add("tcp_rtt_ns", move || ns_per(mo::tcp_rtt(it), it))
        .add("manager_uds_rtt_ns", move || ns_per(mo::uds_rtt(it), it))
        .add("manager_dict_set_get_ns", move || {
            ns_per(mo::dict_set_get(local, it), it)
        })
        .add("manager_queue_put_get_ns", move || {
            ns_per(mo::queue_put_get(local, it), it)
        });
        if python {
            for (key, op) in [
                ("cpython_manager_call_ns", "value"),
                ("cpython_dict_set_get_ns", "dict"),
                ("cpython_queue_put_get_ns", "queue"),
            ] {
                g.add(key, move || mo::cpython(op, py_it).unwrap_or(f64::NAN));
            }
        }
        cx.measure(g);
    }
    tcp.stop();
    let _ = local.shutdown();
    cx.row(
        "manager Value get, TCP",
        "manager_tcp_call_ns",
        "tcp_rtt_ns",
        "ns",
        false,
        "bare TCP RTT",
    );
    cx.row(
        "manager Value get, local",
        "manager_call_ns",
        "manager_uds_rtt_ns",
        "ns",
        false,
        "bare unix socket RTT",
    );
    if python {
        let c = "CPython Manager";
        cx.row(
            "manager Value get, local",
            "manager_call_ns",
            "cpython_manager_call_ns",
            "ns",
            false,
            c,
        );
        cx.row(
            "manager dict set+get, local",
            "manager_dict_set_get_ns",
            "cpython_dict_set_get_ns",
            "ns",
            false,
            c,
        );
        cx.row(
            "manager queue put+get, local",
            "manager_queue_put_get_ns",
            "cpython_queue_put_get_ns",
            "ns",
            false,
            c,
        );
    }
}

// ---- targets ---------------------------------------------------------------------

/// Which way a target's ratio must go.
#[derive(Clone, Copy)]
enum Need {
    AtLeast(f64),
    AtMost(f64),
}

impl Need {
    fn ok(self, v: f64) -> bool {
        match self {
            Need::AtLeast(b) => v >= b,
            Need::AtMost(b) => v <= b,
        }
    }
}

/// The issues' targets: (name, numerator key, denominator key, bound on the ratio).
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
        "64 B one-way: Pipe / naive spinning ring",
        "pipe_tput_64b_msgs_s",
        "spin_ring_tput_64b_msgs_s",
        Need::AtLeast(0.9),
    ),
    (
        "64 B batched: Pipe send_many / pipe(2) 64 per write",
        "pipe_batched_tput_64b_msgs_s",
        "pipe2_batched_tput_64b_msgs_s",
        Need::AtLeast(1.0),
    ),
    (
        "64 B batched: Pipe send_many / naive ring",
        "pipe_batched_tput_64b_msgs_s",
        "spin_ring_tput_64b_msgs_s",
        Need::AtLeast(0.9),
    ),
    (
        "4 KiB one-way: Pipe / pipe(2)",
        "pipe_tput_4k_bytes_s",
        "pipe2_tput_4k_bytes_s",
        Need::AtLeast(2.5),
    ),
    (
        "4 KiB one-way: Pipe / naive spinning ring",
        "pipe_tput_4k_bytes_s",
        "spin_ring_tput_4k_bytes_s",
        Need::AtLeast(0.9),
    ),
    (
        "Spsc 8 B (processes) / naive spinning ring",
        "spsc_proc_tput_8b_msgs_s",
        "spin_ring_tput_8b_msgs_s",
        Need::AtLeast(0.9),
    ),
    (
        "Spsc 64 B (processes) / naive spinning ring",
        "spsc_proc_tput_64b_msgs_s",
        "spin_ring_tput_64b_msgs_s",
        Need::AtLeast(0.9),
    ),
    (
        "threads SPSC: Spsc / rtrb",
        "spsc_tput_8b_msgs_s",
        "rtrb_spsc_msgs_s",
        Need::AtLeast(1.0),
    ),
    (
        "MPMC 2x2: Queue / crossbeam ArrayQueue",
        "queue_mpmc_msgs_s",
        "crossbeam_mpmc_msgs_s",
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

// ---- output ----------------------------------------------------------------------

fn human(v: f64, unit: &str) -> String {
    match unit {
        "ns" if v >= 1000.0 => format!("{:.2} µs", v / 1000.0),
        "ns" => format!("{v:.1} ns"),
        "B/s" => format!("{:.2} GB/s", v / 1e9),
        _ => format!("{:.2} M/s", v / 1e6),
    }
}

fn print_table(cx: &Compare) {
    println!(
        "{:<40} {:>11} {:>11}  {:<24} {:>8} {:>17} {:>4}",
        "operation", "shmkit", "baseline", "baseline is", "shmkit ×", "spread (min–max)", "reps"
    );
    println!("{}", "-".repeat(120));
    for r in &cx.rows {
        let (Some(k), Some(b), Some(adv)) = (cx.get(r.kit), cx.get(r.base), cx.advantage(r)) else {
            continue;
        };
        let (lo, hi) = adv.spread();
        println!(
            "{:<40} {:>11} {:>11}  {:<24} {:>7.2}× {:>7.2}–{:<8.2}  {:>4}",
            r.op,
            human(k.median(), r.unit),
            human(b.median(), r.unit),
            r.base_name,
            adv.median(),
            lo,
            hi,
            adv.values.len()
        );
    }
    println!(
        "(medians over interleaved repetitions; shmkit × = how many times better shmkit is, \
         >1 = shmkit wins, the median of the per-repetition ratios, with their min–max)\n"
    );
}

fn print_targets(cx: &Compare) {
    println!(
        "{:<52} {:>9} {:>17} {:>9}  result",
        "target (ratio)", "measured", "spread (min–max)", "needed"
    );
    println!("{}", "-".repeat(102));
    for &(name, num, den, need) in TARGETS {
        let bound = match need {
            Need::AtLeast(b) => format!("≥ {b:.1}"),
            Need::AtMost(b) => format!("≤ {b:.1}"),
        };
        let Some(r) = cx.ratio(num, den) else {
            println!("{name:<52} {:>9} {:>17} {bound:>9}  not run", "-", "-");
            continue;
        };
        let (m, (lo, hi)) = (r.median(), r.spread());
        let result = match (need.ok(m), need.ok(lo) && need.ok(hi)) {
            (true, true) => "met",
            (true, false) => "met (median; spread crosses)",
            (false, _) if need.ok(lo) || need.ok(hi) => "MISSED (median; spread crosses)",
            _ => "MISSED",
        };
        println!(
            "{name:<52} {m:>9.2} {:>8.2}–{:<8.2} {bound:>9}  {result}",
            lo, hi
        );
    }
    println!();
}

fn target_dir() -> std::path::PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| "target".into())
        .into()
}

fn write_json(cx: &Compare) {
    let mut entries: Vec<(String, String)> = Vec::new();
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v:.3}")
        } else {
            "null".into()
        }
    };
    entries.push(("reps".into(), cx.reps.to_string()));
    for s in &cx.series {
        let (lo, hi) = s.spread();
        entries.push((s.key.to_string(), num(s.median())));
        entries.push((
            format!("{}_spread", s.key),
            format!("[{}, {}]", num(lo), num(hi)),
        ));
        entries.push((format!("{}_reps", s.key), s.values.len().to_string()));
    }
    for &(_, n, d, _) in TARGETS {
        if let Some(r) = cx.ratio(n, d) {
            let (lo, hi) = r.spread();
            let key = format!("ratio_{n}_over_{d}");
            entries.push((key.clone(), num(r.median())));
            entries.push((
                format!("{key}_spread"),
                format!("[{}, {}]", num(lo), num(hi)),
            ));
        }
    }
    let mut out = String::from("{\n");
    for (i, (k, v)) in entries.iter().enumerate() {
        let sep = if i + 1 == entries.len() { "" } else { "," };
        let _ = writeln!(out, "  \"{k}\": {v}{sep}");
    }
    out.push_str("}\n");
    let dir = target_dir();
    let path = dir.join("shmkit-compare.json");
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, out)) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

/// Draws each row's per-repetition advantage (shmkit ×, log scale) as a strip of
/// points with its median, to `target/shmkit-compare.svg`.
fn plot_svg(cx: &Compare) -> Result<String, Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let rows: Vec<(String, Ratio)> = cx
        .rows
        .iter()
        .filter_map(|r| Some((format!("{} vs {}", r.op, r.base_name), cx.advantage(r)?)))
        .collect();
    if rows.is_empty() {
        return Err("no rows measured".into());
    }
    let all = rows.iter().flat_map(|(_, r)| r.values.iter().copied());
    let (lo, hi) = all
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((1.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let path = target_dir().join("shmkit-compare.svg");
    let height = 80 + 28 * rows.len() as u32;
    let root = SVGBackend::new(&path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = rows.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("shmkit × baseline per repetition ({} reps)", cx.reps),
            ("sans-serif", 18),
        )
        .margin(10)
        .margin_right(40)
        .x_label_area_size(30)
        .y_label_area_size(420)
        .build_cartesian_2d((lo / 1.5..hi * 1.5).log_scale(), -0.5..n - 0.5)?;
    let labels: Vec<String> = rows.iter().map(|(l, _)| l.clone()).collect();
    chart
        .configure_mesh()
        .y_labels(rows.len() * 2 + 1)
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[labels.len() - 1 - i as usize].clone()
            } else {
                String::new()
            }
        })
        .x_desc("shmkit × (>1: shmkit wins; log scale)")
        .draw()?;
    // The line where both sides are equal.
    chart.draw_series(LineSeries::new(
        [(1.0, -0.5), (1.0, n - 0.5)],
        BLACK.mix(0.5),
    ))?;
    for (i, (_, r)) in rows.iter().enumerate() {
        let y = n - 1.0 - i as f64;
        let k = r.values.len().max(1) as f64;
        chart.draw_series(r.values.iter().enumerate().map(|(j, &v)| {
            // Spread the points vertically a little, in repetition order.
            let jitter = (j as f64 / k - 0.5) * 0.5;
            Circle::new((v, y + jitter), 3, BLUE.mix(0.6).filled())
        }))?;
        let m = r.median();
        chart.draw_series(LineSeries::new(
            [(m, y - 0.35), (m, y + 0.35)],
            RED.stroke_width(2),
        ))?;
    }
    root.present()?;
    Ok(path.display().to_string())
}

fn env_or(key: &str, default: f64) -> f64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The load averages (`/proc/loadavg`): how busy the machine was.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
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

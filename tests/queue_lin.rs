//! Linearizability of `Queue` across processes, with kills and pauses.
//!
//! Each case forks 2–4 processes that run a proptest-generated mix of `try_put`,
//! `put`, `put_timeout`, `try_get`, `get`, `get_timeout` and (rarely) `close` on one
//! queue of capacity 1, 2 or 3, recording every call and return with its
//! `CLOCK_MONOTONIC` time in shared memory. Some processes are killed (`SIGKILL`)
//! or paused (`SIGSTOP` … `SIGCONT`) at random moments; a killed process's last
//! operation is pending (it may or may not have taken effect). The history is then
//! checked against the sequential model (`common/queue_model.rs`) by the
//! Wing–Gong/Lowe checker (`common/lincheck.rs`).
//!
//! `SHMKIT_LIN_ITERS` sets the number of histories (default 40, a few seconds);
//! `SHMKIT_LIN_SEED` the seed (printed). The documented longer run:
//!
//! ```text
//! SHMKIT_LIN_ITERS=1000 cargo test --release --test queue_lin -- --nocapture
//! ```
#![allow(clippy::disallowed_types)]

mod common;
#[path = "common/lincheck.rs"]
mod lincheck;
#[path = "common/queue_model.rs"]
mod queue_model;
#[path = "common/queue_probe.rs"]
mod queue_probe;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Child;
use lincheck::{Event, Failure, check, explain};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use queue_model::{QOp, QRet, QueueModel};
use queue_probe::monotonic_ns;
use shmkit::{GetError, PutError, Queue, Shared};

const PROCS: usize = 4;
const OPS: usize = 40;
/// Per record: [state (0 not called, 1 called, 2 returned), op, result, value,
/// call ns, return ns].
const FIELDS: usize = 6;
const LOG: usize = PROCS * OPS * FIELDS;
type Log = [AtomicU64; LOG];

/// Items of 4 KiB (the number in word 0): copying one in or out of a slot takes long
/// enough that operations overlap and pauses land inside them.
type Item = [u64; 512];

fn make(v: u64) -> Item {
    let mut x = [v; 512];
    x[511] = !v;
    x
}

fn number(x: &Item) -> u64 {
    assert_eq!(x[511], !x[0], "torn item");
    x[0]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TryPut,
    Put,
    PutTimeout,
    TryGet,
    Get,
    GetTimeout,
    Close,
}

const KINDS: [Kind; 7] = [
    Kind::TryPut,
    Kind::Put,
    Kind::PutTimeout,
    Kind::TryGet,
    Kind::Get,
    Kind::GetTimeout,
    Kind::Close,
];

/// What happens to a process.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Finish,
    Kill { after_us: u64 },
    Pause { after_us: u64, for_us: u64 },
}

#[derive(Debug, Clone)]
struct Plan {
    cap: usize,
    procs: Vec<(Vec<Kind>, Fate)>,
}

fn plan() -> impl Strategy<Value = Plan> {
    let kind = prop_oneof![
        48 => Just(Kind::TryPut),
        24 => Just(Kind::Put),
        24 => Just(Kind::PutTimeout),
        48 => Just(Kind::TryGet),
        12 => Just(Kind::Get),
        24 => Just(Kind::GetTimeout),
        // About one close in three histories.
        1 => Just(Kind::Close),
    ];
    let fate = prop_oneof![
        5 => Just(Fate::Finish),
        3 => (0u64..2000).prop_map(|after_us| Fate::Kill { after_us }),
        2 => (0u64..2000, 200u64..4000).prop_map(|(after_us, for_us)| Fate::Pause { after_us, for_us }),
    ];
    (
        1usize..=3,
        proptest::collection::vec((proptest::collection::vec(kind, 8..OPS), fate), 2..=PROCS),
    )
        .prop_map(|(cap, procs)| Plan { cap, procs })
}

fn field(p: usize, k: usize, f: usize) -> usize {
    (p * OPS + k) * FIELDS + f
}

/// The item of process `p`'s `k`-th operation: unique in the history.
fn item(p: usize, k: usize) -> u64 {
    ((p as u64) << 32) | k as u64
}

const R_OK: u64 = 0;
const R_FULL: u64 = 1;
const R_EMPTY: u64 = 2;
const R_TIMEOUT: u64 = 3;
const R_CLOSED: u64 = 4;
const R_STALLED: u64 = 5;
const R_CORRUPTED: u64 = 6;

fn put_result(r: Result<(), PutError<Item>>) -> u64 {
    match r {
        Ok(()) => R_OK,
        Err(PutError::Full(_)) => R_FULL,
        Err(PutError::Timeout(_)) => R_TIMEOUT,
        Err(PutError::Closed(_)) => R_CLOSED,
        Err(PutError::Stalled(_)) => R_STALLED,
        Err(PutError::Corrupted(_)) => R_CORRUPTED,
    }
}

fn get_result(r: Result<Item, GetError>) -> (u64, u64) {
    match r {
        Ok(v) => (R_OK, number(&v)),
        Err(GetError::Empty) => (R_EMPTY, 0),
        Err(GetError::Timeout) => (R_TIMEOUT, 0),
        Err(GetError::Closed) => (R_CLOSED, 0),
        Err(GetError::Stalled) => (R_STALLED, 0),
        Err(GetError::Corrupted) => (R_CORRUPTED, 0),
    }
}

/// A child: waits for the start, runs its operations, recording each.
fn run_ops<const CAP: usize>(
    q: &Queue<Item, CAP>,
    log: &Log,
    go: &[AtomicU64; 2],
    p: usize,
    ops: &[Kind],
) -> i32 {
    go[1].fetch_add(1, Ordering::SeqCst);
    while go[0].load(Ordering::SeqCst) == 0 {
        std::hint::spin_loop();
    }
    let wait = Duration::from_millis(1);
    for (k, &op) in ops.iter().enumerate() {
        let at = |f| &log[field(p, k, f)];
        at(1).store(
            KINDS.iter().position(|&x| x == op).unwrap() as u64,
            Ordering::SeqCst,
        );
        at(4).store(monotonic_ns(), Ordering::SeqCst);
        // From here on the operation may take effect.
        at(0).store(1, Ordering::SeqCst);
        let v = make(item(p, k));
        let (result, value) = match op {
            Kind::TryPut => (put_result(q.try_put(v)), 0),
            Kind::Put => (put_result(q.put(v)), 0),
            Kind::PutTimeout => (put_result(q.put_timeout(v, wait)), 0),
            Kind::TryGet => get_result(q.try_get()),
            Kind::Get => get_result(q.get()),
            Kind::GetTimeout => get_result(q.get_timeout(wait)),
            Kind::Close => {
                q.close();
                (R_OK, 0)
            }
        };
        // The operation's last store may still sit in this core's store buffer, and
        // the clock read is not ordered after it: drain it first, or a peer reading
        // the clock a few nanoseconds later may not see it yet and the history would
        // show an order that did not happen (found by tests/pipe_lin.rs).
        std::sync::atomic::fence(Ordering::SeqCst);
        let end = monotonic_ns();
        at(2).store(result, Ordering::SeqCst);
        at(3).store(value, Ordering::SeqCst);
        at(5).store(end, Ordering::SeqCst);
        at(0).store(2, Ordering::SeqCst);
    }
    0
}

/// What a case did, for the totals.
#[derive(Debug, Default)]
struct Stats {
    histories: u64,
    ops: u64,
    pending: u64,
    kills: u64,
    pauses: u64,
    stalled: u64,
    states: u64,
}

/// Runs one plan and returns its history.
fn run_case<const CAP: usize>(plan: &Plan, stats: &mut Stats) -> Vec<Event<QueueModel>> {
    let q = Shared::<Queue<Item, CAP>>::new_zeroed().unwrap();
    let log = Shared::new([const { AtomicU64::new(0) }; LOG]).unwrap();
    let go = Shared::new([const { AtomicU64::new(0) }; 2]).unwrap();
    let (q, log, go) = (&q, &log, &go);
    let mut children: Vec<Option<Child>> = plan
        .procs
        .iter()
        .enumerate()
        .map(|(p, (ops, _))| Some(Child::spawn(move || run_ops(q, log, go, p, ops))))
        .collect();
    assert!(common::eventually(common::CHILD_DEADLINE, || go[1]
        .load(Ordering::SeqCst)
        == plan.procs.len() as u64));
    let pids: Vec<i32> = children.iter().map(|c| c.as_ref().unwrap().pid()).collect();
    // Signals, in time order: (µs after the start, process, signal).
    let mut signals: Vec<(u64, usize, i32)> = Vec::new();
    for (p, (_, fate)) in plan.procs.iter().enumerate() {
        match *fate {
            Fate::Finish => {}
            Fate::Kill { after_us } => signals.push((after_us, p, libc::SIGKILL)),
            Fate::Pause { after_us, for_us } => {
                signals.push((after_us, p, libc::SIGSTOP));
                signals.push((after_us + for_us, p, libc::SIGCONT));
            }
        }
    }
    signals.sort_unstable();
    let start = Instant::now();
    go[0].store(1, Ordering::SeqCst);
    for (at_us, p, sig) in signals {
        queue_probe::spin_for(Duration::from_micros(at_us).saturating_sub(start.elapsed()));
        queue_probe::signal(pids[p], sig);
        match sig {
            libc::SIGKILL => stats.kills += 1,
            libc::SIGSTOP => stats.pauses += 1,
            _ => {}
        }
    }
    // Wait for the rest; a process blocked for good (a get on an empty queue nobody
    // puts into) is killed once nothing has moved for 30 ms.
    let progress = || {
        (0..LOG)
            .step_by(FIELDS)
            .map(|i| log[i].load(Ordering::SeqCst))
            .sum::<u64>()
    };
    let (mut last, mut since) = (progress(), Instant::now());
    loop {
        for c in children.iter_mut() {
            if c.as_mut().is_some_and(|c| !c.process().is_alive()) {
                c.take();
            }
        }
        if children.iter().all(Option::is_none) {
            break;
        }
        let now = progress();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > Duration::from_millis(30) {
            break;
        }
        assert!(start.elapsed() < common::CHILD_DEADLINE, "case did not end");
        std::thread::sleep(Duration::from_micros(500));
    }
    drop(children);
    // The history.
    let mut history = Vec::new();
    for (p, (ops, _)) in plan.procs.iter().enumerate() {
        for k in 0..ops.len() {
            let at = |f| log[field(p, k, f)].load(Ordering::SeqCst);
            let state = at(0);
            if state == 0 {
                break;
            }
            let kind = KINDS[at(1) as usize];
            let op = match kind {
                Kind::TryPut | Kind::Put | Kind::PutTimeout => QOp::Put(item(p, k)),
                Kind::TryGet | Kind::Get | Kind::GetTimeout => QOp::Get,
                Kind::Close => QOp::Close,
            };
            let ret = (state == 2).then(|| {
                let (result, value) = (at(2), at(3));
                assert_ne!(result, R_CORRUPTED, "{kind:?} returned Corrupted");
                match (op, result) {
                    (QOp::Get, R_OK) => QRet::Got(value),
                    (_, R_OK) => QRet::Ok,
                    (_, R_FULL) => QRet::Full,
                    (_, R_EMPTY) => QRet::Empty,
                    (_, R_TIMEOUT) => QRet::Timeout,
                    (_, R_CLOSED) => QRet::Closed,
                    _ => QRet::Stalled,
                }
            });
            stats.stalled += u64::from(ret == Some(QRet::Stalled));
            if ret.is_none() {
                stats.pending += 1;
                if let QOp::Put(v) = op {
                    // Its claim may have been reclaimed (the item dropped) later.
                    history.push(Event::new(p, QOp::Vanish(v), None, at(4), 0));
                }
            }
            history.push(Event::new(p, op, ret, at(4), at(5)));
        }
    }
    stats.ops += history.len() as u64;
    stats.histories += 1;
    history
}

#[test]
fn queue_histories_are_linearizable() {
    let cases = queue_probe::env_count("SHMKIT_LIN_ITERS", 40) as u32;
    let seed = queue_probe::seed("SHMKIT_LIN_SEED");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        max_shrink_iters: 0,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let stats = std::cell::RefCell::new(Stats::default());
    let start = Instant::now();
    let result = runner.run(&plan(), |plan| {
        let mut stats = stats.borrow_mut();
        let history = match plan.cap {
            1 => run_case::<1>(&plan, &mut stats),
            2 => run_case::<2>(&plan, &mut stats),
            _ => run_case::<3>(&plan, &mut stats),
        };
        match check(&QueueModel::new(plan.cap), &history, 4_000_000) {
            Ok(states) => {
                stats.states += states as u64;
                Ok(())
            }
            Err(failure) => Err(TestCaseError::fail(format!(
                "not linearizable (seed {seed}), capacity {}:\n{}",
                plan.cap,
                explain(&history, &failure)
            ))),
        }
    });
    let stats = stats.into_inner();
    println!(
        "queue linearizability: {} histories, {} operations ({} pending, {} stalled), \
         {} kills, {} pauses, {} checker states, seed {seed}, {:?}",
        stats.histories,
        stats.ops,
        stats.pending,
        stats.stalled,
        stats.kills,
        stats.pauses,
        stats.states,
        start.elapsed()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---- the checker and the model on known histories --------------------------------

fn ev(process: usize, op: QOp, ret: Option<QRet>, call: u64, ret_at: u64) -> Event<QueueModel> {
    Event::new(process, op, ret, call, ret_at)
}

/// Issue 10, defect 2: a put completes behind another's put in progress, then a
/// `try_get` says `Empty`. No order explains it.
#[test]
fn model_rejects_the_defect_2_history() {
    let h = [
        ev(0, QOp::Put(1), Some(QRet::Ok), 0, 100),
        ev(1, QOp::Put(2), Some(QRet::Ok), 10, 20),
        ev(2, QOp::Get, Some(QRet::Empty), 30, 40),
    ];
    assert!(matches!(
        check(&QueueModel::new(4), &h, 10_000),
        Err(Failure::NotLinearizable { .. })
    ));
    // The same, answered by `Stalled` (no claim), or by the first item: fine.
    for answer in [QRet::Stalled, QRet::Got(1), QRet::Got(2)] {
        let h = [
            ev(0, QOp::Put(1), Some(QRet::Ok), 0, 100),
            ev(1, QOp::Put(2), Some(QRet::Ok), 10, 20),
            ev(2, QOp::Get, Some(answer), 30, 40),
        ];
        assert!(check(&QueueModel::new(4), &h, 10_000).is_ok(), "{answer:?}");
    }
}

#[test]
fn model_checks_fifo_full_empty_and_closed() {
    let m = QueueModel::new(1);
    // FIFO across processes.
    let h = [
        ev(0, QOp::Put(1), Some(QRet::Ok), 0, 1),
        ev(0, QOp::Put(2), Some(QRet::Full), 2, 3),
        ev(1, QOp::Get, Some(QRet::Got(1)), 4, 5),
        ev(0, QOp::Put(2), Some(QRet::Ok), 6, 7),
        ev(1, QOp::Get, Some(QRet::Got(2)), 8, 9),
        ev(1, QOp::Get, Some(QRet::Empty), 10, 11),
    ];
    assert!(check(&m, &h, 10_000).is_ok());
    // Out of order, sequentially: rejected.
    let h = [
        ev(0, QOp::Put(1), Some(QRet::Ok), 0, 1),
        ev(0, QOp::Put(2), Some(QRet::Ok), 2, 3),
        ev(1, QOp::Get, Some(QRet::Got(2)), 4, 5),
    ];
    assert!(check(&QueueModel::new(2), &h, 10_000).is_err());
    // Full with room: rejected.
    let h = [ev(0, QOp::Put(1), Some(QRet::Full), 0, 1)];
    assert!(check(&m, &h, 10_000).is_err());
    // Closed before drained: rejected; after: fine.
    let h = [
        ev(0, QOp::Put(1), Some(QRet::Ok), 0, 1),
        ev(0, QOp::Close, Some(QRet::Ok), 2, 3),
        ev(1, QOp::Get, Some(QRet::Closed), 4, 5),
    ];
    assert!(check(&m, &h, 10_000).is_err());
    let h = [
        ev(0, QOp::Put(1), Some(QRet::Ok), 0, 1),
        ev(0, QOp::Close, Some(QRet::Ok), 2, 3),
        ev(1, QOp::Get, Some(QRet::Got(1)), 4, 5),
        ev(1, QOp::Get, Some(QRet::Closed), 6, 7),
        ev(0, QOp::Put(3), Some(QRet::Closed), 8, 9),
    ];
    assert!(check(&m, &h, 10_000).is_ok());
}

#[test]
fn model_accounts_for_crashes() {
    let m = QueueModel::new(1);
    // A killed producer's claim filled the queue (Full), was reclaimed (its item
    // vanished), and the next put went through.
    let h = [
        ev(0, QOp::Put(1), None, 0, 0),
        ev(0, QOp::Vanish(1), None, 0, 0),
        ev(1, QOp::Put(2), Some(QRet::Full), 10, 20),
        ev(1, QOp::Put(2), Some(QRet::Ok), 30, 40),
        ev(2, QOp::Get, Some(QRet::Got(2)), 50, 60),
    ];
    assert!(check(&m, &h, 10_000).is_ok());
    // Without the vanish, item 1 would have to come out first: rejected.
    assert!(
        check(
            &m,
            &[h[0].clone(), h[2].clone(), h[3].clone(), h[4].clone()],
            10_000
        )
        .is_err()
    );
    // A killed consumer took item 1 (or not): either later answer is fine.
    for later in [QRet::Got(1), QRet::Empty] {
        let h = [
            ev(0, QOp::Put(1), Some(QRet::Ok), 0, 1),
            ev(1, QOp::Get, None, 2, 0),
            ev(2, QOp::Get, Some(later), 10, 11),
        ];
        assert!(check(&m, &h, 10_000).is_ok(), "{later:?}");
    }
    // But not twice.
    let h = [
        ev(0, QOp::Put(1), Some(QRet::Ok), 0, 1),
        ev(1, QOp::Get, None, 2, 0),
        ev(2, QOp::Get, Some(QRet::Got(1)), 10, 11),
        ev(2, QOp::Get, Some(QRet::Got(1)), 12, 13),
    ];
    assert!(check(&m, &h, 10_000).is_err());
}

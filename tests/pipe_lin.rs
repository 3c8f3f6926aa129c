//! Linearizability of one direction of a `Pipe` across processes, with kills,
//! adoptions and pauses.
//!
//! Each case runs two *lineages* of processes on one `Pipe<64>`: senders on end 0
//! and receivers on end 1 (an end is SPSC: one owner at a time). A lineage has one
//! to three generations; each generation is a forked process that claims its end
//! (its first use: `poll`, retried while the previous owner is not yet dead, so a
//! replacement *adopts* the end), then runs a proptest-generated mix of operations
//! with random think times between them:
//!
//! - senders: `try_send_bytes`, `send_bytes`, `send_bytes_timeout`,
//!   `try_send_many`, `send_many` (1 to 6 messages);
//! - receivers: `try_recv_bytes_into`, `recv_bytes_into`, `recv_bytes_into_timeout`,
//!   `recv_with` (sometimes lingering in the callback, so kills land there),
//!   `try_recv_many`, `recv_many` (`max` 1 to 6), `poll` (zero and 1 ms timeouts).
//!
//! A generation is `SIGKILL`ed at a random moment (or runs to its end and exits
//! without closing: its owner is then dead too), and the next generation adopts the
//! end; the last one of a lineage may close its end instead. Processes are also
//! paused (`SIGSTOP` … `SIGCONT`). Every call and return is recorded with its
//! `CLOCK_MONOTONIC` time in shared memory, and every death as an operation from the
//! kill (or the exit) to the moment the test saw the process gone. A killed
//! process's last operation is pending (it may or may not have taken effect) —
//! except inside `recv_with`'s callback, where the message must stay queued. The
//! history is checked against the sequential model (`common/pipe_model.rs`: an
//! SPSC FIFO of exact capacity, the ends' owners, and how batch calls are modelled)
//! by the Wing–Gong/Lowe checker (`common/lincheck.rs`).
//!
//! Messages are 8 bytes (each a unique `generation << 32 | operation << 8 | part`),
//! so records are 16 bytes and tile the 64-byte array: no padding, and by the
//! "Room" rule (a record needs its size plus 8 bytes free) the ring holds exactly 3
//! messages — the model's capacity (`ring_holds_exactly_three_messages` checks it).
//!
//! `SHMKIT_PIPE_LIN_ITERS` sets the number of histories (default 200, a few
//! seconds); `SHMKIT_PIPE_LIN_SEED` the seed (printed). The documented longer run
//! (about 13,000 kills, a minute or two):
//!
//! ```text
//! SHMKIT_PIPE_LIN_ITERS=5000 cargo test --release --test pipe_lin -- --nocapture
//! ```
#![allow(clippy::disallowed_types)]

mod common;
#[path = "common/lincheck.rs"]
mod lincheck;
#[path = "common/pipe_model.rs"]
mod pipe_model;
#[path = "common/queue_probe.rs"]
mod queue_probe;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::Child;
use lincheck::{Event, Failure, check, explain};
use pipe_model::{POp, PRet, PipeModel, Then};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use queue_probe::{monotonic_ns, spin_for};
use shmkit::{Connection, Error, Pipe, Shared};

const CAP: usize = 64;
/// Messages of 8 bytes the ring holds (see the module docs).
const MODEL_CAP: usize = 3;
/// Generations per lineage.
const GENS: usize = 3;
/// Process slots: `side * GENS + generation - 1`.
const PROCS: usize = 2 * GENS;
/// Operations a generation runs (after its claim, before its close).
const STEPS: usize = 16;
/// Log records per process: the claim, the steps, the close.
const OPS: usize = STEPS + 2;
/// Messages per batch call, at most.
const MAXB: usize = 6;
/// Per record: [state, kind, result, value or count, call ns, return ns, argument,
/// then up to `MAXB` received values].
const FIELDS: usize = 7 + MAXB;
const LOG: usize = PROCS * OPS * FIELDS;
type Log = [AtomicU64; LOG];
/// Per process: when it finished its operations and exited (0: it did not).
type Exits = [AtomicU64; PROCS];

/// Record states.
const CALLED: u64 = 1;
const RETURNED: u64 = 2;
/// Inside `recv_with`'s callback (the value is recorded), and out of it.
const IN_CALLBACK: u64 = 3;
const AFTER_CALLBACK: u64 = 4;

/// Results.
const R_OK: u64 = 0;
const R_WOULD_BLOCK: u64 = 1;
const R_TIMEOUT: u64 = 2;
const R_DISCONNECTED: u64 = 3;
const R_CLOSED: u64 = 4;
const R_TRUE: u64 = 5;
const R_FALSE: u64 = 6;
const R_ERROR: u64 = 7;

/// An operation of a generation's mix; the number is a batch size or `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Claim,
    Close,
    TrySend,
    Send,
    SendTimeout,
    TrySendMany(u64),
    SendMany(u64),
    TryRecv,
    Recv,
    RecvTimeout,
    /// `recv_with`; lingers 40 µs in the callback if `true`.
    RecvWith(bool),
    TryRecvMany(u64),
    RecvMany(u64),
    Poll,
    PollTimeout,
}

impl Kind {
    fn encode(self) -> (u64, u64) {
        match self {
            Kind::Claim => (0, 0),
            Kind::Close => (1, 0),
            Kind::TrySend => (2, 0),
            Kind::Send => (3, 0),
            Kind::SendTimeout => (4, 0),
            Kind::TrySendMany(n) => (5, n),
            Kind::SendMany(n) => (6, n),
            Kind::TryRecv => (7, 0),
            Kind::Recv => (8, 0),
            Kind::RecvTimeout => (9, 0),
            Kind::RecvWith(linger) => (10, u64::from(linger)),
            Kind::TryRecvMany(n) => (11, n),
            Kind::RecvMany(n) => (12, n),
            Kind::Poll => (13, 0),
            Kind::PollTimeout => (14, 0),
        }
    }

    fn decode(code: u64, arg: u64) -> Kind {
        match code {
            0 => Kind::Claim,
            1 => Kind::Close,
            2 => Kind::TrySend,
            3 => Kind::Send,
            4 => Kind::SendTimeout,
            5 => Kind::TrySendMany(arg),
            6 => Kind::SendMany(arg),
            7 => Kind::TryRecv,
            8 => Kind::Recv,
            9 => Kind::RecvTimeout,
            10 => Kind::RecvWith(arg != 0),
            11 => Kind::TryRecvMany(arg),
            12 => Kind::RecvMany(arg),
            13 => Kind::Poll,
            14 => Kind::PollTimeout,
            _ => panic!("bad kind {code} in the log"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Step {
    kind: Kind,
    /// Spin this long before the operation.
    think_us: u64,
}

/// When the test signals a generation: µs after its claim returned (most: so the
/// signal lands among its operations), or after its spawn (so it may land in the
/// claim, or before it).
#[derive(Debug, Clone, Copy)]
enum At {
    Claim(u64),
    Spawn(u64),
}

/// One generation: its operations, and what the test does to it. Without a kill it
/// exits after its operations — closing its end if it is the last of its lineage
/// and the plan says so, else leaving it to be adopted.
#[derive(Debug, Clone)]
struct Gen {
    steps: Vec<Step>,
    kill: Option<At>,
    /// `SIGSTOP` at, `SIGCONT` so many µs later.
    pause: Option<(At, u64)>,
}

#[derive(Debug, Clone)]
struct Plan {
    /// `lineages[0]` sends, `lineages[1]` receives.
    lineages: [Vec<Gen>; 2],
    close: [bool; 2],
}

fn plan() -> impl Strategy<Value = Plan> {
    let think = prop_oneof![3 => Just(0u64), 2 => 0u64..40];
    let many = 1u64..=MAXB as u64;
    let tx_kind = prop_oneof![
        4 => Just(Kind::TrySend),
        3 => Just(Kind::Send),
        2 => Just(Kind::SendTimeout),
        2 => many.clone().prop_map(Kind::TrySendMany),
        2 => many.clone().prop_map(Kind::SendMany),
    ];
    let rx_kind = prop_oneof![
        4 => Just(Kind::TryRecv),
        2 => Just(Kind::Recv),
        2 => Just(Kind::RecvTimeout),
        3 => any::<bool>().prop_map(Kind::RecvWith),
        2 => many.clone().prop_map(Kind::TryRecvMany),
        2 => many.prop_map(Kind::RecvMany),
        1 => Just(Kind::Poll),
        1 => Just(Kind::PollTimeout),
    ];
    let at = prop_oneof![
        4 => (0u64..400).prop_map(At::Claim),
        1 => (0u64..1500).prop_map(At::Spawn),
    ];
    let generation = |kind: BoxedStrategy<Kind>| {
        let step = (kind, think.clone()).prop_map(|(kind, think_us)| Step { kind, think_us });
        (
            proptest::collection::vec(step, 2..=STEPS),
            prop_oneof![1 => Just(None), 3 => at.clone().prop_map(Some)],
            prop_oneof![3 => Just(None), 1 => (at.clone(), 50u64..1500).prop_map(Some)],
        )
            .prop_map(|(steps, kill, pause)| Gen { steps, kill, pause })
    };
    let lineage = |kind: BoxedStrategy<Kind>| proptest::collection::vec(generation(kind), 1..=GENS);
    (
        lineage(tx_kind.boxed()),
        lineage(rx_kind.boxed()),
        any::<[bool; 2]>(),
    )
        .prop_map(|(tx, rx, close)| Plan {
            lineages: [tx, rx],
            close,
        })
}

fn slot(side: usize, g: u32) -> usize {
    side * GENS + g as usize - 1
}

fn field(p: usize, k: usize, f: usize) -> usize {
    (p * OPS + k) * FIELDS + f
}

/// Message `j` of generation `g`'s `k`-th record: unique in the history.
fn value(g: u32, k: usize, j: usize) -> u64 {
    (u64::from(g) << 32) | ((k as u64) << 8) | j as u64
}

/// A batch call's id, for the model's part order.
fn call_id(g: u32, k: usize) -> u32 {
    (g << 16) | k as u32
}

fn code(r: Result<(), Error>) -> u64 {
    match r {
        Ok(()) => R_OK,
        Err(Error::WouldBlock) => R_WOULD_BLOCK,
        Err(Error::Timeout) => R_TIMEOUT,
        Err(Error::Disconnected) => R_DISCONNECTED,
        Err(Error::Closed) => R_CLOSED,
        Err(_) => R_ERROR,
    }
}

/// A received message's value (`R_ERROR` if it is not 8 bytes).
fn message(bytes: &[u8]) -> Result<u64, u64> {
    bytes
        .try_into()
        .map(u64::from_le_bytes)
        .map_err(|_| R_ERROR)
}

/// A child: generation `g` of `side`. Claims its end, runs its steps, recording
/// each, then closes the end or leaves it (exits without closing).
fn run_gen(
    pipe: &Pipe<CAP>,
    log: &Log,
    exits: &Exits,
    (side, g): (usize, u32),
    steps: &[Step],
    close: bool,
) -> i32 {
    let p = slot(side, g);
    let (a, b) = pipe.ends();
    let (end, other): (Connection<'_, CAP>, _) = if side == 0 { (a, b) } else { (b, a) };
    // Never used: dropping it has no effect on its end.
    drop(other);
    let at = |k: usize, f: usize| &log[field(p, k, f)];
    let begin = |k: usize, kind: Kind| {
        let (code, arg) = kind.encode();
        at(k, 1).store(code, SeqCst);
        at(k, 6).store(arg, SeqCst);
        at(k, 4).store(monotonic_ns(), SeqCst);
        // From here on the operation may take effect.
        at(k, 0).store(CALLED, SeqCst);
    };
    let end_op = |k: usize, (result, v): (u64, u64)| {
        // The operation's last store (a `head` or header published with a plain
        // Release store) may still sit in this core's store buffer; the clock read
        // is not ordered after it. Drain it first, or a peer that reads the clock
        // a few nanoseconds later may not see it yet, and the history shows an
        // order that did not happen (seen: a `WouldBlock` 19 ns after a receive
        // returned). The call side needs no fence: the SeqCst stores of the call
        // time and state (locked instructions on x86) come before the operation.
        std::sync::atomic::fence(SeqCst);
        let t = monotonic_ns();
        at(k, 2).store(result, SeqCst);
        at(k, 3).store(v, SeqCst);
        at(k, 5).store(t, SeqCst);
        at(k, 0).store(RETURNED, SeqCst);
    };
    // The claim: `poll` binds the end, or says a live process still owns it.
    begin(0, Kind::Claim);
    let start = Instant::now();
    let claimed = loop {
        match end.poll(Some(Duration::ZERO)) {
            Err(Error::EndpointInUse { .. }) if start.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_micros(50));
                at(0, 4).store(monotonic_ns(), SeqCst);
            }
            Ok(_) => break R_OK,
            Err(Error::Closed) => break R_CLOSED,
            Err(_) => break R_ERROR,
        }
    };
    end_op(0, (claimed, 0));
    if claimed != R_OK {
        exits[p].store(monotonic_ns(), SeqCst);
        return 0;
    }
    let wait = Duration::from_millis(1);
    let mut buf = [0u8; CAP];
    for (i, step) in steps.iter().enumerate() {
        let k = i + 1;
        spin_for(Duration::from_micros(step.think_us));
        begin(k, step.kind);
        let v = value(g, k, 0).to_le_bytes();
        let received = |r: Result<usize, Error>, buf: &[u8]| match r {
            Ok(n) => message(&buf[..n]).map_or((R_ERROR, 0), |v| (R_OK, v)),
            Err(e) => (code(Err(e)), 0),
        };
        let out = match step.kind {
            Kind::TrySend => (code(end.try_send_bytes(&v)), 0),
            Kind::Send => (code(end.send_bytes(&v)), 0),
            Kind::SendTimeout => (code(end.send_bytes_timeout(&v, wait)), 0),
            Kind::TrySendMany(n) | Kind::SendMany(n) => {
                let msgs: Vec<[u8; 8]> = (0..n as usize)
                    .map(|j| value(g, k, j).to_le_bytes())
                    .collect();
                let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
                let r = if matches!(step.kind, Kind::SendMany(_)) {
                    end.send_many(&refs)
                } else {
                    end.try_send_many(&refs)
                };
                match r {
                    Ok(sent) => (R_OK, sent as u64),
                    Err(e) => (code(Err(e)), 0),
                }
            }
            Kind::TryRecv => received(end.try_recv_bytes_into(&mut buf), &buf),
            Kind::Recv => received(end.recv_bytes_into(&mut buf), &buf),
            Kind::RecvTimeout => received(end.recv_bytes_into_timeout(&mut buf, wait), &buf),
            Kind::RecvWith(linger) => {
                let r = end.recv_with(|m| {
                    let got = message(m);
                    at(k, 3).store(*got.as_ref().unwrap_or(&0), SeqCst);
                    at(k, 0).store(IN_CALLBACK, SeqCst);
                    if linger {
                        spin_for(Duration::from_micros(40));
                    }
                    at(k, 0).store(AFTER_CALLBACK, SeqCst);
                    got
                });
                match r {
                    Ok(Ok(v)) => (R_OK, v),
                    Ok(Err(_)) => (R_ERROR, 0),
                    Err(e) => (code(Err(e)), 0),
                }
            }
            Kind::TryRecvMany(max) | Kind::RecvMany(max) => {
                let mut count = 0usize;
                let mut bad = false;
                let f = |m: &[u8]| {
                    match message(m) {
                        Ok(v) if count < MAXB => at(k, 7 + count).store(v, SeqCst),
                        _ => bad = true,
                    }
                    count += 1;
                    at(k, 3).store(count as u64, SeqCst);
                };
                let r = if matches!(step.kind, Kind::RecvMany(_)) {
                    end.recv_many(max as usize, f)
                } else {
                    end.try_recv_many(max as usize, f)
                };
                match r {
                    Ok(n) if !bad && n == count => (R_OK, n as u64),
                    Ok(_) => (R_ERROR, 0),
                    Err(e) => (code(Err(e)), 0),
                }
            }
            Kind::Poll | Kind::PollTimeout => {
                let t = if step.kind == Kind::Poll {
                    Duration::ZERO
                } else {
                    wait
                };
                match end.poll(Some(t)) {
                    Ok(true) => (R_TRUE, 0),
                    Ok(false) => (R_FALSE, 0),
                    Err(e) => (code(Err(e)), 0),
                }
            }
            Kind::Claim | Kind::Close => unreachable!("not a step"),
        };
        end_op(k, out);
    }
    if close {
        let k = steps.len() + 1;
        begin(k, Kind::Close);
        end.close();
        end_op(k, (R_OK, 0));
    } else {
        // Exit still owning the end: the next generation adopts it.
        std::mem::forget(end);
    }
    exits[p].store(monotonic_ns(), SeqCst);
    0
}

/// What the cases did, for the totals.
#[derive(Debug, Default)]
struct Stats {
    histories: u64,
    events: u64,
    /// Operations left pending by a kill (batch parts counted one by one).
    pending: u64,
    /// Kills sent, and those that caught their process inside an operation.
    kills: u64,
    kills_in_op: u64,
    /// Kills inside `recv_with`'s callback.
    peeks: u64,
    /// Generations that exited without closing (adopted), and closes.
    exits: u64,
    closes: u64,
    pauses: u64,
    /// Kills of a process whose peer lineage ended unclaimed (see `run_case`).
    cut: u64,
    disconnected: u64,
    would_block: u64,
    parts: u64,
    states: u64,
}

/// The generation under way in a lineage.
struct Running {
    child: Child,
    g: u32,
    spawned: Instant,
    kill_sent: u64,
    paused: u8,
}

/// Runs one plan; returns its history.
fn run_case(plan: &Plan, stats: &mut Stats) -> Vec<Event<PipeModel>> {
    let pipe = Shared::new(Pipe::<CAP>::new()).unwrap();
    let log = Shared::new([const { AtomicU64::new(0) }; LOG]).unwrap();
    let exits = Shared::new([const { AtomicU64::new(0) }; PROCS]).unwrap();
    let (pipe, log, exits) = (&*pipe, &*log, &*exits);
    let spawn = |side: usize, g: u32| {
        let steps = &plan.lineages[side][g as usize - 1].steps;
        let close = plan.close[side] && g as usize == plan.lineages[side].len();
        Running {
            child: Child::spawn(move || run_gen(pipe, log, exits, (side, g), steps, close)),
            g,
            spawned: Instant::now(),
            kill_sent: 0,
            paused: 0,
        }
    };
    let mut running: [Option<Running>; 2] = [Some(spawn(0, 1)), Some(spawn(1, 1))];
    // The next generation, spawned once the current one has claimed its end: it
    // retries its claim until the current owner is dead, so it adopts the end
    // within microseconds of the death.
    let mut standby: [Option<Running>; 2] = [None, None];
    // Deaths: (side, generation, from, seen gone, killed).
    let mut deaths: Vec<(usize, u32, u64, u64, bool)> = Vec::new();
    let start = Instant::now();
    while running.iter().any(Option::is_some) {
        for side in 0..2 {
            let Some(r) = running[side].as_mut() else {
                continue;
            };
            let gen_plan = &plan.lineages[side][r.g as usize - 1];
            // Past `at` by `extra` µs?
            let claim = &log[field(slot(side, r.g), 0, 0)];
            let claimed = claim.load(SeqCst) == RETURNED;
            let claimed_at = log[field(slot(side, r.g), 0, 5)].load(SeqCst);
            let past = |at: At, extra: u64| match at {
                At::Spawn(us) => r.spawned.elapsed() >= Duration::from_micros(us + extra),
                At::Claim(us) => claimed && monotonic_ns() >= claimed_at + (us + extra) * 1000,
            };
            if claimed && standby[side].is_none() && (r.g as usize) < plan.lineages[side].len() {
                standby[side] = Some(spawn(side, r.g + 1));
            }
            if let Some((at, for_us)) = gen_plan.pause {
                if r.paused == 0 && past(at, 0) {
                    queue_probe::signal(r.child.pid(), libc::SIGSTOP);
                    r.paused = 1;
                    stats.pauses += 1;
                } else if r.paused == 1 && past(at, for_us) {
                    queue_probe::signal(r.child.pid(), libc::SIGCONT);
                    r.paused = 2;
                }
            }
            if let Some(at) = gen_plan.kill {
                if r.kill_sent == 0 && past(at, 0) {
                    r.kill_sent = monotonic_ns();
                    r.child.process().kill().unwrap();
                    stats.kills += 1;
                }
            }
            // A peer lineage that ended without any generation's claim returning
            // may have left its end unclaimed for good, and a blocking call waits for
            // an unclaimed peer forever (as documented): cut this one short. (Once a
            // claim returned, the peer's death or close must end every wait.)
            let peer = 1 - side;
            let peer_never_claimed = running[peer].is_none()
                && (1..=plan.lineages[peer].len() as u32)
                    .all(|g| log[field(slot(peer, g), 0, 0)].load(SeqCst) != RETURNED);
            let r = running[side].as_mut().unwrap();
            if peer_never_claimed && r.kill_sent == 0 {
                r.kill_sent = monotonic_ns();
                r.child.process().kill().unwrap();
                stats.kills += 1;
                stats.cut += 1;
            }
            if r.child.process().is_alive() {
                continue;
            }
            let seen = monotonic_ns();
            let status = r.child.join_within(Duration::from_secs(5));
            let exited = exits[slot(side, r.g)].load(SeqCst);
            assert!(
                status.success() || (r.kill_sent != 0 && status.signal() == Some(libc::SIGKILL)),
                "generation {} of side {side} ended with {status}",
                r.g
            );
            let from = match (r.kill_sent, exited) {
                (0, e) => e,
                (k, 0) => k,
                (k, e) => k.min(e),
            };
            assert_ne!(from, 0, "generation {} of side {side} gone unseen", r.g);
            deaths.push((side, r.g, from, seen, status.signal().is_some()));
            let g = r.g;
            running[side] = standby[side]
                .take()
                .or_else(|| ((g as usize) < plan.lineages[side].len()).then(|| spawn(side, g + 1)));
        }
        assert!(
            start.elapsed() < common::CHILD_DEADLINE,
            "a case did not end within {:?}",
            common::CHILD_DEADLINE
        );
        std::thread::sleep(Duration::from_micros(20));
    }
    history(plan, log, &deaths, stats)
}

/// The recorded history: every generation's operations, and the deaths.
fn history(
    plan: &Plan,
    log: &Log,
    deaths: &[(usize, u32, u64, u64, bool)],
    stats: &mut Stats,
) -> Vec<Event<PipeModel>> {
    let mut history = Vec::new();
    let mut push = |process: usize, op: POp, ret: Option<PRet>, call: u64, ret_at: u64| {
        history.push(Event::new(process, op, ret, call, ret_at));
    };
    for &(side, g, from, seen, killed) in deaths {
        let p = slot(side, g);
        push(p, POp::Die { side, g }, Some(PRet::Ok), from, seen);
        let killed_in_op = (0..OPS).any(|k| {
            let s = log[field(p, k, 0)].load(SeqCst);
            s != 0 && s != RETURNED
        });
        stats.kills_in_op += u64::from(killed_in_op);
        let closed = plan.close[side] && g as usize == plan.lineages[side].len();
        stats.exits += u64::from(!killed && !closed);
        for k in 0..OPS {
            let at = |f: usize| log[field(p, k, f)].load(SeqCst);
            let state = at(0);
            if state == 0 {
                break;
            }
            let kind = Kind::decode(at(1), at(6));
            let (call, ret_at) = (at(4), at(5));
            if state == RETURNED {
                let (result, v) = (at(2), at(3));
                assert_ne!(
                    result, R_ERROR,
                    "generation {g} of side {side}: {kind:?} failed unexpectedly"
                );
                stats.disconnected += u64::from(result == R_DISCONNECTED);
                stats.would_block += u64::from(result == R_WOULD_BLOCK);
                let ret = match result {
                    R_OK => PRet::Ok,
                    R_WOULD_BLOCK => PRet::WouldBlock,
                    R_TIMEOUT => PRet::Timeout,
                    R_DISCONNECTED => PRet::Disconnected,
                    R_CLOSED => PRet::Closed,
                    R_TRUE => PRet::Ready(true),
                    R_FALSE => PRet::Ready(false),
                    _ => panic!("bad result {result}"),
                };
                match kind {
                    Kind::Claim => push(p, POp::Claim { side, g }, Some(ret), call, ret_at),
                    Kind::Close => {
                        stats.closes += 1;
                        push(p, POp::Close { side, g }, Some(ret), call, ret_at);
                    }
                    Kind::TrySend | Kind::Send | Kind::SendTimeout => {
                        let op = POp::Send {
                            g,
                            v: value(g, k, 0),
                        };
                        push(p, op, Some(ret), call, ret_at);
                    }
                    Kind::TrySendMany(n) | Kind::SendMany(n) if ret == PRet::Ok => {
                        assert!((1..=n).contains(&v), "{kind:?} sent {v}");
                        let then = match kind {
                            Kind::TrySendMany(_) if v < n => Then::Full,
                            _ => Then::Nothing,
                        };
                        for j in 0..v as usize {
                            let op = POp::SendPart {
                                g,
                                call: call_id(g, k),
                                idx: j as u32,
                                v: value(g, k, j),
                                then: if j + 1 == v as usize {
                                    then
                                } else {
                                    Then::Nothing
                                },
                            };
                            push(p, op, Some(PRet::Ok), call, ret_at);
                            stats.parts += 1;
                        }
                        if matches!(kind, Kind::SendMany(_)) && v < n {
                            let op = POp::SendGone {
                                g,
                                call: call_id(g, k),
                                after: v as u32,
                            };
                            push(p, op, Some(PRet::Ok), call, ret_at);
                        }
                    }
                    Kind::TrySendMany(_) | Kind::SendMany(_) => {
                        push(p, POp::SendNone { g }, Some(ret), call, ret_at);
                    }
                    Kind::TryRecv | Kind::Recv | Kind::RecvTimeout | Kind::RecvWith(_) => {
                        let ret = if ret == PRet::Ok { PRet::Got(v) } else { ret };
                        push(p, POp::Recv { g }, Some(ret), call, ret_at);
                    }
                    Kind::TryRecvMany(max) | Kind::RecvMany(max) if ret == PRet::Ok => {
                        assert!((1..=max).contains(&v), "{kind:?} received {v}");
                        for j in 0..v as usize {
                            let then = if j + 1 == v as usize && v < max {
                                Then::Empty
                            } else {
                                Then::Nothing
                            };
                            let op = POp::RecvPart {
                                g,
                                call: call_id(g, k),
                                idx: j as u32,
                                v: at(7 + j),
                                then,
                            };
                            push(p, op, Some(PRet::Ok), call, ret_at);
                            stats.parts += 1;
                        }
                    }
                    Kind::TryRecvMany(_) | Kind::RecvMany(_) => {
                        push(p, POp::Recv { g }, Some(ret), call, ret_at);
                    }
                    Kind::Poll | Kind::PollTimeout => {
                        push(p, POp::Poll { g }, Some(ret), call, ret_at);
                    }
                }
                continue;
            }
            // Not returned: the process died inside it.
            match kind {
                Kind::RecvWith(_) if state == IN_CALLBACK => {
                    // Inside the callback: the message was at the front and stays
                    // queued (until the death was seen, at the latest).
                    stats.peeks += 1;
                    push(p, POp::Peek { g, v: at(3) }, Some(PRet::Ok), call, seen);
                }
                Kind::Claim => push(p, POp::Claim { side, g }, None, call, 0),
                Kind::Close => push(p, POp::Close { side, g }, None, call, 0),
                Kind::TrySend | Kind::Send | Kind::SendTimeout => {
                    stats.pending += 1;
                    let op = POp::Send {
                        g,
                        v: value(g, k, 0),
                    };
                    push(p, op, None, call, 0);
                }
                Kind::TrySendMany(n) | Kind::SendMany(n) => {
                    for j in 0..n as usize {
                        stats.pending += 1;
                        let op = POp::SendPart {
                            g,
                            call: call_id(g, k),
                            idx: j as u32,
                            v: value(g, k, j),
                            then: Then::Nothing,
                        };
                        push(p, op, None, call, 0);
                    }
                }
                Kind::TryRecv | Kind::Recv | Kind::RecvTimeout | Kind::RecvWith(_) => {
                    stats.pending += 1;
                    push(p, POp::Recv { g }, None, call, 0);
                }
                Kind::TryRecvMany(_) | Kind::RecvMany(_) => {
                    // Only messages the callback saw can have been removed.
                    for j in 0..(at(3) as usize).min(MAXB) {
                        stats.pending += 1;
                        let op = POp::RecvPart {
                            g,
                            call: call_id(g, k),
                            idx: j as u32,
                            v: at(7 + j),
                            then: Then::Nothing,
                        };
                        push(p, op, None, call, 0);
                    }
                }
                Kind::Poll | Kind::PollTimeout => {}
            }
            // Nothing after the operation it died in.
            break;
        }
    }
    stats.events += history.len() as u64;
    stats.histories += 1;
    history
}

#[test]
fn pipe_histories_are_linearizable() {
    let cases = queue_probe::env_count("SHMKIT_PIPE_LIN_ITERS", 200) as u32;
    let seed = queue_probe::seed("SHMKIT_PIPE_LIN_SEED");
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
        let history = run_case(&plan, &mut stats);
        match check(&PipeModel::new(MODEL_CAP), &history, 4_000_000) {
            Ok(states) => {
                stats.states += states as u64;
                Ok(())
            }
            Err(failure) => Err(TestCaseError::fail(format!(
                "not linearizable (seed {seed}):\n{}",
                explain(&history, &failure)
            ))),
        }
    });
    let s = stats.into_inner();
    println!(
        "pipe linearizability: {} histories, {} events ({} batch parts, {} pending), \
         {} kills ({} inside an operation, {} inside recv_with's callback, {} cut short \
         beside an unclaimed peer), {} exits without close, {} closes, {} pauses; {} Disconnected, {} WouldBlock; {} checker \
         states; seed {seed}, {:?}",
        s.histories,
        s.events,
        s.parts,
        s.pending,
        s.kills,
        s.kills_in_op,
        s.peeks,
        s.cut,
        s.exits,
        s.closes,
        s.pauses,
        s.disconnected,
        s.would_block,
        s.states,
        start.elapsed()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---- the ring's capacity, and the model on known histories -------------------------

/// The model's capacity is the ring's: a `Pipe<64>` holds three 8-byte messages
/// (16-byte records need 24 bytes free each), and one receive makes room for one
/// send, lap after lap.
#[test]
fn ring_holds_exactly_three_messages() {
    let pipe = Pipe::<CAP>::new();
    let (tx, rx) = pipe.ends();
    let mut buf = [0u8; 8];
    let mut next = 0u64;
    for _ in 0..MODEL_CAP {
        tx.try_send_bytes(&next.to_le_bytes()).unwrap();
        next += 1;
    }
    assert_eq!(tx.try_send_bytes(&[0; 8]), Err(Error::WouldBlock));
    for expect in 0..40u64 {
        assert_eq!(rx.try_recv_bytes_into(&mut buf), Ok(8));
        assert_eq!(u64::from_le_bytes(buf), expect);
        tx.try_send_bytes(&next.to_le_bytes()).unwrap();
        next += 1;
        assert_eq!(tx.try_send_bytes(&[0; 8]), Err(Error::WouldBlock));
    }
    // A batch stops at the same count.
    let msgs = [[1u8; 8]; MAXB];
    let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
    let mut n = 0;
    while rx.try_recv_bytes_into(&mut buf).is_ok() {
        n += 1;
    }
    assert_eq!(n, MODEL_CAP);
    assert_eq!(tx.try_send_many(&refs), Ok(MODEL_CAP));
}

fn ev(process: usize, op: POp, ret: Option<PRet>, call: u64, ret_at: u64) -> Event<PipeModel> {
    Event::new(process, op, ret, call, ret_at)
}

fn claims() -> Vec<Event<PipeModel>> {
    vec![
        ev(0, POp::Claim { side: 0, g: 1 }, Some(PRet::Ok), 0, 1),
        ev(1, POp::Claim { side: 1, g: 1 }, Some(PRet::Ok), 0, 1),
    ]
}

fn linearizable(h: &[Event<PipeModel>]) -> bool {
    match check(&PipeModel::new(MODEL_CAP), h, 100_000) {
        Ok(_) => true,
        Err(Failure::NotLinearizable { .. }) => false,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn model_checks_fifo_room_and_empty() {
    let send = |v, ret, t| ev(0, POp::Send { g: 1, v }, Some(ret), t, t + 1);
    let recv = |ret, t| ev(1, POp::Recv { g: 1 }, Some(ret), t, t + 1);
    let mut h = claims();
    h.extend([
        send(1, PRet::Ok, 10),
        send(2, PRet::Ok, 12),
        send(3, PRet::Ok, 14),
        send(4, PRet::WouldBlock, 16),
        recv(PRet::Got(1), 18),
        send(4, PRet::Ok, 20),
        recv(PRet::Got(2), 22),
        recv(PRet::Got(3), 24),
        recv(PRet::Got(4), 26),
        recv(PRet::WouldBlock, 28),
    ]);
    assert!(linearizable(&h));
    // Full with room; empty with a message queued; out of order: rejected.
    let mut bad = claims();
    bad.extend([send(1, PRet::Ok, 10), send(2, PRet::WouldBlock, 12)]);
    assert!(!linearizable(&bad));
    let mut bad = claims();
    bad.extend([send(1, PRet::Ok, 10), recv(PRet::WouldBlock, 12)]);
    assert!(!linearizable(&bad));
    let mut bad = claims();
    bad.extend([
        send(1, PRet::Ok, 10),
        send(2, PRet::Ok, 12),
        recv(PRet::Got(2), 14),
    ]);
    assert!(!linearizable(&bad));
    // Overlapping: a receive during the send may see either.
    for ret in [PRet::Got(1), PRet::WouldBlock] {
        let mut h = claims();
        h.extend([
            ev(0, POp::Send { g: 1, v: 1 }, Some(PRet::Ok), 10, 20),
            recv(ret, 12),
        ]);
        assert!(linearizable(&h), "{ret:?}");
    }
}

#[test]
fn model_checks_deaths_adoption_and_close() {
    let recv = |ret, t| ev(1, POp::Recv { g: 1 }, Some(ret), t, t + 1);
    // The sender dies with a message queued: it is received first, then
    // Disconnected; a new sender adopts the end and is heard again.
    let mut h = claims();
    h.extend([
        ev(0, POp::Send { g: 1, v: 1 }, Some(PRet::Ok), 10, 11),
        ev(0, POp::Die { side: 0, g: 1 }, Some(PRet::Ok), 12, 13),
        recv(PRet::Got(1), 14),
        recv(PRet::Disconnected, 16),
        ev(2, POp::Claim { side: 0, g: 2 }, Some(PRet::Ok), 18, 19),
        ev(2, POp::Send { g: 2, v: 2 }, Some(PRet::Ok), 20, 21),
        recv(PRet::Got(2), 22),
    ]);
    assert!(linearizable(&h));
    // Disconnected with the dead sender's message queued: rejected.
    let mut bad = claims();
    bad.extend([
        ev(0, POp::Send { g: 1, v: 1 }, Some(PRet::Ok), 10, 11),
        ev(0, POp::Die { side: 0, g: 1 }, Some(PRet::Ok), 12, 13),
        recv(PRet::Disconnected, 14),
    ]);
    assert!(!linearizable(&bad));
    // Disconnected from an unclaimed or live sender: rejected.
    let bad = [
        ev(1, POp::Claim { side: 1, g: 1 }, Some(PRet::Ok), 0, 1),
        recv(PRet::Disconnected, 14),
    ];
    assert!(!linearizable(&bad));
    let mut bad = claims();
    bad.push(recv(PRet::Disconnected, 14));
    assert!(!linearizable(&bad));
    // A dead sender's empty ring may still say WouldBlock; a closed one's may not.
    let mut h = claims();
    h.extend([
        ev(0, POp::Die { side: 0, g: 1 }, Some(PRet::Ok), 12, 13),
        recv(PRet::WouldBlock, 14),
    ]);
    assert!(linearizable(&h));
    let mut bad = claims();
    bad.extend([
        ev(0, POp::Close { side: 0, g: 1 }, Some(PRet::Ok), 12, 13),
        recv(PRet::WouldBlock, 14),
    ]);
    assert!(!linearizable(&bad));
    // A killed sender's pending send happened or not, but not after its death.
    for ret in [PRet::Got(1), PRet::Disconnected] {
        let mut h = claims();
        h.extend([
            ev(0, POp::Send { g: 1, v: 1 }, None, 10, 0),
            ev(0, POp::Die { side: 0, g: 1 }, Some(PRet::Ok), 12, 13),
            recv(ret, 14),
        ]);
        assert!(linearizable(&h), "{ret:?}");
    }
    let mut bad = claims();
    bad.extend([
        ev(0, POp::Send { g: 1, v: 1 }, None, 10, 0),
        ev(0, POp::Die { side: 0, g: 1 }, Some(PRet::Ok), 12, 13),
        recv(PRet::Disconnected, 14),
        recv(PRet::Got(1), 16),
    ]);
    assert!(!linearizable(&bad));
    // A receiver killed inside recv_with leaves the message: the next one gets it.
    let mut h = claims();
    h.extend([
        ev(0, POp::Send { g: 1, v: 1 }, Some(PRet::Ok), 10, 11),
        ev(1, POp::Peek { g: 1, v: 1 }, Some(PRet::Ok), 12, 15),
        ev(1, POp::Die { side: 1, g: 1 }, Some(PRet::Ok), 14, 15),
        ev(2, POp::Claim { side: 1, g: 2 }, Some(PRet::Ok), 16, 17),
        ev(2, POp::Recv { g: 2 }, Some(PRet::Got(1)), 18, 19),
    ]);
    assert!(linearizable(&h));
    let mut bad = h.clone();
    bad[6].ret = Some(PRet::WouldBlock);
    assert!(!linearizable(&bad));
}

#[test]
fn model_checks_batches() {
    let part = |idx, v, then| POp::SendPart {
        g: 1,
        call: 7,
        idx,
        v,
        then,
    };
    let recv = |ret, t| ev(1, POp::Recv { g: 1 }, Some(ret), t, t + 1);
    // try_send_many of 5 sent 3: full after the third.
    let mut h = claims();
    for (i, then) in [(0, Then::Nothing), (1, Then::Nothing), (2, Then::Full)] {
        h.push(ev(
            0,
            part(i, 10 + u64::from(i), then),
            Some(PRet::Ok),
            10,
            20,
        ));
    }
    h.extend([recv(PRet::Got(10), 30), recv(PRet::Got(11), 32)]);
    assert!(linearizable(&h));
    // try_send_many of 5 sent 2, "full" after the second: only if a message was
    // queued before.
    let two = |h: &mut Vec<Event<PipeModel>>| {
        for (i, then) in [(0, Then::Nothing), (1, Then::Full)] {
            h.push(ev(
                0,
                part(i, 10 + u64::from(i), then),
                Some(PRet::Ok),
                10,
                20,
            ));
        }
    };
    let mut bad = claims();
    two(&mut bad);
    assert!(!linearizable(&bad));
    let mut h = claims();
    h.push(ev(0, POp::Send { g: 1, v: 1 }, Some(PRet::Ok), 2, 3));
    two(&mut h);
    assert!(linearizable(&h));
    // A part out of order: rejected.
    let mut bad = claims();
    bad.push(ev(0, part(0, 10, Then::Nothing), Some(PRet::Ok), 10, 11));
    bad.push(ev(0, part(2, 12, Then::Nothing), Some(PRet::Ok), 10, 11));
    assert!(!linearizable(&bad));
    // send_many of 6 sent 1 and stopped because the receiver was gone: the receiver
    // may take that message before it closes (seen in a run, when the model tied
    // "gone" to the last part).
    let mut h = claims();
    h.extend([
        ev(0, part(0, 10, Then::Nothing), Some(PRet::Ok), 10, 50),
        ev(
            0,
            POp::SendGone {
                g: 1,
                call: 7,
                after: 1,
            },
            Some(PRet::Ok),
            10,
            50,
        ),
        recv(PRet::Got(10), 20),
        ev(1, POp::Close { side: 1, g: 1 }, Some(PRet::Ok), 30, 31),
    ]);
    assert!(linearizable(&h));
    // ... but not if the receiver never went away.
    h.pop();
    assert!(!linearizable(&h));
    // recv_many(4) that got 2: empty after the second; parts in order.
    let rpart = |idx, v, then| POp::RecvPart {
        g: 1,
        call: 9,
        idx,
        v,
        then,
    };
    let mut h = claims();
    for v in [1, 2] {
        h.push(ev(
            0,
            POp::Send { g: 1, v },
            Some(PRet::Ok),
            v * 2,
            v * 2 + 1,
        ));
    }
    h.push(ev(1, rpart(0, 1, Then::Nothing), Some(PRet::Ok), 10, 20));
    h.push(ev(1, rpart(1, 2, Then::Empty), Some(PRet::Ok), 10, 20));
    assert!(linearizable(&h));
    // Three queued, and it stopped after two saying the ring was empty: rejected.
    let mut bad = h.clone();
    bad.insert(4, ev(0, POp::Send { g: 1, v: 3 }, Some(PRet::Ok), 6, 7));
    assert!(!linearizable(&bad));
}

//! Helpers of the Queue crash and linearizability tests: signals, the monotonic
//! clock, seeds, and a read-only view of a queue's slot states (from the
//! documented layout: slots at offset 512, each `{ state: u64, value: T }`, the kind
//! in bits 63..62 of the state).
//!
//! Include it with `#[path = "common/queue_probe.rs"] mod queue_probe;` beside
//! `mod common;`.
#![allow(dead_code, unused_imports, clippy::disallowed_types)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmkit::{Pod, Queue};

/// Slot kinds (bits 63..62 of a state word).
pub const FREE: u64 = 0;
pub const WRITING: u64 = 1;
pub const FULL: u64 = 2;
pub const READING: u64 = 3;

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the machine.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sends `signal` to `pid` (a child of this test).
pub fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) with a pid this test forked and has not reaped.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Is `pid` stopped (state `T` in /proc)? `None` once it is gone or a zombie.
pub fn is_stopped(pid: i32) -> Option<bool> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name.
    let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
    match state {
        'Z' | 'X' => None,
        'T' | 't' => Some(true),
        _ => Some(false),
    }
}

/// Stops `pid` and waits (at most a second) until it is stopped. `false` if it
/// exited first.
pub fn stop(pid: i32) -> bool {
    signal(pid, libc::SIGSTOP);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        match is_stopped(pid) {
            Some(true) => return true,
            None => return false,
            Some(false) => std::hint::spin_loop(),
        }
    }
    panic!("process {pid} did not stop within a second");
}

/// Spins for `d` (sleeps are far coarser than the windows these tests aim at).
pub fn spin_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

pub use super::common::{Rng, env_u64 as env_count};

/// `percent` % of the time.
pub fn chance(rng: &mut Rng, percent: u64) -> bool {
    rng.below(100) < percent
}

/// The seed from `var`, or one from the clock; printed either way.
pub fn seed(var: &str) -> u64 {
    let seed = super::common::env_seed(var);
    println!("{var}={seed}");
    seed
}

/// `{ state, value }` as the queue lays a slot out.
#[repr(C)]
struct SlotMirror<T> {
    state: u64,
    value: T,
}

/// The state word of slot `i` of `q`, read atomically.
pub fn slot_state<T: Pod, const N: usize>(q: &Queue<T, N>, i: usize) -> u64 {
    assert!(i < N);
    let base = std::ptr::from_ref(q).cast::<u8>();
    // SAFETY: the queue's documented layout puts slot `i` at 512 + i * size of a
    // slot, its 8-aligned state word first; the word is only ever accessed atomically.
    let word = unsafe {
        &*base
            .add(512 + i * std::mem::size_of::<SlotMirror<T>>())
            .cast::<AtomicU64>()
    };
    word.load(Ordering::SeqCst)
}

/// The kind of a state word.
pub fn kind(state: u64) -> u64 {
    state >> 62
}

/// The lap of a FREE or FULL state word.
pub fn long_lap(state: u64) -> u64 {
    state & ((1 << 62) - 1)
}

/// The slots of `q` whose state is of `kind`.
pub fn slots_of_kind<T: Pod, const N: usize>(q: &Queue<T, N>, k: u64) -> Vec<usize> {
    (0..N).filter(|&i| kind(slot_state(q, i)) == k).collect()
}

/// The hint words `head` (offset 0) and `tail` (offset 128).
pub fn index_word<T: Pod, const N: usize>(q: &Queue<T, N>, tail: bool) -> &AtomicU64 {
    let base = std::ptr::from_ref(q).cast::<u8>();
    // SAFETY: the documented layout: head at 0, tail at 128, both atomic u64.
    unsafe { &*base.add(if tail { 128 } else { 0 }).cast::<AtomicU64>() }
}

/// The handshake that lets a test stop a process *inside* one operation on any
/// machine, quiet or loaded: the process builds what it needs, says it is ready, and
/// starts the operation only when the test says go; the test then stops it after an
/// aimed delay (a random point within how long the operation took last time), and at
/// random moments after that. Lives in shared memory; all-zero is the initial state.
#[repr(C)]
pub struct Aim {
    ready: AtomicU64,
    go: AtomicU64,
    done: AtomicU64,
    /// How long the operation took, in nanoseconds (set with `done`).
    took: AtomicU64,
}

// SAFETY: repr(C), atomics only: every bit pattern valid, no pointers, no Drop.
unsafe impl shmkit::ShmSafe for Aim {}
// SAFETY: all-zero atomics are the documented initial state.
unsafe impl shmkit::Zeroable for Aim {}

impl Aim {
    /// Process side: flags ready, waits (at most 30 s) for go, runs `op`, records
    /// how long it took and flags done. `false` if go never came.
    pub fn run(&self, op: impl FnOnce()) -> bool {
        self.ready.store(1, Ordering::SeqCst);
        let start = Instant::now();
        while self.go.load(Ordering::SeqCst) == 0 {
            if start.elapsed() > Duration::from_secs(30) {
                return false;
            }
            std::hint::spin_loop();
        }
        let start = Instant::now();
        op();
        self.took
            .store(start.elapsed().as_nanos() as u64, Ordering::SeqCst);
        self.done.store(1, Ordering::SeqCst);
        true
    }

    /// Has the process finished its operation?
    pub fn finished(&self) -> bool {
        self.done.load(Ordering::SeqCst) == 1
    }

    /// Test side: waits (at most 30 s) until process `pid` is ready, lets it go,
    /// stops it after a random part of `span`, then at random moments, until `caught`
    /// holds (the process is left stopped: `true`) or the operation finished first
    /// (the process is left running: `false`; `span` becomes what it took).
    pub fn catch(
        &self,
        pid: i32,
        rng: &mut Rng,
        span: &mut Duration,
        mut caught: impl FnMut() -> bool,
    ) -> bool {
        let start = Instant::now();
        while self.ready.load(Ordering::SeqCst) == 0 {
            if start.elapsed() > Duration::from_secs(30) {
                return false;
            }
            std::hint::spin_loop();
        }
        let aim = Duration::from_nanos(rng.below(span.as_nanos().max(1) as u64));
        self.go.store(1, Ordering::SeqCst);
        spin_for(aim);
        for _ in 0..100_000 {
            if !stop(pid) {
                break;
            }
            if caught() {
                return true;
            }
            let finished = self.finished();
            signal(pid, libc::SIGCONT);
            if finished {
                break;
            }
            spin_for(Duration::from_nanos(
                rng.below(span.as_nanos().max(1) as u64 / 4),
            ));
        }
        // Learn how long the operation takes here (it may still be finishing).
        let start = Instant::now();
        while !self.finished() && start.elapsed() < Duration::from_secs(10) {
            std::thread::yield_now();
        }
        if self.finished() {
            *span = Duration::from_nanos(self.took.load(Ordering::SeqCst).max(1_000));
        }
        false
    }
}

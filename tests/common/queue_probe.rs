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

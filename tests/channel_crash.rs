//! Crash tests: a producer process is killed (`kill -9`) at a random moment, again and
//! again, while it streams into a `Pipe`. The consumer must never see a torn or
//! duplicated message (each carries a sequence number and a checksum), never block
//! past the test's deadline, and a new producer must carry on where the consumer
//! stopped. (The `Queue`'s crash tests are `queue_crash.rs` and
//! `queue_crash_loops.rs`.)
//!
//! `SHMKIT_CRASH_ITERS` (default 500) sets the number of kills per test,
//! `SHMKIT_CRASH_SEED` the random seed (printed).
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use std::time::{Duration, Instant};

use common::Child;
use shmkit::{Error, Pipe, Shared};

/// The whole test must finish within this; every wait is bounded by it.
const DEADLINE: Duration = Duration::from_secs(120);

fn iterations() -> u64 {
    std::env::var("SHMKIT_CRASH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500)
}

fn seed() -> u64 {
    std::env::var("SHMKIT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// xorshift64*.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a over a byte slice.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Pipe message for `seq`: [seq][body][fnv of seq and body]; 16..=1040 bytes.
fn message_len(seq: u64) -> usize {
    16 + (mix(seq) % 1025) as usize
}

fn fill_message(seq: u64, buf: &mut [u8]) {
    let n = buf.len();
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    for (j, b) in buf[8..n - 8].iter_mut().enumerate() {
        *b = (mix(seq) >> (j % 8 * 8)) as u8 ^ j as u8;
    }
    let check = fnv(&buf[..n - 8]);
    buf[n - 8..].copy_from_slice(&check.to_le_bytes());
}

/// Checks a received pipe message; returns its sequence number.
fn check_message(msg: &[u8]) -> u64 {
    let n = msg.len();
    assert!(n >= 16, "short message: {n} bytes");
    let seq = u64::from_le_bytes(msg[..8].try_into().unwrap());
    assert_eq!(n, message_len(seq), "torn message {seq}: wrong length");
    let check = u64::from_le_bytes(msg[n - 8..].try_into().unwrap());
    assert_eq!(
        check,
        fnv(&msg[..n - 8]),
        "torn message {seq}: bad checksum"
    );
    seq
}

#[test]
fn pipe_producer_killed_mid_stream() {
    let iters = iterations();
    let seed = seed();
    println!("pipe crash test: {iters} kills, seed {seed}");
    let mut rng = Rng(seed);
    let pipe = Shared::new(Pipe::<4096>::new()).unwrap();
    // [0] next sequence number to send, [1] last iteration whose producer claimed its end
    let ctl = Shared::new([const { AtomicU64::new(u64::MAX) }; 2]).unwrap();
    let (rx, _) = pipe.ends();
    let start = Instant::now();
    let mut expected = 0u64;
    let mut previous: Option<Child> = None;
    let mut buf = vec![0u8; 4096];
    let mut disconnects = 0u64;
    for iter in 0..iters {
        ctl[0].store(expected, Ordering::SeqCst);
        let producer = Child::spawn(|| {
            let (_, tx) = pipe.ends();
            // Claim (adopt) the end first, so the parent knows it may reap the last owner.
            if tx.poll(Some(Duration::ZERO)).is_err() {
                return 3;
            }
            ctl[1].store(iter, Ordering::SeqCst);
            let mut seq = ctl[0].load(Ordering::SeqCst);
            loop {
                let len = message_len(seq);
                if tx.send_with(len, |b| fill_message(seq, b)).is_err() {
                    return 4;
                }
                seq += 1;
            }
        });
        // Wait until it has adopted the end (the last owner is dead, not yet reaped).
        assert!(
            common::eventually(DEADLINE, || ctl[1].load(Ordering::SeqCst) == iter),
            "producer {iter} never claimed its end"
        );
        drop(previous.take());
        let mut producer = producer;
        let victim: &shmkit::Process = producer.process();
        let delay = Duration::from_micros(rng.below(2000));
        std::thread::scope(|s| {
            // Kill at a random moment while the stream flows.
            s.spawn(move || {
                std::thread::sleep(delay);
                victim.kill().unwrap();
            });
            // Receive everything fully sent, then Disconnected.
            loop {
                match rx.recv_bytes_into_timeout(&mut buf, DEADLINE.saturating_sub(start.elapsed()))
                {
                    Ok(n) => {
                        assert_eq!(
                            check_message(&buf[..n]),
                            expected,
                            "duplicate or gap (seed {seed})"
                        );
                        expected += 1;
                    }
                    Err(Error::Disconnected) => break,
                    Err(e) => panic!("iteration {iter}: {e} (seed {seed})"),
                }
            }
        });
        disconnects += 1;
        // Keep the dead owner as a zombie (its pid not reusable) until the next
        // producer has adopted the end; reap the one before.
        previous = Some(producer);
        assert!(start.elapsed() < DEADLINE, "deadline passed (seed {seed})");
    }
    println!(
        "pipe crash test: {disconnects} kills, {expected} messages received in order, intact, \
         {:?}",
        start.elapsed()
    );
    assert_eq!(disconnects, iters);
}

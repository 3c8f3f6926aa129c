//! The baselines: what a program would use without shmkit (`pipe(2)`, Unix sockets,
//! `eventfd`, a bare spinning flag, and the in-process anchors).

use std::hint::black_box;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::peer::{Placement, with_peer};
use super::run::{fan_out, run_mpmc};
use shmkit::Shared;

fn check(rc: isize, what: &str) -> usize {
    assert!(rc >= 0, "{what}: {}", std::io::Error::last_os_error());
    rc as usize
}

/// `write` all of `buf` (loops over short writes).
fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: a valid buffer of buf.len() bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        buf = &buf[check(n, "write")..];
    }
}

/// `read` exactly `buf.len()` bytes (loops over short reads).
fn read_exact(fd: i32, mut buf: &mut [u8]) {
    while !buf.is_empty() {
        // SAFETY: a valid, writable buffer of buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        let n = check(n, "read");
        assert!(n > 0, "peer closed early");
        buf = &mut buf[n..];
    }
}

/// Two pipes, one per direction: (parent_read, parent_write, child_read, child_write).
fn pipe_pair() -> (OwnedFd, OwnedFd, OwnedFd, OwnedFd) {
    let mut a = [0i32; 2];
    let mut b = [0i32; 2];
    // SAFETY: valid two-element arrays for pipe(2) to fill.
    unsafe {
        check(libc::pipe(a.as_mut_ptr()) as isize, "pipe");
        check(libc::pipe(b.as_mut_ptr()) as isize, "pipe");
        // child -> parent: a; parent -> child: b
        (
            OwnedFd::from_raw_fd(a[0]),
            OwnedFd::from_raw_fd(b[1]),
            OwnedFd::from_raw_fd(b[0]),
            OwnedFd::from_raw_fd(a[1]),
        )
    }
}

/// A connected `AF_UNIX` `SOCK_STREAM` pair.
fn socket_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0i32; 2];
    // SAFETY: a valid two-element array for socketpair(2) to fill.
    unsafe {
        check(
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) as isize,
            "socketpair",
        );
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    }
}

/// Round trips of an 8-byte message over two `pipe(2)`s.
pub fn rtt_pipe2(iters: u64, placement: Placement) -> Duration {
    let (p_rd, p_wr, c_rd, c_wr) = pipe_pair();
    let (p_rd, p_wr, c_rd, c_wr) = (
        p_rd.as_raw_fd(),
        p_wr.as_raw_fd(),
        c_rd.as_raw_fd(),
        c_wr.as_raw_fd(),
    );
    with_peer(
        placement,
        || {
            let mut buf = [0u8; 8];
            for _ in 0..iters {
                read_exact(c_rd, &mut buf);
                write_all(c_wr, &buf);
            }
            0
        },
        || {
            let mut buf = [7u8; 8];
            let start = Instant::now();
            for _ in 0..iters {
                write_all(p_wr, &buf);
                read_exact(p_rd, &mut buf);
            }
            start.elapsed()
        },
    )
}

/// Round trips of an 8-byte message over a Unix socketpair.
pub fn rtt_uds(iters: u64, placement: Placement) -> Duration {
    let (a, b) = socket_pair();
    let (a, b) = (a.as_raw_fd(), b.as_raw_fd());
    with_peer(
        placement,
        || {
            let mut buf = [0u8; 8];
            for _ in 0..iters {
                read_exact(b, &mut buf);
                write_all(b, &buf);
            }
            0
        },
        || {
            let mut buf = [7u8; 8];
            let start = Instant::now();
            for _ in 0..iters {
                write_all(a, &buf);
                read_exact(a, &mut buf);
            }
            start.elapsed()
        },
    )
}

/// Round trips over two `eventfd`s (the cheapest kernel-mediated wake-up).
pub fn rtt_eventfd(iters: u64, placement: Placement) -> Duration {
    // SAFETY: eventfd returns a new descriptor or -1.
    let (to_child, to_parent) = unsafe {
        let x = check(libc::eventfd(0, 0) as isize, "eventfd") as i32;
        let y = check(libc::eventfd(0, 0) as isize, "eventfd") as i32;
        (OwnedFd::from_raw_fd(x), OwnedFd::from_raw_fd(y))
    };
    let (tc, tp) = (to_child.as_raw_fd(), to_parent.as_raw_fd());
    with_peer(
        placement,
        || {
            let mut v = [0u8; 8];
            for _ in 0..iters {
                read_exact(tc, &mut v);
                write_all(tp, &1u64.to_ne_bytes());
            }
            0
        },
        || {
            let mut v = [0u8; 8];
            let start = Instant::now();
            for _ in 0..iters {
                write_all(tc, &1u64.to_ne_bytes());
                read_exact(tp, &mut v);
            }
            start.elapsed()
        },
    )
}

/// The floor: one shared word bounced between two busy-spinning processes.
pub fn rtt_spin_floor(iters: u64, placement: Placement) -> Duration {
    let flag = Shared::new(AtomicU64::new(0)).expect("map");
    with_peer(
        placement,
        || {
            for i in 0..iters {
                while flag.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                flag.store(2 * i + 2, Ordering::Release);
            }
            0
        },
        || {
            let start = Instant::now();
            for i in 0..iters {
                flag.store(2 * i + 1, Ordering::Release);
                while flag.load(Ordering::Acquire) != 2 * i + 2 {
                    std::hint::spin_loop();
                }
            }
            start.elapsed()
        },
    )
}

/// The floor of one-way throughput through shared memory: a naive spinning ring of
/// fixed slots (an 8-byte sequence word, then `size` bytes), 64 KiB in all like the
/// other rings. The sender copies each message in and bumps the slot's word; the
/// receiver spins on the word, copies the message out and hands the slot back. No
/// headers, no validation, no sleeping, no crash handling: what any copy-in/copy-out
/// design pays for moving the bytes between the CPUs.
pub fn tput_spin_ring(size: usize, msgs: u64, placement: Placement) -> Duration {
    const WORDS: usize = (64 << 10) / 8;
    let stride = 1 + size.div_ceil(8);
    let slots = (WORDS / stride).max(1) as u64;
    let ring = Shared::new([const { AtomicU64::new(0) }; WORDS]).expect("map");
    let seq = |i: u64| &ring[(i % slots) as usize * stride];
    let data = |i: u64| {
        ring[(i % slots) as usize * stride + 1]
            .as_ptr()
            .cast::<u8>()
    };
    with_peer(
        placement,
        || {
            let msg = vec![0xabu8; size];
            for i in 0..msgs {
                let lap = i / slots;
                while seq(i).load(Ordering::Acquire) != 2 * lap {
                    std::hint::spin_loop();
                }
                // SAFETY: the slot's `size` bytes after its word lie inside the ring
                // (`stride` words per slot); the receiver does not touch them until
                // the Release store below.
                unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), data(i), size) };
                seq(i).store(2 * lap + 1, Ordering::Release);
            }
            0
        },
        || {
            let mut buf = vec![0u8; size];
            let start = Instant::now();
            for i in 0..msgs {
                let lap = i / slots;
                while seq(i).load(Ordering::Acquire) != 2 * lap + 1 {
                    std::hint::spin_loop();
                }
                // SAFETY: as above; the sender does not write the slot again until
                // the Release store below.
                unsafe { std::ptr::copy_nonoverlapping(data(i), buf.as_mut_ptr(), size) };
                black_box(&buf);
                seq(i).store(2 * lap + 2, Ordering::Release);
            }
            start.elapsed()
        },
    )
}

/// One-way: `msgs` messages of `size` bytes through a `pipe(2)`, `batch` messages per
/// `write` (1 = one write per message). The reader reads what arrives.
pub fn tput_pipe2(size: usize, msgs: u64, batch: usize, placement: Placement) -> Duration {
    let (p_rd, p_wr, _c_rd, c_wr) = pipe_pair();
    tput_fd(
        size,
        msgs,
        batch,
        placement,
        c_wr.as_raw_fd(),
        p_rd.as_raw_fd(),
        p_wr,
    )
}

/// One-way through a Unix socketpair, `batch` messages per `write`.
pub fn tput_uds(size: usize, msgs: u64, batch: usize, placement: Placement) -> Duration {
    let (a, b) = socket_pair();
    tput_fd(
        size,
        msgs,
        batch,
        placement,
        b.as_raw_fd(),
        a.as_raw_fd(),
        a,
    )
}

/// The writer is the peer process; the measuring parent reads until all bytes arrived.
fn tput_fd(
    size: usize,
    msgs: u64,
    batch: usize,
    placement: Placement,
    wr: i32,
    rd: i32,
    _keep: OwnedFd,
) -> Duration {
    let total = size as u64 * msgs;
    let start_flag = Shared::new(AtomicU64::new(0)).expect("map");
    with_peer(
        placement,
        || {
            let chunk = vec![0xabu8; size * batch];
            while start_flag.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            let mut left = msgs;
            while left > 0 {
                let n = left.min(batch as u64) as usize;
                write_all(wr, &chunk[..n * size]);
                left -= n as u64;
            }
            0
        },
        || {
            let mut buf = vec![0u8; (size * batch).max(65536)];
            let mut got = 0u64;
            let start = Instant::now();
            start_flag.store(1, Ordering::Release);
            while got < total {
                // SAFETY: a valid, writable buffer.
                let n = unsafe { libc::read(rd, buf.as_mut_ptr().cast(), buf.len()) };
                got += check(n, "read") as u64;
                black_box(&buf);
            }
            start.elapsed()
        },
    )
}

/// Threads: `msgs` items through a crossbeam `ArrayQueue` by `producers` x `consumers`.
pub fn mpmc_crossbeam(msgs: u64, producers: u64, consumers: u64) -> Duration {
    let q = crossbeam_queue::ArrayQueue::<u64>::new(1024);
    run_mpmc(
        msgs,
        producers,
        consumers,
        |v| {
            let mut v = v;
            while let Err(back) = q.push(v) {
                v = back;
                std::hint::spin_loop();
            }
        },
        || q.pop(),
    )
}

/// Threads: `msgs` u64 items through an `rtrb` ring, one producer, one consumer.
pub fn spsc_rtrb(msgs: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(1024);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..msgs {
                let mut v = i;
                loop {
                    match tx.push(v) {
                        Ok(()) => break,
                        Err(rtrb::PushError::Full(back)) => {
                            v = back;
                            std::hint::spin_loop();
                        }
                    }
                }
            }
        });
        let mut expect = 0u64;
        while expect < msgs {
            if let Ok(v) = rx.pop() {
                assert_eq!(v, expect);
                expect += 1;
            } else {
                std::hint::spin_loop();
            }
        }
    });
    start.elapsed()
}

/// Uncontended lock+unlock of a `std::sync::Mutex`, `iters` times.
pub fn mutex_std(iters: u64) -> Duration {
    let m = std::sync::Mutex::new(0u64);
    let start = Instant::now();
    for _ in 0..iters {
        *black_box(&m).lock().unwrap() += 1;
    }
    let e = start.elapsed();
    assert_eq!(*m.lock().unwrap(), iters);
    e
}

/// Uncontended lock+unlock of a `parking_lot::Mutex`, `iters` times.
pub fn mutex_parking_lot(iters: u64) -> Duration {
    let m = parking_lot::Mutex::new(0u64);
    let start = Instant::now();
    for _ in 0..iters {
        *black_box(&m).lock() += 1;
    }
    let e = start.elapsed();
    assert_eq!(*m.lock(), iters);
    e
}

/// `procs` processes each add `iters` to one shared atomic.
pub fn value_atomic(iters: u64, procs: u64) -> Duration {
    let v = Shared::new(AtomicU64::new(0)).expect("map");
    let e = fan_out(procs, || {
        for _ in 0..iters {
            v.fetch_add(1, Ordering::Relaxed);
        }
    });
    assert_eq!(v.load(Ordering::Relaxed), iters * procs);
    e
}

/// rtrb's instruction path for callgrind: `iters` items pushed and popped on one
/// thread, in batches of 64 (the pair of `kit::spsc_path`).
#[inline(never)]
pub fn rtrb_path(iters: u64) -> u64 {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(1024);
    let mut sum = 0u64;
    for i in 0..iters / 64 {
        for j in 0..64 {
            tx.push(i * 64 + j).expect("push");
        }
        for _ in 0..64 {
            sum = sum.wrapping_add(rx.pop().expect("pop"));
        }
    }
    black_box(sum)
}

/// The floor's instruction path: one word, written and read back by each side.
#[inline(never)]
pub fn rtt_floor_path(iters: u64) -> u64 {
    let flag = Box::new(AtomicU64::new(0));
    for i in 0..iters {
        flag.store(2 * i + 1, Ordering::Release);
        while flag.load(Ordering::Acquire) != 2 * i + 1 {
            std::hint::spin_loop();
        }
        flag.store(2 * i + 2, Ordering::Release);
        while flag.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    black_box(flag.load(Ordering::Relaxed))
}

//! shmkit's side of every comparison.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::peer::{Placement, with_peer};
use super::run::{fan_out, run_mpmc};
use shmkit::{
    Mutex, Pipe, Pod, Queue, Shared, Spsc, Value, WaitStrategy, Zeroable, set_wait_strategy,
};

/// Bytes per direction of the benchmark pipes.
pub const PIPE_CAP: usize = 1 << 16;

/// Round trips of an 8-byte message over a shmkit `Pipe`, both processes using
/// `strategy`.
pub fn rtt_pipe(iters: u64, placement: Placement, strategy: WaitStrategy) -> Duration {
    let pipe = Shared::new(Pipe::<PIPE_CAP>::new()).expect("map");
    let before = shmkit::wait_strategy();
    set_wait_strategy(strategy);
    let elapsed = with_peer(
        placement,
        || {
            let (_, b) = pipe.ends();
            let mut buf = [0u8; 8];
            for _ in 0..iters {
                let Ok(n) = b.recv_bytes_into(&mut buf) else {
                    return 2;
                };
                if b.send_bytes(&buf[..n]).is_err() {
                    return 3;
                }
            }
            0
        },
        || {
            let (a, _) = pipe.ends();
            let mut buf = [7u8; 8];
            let start = Instant::now();
            for _ in 0..iters {
                a.send_bytes(&buf).expect("send");
                a.recv_bytes_into(&mut buf).expect("recv");
            }
            start.elapsed()
        },
    );
    set_wait_strategy(before);
    elapsed
}

/// One-way: `msgs` messages of `size` bytes through a shmkit `Pipe` (one call each).
pub fn tput_pipe(size: usize, msgs: u64, placement: Placement) -> Duration {
    let pipe = Shared::new_zeroed()
        .map(|p: Shared<Pipe<PIPE_CAP>>| p)
        .expect("map");
    let start_flag = Shared::new(AtomicU64::new(0)).expect("map");
    with_peer(
        placement,
        || {
            let (_, b) = pipe.ends();
            let msg = vec![0xabu8; size];
            while start_flag.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            for _ in 0..msgs {
                if b.send_bytes(&msg).is_err() {
                    return 2;
                }
            }
            0
        },
        || {
            let (a, _) = pipe.ends();
            // The receiver copies every message out, as a `pipe(2)` reader's `read`
            // does: a receiver that never touched the bytes would not pull them across.
            let mut buf = vec![0u8; size];
            let mut got = 0u64;
            let start = Instant::now();
            start_flag.store(1, Ordering::Release);
            while got < msgs {
                let n = a.recv_bytes_into(&mut buf).expect("recv");
                debug_assert_eq!(n, size);
                black_box(&buf);
                got += 1;
            }
            start.elapsed()
        },
    )
}

/// One-way: `msgs` 64-byte items through a shmkit `Queue` between two processes.
pub fn tput_queue64(msgs: u64, placement: Placement) -> Duration {
    let q = Shared::<Queue<[u8; 64], 1024>>::new_zeroed().expect("map");
    let start_flag = Shared::new(AtomicU64::new(0)).expect("map");
    with_peer(
        placement,
        || {
            while start_flag.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            for i in 0..msgs {
                let mut item = [0u8; 64];
                item[..8].copy_from_slice(&i.to_le_bytes());
                if q.put(item).is_err() {
                    return 2;
                }
            }
            0
        },
        || {
            let start = Instant::now();
            start_flag.store(1, Ordering::Release);
            for _ in 0..msgs {
                black_box(q.get().expect("get"));
            }
            start.elapsed()
        },
    )
}

/// Threads: `msgs` items through a shmkit `Queue` by `producers` x `consumers`.
pub fn mpmc_queue(msgs: u64, producers: u64, consumers: u64) -> Duration {
    let q = Box::new(Queue::<u64, 1024>::new());
    run_mpmc(
        msgs,
        producers,
        consumers,
        |v| {
            let mut v = v;
            while let Err(e) = q.try_put(v) {
                v = e.into_inner();
                std::hint::spin_loop();
            }
        },
        || q.try_get().ok(),
    )
}

/// Threads: `msgs` u64 items one way through a shmkit byte ring (a `Pipe` direction,
/// `send::<u64>` / `recv_with`), one producer thread, one consumer thread.
pub fn spsc_ring(msgs: u64) -> Duration {
    let pipe = Box::new(Pipe::<PIPE_CAP>::new());
    let (a, b) = pipe.ends();
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..msgs {
                while a.try_send_bytes(&i.to_le_bytes()).is_err() {
                    std::hint::spin_loop();
                }
            }
        });
        let mut expect = 0u64;
        while expect < msgs {
            if let Ok(v) = b.try_recv_bytes_into(&mut [0u8; 8]).map(|_| ()) {
                black_box(v);
                expect += 1;
            } else {
                std::hint::spin_loop();
            }
        }
    });
    start.elapsed()
}

/// Uncontended lock+unlock of a shmkit `Mutex`, `iters` times.
pub fn mutex_kit(iters: u64) -> Duration {
    let m = Mutex::new(0u64);
    let start = Instant::now();
    for _ in 0..iters {
        *black_box(&m).lock().unwrap() += 1;
    }
    let e = start.elapsed();
    assert_eq!(*m.lock().unwrap(), iters);
    e
}

/// Two processes each lock+unlock one shared `Mutex` `iters` times.
pub fn mutex_contended(iters: u64) -> Duration {
    let m = Shared::new(Mutex::new(0u64)).expect("map");
    let e = fan_out(2, || {
        for _ in 0..iters {
            *m.lock().unwrap() += 1;
        }
    });
    assert_eq!(*m.lock().unwrap(), 2 * iters);
    e
}

/// `procs` processes each add `iters` to one shared `Value` under its lock.
pub fn value_locked(iters: u64, procs: u64) -> Duration {
    let v = Shared::new(Value::new(0u64)).expect("map");
    let e = fan_out(procs, || {
        for _ in 0..iters {
            v.update(|x| *x += 1);
        }
    });
    assert_eq!(v.get(), iters * procs);
    e
}

/// Threads: `msgs` u64 items through a typed [`Spsc`] (`push` / `pop`, one item per
/// call), one producer thread, one consumer thread: the pair of `baseline::spsc_rtrb`.
pub fn spsc_typed(msgs: u64) -> Duration {
    let ring = Box::new(Spsc::<u64, 1024>::new());
    let (mut tx, mut rx) = ring.split();
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..msgs {
                let mut v = i;
                while let Err(e) = tx.try_push(v) {
                    v = e.into_inner();
                    std::hint::spin_loop();
                }
            }
        });
        let mut expect = 0u64;
        while expect < msgs {
            if let Ok(v) = rx.try_pop() {
                assert_eq!(v, expect);
                expect += 1;
            } else {
                std::hint::spin_loop();
            }
        }
    });
    start.elapsed()
}

/// An item of `SIZE` bytes for the cross-process SPSC kernel.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Item<const SIZE: usize>(pub [u8; SIZE]);
// SAFETY: a byte array: no padding, every bit pattern valid.
unsafe impl<const SIZE: usize> Zeroable for Item<SIZE> {}
// SAFETY: as above; `Copy + 'static`.
unsafe impl<const SIZE: usize> Pod for Item<SIZE> {}

/// One-way across processes: `msgs` items of `SIZE` bytes through a typed [`Spsc`] of
/// 64 KiB of slots (as the naive spinning ring has), one `push` and one `pop` per item
/// (blocking, default wait); the receiver copies each item out. The pair of
/// `baseline::tput_spin_ring(SIZE, ..)`.
pub fn tput_spsc<const SIZE: usize, const N: usize>(msgs: u64, placement: Placement) -> Duration {
    const { assert!(SIZE * N == 64 << 10) };
    let ring = Shared::<Spsc<Item<SIZE>, N>>::new_zeroed().expect("map");
    let start_flag = Shared::new(AtomicU64::new(0)).expect("map");
    let (tx, mut rx) = ring.split();
    let flag = &start_flag;
    with_peer(
        placement,
        move || {
            let mut tx = tx;
            let mut item = Item([0xabu8; SIZE]);
            while flag.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            for i in 0..msgs {
                item.0[0] = i as u8;
                if tx.push(item).is_err() {
                    return 2;
                }
            }
            0
        },
        || {
            let start = Instant::now();
            flag.store(1, Ordering::Release);
            for _ in 0..msgs {
                black_box(rx.pop().expect("pop"));
            }
            start.elapsed()
        },
    )
}

/// One-way: `msgs` messages of `size` bytes through a shmkit `Pipe`, `batch` messages
/// per `send_many` and up to `batch` per `recv_many` (the receiver copies each message
/// out, as for `tput_pipe`). The pair of `baseline::tput_pipe2(size, msgs, batch, ..)`.
pub fn tput_pipe_batched(size: usize, msgs: u64, batch: usize, placement: Placement) -> Duration {
    let pipe = Shared::<Pipe<PIPE_CAP>>::new_zeroed().expect("map");
    let start_flag = Shared::new(AtomicU64::new(0)).expect("map");
    with_peer(
        placement,
        || {
            let (_, b) = pipe.ends();
            let msg = vec![0xabu8; size];
            let refs: Vec<&[u8]> = vec![&msg[..]; batch];
            while start_flag.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            let mut left = msgs;
            while left > 0 {
                let n = left.min(batch as u64) as usize;
                match b.send_many(&refs[..n]) {
                    Ok(sent) => left -= sent as u64,
                    Err(_) => return 2,
                }
            }
            0
        },
        || {
            let (a, _) = pipe.ends();
            let mut buf = vec![0u8; size];
            let mut got = 0u64;
            let start = Instant::now();
            start_flag.store(1, Ordering::Release);
            while got < msgs {
                let n = a
                    .recv_many(batch, |m| buf[..m.len()].copy_from_slice(m))
                    .expect("recv");
                black_box(&buf);
                got += n as u64;
            }
            start.elapsed()
        },
    )
}

/// The instruction path of `rtt_pipe` without the waiting, for callgrind: `iters`
/// round trips of an 8-byte message on one thread (end A sends, end B receives and
/// answers, end A receives), so every call finds its message already there. Run
/// `valgrind --tool=callgrind --toggle-collect='*rtt_pipe_path*'
/// target/release/examples/compare --rtt-path` and divide by `iters`.
#[inline(never)]
pub fn rtt_pipe_path(iters: u64) -> u64 {
    let pipe = Box::new(Pipe::<PIPE_CAP>::new());
    let (a, b) = pipe.ends();
    let mut buf = [7u8; 8];
    let mut sum = 0u64;
    for _ in 0..iters {
        a.send_bytes(&buf).expect("send");
        let n = b.recv_bytes_into(&mut buf).expect("recv");
        b.send_bytes(&buf[..n]).expect("send");
        a.recv_bytes_into(&mut buf).expect("recv");
        sum = sum.wrapping_add(u64::from(buf[0]));
    }
    black_box(sum)
}

/// As [`rtt_pipe_path`], for the typed [`Spsc`] (two rings, one per direction).
#[inline(never)]
pub fn rtt_spsc_path(iters: u64) -> u64 {
    let there = Box::new(Spsc::<u64, 1024>::new());
    let back = Box::new(Spsc::<u64, 1024>::new());
    let (mut tx, mut rx) = there.split();
    let (mut tx2, mut rx2) = back.split();
    let mut sum = 0u64;
    for i in 0..iters {
        tx.push(i).expect("push");
        let v = rx.pop().expect("pop");
        tx2.push(v).expect("push");
        sum = sum.wrapping_add(rx2.pop().expect("pop"));
    }
    black_box(sum)
}

/// The typed [`Spsc`]'s instruction path for callgrind: as `baseline::rtrb_path`.
#[inline(never)]
pub fn spsc_path(iters: u64) -> u64 {
    let ring = Box::new(Spsc::<u64, 1024>::new());
    let (mut tx, mut rx) = ring.split();
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

/// Round trips of an 8-byte item between two processes over a pair of typed [`Spsc`]
/// rings (one per direction), both processes using `strategy`: what the round trip
/// costs without the Pipe's framing and per-call checks.
pub fn rtt_spsc(iters: u64, placement: Placement, strategy: WaitStrategy) -> Duration {
    let there = Shared::<Spsc<u64, 64>>::new_zeroed().expect("map");
    let back = Shared::<Spsc<u64, 64>>::new_zeroed().expect("map");
    let before = shmkit::wait_strategy();
    set_wait_strategy(strategy);
    let (mut tx, rx) = there.split();
    let (tx2, mut rx2) = back.split();
    let elapsed = with_peer(
        placement,
        move || {
            let (mut rx, mut tx2) = (rx, tx2);
            for _ in 0..iters {
                let Ok(v) = rx.pop() else { return 2 };
                if tx2.push(v).is_err() {
                    return 3;
                }
            }
            0
        },
        || {
            let start = Instant::now();
            for i in 0..iters {
                tx.push(i).expect("push");
                black_box(rx2.pop().expect("pop"));
            }
            start.elapsed()
        },
    );
    set_wait_strategy(before);
    elapsed
}

/// The one-way instruction path of 64-byte messages for callgrind, on one thread:
/// 64 messages sent, then 64 received (copied out), `iters / 64` times; one call per
/// message (`batched` false) or one `send_many` and one `recv_many` per 64.
#[inline(never)]
pub fn oneway_pipe_path(iters: u64, batched: bool) -> u64 {
    let pipe = Box::new(Pipe::<PIPE_CAP>::new());
    let (a, b) = pipe.ends();
    let msg = [0xabu8; 64];
    let refs = [&msg[..]; 64];
    let mut buf = [0u8; 64];
    let mut sum = 0u64;
    for _ in 0..iters / 64 {
        if batched {
            a.send_many(&refs).expect("send");
            let mut got = 0;
            while got < 64 {
                got += b
                    .recv_many(64, |m| {
                        buf.copy_from_slice(m);
                        sum = sum.wrapping_add(u64::from(buf[7]));
                    })
                    .expect("recv");
            }
        } else {
            for m in refs {
                a.send_bytes(m).expect("send");
            }
            for _ in 0..64 {
                b.recv_bytes_into(&mut buf).expect("recv");
                sum = sum.wrapping_add(u64::from(buf[7]));
            }
        }
    }
    black_box(sum)
}

/// [`oneway_pipe_path`] one call per message.
#[inline(never)]
pub fn oneway_pipe_single_path(iters: u64) -> u64 {
    oneway_pipe_path(iters, false)
}

/// [`oneway_pipe_path`] 64 messages per call.
#[inline(never)]
pub fn oneway_pipe_batched_path(iters: u64) -> u64 {
    oneway_pipe_path(iters, true)
}

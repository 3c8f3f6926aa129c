//! Model-based tests: random operation sequences on a `Pipe` ring and on a `Queue`,
//! checked step by step against a `VecDeque` model, in one process and across fork.
//!
//! The ring model tracks the exact byte accounting the ring promises (8-byte headers,
//! payloads padded to 8, a padding record where a record would cross the end, 8 bytes
//! of slack free after every record but one that fills the whole ring), so capacities down to the
//! smallest (64), records that exactly fill the ring and every wrap boundary are
//! checked for `WouldBlock` as well as for content.
#![allow(clippy::disallowed_types)]

mod common;

use std::collections::VecDeque;

use common::Child;
use proptest::prelude::*;
use shmkit::{Error, ExitStatus, GetError, Pipe, PutError, Queue, Shared};

/// One record in the model ring.
#[derive(Debug, Clone)]
struct Rec {
    size: u64,
    msg: Option<Vec<u8>>, // None = padding
}

/// The ring as the sender and receiver should see it.
#[derive(Debug)]
struct RingModel {
    cap: u64,
    head: u64,
    tail: u64,
    recs: VecDeque<Rec>,
}

fn round8(n: u64) -> u64 {
    (n + 7) & !7
}

impl RingModel {
    fn new(cap: u64) -> Self {
        RingModel {
            cap,
            head: 0,
            tail: 0,
            recs: VecDeque::new(),
        }
    }

    fn try_send(&mut self, msg: &[u8]) -> bool {
        // A record (or padding) needs its size plus 8 bytes of slack free, except a
        // record that fills the whole array, which needs the ring empty.
        let rec = 8 + round8(msg.len() as u64);
        let to_end = self.cap - self.tail % self.cap;
        if rec > to_end {
            if self.cap - (self.tail - self.head) < to_end + 8 {
                return false;
            }
            self.recs.push_back(Rec {
                size: to_end,
                msg: None,
            });
            self.tail += to_end;
        }
        let needed = if rec == self.cap { rec } else { rec + 8 };
        if self.cap - (self.tail - self.head) < needed {
            return false;
        }
        self.recs.push_back(Rec {
            size: rec,
            msg: Some(msg.to_vec()),
        });
        self.tail += rec;
        true
    }

    fn try_recv(&mut self) -> Option<Vec<u8>> {
        // The receiver sees every published record; padding in front is consumed.
        let mut found = None;
        for _ in 0..2 {
            let Some(rec) = self.recs.pop_front() else {
                break;
            };
            self.head += rec.size;
            if let Some(msg) = rec.msg {
                found = Some(msg);
                break;
            }
        }
        let msg = found?;
        // `release` skips a padding record right behind, if it is published.
        if self.head % self.cap != 0 {
            if let Some(Rec { msg: None, size }) = self.recs.front().cloned() {
                self.recs.pop_front();
                self.head += size;
            }
        }
        Some(msg)
    }
}

#[derive(Debug, Clone)]
enum RingOp {
    Send(usize, u8),
    Recv,
}

fn ring_ops(cap: usize) -> impl Strategy<Value = Vec<RingOp>> {
    let max = cap - 8;
    let len = prop_oneof![
        3 => 0..=max,
        1 => Just(max),
        1 => Just(0),
        1 => (0..=max / 8).prop_map(|k| k * 8),
        1 => Just(max - 8),
    ];
    let op = prop_oneof![
        (len, any::<u8>()).prop_map(|(l, b)| RingOp::Send(l, b)),
        Just(RingOp::Recv),
    ];
    proptest::collection::vec(op, 1..200)
}

fn run_ring<const CAP: usize>(ops: &[RingOp]) {
    let pipe = Box::new(Pipe::<CAP>::new());
    let (a, b) = pipe.ends();
    let mut model = RingModel::new(CAP as u64);
    let mut buf = vec![0u8; CAP];
    // The last refused send's length, if its record then fitted before the array's
    // end (it needs no padding): one receive of at least that much makes room for it.
    let mut refused: Option<usize> = None;
    for (i, op) in ops.iter().enumerate() {
        match *op {
            RingOp::Send(len, fill) => {
                let msg: Vec<u8> = (0..len).map(|j| fill.wrapping_add(j as u8)).collect();
                let expect = model.try_send(&msg);
                let got = a.try_send_bytes(&msg);
                assert_eq!(
                    got,
                    if expect {
                        Ok(())
                    } else {
                        Err(Error::WouldBlock)
                    },
                    "op {i}: send {len} bytes; model {model:?}"
                );
                let record = 8 + round8(len as u64);
                refused = (!expect && model.tail % model.cap + record <= model.cap).then_some(len);
            }
            RingOp::Recv => {
                let expect = model.try_recv();
                match b.try_recv_bytes_into(&mut buf) {
                    Ok(n) => assert_eq!(Some(&buf[..n]), expect.as_deref(), "op {i}"),
                    Err(e) => {
                        assert_eq!(e, Error::WouldBlock, "op {i}");
                        assert_eq!(expect, None, "op {i}");
                    }
                }
                // "A receive frees what it received" (issue 10, defect 5).
                if let (Some(n), Some(m)) = (refused.take(), expect.map(|m| m.len())) {
                    if m >= n {
                        let msg = vec![0x33; n];
                        assert_eq!(
                            a.try_send_bytes(&msg),
                            Ok(()),
                            "op {i}: {n} after receiving {m}"
                        );
                        assert!(model.try_send(&msg));
                    }
                }
            }
        }
    }
    // Drain: everything left arrives in order.
    while let Some(expect) = model.try_recv() {
        let n = b.try_recv_bytes_into(&mut buf).unwrap();
        assert_eq!(&buf[..n], &expect[..]);
    }
    assert_eq!(b.try_recv_bytes_into(&mut buf), Err(Error::WouldBlock));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn ring_matches_model_cap64(ops in ring_ops(64)) {
        run_ring::<64>(&ops);
    }

    #[test]
    fn ring_matches_model_cap128(ops in ring_ops(128)) {
        run_ring::<128>(&ops);
    }

    #[test]
    fn ring_matches_model_cap1024(ops in ring_ops(1024)) {
        run_ring::<1024>(&ops);
    }
}

#[derive(Debug, Clone)]
enum QueueOp {
    Put(u32),
    /// `put_timeout` with a zero timeout.
    PutNow(u32),
    Get,
    /// `get_timeout` with a zero timeout.
    GetNow,
    Close,
}

fn queue_ops() -> impl Strategy<Value = Vec<QueueOp>> {
    let op = prop_oneof![
        8 => any::<u32>().prop_map(QueueOp::Put),
        2 => any::<u32>().prop_map(QueueOp::PutNow),
        8 => Just(QueueOp::Get),
        2 => Just(QueueOp::GetNow),
        1 => Just(QueueOp::Close),
    ];
    proptest::collection::vec(op, 1..200)
}

fn run_queue<const N: usize>(ops: &[QueueOp]) {
    let q = Box::new(Queue::<u32, N>::new());
    let mut model: VecDeque<u32> = VecDeque::new();
    let mut closed = false;
    for (i, op) in ops.iter().enumerate() {
        match *op {
            QueueOp::Put(v) | QueueOp::PutNow(v) => {
                let timed = matches!(op, QueueOp::PutNow(_));
                let expect = if closed {
                    Err(PutError::Closed(v))
                } else if model.len() == N {
                    Err(if timed {
                        PutError::Timeout(v)
                    } else {
                        PutError::Full(v)
                    })
                } else {
                    model.push_back(v);
                    Ok(())
                };
                let got = if timed {
                    q.put_timeout(v, std::time::Duration::ZERO)
                } else {
                    q.try_put(v)
                };
                assert_eq!(got, expect, "op {i}");
            }
            QueueOp::Get | QueueOp::GetNow => {
                let timed = matches!(op, QueueOp::GetNow);
                let expect = match model.pop_front() {
                    Some(v) => Ok(v),
                    None if closed => Err(GetError::Closed),
                    None if timed => Err(GetError::Timeout),
                    None => Err(GetError::Empty),
                };
                let got = if timed {
                    q.get_timeout(std::time::Duration::ZERO)
                } else {
                    q.try_get()
                };
                assert_eq!(got, expect, "op {i}");
            }
            QueueOp::Close => {
                q.close();
                closed = true;
            }
        }
        assert_eq!(q.len(), model.len(), "op {i}");
        assert_eq!(q.is_full(), model.len() == N);
    }
    assert_eq!(q.lost(), 0);
}

/// Random words written over a live queue's indices and slot states (at their
/// documented offsets) between non-blocking operations: every call returns, with a
/// value or an error, and never panics (the fuzz target `queue_ops` does the same
/// with coverage guidance).
fn scribble_queue<const N: usize>(writes: &[(u8, u64, u8)]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;
    let q = Box::new(Queue::<u32, N>::new());
    for i in 0..N as u32 + 1 {
        let _ = q.try_put(i);
        if i % 2 == 1 {
            let _ = q.try_get();
        }
    }
    let word = |pick: u8| {
        let offset = match pick % 4 {
            0 => 0,
            1 => 128,
            2 => 264,
            _ => 512 + 16 * (pick as usize / 4 % N),
        };
        // SAFETY: the documented layout of `Queue<u32, N>`: 8-aligned atomic words at
        // these offsets, only ever accessed atomically.
        unsafe {
            &*std::ptr::from_ref(&*q)
                .cast::<u8>()
                .add(offset)
                .cast::<AtomicU64>()
        }
    };
    for &(pick, value, op) in writes {
        word(pick).store(value, Ordering::Relaxed);
        match op % 6 {
            0 => drop(q.try_put(u32::from(op))),
            1 => drop(q.put_timeout(u32::from(op), Duration::ZERO)),
            2 => drop(q.try_get()),
            3 => drop(q.get_timeout(Duration::ZERO)),
            4 => drop(q.lost()),
            _ => drop((q.len(), shmkit::wait(&[&*q], Some(Duration::ZERO)))),
        }
    }
}

/// Scribbled words: mostly plausible states (a kind, a lap near the indices, a small
/// claimer id), sometimes anything.
fn scribbles() -> impl Strategy<Value = Vec<(u8, u64, u8)>> {
    let value = prop_oneof![
        (0u64..4, 0u64..4, 0u64..64).prop_map(|(kind, lap, id)| {
            if kind % 2 == 1 {
                (kind << 62) | (lap << 30) | id
            } else {
                (kind << 62) | lap
            }
        }),
        0u64..16,
        any::<u64>(),
    ];
    proptest::collection::vec((any::<u8>(), value, any::<u8>()), 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_model_n1(ops in queue_ops()) { run_queue::<1>(&ops); }

    #[test]
    fn queue_matches_model_n2(ops in queue_ops()) { run_queue::<2>(&ops); }

    #[test]
    fn queue_matches_model_n3(ops in queue_ops()) { run_queue::<3>(&ops); }

    #[test]
    fn queue_matches_model_n8(ops in queue_ops()) { run_queue::<8>(&ops); }

    #[test]
    fn queue_survives_scribbles_n1(w in scribbles()) { scribble_queue::<1>(&w); }

    #[test]
    fn queue_survives_scribbles_n3(w in scribbles()) { scribble_queue::<3>(&w); }
}

proptest! {
    // Each case forks: fewer of them.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The parent sends a random sequence of messages (blocking when full); a forked
    /// child receives them and checks each against the sequence it inherited.
    #[test]
    fn ring_across_fork(lens in proptest::collection::vec(prop_oneof![0usize..=56, Just(56usize)], 1..300)) {
        let pipe = Shared::new(Pipe::<64>::new()).unwrap();
        let (a, b) = pipe.ends();
        let msg = |i: usize, len: usize| -> Vec<u8> { (0..len).map(|j| (i * 31 + j) as u8).collect() };
        let lens_ = &lens;
        let child = Child::spawn(move || {
            let lens = lens_;
            let mut buf = [0u8; 64];
            for (i, &len) in lens.iter().enumerate() {
                match b.recv_bytes_into(&mut buf) {
                    Ok(n) if buf[..n] == msg(i, len)[..] => {}
                    _ => return 1,
                }
            }
            match b.recv_bytes_into(&mut buf) {
                Err(Error::Disconnected) => 0,
                _ => 2,
            }
        });
        for (i, &len) in lens.iter().enumerate() {
            a.send_bytes(&msg(i, len)).unwrap();
        }
        a.close();
        prop_assert_eq!(child.join(), ExitStatus::Exited(0));
    }

    /// The same for a queue of capacity 1..=4, with the child checking FIFO order.
    #[test]
    fn queue_across_fork(items in proptest::collection::vec(any::<u64>(), 1..300), which in 0usize..4) {
        fn run<const N: usize>(items: &[u64]) -> ExitStatus {
            let q = Shared::new(Queue::<u64, N>::new()).unwrap();
            let child = Child::spawn(|| {
                for &x in items {
                    if q.get() != Ok(x) {
                        return 1;
                    }
                }
                match q.get() {
                    Err(GetError::Closed) => 0,
                    _ => 2,
                }
            });
            for &x in items {
                q.put(x).unwrap();
            }
            q.close();
            child.join()
        }
        let status = match which {
            0 => run::<1>(&items),
            1 => run::<2>(&items),
            2 => run::<3>(&items),
            _ => run::<4>(&items),
        };
        prop_assert_eq!(status, ExitStatus::Exited(0));
    }
}

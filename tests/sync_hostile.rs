//! A peer that scribbles on the sync primitives gets errors and timeouts out of us,
//! never a panic or a hang; a dead holder is seen by `try_lock` too.
// Tests name core atomics directly: they are not algorithms under loom.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::Child;
use shmkit::{
    Array, Barrier, BarrierError, Error, LockError, Mutex, ReentrantMutex, Semaphore, Shared, Value,
};

/// Writes `value` over the `u32` at byte `offset` of `*target`, as a scribbling peer
/// would (through an atomic: the kit's words are atomics).
fn scribble<T>(target: &T, offset: usize, value: u32) {
    assert!(offset + 4 <= size_of::<T>() && offset % 4 == 0);
    // SAFETY: in bounds (asserted), 4-aligned (every kit type is at least 4-aligned),
    // and every word written here is an atomic of the kit's: a concurrent store is
    // what a scribbling peer does.
    let word = unsafe {
        &*(std::ptr::from_ref(target)
            .cast::<u8>()
            .add(offset)
            .cast::<AtomicU32>())
    };
    word.store(value, Ordering::SeqCst);
}

#[test]
fn try_lock_reports_a_dead_holder() {
    let m = Shared::new(Mutex::new(1u32)).unwrap();
    let rm = Shared::new(ReentrantMutex::new(AtomicU32::new(0))).unwrap();
    let (m_, rm_) = (&m, &rm);
    let child = Child::spawn(move || {
        std::mem::forget(m_.lock().unwrap());
        std::mem::forget(rm_.lock().unwrap());
        0
    });
    assert_eq!(child.join().code(), Some(0));
    // The holder is dead and reaped: try_lock says so (glibc's EOWNERDEAD), at once
    // or within the check period (5 ms per thread).
    let start = Instant::now();
    let got = loop {
        match m.try_lock() {
            Err(LockError::WouldBlock) if start.elapsed() < Duration::from_secs(5) => {}
            other => break other,
        }
    };
    match got {
        Err(LockError::OwnerDead(g)) => g.make_consistent(),
        other => panic!("expected OwnerDead, got {:?}", other.map(|_| ())),
    }
    assert!(start.elapsed() < Duration::from_millis(100));
    let start = Instant::now();
    let got = loop {
        match rm.try_lock() {
            Err(LockError::WouldBlock) if start.elapsed() < Duration::from_secs(5) => {}
            other => break other,
        }
    };
    assert!(
        matches!(got, Err(LockError::OwnerDead(_))),
        "{:?}",
        got.map(|_| ())
    );
}

#[test]
fn try_lock_of_a_live_holder_would_block() {
    let m = Mutex::new(0u32);
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let m = &m;
        s.spawn(move || {
            let _g = m.lock().unwrap();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        });
        held_rx.recv().unwrap();
        for _ in 0..1000 {
            assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
        }
        go_tx.send(()).unwrap();
    });
}

#[test]
fn cells_have_deadlines() {
    let v = Value::new(5u64);
    let a = Array::new([1u32; 4]);
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let (v, a) = (&v, &a);
        s.spawn(move || {
            let _gv = v.lock();
            let _ga = a.lock();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        });
        held_rx.recv().unwrap();
        let d = Duration::from_millis(20);
        let start = Instant::now();
        assert_eq!(v.get_timeout(d), Err(Error::Timeout));
        assert!(start.elapsed() >= d);
        assert_eq!(v.set_timeout(9, d), Err(Error::Timeout));
        assert_eq!(v.update_timeout(d, |x| *x += 1), Err(Error::Timeout));
        assert!(v.lock_timeout(d).unwrap_err().is_timeout());
        assert_eq!(a.get_timeout(0, d), Err(Error::Timeout));
        assert_eq!(a.set_timeout(0, 7, d), Err(Error::Timeout));
        assert_eq!(
            a.get_timeout(9, d),
            Err(Error::IndexOutOfBounds { index: 9, len: 4 })
        );
        go_tx.send(()).unwrap();
    });
    assert_eq!(v.get_timeout(Duration::ZERO), Ok(5));
    assert_eq!(a.set_timeout(2, 7, Duration::ZERO), Ok(()));
    assert_eq!(a.get(2), Some(7));
}

#[test]
fn scribbled_words_give_errors_not_panics() {
    // A barrier whose party count a peer zeroed: Corrupted, not an underflow.
    let b = Barrier::new(2);
    scribble(&b, 8, 0);
    assert_eq!(b.wait(), Err(BarrierError::Corrupted));
    scribble(&b, 8, u32::MAX);
    assert_eq!(b.wait_timeout(Duration::ZERO), Err(BarrierError::Corrupted));

    // A reentrant mutex whose nesting count a peer maxed out: Corrupted on relock.
    let rm = ReentrantMutex::new(0u32);
    let g = rm.lock().unwrap();
    scribble(&rm, 4, u32::MAX);
    assert!(matches!(rm.lock(), Err(LockError::Corrupted)));
    assert!(matches!(rm.try_lock(), Err(LockError::Corrupted)));
    scribble(&rm, 4, 1);
    drop(g);
    assert!(!rm.is_locked());

    // A semaphore at u32::MAX permits: release does not panic.
    let s = Semaphore::new(0);
    scribble(&s, 0, u32::MAX);
    s.release();
    assert_eq!(s.value(), u32::MAX);

    // Garbage in a mutex word: an id no participant can have is a dead holder.
    let m = Mutex::new(3u32);
    scribble(&m, 0, 1);
    match m.lock_timeout(Duration::from_secs(5)) {
        Err(LockError::OwnerDead(g)) => g.make_consistent(),
        other => panic!("expected OwnerDead, got {:?}", other.map(|_| ())),
    }
    // A cell's word scribbled the same way is recovered from at once.
    let v = Value::new(4u64);
    scribble(&v, 0, 1);
    assert_eq!(v.get_timeout(Duration::from_secs(5)), Ok(4));
}

//! Loom models of the robust mutex's lock word: contended hand-off through the futex
//! (WAITERS bit, wake on unlock) and `try_lock`. Owner death is in `loom_mutex_death.rs`.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_mutex`.
#![cfg(shmkit_loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use shmkit::{LockError, Mutex, ReentrantMutex};

/// Two threads increment under the lock: loom checks that the accesses to the cell
/// never overlap and are ordered (Acquire/Release hand-off), and that a sleeper is
/// always woken (a lost wake-up is a reported deadlock).
#[test]
fn contended_handoff_two_threads() {
    loom::model(|| {
        let m = Arc::new(Mutex::new(UnsafeCell::new(0u32)));
        let other = {
            let m = m.clone();
            thread::spawn(move || {
                let g = m.lock().unwrap();
                // SAFETY: the lock gives exclusive access; loom checks it.
                g.with_mut(|p| unsafe { *p += 1 });
            })
        };
        {
            let g = m.lock().unwrap();
            // SAFETY: as above.
            g.with_mut(|p| unsafe { *p += 1 });
        }
        other.join().unwrap();
        let g = m.lock().unwrap();
        // SAFETY: as above.
        assert_eq!(g.with(|p| unsafe { *p }), 2);
        drop(g);
        assert!(!m.is_locked());
    });
}

/// Three threads: two may sleep at once, so the WAITERS bit must survive a hand-off
/// to a woken sleeper (else the second sleeper is never woken).
#[test]
fn contended_handoff_three_threads() {
    let mut builder = loom::model::Builder::new();
    // Three contenders: keep the bound at 2 so the model stays under a minute.
    builder.preemption_bound = Some(
        std::env::var("LOOM_MAX_PREEMPTIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2)
            .min(2),
    );
    builder.check(|| {
        let m = Arc::new(Mutex::new(UnsafeCell::new(0u32)));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || {
                    let g = m.lock().unwrap();
                    // SAFETY: the lock gives exclusive access; loom checks it.
                    g.with_mut(|p| unsafe { *p += 1 });
                })
            })
            .collect();
        {
            let g = m.lock().unwrap();
            // SAFETY: as above.
            g.with_mut(|p| unsafe { *p += 1 });
        }
        for t in threads {
            t.join().unwrap();
        }
        // SAFETY: as above.
        assert_eq!(m.lock().unwrap().with(|p| unsafe { *p }), 3);
    });
}

/// `try_lock` never blocks: it either gets the lock or reports `WouldBlock`, and the
/// lock is free once both are done.
#[test]
fn try_lock_would_block_or_succeeds() {
    loom::model(|| {
        let m = Arc::new(Mutex::new(0u32));
        let other = {
            let m = m.clone();
            thread::spawn(move || match m.try_lock() {
                Ok(mut g) => {
                    *g += 1;
                    true
                }
                Err(LockError::WouldBlock) => false,
                Err(e) => panic!("unexpected {e}"),
            })
        };
        let mine = match m.try_lock() {
            Ok(mut g) => {
                *g += 1;
                true
            }
            Err(LockError::WouldBlock) => false,
            Err(e) => panic!("unexpected {e}"),
        };
        let theirs = other.join().unwrap();
        assert!(mine || theirs);
        assert_eq!(*m.lock().unwrap(), u32::from(mine) + u32::from(theirs));
    });
}

/// A reentrant lock: the holder nests, another thread waits for the last guard.
#[test]
fn reentrant_nests_and_excludes() {
    loom::model(|| {
        let m = Arc::new(ReentrantMutex::new(UnsafeCell::new(0u32)));
        let other = {
            let m = m.clone();
            thread::spawn(move || {
                let g = m.lock().unwrap();
                // SAFETY: one holding thread at a time; loom checks it.
                g.with_mut(|p| unsafe { *p += 1 });
            })
        };
        {
            let outer = m.lock().unwrap();
            let inner = m.lock().unwrap();
            // SAFETY: as above.
            inner.with_mut(|p| unsafe { *p += 1 });
            drop(inner);
            // SAFETY: as above.
            outer.with_mut(|p| unsafe { *p += 1 });
        }
        other.join().unwrap();
        // SAFETY: as above.
        assert_eq!(m.lock().unwrap().with(|p| unsafe { *p }), 3);
    });
}

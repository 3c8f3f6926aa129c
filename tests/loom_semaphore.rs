//! Loom models of `Semaphore` and `BoundedSemaphore`.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_semaphore`.
#![cfg(shmkit_loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use shmkit::{BoundedSemaphore, Error, Semaphore};

/// A permit released by one thread reaches a thread blocked in `acquire` (no lost
/// wake-up), with the releaser's writes visible.
#[test]
fn release_wakes_acquirer() {
    loom::model(|| {
        let shared = Arc::new((Semaphore::new(0), UnsafeCell::new(0u32)));
        let releaser = {
            let shared = shared.clone();
            thread::spawn(move || {
                // SAFETY: written before release, read after acquire; loom checks it.
                shared.1.with_mut(|p| unsafe { *p = 7 });
                shared.0.release();
            })
        };
        shared.0.acquire();
        // SAFETY: as above.
        assert_eq!(shared.1.with(|p| unsafe { *p }), 7);
        assert_eq!(shared.0.value(), 0);
        releaser.join().unwrap();
    });
}

/// `Semaphore(1)` is a lock: two threads never overlap in between.
#[test]
fn one_permit_excludes() {
    loom::model(|| {
        let shared = Arc::new((Semaphore::new(1), UnsafeCell::new(0u32)));
        let other = {
            let shared = shared.clone();
            thread::spawn(move || {
                shared.0.acquire();
                // SAFETY: one permit: exclusive; loom checks it.
                shared.1.with_mut(|p| unsafe { *p += 1 });
                shared.0.release();
            })
        };
        shared.0.acquire();
        // SAFETY: as above.
        shared.1.with_mut(|p| unsafe { *p += 1 });
        shared.0.release();
        other.join().unwrap();
        // SAFETY: every thread is done.
        assert_eq!(shared.1.with(|p| unsafe { *p }), 2);
        assert_eq!(shared.0.value(), 1);
    });
}

/// Two racing releases of a `BoundedSemaphore(1)` with one permit out: exactly one
/// succeeds, the other is `Overflow` and changes nothing.
#[test]
fn bounded_release_race() {
    loom::model(|| {
        let s = Arc::new(BoundedSemaphore::new(1));
        assert!(s.try_acquire());
        let other = {
            let s = s.clone();
            thread::spawn(move || s.release())
        };
        let mine = s.release();
        let theirs = other.join().unwrap();
        assert!(matches!(
            (mine, theirs),
            (Ok(()), Err(Error::Overflow)) | (Err(Error::Overflow), Ok(()))
        ));
        assert_eq!(s.value(), 1);
    });
}

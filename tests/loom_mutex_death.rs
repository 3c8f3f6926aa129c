//! Loom models of the robust mutex's owner-death path: a holder "killed" (guard
//! leaked, `loom_die()`) while others wait. Sleep slices expire in this file (a dead
//! holder never wakes anyone; in production the waiter's 5 ms slice runs out), so
//! waiters poll the holder's liveness as they do after each slice.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_mutex_death`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, Ordering};
use loom::thread;
use shmkit::__loom::{loom_die, loom_set_slices_expire};
use shmkit::{LockError, Mutex};

/// A waiter blocked (or arriving) while the holder dies gets `OwnerDead`, repairs,
/// and the mutex is normal again.
#[test]
fn waiter_gets_owner_dead_then_recovers() {
    loom_set_slices_expire(true);
    loom::model(|| {
        let m = Arc::new(Mutex::new(0u32));
        let mut g = m.lock().unwrap();
        *g = 1;
        let waiter = {
            let m = m.clone();
            thread::spawn(move || match m.lock() {
                Err(LockError::OwnerDead(mut g)) => {
                    assert_eq!(*g, 1, "the dead holder's writes are visible");
                    *g = 2;
                    g.make_consistent();
                }
                other => panic!("expected OwnerDead, got {:?}", other.map(|_| ())),
            })
        };
        // Killed while holding it.
        core::mem::forget(g);
        loom_die();
        waiter.join().unwrap();
        // (Only joins and plain checks below: the dead thread runs no kit code.)
    });
}

/// Two waiters race to take over from a dead holder: exactly one gets `OwnerDead`,
/// the other then gets the repaired lock normally. (The holder dies before they start,
/// so that the model explores their race, not the polling of a live holder;
/// `waiter_gets_owner_dead_then_recovers` covers a death while a waiter waits.)
#[test]
fn exactly_one_waiter_takes_over() {
    loom_set_slices_expire(true);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    // The waiter that loses polls (yield, liveness check) while the winner holds it.
    builder.max_branches = 20_000;
    builder.check(|| {
        let m = Arc::new(Mutex::new(0u32));
        let dead_seen = Arc::new(AtomicU32::new(0));
        let g = m.lock().unwrap();
        core::mem::forget(g);
        loom_die();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (m, dead_seen) = (m.clone(), dead_seen.clone());
                thread::spawn(move || match m.lock() {
                    Ok(mut g) => *g += 1,
                    Err(LockError::OwnerDead(mut g)) => {
                        dead_seen.fetch_add(1, Ordering::Relaxed);
                        *g += 1;
                        g.make_consistent();
                    }
                    Err(e) => panic!("unexpected {e}"),
                })
            })
            .collect();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(dead_seen.load(Ordering::Relaxed), 1);
    });
}

/// An `OwnerDead` guard dropped without `make_consistent` leaves the mutex not
/// recoverable for everyone after.
#[test]
fn unrepaired_owner_dead_is_not_recoverable() {
    loom_set_slices_expire(true);
    loom::model(|| {
        let m = Arc::new(Mutex::new(0u32));
        let g = m.lock().unwrap();
        let waiter = {
            let m = m.clone();
            thread::spawn(move || {
                let guard = m.lock().unwrap_err().into_guard().expect("OwnerDead");
                drop(guard);
                assert!(matches!(m.lock(), Err(LockError::NotRecoverable)));
                assert!(matches!(m.try_lock(), Err(LockError::NotRecoverable)));
            })
        };
        core::mem::forget(g);
        loom_die();
        waiter.join().unwrap();
    });
}

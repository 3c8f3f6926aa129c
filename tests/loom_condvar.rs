//! Loom model of `Condvar` with `Mutex`: no lost wake-up.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_condvar`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::thread;
use shmkit::{Condvar, Mutex};

/// The consumer waits for a flag the producer sets under the mutex and then
/// notifies: in every interleaving the consumer wakes (loom reports a lost wake-up as
/// a deadlock).
#[test]
fn notify_one_after_change_is_never_lost() {
    loom::model(|| {
        let shared = Arc::new((Mutex::new(0u32), Condvar::new()));
        let producer = {
            let shared = shared.clone();
            thread::spawn(move || {
                *shared.0.lock().unwrap() = 1;
                shared.1.notify_one();
            })
        };
        let g = shared
            .1
            .wait_while(shared.0.lock().unwrap(), |v| *v == 0)
            .unwrap();
        assert_eq!(*g, 1);
        drop(g);
        producer.join().unwrap();
    });
}

/// Same with the notification sent while still holding the mutex.
#[test]
fn notify_all_under_the_lock() {
    loom::model(|| {
        let shared = Arc::new((Mutex::new(0u32), Condvar::new()));
        let producer = {
            let shared = shared.clone();
            thread::spawn(move || {
                let mut g = shared.0.lock().unwrap();
                *g = 1;
                shared.1.notify_all();
            })
        };
        let g = shared
            .1
            .wait_while(shared.0.lock().unwrap(), |v| *v == 0)
            .unwrap();
        assert_eq!(*g, 1);
        drop(g);
        producer.join().unwrap();
    });
}

//! Loom model of `Event`: a `set` then `clear` still wakes the waiter.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_event`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::thread;
use shmkit::Event;

/// Whatever the interleaving, a waiter returns after `set` even though the flag was
/// cleared right after (generation), and never deadlocks.
#[test]
fn set_then_clear_wakes_waiter() {
    loom::model(|| {
        let e = Arc::new(Event::new());
        let setter = {
            let e = e.clone();
            thread::spawn(move || {
                e.set();
                e.clear();
            })
        };
        e.wait();
        setter.join().unwrap();
        assert!(!e.is_set());
    });
}

/// Two waiters, one set: both return.
#[test]
fn set_wakes_every_waiter() {
    loom::model(|| {
        let e = Arc::new(Event::new());
        let waiter = {
            let e = e.clone();
            thread::spawn(move || e.wait())
        };
        let setter = {
            let e = e.clone();
            thread::spawn(move || e.set())
        };
        e.wait();
        waiter.join().unwrap();
        setter.join().unwrap();
        assert!(e.is_set());
    });
}

//! Loom model of `shmkit::wait` on several objects at once: it announces itself on
//! every object's notifier, runs one barrier, re-checks, and sleeps on all their futex
//! words together (`futex_waitv`, modelled as the kernel defines it: a wake on any
//! word ends the sleep and dequeues the sleeper from all). A put to either object
//! while the waiter is on its way to sleep must end the wait: no lost wake-up.
//!
//! Checked to fail (deadlock) when the re-check after the announcements is removed.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_wait`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::thread;
use shmkit::{Queue, wait};

#[test]
fn a_put_to_either_object_ends_the_wait() {
    loom::model(|| {
        shmkit::set_wait_strategy(shmkit::WaitStrategy::Park);
        let qs = Arc::new((Queue::<u32, 2>::new(), Queue::<u32, 2>::new()));
        let putter = {
            let qs = qs.clone();
            thread::spawn(move || qs.1.put(7).unwrap())
        };
        let ready = wait(&[&qs.0, &qs.1], None).unwrap();
        assert!(ready.contains(1) && !ready.contains(0));
        assert_eq!(qs.1.try_get(), Ok(7));
        putter.join().unwrap();
    });
}

//! Loom model of the facade's futex protocol: a flag handed over through a
//! `Notifier`, the sleep/wake path every blocking call in the kit uses.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" cargo test --release --test loom_notifier`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, Ordering};
use loom::thread;
use shmkit::__loom::{Deadline, Notifier};

/// A waiter blocked on the flag always sees the waker's store: no lost wake-up.
#[test]
fn flag_handoff_has_no_lost_wakeup() {
    loom::model(|| {
        let shared = Arc::new((Notifier::new(), AtomicU32::new(0)));
        let waker = {
            let shared = shared.clone();
            thread::spawn(move || {
                shared.1.store(1, Ordering::Release);
                shared.0.notify_one();
            })
        };
        let got = shared.0.wait_until(Deadline::NEVER, || {
            (shared.1.load(Ordering::Acquire) == 1).then_some(7)
        });
        assert_eq!(got, Some(7));
        waker.join().unwrap();
    });
}

/// Two waiters, one notify_all: both wake.
#[test]
fn notify_all_wakes_every_waiter() {
    loom::model(|| {
        let shared = Arc::new((Notifier::new(), AtomicU32::new(0)));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let shared = shared.clone();
                thread::spawn(move || {
                    shared
                        .0
                        .wait_until(Deadline::NEVER, || {
                            (shared.1.load(Ordering::Acquire) == 1).then_some(())
                        })
                        .is_some()
                })
            })
            .collect();
        shared.1.store(1, Ordering::Release);
        shared.0.notify_all();
        for w in waiters {
            assert!(w.join().unwrap());
        }
    });
}

/// A zero timeout returns at once with the condition's current answer.
#[test]
fn zero_timeout_checks_once() {
    loom::model(|| {
        let n = Notifier::new();
        let r: Option<()> = n.wait_until(Deadline::after(core::time::Duration::ZERO), || None);
        assert_eq!(r, None);
    });
}

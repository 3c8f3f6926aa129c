//! A waiter killed while asleep must not make every later wake pay a system call:
//! its announcement expires (see `sync::notifier`). Counted with
//! `shmkit::stats::futex_wakes`.
// Tests name core atomics directly: they are not algorithms under loom.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::Child;
use shmkit::{Condvar, Mutex, Queue, Semaphore, Shared, ShmSafe};

#[repr(C)]
struct Arena {
    queue: Queue<u64, 4>,
    sem: Semaphore,
    m: Mutex<u32>,
    cv: Condvar,
    asleep: AtomicU32,
}

// SAFETY: repr(C), kit primitives and an atomic; no pointers, no Drop.
unsafe impl ShmSafe for Arena {}

/// How many `FUTEX_WAKE`s `f` made.
fn wakes(f: impl FnOnce()) -> u64 {
    let before = shmkit::stats::futex_wakes();
    f();
    shmkit::stats::futex_wakes() - before
}

#[test]
fn sleepers_killed_asleep_stop_costing_system_calls() {
    let a = Shared::new(Arena {
        queue: Queue::new(),
        sem: Semaphore::new(0),
        m: Mutex::new(0),
        cv: Condvar::new(),
        asleep: AtomicU32::new(0),
    })
    .unwrap();
    let a_ = &a;
    // Three children fall asleep (on the queue, the semaphore, the condition
    // variable) and are killed there.
    let sleepers = [
        Child::spawn(move || {
            a_.asleep.fetch_add(1, Ordering::SeqCst);
            let _ = a_.queue.get();
            1
        }),
        Child::spawn(move || {
            a_.asleep.fetch_add(1, Ordering::SeqCst);
            a_.sem.acquire();
            1
        }),
        Child::spawn(move || {
            let g = a_.m.lock().unwrap();
            a_.asleep.fetch_add(1, Ordering::SeqCst);
            let _ = a_.cv.wait(g);
            1
        }),
    ];
    assert!(common::eventually(Duration::from_secs(10), || a
        .asleep
        .load(Ordering::SeqCst)
        == 3));
    // Let them reach the futex (they spin first).
    std::thread::sleep(Duration::from_millis(200));
    for mut child in sleepers {
        child.process().kill().unwrap();
        let _ = child.join();
    }
    let traffic = |n: u64| {
        for i in 0..n {
            a.queue.put(i).unwrap();
            assert_eq!(a.queue.get(), Ok(i));
            a.sem.release();
            a.sem.acquire();
            a.cv.notify_one();
        }
    };
    // Right after the deaths the dead sleepers still count: wakes are paid.
    let early = wakes(|| traffic(100));
    assert!(
        early >= 100,
        "the dead sleepers were not counted at all ({early} wakes): the test shows nothing"
    );
    // Once their announcements are stale, the next wake clears them: from then on,
    // no system call per operation.
    std::thread::sleep(Duration::from_millis(4500));
    let late = wakes(|| traffic(1000));
    assert!(
        late <= 3,
        "{late} FUTEX_WAKEs for 1000 rounds after the dead sleepers' announcements expired"
    );
}

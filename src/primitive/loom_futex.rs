//! The futex modelled for loom, exactly as the kernel defines it: a registry of parked
//! threads keyed by word address. `wait` compares the word and enqueues the thread
//! under one lock (the kernel's hash-bucket lock), then parks; `wake` dequeues and
//! unparks up to `count` waiters. A missed wake-up is therefore not papered over by
//! polling: loom reports it as a deadlock. It answers with the kernel wrapper's own
//! [`FutexWait`].
//!
//! Timed sleeps end when time passes in the model: at the clock tick and at a death
//! (see `loom_clock`).

use super::{AtomicU32, Deadline, Ordering, loom_clock};
use crate::sys::futex::FutexWait;
use loom::sync::Mutex;
use loom::thread::Thread;
use std::vec::Vec;

/// The parked: (word address, thread, sleeps with a finite deadline), in arrival
/// order.
struct Futexes {
    queue: Vec<(usize, Thread, bool)>,
}

loom::lazy_static! {
    static ref QUEUE: Mutex<Futexes> = Mutex::new(Futexes { queue: Vec::new() });
}

fn key(word: &AtomicU32) -> usize {
    core::ptr::from_ref(word) as usize
}

pub(super) fn wait(word: &AtomicU32, expected: u32, deadline: Deadline) -> FutexWait {
    waitv(&[(word, expected)], deadline)
}

/// `futex_waitv`: sleeps on every word at once while each holds its expected value;
/// a wake on any of them dequeues the sleeper from all (as the kernel does).
pub(super) fn waitv(words: &[(&AtomicU32, u32)], deadline: Deadline) -> FutexWait {
    let me = loom::thread::current();
    let timed = deadline.is_finite();
    {
        let mut f = QUEUE.lock().unwrap();
        // The clock is read under the same lock the tick (and a death's wake-up)
        // takes: a timed sleep is either ended by them or sees them here.
        if timed && deadline.expired() {
            return FutexWait::TimedOut;
        }
        // The kernel compares and enqueues atomically with respect to wakers.
        if words
            .iter()
            .any(|(word, expected)| word.load(Ordering::SeqCst) != *expected)
        {
            return FutexWait::Woken;
        }
        for (word, _) in words {
            f.queue.push((key(word), me.clone(), timed));
        }
    }
    loom::thread::park();
    let mut f = QUEUE.lock().unwrap();
    f.queue.retain(|(_, t, _)| t.id() != me.id());
    if timed && deadline.expired() {
        FutexWait::TimedOut
    } else {
        FutexWait::Woken
    }
}

/// The clock ticks: every finite deadline passes, every timed sleep ends.
pub(super) fn tick() {
    let mut f = QUEUE.lock().unwrap();
    loom_clock::tick();
    end_timed_sleeps(&mut f);
}

/// A death: every timed sleep ends (its deadline has passed, see `loom_clock`).
pub(super) fn death() {
    let mut f = QUEUE.lock().unwrap();
    end_timed_sleeps(&mut f);
}

fn end_timed_sleeps(f: &mut Futexes) {
    f.queue.retain(|(_, t, timed)| {
        if *timed {
            t.unpark();
        }
        !*timed
    });
}

pub(super) fn wake(word: &AtomicU32, count: u32) -> usize {
    let mut f = QUEUE.lock().unwrap();
    let queue = &mut f.queue;
    let k = key(word);
    let mut woken = 0usize;
    let mut i = 0;
    while i < queue.len() && woken < count as usize {
        if queue[i].0 == k {
            let (_, thread, _) = queue.remove(i);
            // A multi-word sleeper leaves every queue it was on.
            queue.retain(|(_, t, _)| t.id() != thread.id());
            i = queue
                .iter()
                .position(|(w, _, _)| *w == k)
                .unwrap_or(queue.len());
            thread.unpark();
            woken += 1;
        } else {
            i += 1;
        }
    }
    woken
}

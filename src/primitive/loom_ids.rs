//! Participant ids for loom models: each model thread gets an id of its own on first
//! use (it stands for a process), and is dead once it called `die`.

use super::{Liveness, loom_clock, loom_futex};
use loom::sync::Mutex;
use std::vec::Vec;

loom::lazy_static! {
    /// Next id to hand out, and the ids that have "died".
    static ref IDS: Mutex<(i32, Vec<i32>)> = Mutex::new((1, Vec::new()));
}
loom::thread_local! {
    static MINE: core::cell::Cell<i32> = core::cell::Cell::new(0);
}

pub(super) fn current() -> i32 {
    MINE.with(|mine| {
        if mine.get() == 0 {
            let mut ids = IDS.lock().unwrap();
            mine.set(ids.0);
            ids.0 += 1;
        }
        mine.get()
    })
}

pub(super) fn liveness(id: i32) -> Liveness {
    if IDS.lock().unwrap().1.contains(&id) {
        Liveness::Dead
    } else {
        Liveness::Alive
    }
}

/// The calling model thread dies: its id reads dead from now on, and time passes as
/// far as crash detection needs (see `loom_clock`).
pub(super) fn die() {
    let me = current();
    IDS.lock().unwrap().1.push(me);
    loom_clock::count_death();
    loom_futex::death();
}

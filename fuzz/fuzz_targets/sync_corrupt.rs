//! Two threads drive the sync primitives (Mutex, ReentrantMutex, Semaphore,
//! BoundedSemaphore, Condvar, Event, Barrier, Value) with short timeouts while the
//! input also scribbles random words into them, as a hostile peer would. Every call
//! must return — no panic, no hang — within its deadline (plus slack for a loaded
//! machine); what it returns may be anything the API allows.
#![no_main]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use shmkit::{
    Barrier, BoundedSemaphore, Condvar, Event, LockError, Mutex, ReentrantMutex, Semaphore,
    Value,
};

#[repr(C)]
struct Prims {
    m: Mutex<u64>,
    rm: ReentrantMutex<u64>,
    s: Semaphore,
    bs: BoundedSemaphore,
    cv: Condvar,
    ev: Event,
    b: Barrier,
    v: Value<u64>,
}

/// The longest any call may take beyond its own timeout.
const SLACK: Duration = Duration::from_secs(2);

/// Runs `f`, which waits at most `timeout`; panics if it overruns.
fn within<R>(timeout: Duration, what: &str, f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let r = f();
    let took = start.elapsed();
    assert!(took <= timeout + SLACK, "{what} took {took:?} (timeout {timeout:?})");
    r
}

/// Writes `value` into the 4-byte word at `offset` (rounded down to 4) of `p`.
fn scribble(p: &Prims, offset: usize, value: u32) {
    let size = size_of::<Prims>();
    let at = (offset % size) & !3;
    // SAFETY: in bounds and 4-aligned (every field of `Prims` is a kit primitive made of
    // 32- and 64-bit words, each atomic or written only through atomics by the kit);
    // an atomic store is what a scribbling peer in another process does.
    let word = unsafe { &*std::ptr::from_ref(p).cast::<u8>().add(at).cast::<AtomicU32>() };
    word.store(value, Ordering::Relaxed);
}

fn run(p: &Prims, ops: &[u8]) {
    let mut i = 0;
    while i + 3 < ops.len() {
        let (op, a, b, c) = (ops[i], ops[i + 1], ops[i + 2], ops[i + 3]);
        i += 4;
        let t = Duration::from_micros(u64::from(a % 8) * 250);
        match op % 14 {
            0 => within(t, "Mutex::lock_timeout", || match p.m.lock_timeout(t) {
                Ok(mut g) => *g += 1,
                Err(LockError::OwnerDead(g)) => {
                    if b & 1 == 0 {
                        g.make_consistent();
                    }
                }
                Err(_) => {}
            }),
            1 => within(Duration::ZERO, "Mutex::try_lock", || {
                if let Err(LockError::OwnerDead(g)) = p.m.try_lock() {
                    g.make_consistent();
                }
            }),
            2 => within(t * 2, "ReentrantMutex nested", || {
                if let Ok(outer) = p.rm.lock_timeout(t) {
                    let _inner = p.rm.lock_timeout(t);
                    drop(outer);
                }
            }),
            3 => {
                within(t, "Semaphore::acquire_timeout", || p.s.acquire_timeout(t));
            }
            4 => within(Duration::ZERO, "Semaphore::release", || p.s.release()),
            5 => within(t, "BoundedSemaphore", || {
                let _ = p.bs.release();
                let _ = p.bs.acquire_timeout(t);
            }),
            6 => within(t * 2, "Condvar::wait_timeout", || {
                if let Ok(g) = p.m.lock_timeout(t) {
                    let _ = p.cv.wait_timeout(g, t);
                }
            }),
            7 => within(Duration::ZERO, "Condvar::notify", || {
                if b & 1 == 0 {
                    p.cv.notify_one()
                } else {
                    p.cv.notify_all()
                }
            }),
            8 => within(t, "Event", || match b % 3 {
                0 => p.ev.set(),
                1 => p.ev.clear(),
                _ => {
                    p.ev.wait_timeout(t);
                }
            }),
            9 => {
                let _ = within(t, "Barrier::wait_timeout", || p.b.wait_timeout(t));
            }
            10 => within(Duration::ZERO, "Barrier::reset/abort", || {
                if b & 1 == 0 {
                    p.b.reset()
                } else {
                    p.b.abort()
                }
            }),
            11 => within(t, "Value", || {
                let _ = p.v.get_timeout(t);
                let _ = p.v.set_timeout(u64::from(c), t);
            }),
            _ => scribble(p, usize::from(b) | usize::from(c) << 8, u32::from_le_bytes([a, b, c, op])),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let p = Box::new(Prims {
        m: Mutex::new(0),
        rm: ReentrantMutex::new(0),
        s: Semaphore::new(1),
        bs: BoundedSemaphore::new(2),
        cv: Condvar::new(),
        ev: Event::new(),
        b: Barrier::new(2),
        v: Value::new(0),
    });
    let (left, right) = data.split_at(data.len() / 2);
    std::thread::scope(|s| {
        s.spawn(|| run(&p, left));
        run(&p, right);
    });
});

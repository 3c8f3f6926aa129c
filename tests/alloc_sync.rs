//! A counting global allocator shows that lock, unlock, acquire, release, wait,
//! notify, set and get make no heap allocation — uncontended, contended, and on the
//! timed-out and owner-liveness-check paths. Only the measuring thread's allocations
//! are counted (the test harness's own threads may allocate at any time).
// Tests use std's atomics as plain shared counters; only the kit's algorithms must
// take theirs from the loom facade.
#![allow(clippy::disallowed_types)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use shmkit::{
    Array, Barrier, BoundedSemaphore, Condvar, Event, Mutex, ReentrantMutex, Semaphore, Value,
};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Counting on this thread? (Const-initialised, no destructor: reading it never
    /// allocates.)
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn counting_here() -> bool {
    COUNTING.try_with(std::cell::Cell::get).unwrap_or(false)
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting_here() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout goes to the system allocator unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting_here() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for `alloc`/`dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made.
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::SeqCst)
}

#[test]
fn sync_and_cells_do_not_allocate() {
    let m = Mutex::new(0u64);
    let rm = ReentrantMutex::new(0u64);
    let sem = Semaphore::new(1);
    let bsem = BoundedSemaphore::new(1);
    let cv = Condvar::new();
    let ev = Event::new();
    let bar = Barrier::new(1);
    let v = Value::new(0u64);
    let a = Array::new([0u32; 16]);
    // The counter counts.
    assert_eq!(
        allocations(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8)))),
        1
    );
    // Warm-up: per-thread tid cache, the fork handler registration.
    drop(m.lock());

    let n = allocations(|| {
        for i in 0..100u64 {
            *m.lock().unwrap() += 1;
            drop(m.try_lock().unwrap());
            drop(m.lock_timeout(Duration::from_millis(1)).unwrap());
            let g1 = rm.lock().unwrap();
            let g2 = rm.try_lock().unwrap();
            drop((g2, g1));
            sem.acquire();
            assert!(!sem.try_acquire());
            sem.release();
            assert!(sem.acquire_timeout(Duration::ZERO));
            sem.release();
            bsem.acquire();
            bsem.release().unwrap();
            assert!(bsem.release().is_err());
            cv.notify_one();
            cv.notify_all();
            ev.set();
            ev.wait();
            assert!(ev.wait_timeout(Duration::ZERO));
            ev.clear();
            bar.wait().unwrap();
            v.set(i);
            assert_eq!(v.get(), i);
            v.update(|x| *x += 1);
            *v.lock() += 1;
            a.set((i % 16) as usize, i as u32).unwrap();
            assert_eq!(a.get((i % 16) as usize), Some(i as u32));
            assert!(a.set(99, 0).is_err());
        }
    });
    assert_eq!(n, 0, "allocations on the uncontended paths");

    // Timed-out waits (these sleep on the futex).
    let n = allocations(|| {
        let (g, r) = cv
            .wait_timeout(m.lock().unwrap(), Duration::from_millis(2))
            .unwrap();
        assert!(r.timed_out());
        drop(g);
        assert!(!ev.wait_timeout(Duration::from_millis(2)));
        let empty = Semaphore::new(0);
        assert!(!empty.acquire_timeout(Duration::from_millis(2)));
    });
    assert_eq!(n, 0, "allocations on the timed-out paths");

    // Contended: another thread holds the mutex; we sleep on the lock word, check the
    // holder's liveness at the deadline, and then get it once it is released.
    let held = AtomicBool::new(false);
    let release = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let g = m.lock().unwrap();
            held.store(true, Ordering::SeqCst);
            while !release.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(g);
        });
        while !held.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let n = allocations(|| {
            assert!(m.lock_timeout(Duration::from_millis(12)).is_err());
            assert!(m.lock_timeout(Duration::ZERO).is_err());
            release.store(true, Ordering::SeqCst);
            drop(m.lock_timeout(Duration::from_secs(20)).unwrap());
        });
        assert_eq!(n, 0, "allocations on the contended paths");
    });
}

//! Zero heap allocations per send/recv/put/get: a counting global allocator watches
//! this thread while it moves messages through a `Pipe` and items through a `Queue`
//! (and `JoinableQueue`, and `wait`) after a warm-up.
#![allow(clippy::disallowed_types)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shmkit::{JoinableQueue, Pipe, Queue, wait};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHED.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHED.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.load(Ordering::Relaxed);
    WATCHED.with(|w| w.set(true));
    f();
    WATCHED.with(|w| w.set(false));
    ALLOCS.load(Ordering::Relaxed) - before
}

#[test]
fn the_data_path_never_allocates() {
    let pipe = Box::new(Pipe::<4096>::new());
    let (a, b) = pipe.ends();
    let q = Box::new(Queue::<[u64; 4], 64>::new());
    let jq = Box::new(JoinableQueue::<u64, 8>::new());
    let mut buf = [0u8; 512];
    let mut round = |i: u64| {
        a.send_bytes(&buf[..(i as usize * 13) % 500]).unwrap();
        a.send(&i).unwrap();
        a.send_with(24, |m| m.fill(i as u8)).unwrap();
        b.recv_bytes_into(&mut buf).unwrap();
        assert_eq!(b.recv::<u64>().unwrap(), i);
        b.recv_with(|m| assert_eq!(m.len(), 24)).unwrap();
        assert!(b.try_recv_bytes_into(&mut buf).is_err());
        q.put([i; 4]).unwrap();
        q.try_put([i; 4]).unwrap();
        assert_eq!(q.get().unwrap(), [i; 4]);
        assert_eq!(q.get_timeout(Duration::from_secs(1)).unwrap(), [i; 4]);
        assert!(q.try_get().is_err());
        jq.put(i).unwrap();
        assert_eq!(jq.get().unwrap(), i);
        jq.task_done().unwrap();
        a.send(&i).unwrap();
        assert!(wait(&[&b, &*q], Some(Duration::ZERO)).unwrap().contains(0));
        b.recv::<u64>().unwrap();
    };
    // The counter itself works.
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );
    // Warm-up: the first use claims the ends and caches the pid.
    round(0);
    let n = allocations_in(|| {
        for i in 1..10_000 {
            round(i);
        }
    });
    assert_eq!(n, 0, "{n} heap allocations on the data path");
}

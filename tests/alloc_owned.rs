//! Owned pipe ends allocate nothing on the data path (and nothing when made from an
//! `Arc` that exists: a clone of it is a count, not an allocation). A counting global
//! allocator watches this thread after a warm-up.
#![allow(clippy::disallowed_types)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shmkit::{Pipe, Shared, wait};

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

fn allocations_in<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCS.load(Ordering::Relaxed);
    WATCHED.with(|w| w.set(true));
    let r = f();
    WATCHED.with(|w| w.set(false));
    (ALLOCS.load(Ordering::Relaxed) - before, r)
}

#[test]
fn owned_ends_never_allocate_on_the_data_path() {
    let pipe = Arc::new(Shared::<Pipe<4096>>::new_zeroed().unwrap());
    let (made, (a, b)) = allocations_in(|| Pipe::owned_ends(&pipe));
    assert_eq!(made, 0, "making owned ends from an Arc allocates nothing");
    let mut buf = [0u8; 512];
    let mut round = |i: u64| {
        a.send_bytes(&buf[..(i as usize * 13) % 500]).unwrap();
        a.send(&i).unwrap();
        a.send_with(24, |m| m.fill(i as u8)).unwrap();
        b.recv_bytes_into(&mut buf).unwrap();
        assert_eq!(b.recv::<u64>().unwrap(), i);
        b.recv_with(|m| assert_eq!(m.len(), 24)).unwrap();
        assert!(b.try_recv_bytes_into(&mut buf).is_err());
        b.send(&i).unwrap();
        assert!(wait(&[&a], Some(Duration::ZERO)).unwrap().contains(0));
        assert_eq!(a.recv::<u64>().unwrap(), i);
    };
    for i in 0..100 {
        round(i); // warm-up: thread ids, the registry, liveness clocks
    }
    let (n, ()) = allocations_in(|| (100..10_100).for_each(&mut round));
    assert_eq!(n, 0, "allocations in 10 000 rounds over owned ends");
}

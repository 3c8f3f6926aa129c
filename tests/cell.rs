//! `Value` and `Array` across threads and forked processes, including a holder killed
//! while it holds the cell's lock (the cells recover by themselves).
// Tests use std's atomics as plain shared counters; only the kit's algorithms must
// take theirs from the loom facade.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Child, eventually};
use shmkit::{Array, Error, Shared, ShmSafe, Value};

#[test]
fn value_get_set_update_lock() {
    let v = Value::new(5i64);
    assert_eq!(v.get(), 5);
    v.set(-3);
    assert_eq!(
        v.update(|x| {
            *x *= 2;
            *x
        }),
        -6
    );
    *v.lock() += 1;
    assert_eq!(v.get(), -5);
    assert_eq!(format!("{v:?}"), "Value { value: -5 }");
    let g = v.lock();
    assert_eq!(format!("{v:?}"), "Value { value: <locked> }");
    drop(g);
    assert_eq!(Value::<u8>::default().get(), 0);
}

#[test]
fn value_n_processes_times_m_increments() {
    const N: u64 = 4;
    const M: u64 = 5_000;
    let v = Shared::new(Value::new(0u64)).unwrap();
    let children: Vec<_> = (0..N)
        .map(|i| {
            Child::spawn(|| {
                for _ in 0..M {
                    if i % 2 == 0 {
                        *v.lock() += 1;
                    } else {
                        v.update(|x| *x += 1);
                    }
                }
                0
            })
        })
        .collect();
    for c in children {
        assert!(c.join().success());
    }
    assert_eq!(v.get(), N * M);
}

#[test]
fn array_checked_indexing_and_copies() {
    let a = Array::new([1u32, 2, 3, 4]);
    assert_eq!(a.len(), 4);
    assert!(!a.is_empty());
    assert_eq!(a.get(3), Some(4));
    assert_eq!(a.get(4), None);
    assert_eq!(a.get(usize::MAX), None);
    assert_eq!(
        a.set(4, 9),
        Err(Error::IndexOutOfBounds { index: 4, len: 4 })
    );
    assert_eq!(a.set(0, 10), Ok(()));
    let mut out = [0u32; 6];
    assert_eq!(a.copy_to(&mut out), 4);
    assert_eq!(out, [10, 2, 3, 4, 0, 0]);
    let mut short = [0u32; 2];
    assert_eq!(a.copy_to(&mut short), 2);
    assert_eq!(short, [10, 2]);
    assert_eq!(a.copy_from(&[7, 8]), 2);
    assert_eq!(a.copy_from(&[1, 1, 1, 1, 1, 1]), 4);
    assert_eq!(*a.lock(), [1, 1, 1, 1]);
    a.lock()[2] = 5;
    assert_eq!(a.get(2), Some(5));
    assert!(format!("{a:?}").contains("[1, 1, 5, 1]"));
    let empty = Array::<u64, 0>::new([]);
    assert!(empty.is_empty());
    assert_eq!(empty.get(0), None);
    assert_eq!(Array::<u16, 3>::default().get(1), Some(0));
}

#[test]
fn big_zeroed_array_across_processes() {
    const N: usize = 1 << 16;
    let a = Shared::<Array<u64, N>>::new_zeroed().unwrap();
    let children: Vec<_> = (0..2)
        .map(|half| {
            Child::spawn(|| {
                for i in (half..N).step_by(2) {
                    if a.set(i, i as u64 * 3).is_err() {
                        return 1;
                    }
                }
                0
            })
        })
        .collect();
    for c in children {
        assert!(c.join().success());
    }
    let mut all = vec![0u64; N];
    assert_eq!(a.copy_to(&mut all), N);
    assert!(all.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
}

#[test]
fn cells_recover_from_a_killed_holder() {
    #[repr(C)]
    struct S {
        v: Value<u64>,
        a: Array<u32, 8>,
        holding: AtomicU32,
    }
    // SAFETY: repr(C), kit cells and an atomic.
    unsafe impl ShmSafe for S {}
    let s = Shared::new(S {
        v: Value::new(1),
        a: Array::new([0; 8]),
        holding: AtomicU32::new(0),
    })
    .unwrap();
    let mut child = Child::spawn(|| {
        let mut v = s.v.lock();
        let mut a = s.a.lock();
        *v = 99;
        a[7] = 7;
        s.holding.store(1, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(eventually(Duration::from_secs(10), || s
        .holding
        .load(Ordering::SeqCst)
        == 1));
    child.process().kill().unwrap();
    // No OwnerDead to handle: the cells just proceed (with what the holder left).
    assert_eq!(s.v.get(), 99);
    assert_eq!(s.a.get(7), Some(7));
    s.v.set(100);
    assert_eq!(s.v.get(), 100);
    assert!(s.a.set(0, 1).is_ok());
}

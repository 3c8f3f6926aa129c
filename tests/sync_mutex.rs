//! `Mutex` and `ReentrantMutex` across threads and forked processes: exclusion,
//! timeouts, owner death (kill -9, before and after reaping), not-recoverable, and a
//! forked child's inherited guard.
// Tests use std's atomics as plain shared counters; only the kit's algorithms must
// take theirs from the loom facade.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Child, eventually};
use shmkit::{LockError, Mutex, ReentrantMutex, Shared, ShmSafe};

/// A mutex and a flag the child raises once it holds the mutex.
#[repr(C)]
struct Holder {
    m: Mutex<u64>,
    holding: AtomicU32,
}
// SAFETY: repr(C), a kit mutex of u64 and an atomic.
unsafe impl ShmSafe for Holder {}

fn new_holder() -> Shared<Holder> {
    Shared::new(Holder {
        m: Mutex::new(0),
        holding: AtomicU32::new(0),
    })
    .unwrap()
}

/// Forks a child that takes the lock, writes `value`, raises the flag and sleeps
/// until killed; returns once the child holds the lock.
fn child_holding(h: &Shared<Holder>, value: u64) -> Child {
    let child = Child::spawn(|| {
        let mut g = h.m.lock().unwrap();
        *g = value;
        h.holding.store(1, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(eventually(Duration::from_secs(10), || h
        .holding
        .load(Ordering::SeqCst)
        == 1));
    h.holding.store(0, Ordering::SeqCst);
    child
}

#[test]
fn threads_exclude_each_other() {
    let m = Mutex::new(0u64);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    *m.lock().unwrap() += 1;
                }
            });
        }
    });
    assert_eq!(m.into_inner(), 40_000);
}

#[test]
fn try_lock_and_timeout_when_held() {
    let m = Mutex::new(1u32);
    let g = m.lock().unwrap();
    assert!(m.is_locked());
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
            let start = Instant::now();
            let d = Duration::from_millis(30);
            assert!(matches!(m.lock_timeout(d), Err(LockError::Timeout)));
            assert!(start.elapsed() >= d, "returned before its deadline");
            assert!(matches!(
                m.lock_timeout(Duration::ZERO),
                Err(LockError::Timeout)
            ));
        });
    });
    drop(g);
    assert!(!m.is_locked());
    assert_eq!(*m.try_lock().unwrap(), 1);
    let mut m = m;
    *m.get_mut() = 5;
    assert_eq!(m.into_inner(), 5);
}

#[test]
fn lock_timeout_succeeds_when_released_in_time() {
    let m = Mutex::new(0u32);
    let g = m.lock().unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| *m.lock_timeout(Duration::from_secs(10)).unwrap());
        std::thread::sleep(Duration::from_millis(20));
        drop(g);
        assert_eq!(t.join().unwrap(), 0);
    });
}

#[test]
fn processes_exclude_each_other() {
    let m = Shared::new(Mutex::new(0u64)).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Child::spawn(|| {
                for _ in 0..5_000 {
                    let mut g = m.lock().unwrap();
                    // A non-atomic read-modify-write: lost updates would show.
                    let v = *g;
                    *g = v + 1;
                }
                0
            })
        })
        .collect();
    for c in children {
        assert!(c.join().success());
    }
    assert_eq!(*m.lock().unwrap(), 15_000);
}

#[test]
fn killed_holder_gives_owner_dead_then_make_consistent() {
    let h = new_holder();
    let mut child = child_holding(&h, 41);
    child.process().kill().unwrap();
    // Not reaped yet: the holder is a zombie and must count as dead.
    let g = match h.m.lock_timeout(Duration::from_secs(20)) {
        Err(LockError::OwnerDead(g)) => g,
        other => panic!("expected OwnerDead, got {:?}", other.map(|_| ())),
    };
    assert_eq!(*g, 41, "the dead holder's write is there");
    g.make_consistent();
    drop(g);
    let mut g = h.m.lock().unwrap();
    *g += 1;
    drop(g);
    assert_eq!(*h.m.try_lock().unwrap(), 42);
    assert!(child.join().signal().is_some());
}

#[test]
fn killed_and_reaped_holder_gives_owner_dead() {
    let h = new_holder();
    let mut child = child_holding(&h, 1);
    child.process().kill().unwrap();
    child.process().join().unwrap();
    let g = h.m.lock().unwrap_err().into_guard().expect("OwnerDead");
    g.make_consistent();
    drop(g);
    assert!(h.m.lock().is_ok());
}

#[test]
fn zero_timeout_checks_the_holder_once() {
    let h = new_holder();
    let mut child = child_holding(&h, 1);
    child.process().kill().unwrap();
    // The child may still be exiting: retry a zero-timeout lock until it is dead.
    let mut result = None;
    assert!(eventually(Duration::from_secs(10), || {
        match h.m.lock_timeout(Duration::ZERO) {
            Err(LockError::Timeout) => false,
            other => {
                result = Some(other.map(|_| ()).map_err(|e| e.map_guard()));
                true
            }
        }
    }));
    assert_eq!(result, Some(Err("OwnerDead")));
}

trait MapGuard {
    fn map_guard(self) -> &'static str;
}
impl<G> MapGuard for LockError<G> {
    fn map_guard(self) -> &'static str {
        match self {
            LockError::OwnerDead(_) => "OwnerDead",
            LockError::NotRecoverable => "NotRecoverable",
            LockError::WouldBlock => "WouldBlock",
            LockError::Timeout => "Timeout",
            LockError::Corrupted => "Corrupted",
        }
    }
}

#[test]
fn unrepaired_owner_dead_makes_it_not_recoverable() {
    let h = new_holder();
    let mut child = child_holding(&h, 1);
    child.process().kill().unwrap();
    let g = h.m.lock().unwrap_err().into_guard().expect("OwnerDead");
    // A thread waiting meanwhile is woken with NotRecoverable, not left asleep.
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            h.m.lock_timeout(Duration::from_secs(20))
                .map(|_| ())
                .map_err(|e| e.map_guard())
        });
        std::thread::sleep(Duration::from_millis(20));
        drop(g);
        assert_eq!(waiter.join().unwrap(), Err("NotRecoverable"));
    });
    assert!(matches!(h.m.lock(), Err(LockError::NotRecoverable)));
    assert!(matches!(h.m.try_lock(), Err(LockError::NotRecoverable)));
    assert!(h.m.is_locked());
    let err = h.m.lock().map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("not recoverable"));
    assert_eq!(format!("{err:?}"), "NotRecoverable");
}

#[test]
fn forked_child_cannot_release_the_parents_lock() {
    let m = Shared::new(Mutex::new(7u32)).unwrap();
    let g = m.lock().unwrap();
    // Safe code cannot hand a guard to a child (`Process::spawn` needs `Send`, guards
    // are neither `Send` nor `Sync`, and it refuses to fork while a guard is alive);
    // this test smuggles one in with `unsafe` to show the second line of defence: the
    // child's copy cannot unlock the parent's lock.
    let guard_ref = &g;
    let m_ = &m;
    let body = move || {
        // The child's bitwise copy of the parent's guard, dropped here: the lock word
        // names the parent's thread, so nothing happens.
        // SAFETY: the child owns its copy of the address space; the parent's guard is
        // never used in the child again.
        let inherited = unsafe { std::ptr::read(guard_ref) };
        drop(inherited);
        // And the child cannot take the lock while the parent (alive) holds it.
        match m_.lock_timeout(Duration::from_millis(50)) {
            Err(LockError::Timeout) => 0,
            _ => 1,
        }
    };
    // SAFETY: deliberately unsound in general (a guard reaches the child): the test
    // shows that the child's copy still cannot release the parent's lock.
    let process = unsafe { shmkit::Process::builder().spawn_unchecked(body) }.expect("fork");
    let child = Child::from(process);
    assert_eq!(child.join().code(), Some(0));
    assert!(m.is_locked(), "the child's drop released the parent's lock");
    assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
    drop(g);
    assert!(!m.is_locked());
}

#[test]
fn mutex_in_a_user_struct_and_zeroed() {
    #[repr(C)]
    #[derive(Default)]
    struct Stats {
        a: Mutex<u64>,
        b: Mutex<[u32; 3]>,
    }
    // SAFETY: repr(C), kit types of ShmSafe data.
    unsafe impl ShmSafe for Stats {}
    // SAFETY: every field is zeroable.
    unsafe impl shmkit::Zeroable for Stats {}
    let s = Shared::<Stats>::new_zeroed().unwrap();
    let child = Child::spawn(|| {
        *s.a.lock().unwrap() = 9;
        s.b.lock().unwrap()[2] = 3;
        0
    });
    assert!(child.join().success());
    assert_eq!(*s.a.lock().unwrap(), 9);
    assert_eq!(*s.b.lock().unwrap(), [0, 0, 3]);
    assert!(format!("{:?}", s.a).contains("owner: None"));
    let g = s.a.lock().unwrap();
    assert_eq!(format!("{g:?}"), "9");
    assert!(format!("{:?}", s.a).contains("owner: Some"));
}

#[test]
fn reentrant_nests_and_excludes_other_threads() {
    let m = ReentrantMutex::new(AtomicU32::new(0));
    let a = m.lock().unwrap();
    let b = m.try_lock().unwrap();
    let c = m.lock_timeout(Duration::ZERO).unwrap();
    c.fetch_add(1, Ordering::Relaxed);
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
            assert!(matches!(
                m.lock_timeout(Duration::from_millis(10)),
                Err(LockError::Timeout)
            ));
        });
    });
    drop(c);
    drop(a);
    assert!(m.is_locked(), "one guard left");
    drop(b);
    assert!(!m.is_locked());
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(m.lock().unwrap().load(Ordering::Relaxed), 1));
    });
    assert_eq!(m.into_inner().into_inner(), 1);
}

#[test]
fn reentrant_killed_holder_gives_owner_dead() {
    let m = Shared::new(ReentrantMutex::new(AtomicU32::new(0))).unwrap();
    let holding = Shared::new(AtomicU32::new(0)).unwrap();
    let mut child = Child::spawn(|| {
        let _a = m.lock().unwrap();
        let _b = m.lock().unwrap();
        holding.store(1, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(eventually(Duration::from_secs(10), || holding
        .load(Ordering::SeqCst)
        == 1));
    child.process().kill().unwrap();
    let g = m.lock().unwrap_err().into_guard().expect("OwnerDead");
    g.make_consistent();
    // The dead holder's nesting count is gone: one drop releases it.
    drop(g);
    assert!(!m.is_locked());
    let g = m.lock().unwrap();
    drop(g);
}

#[test]
fn spawn_refuses_while_a_guard_is_alive() {
    let m = Shared::new(Mutex::new(7u32)).unwrap();
    let mut g = m.lock().unwrap();
    // A reborrow of the guard is `Send`: the types let it into the closure...
    let r: &mut u32 = &mut g;
    let refused = shmkit::Process::spawn(move || {
        *r += 1;
        0
    });
    // ...but the fork is refused while the guard lives.
    assert_eq!(refused.err(), Some(shmkit::Error::GuardHeld));
    drop(g);
    assert_eq!(*m.lock().unwrap(), 7);
    // No guard alive: forks as usual.
    let m_ = &m;
    let child = Child::spawn(move || {
        *m_.lock().unwrap() += 1;
        0
    });
    assert_eq!(child.join().code(), Some(0));
    assert_eq!(*m.lock().unwrap(), 8);
}

#[test]
fn spawn_waits_for_other_threads_guards() {
    let m = Shared::new(Mutex::new(0u32)).unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let m = &m;
        s.spawn(move || {
            let g = m.lock().unwrap();
            held_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            drop(g);
        });
        held_rx.recv().unwrap();
        let start = std::time::Instant::now();
        // Another thread holds a guard: spawn waits until it is dropped.
        let child = Child::spawn(|| 0);
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(child.join().code(), Some(0));
    });
}

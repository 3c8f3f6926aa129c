//! The participant registry's lifelines: a fork never keeps its parent's alive, a
//! thread that exits gives its identity up, and a child's identity is its own.
// Tests name core atomics directly (through `common`): not algorithms under loom.
#![allow(clippy::disallowed_types)]

mod common;

use std::time::Duration;

use common::Child;
use shmkit::{LockError, Mutex, Shared};

#[test]
fn a_grandchild_does_not_keep_its_dead_parents_lock_alive() {
    let m = Shared::new(Mutex::new(0u32)).unwrap();
    let grandchild = Shared::new(shmkit::Value::new(0i32)).unwrap();
    let (m_, g_) = (&m, &grandchild);
    let child = Child::spawn(move || {
        // Take the lock (registering this process and thread), then fork a plain
        // child that inherits our registry descriptor and lives on after we die.
        std::mem::forget(m_.lock().unwrap());
        // SAFETY: the grandchild only sleeps (async-signal-safe) until killed.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            loop {
                // SAFETY: pause is async-signal-safe.
                unsafe { libc::pause() };
            }
        }
        g_.set(pid);
        0
    });
    assert_eq!(child.join().code(), Some(0));
    let gpid = grandchild.get();
    assert!(gpid > 0);
    // The holder is dead; its child lives on, holding a copy of its descriptors. The
    // lock must still read as a dead holder's.
    let got = m.lock_timeout(Duration::from_secs(5));
    // SAFETY: kill and reap the orphaned grandchild (reparented: not ours to wait for).
    unsafe { libc::kill(gpid, libc::SIGKILL) };
    match got {
        Err(LockError::OwnerDead(g)) => g.make_consistent(),
        other => panic!("expected OwnerDead, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_thread_that_exits_gives_its_identity_up_unless_it_leaked_a_guard() {
    // Run in a child: leaking a guard makes its process refuse to fork for good.
    let child = Child::spawn(|| {
        let m = Mutex::new(0u32);
        // A thread that exits normally: its id is dead, its lock free.
        std::thread::scope(|s| {
            s.spawn(|| drop(m.lock().unwrap()));
        });
        if m.try_lock().is_err() {
            return 1;
        }
        // A thread that leaks a guard (the data may still be reachable through a
        // leaked `&'static mut`) and exits: the lock stays held for good, as std's
        // does, instead of being taken over as a dead holder's.
        let leaked = Box::leak(Box::new(Mutex::new(0u32)));
        std::thread::scope(|s| {
            s.spawn(|| std::mem::forget(leaked.lock().unwrap()));
        });
        match leaked.lock_timeout(Duration::from_millis(30)) {
            Err(LockError::Timeout) => {}
            _ => return 2,
        }
        // And this process no longer forks (the leak may reach a child).
        match shmkit::Process::spawn(|| 0) {
            Err(shmkit::Error::GuardHeld) => 0,
            _ => 3,
        }
    });
    assert_eq!(child.join().code(), Some(0));
}

#[test]
fn a_live_thread_of_this_process_is_never_dead() {
    let m = Mutex::new(0u32);
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let m = &m;
        s.spawn(move || {
            let _g = m.lock().unwrap();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        });
        held_rx.recv().unwrap();
        for _ in 0..20 {
            assert!(matches!(
                m.lock_timeout(Duration::from_millis(6)),
                Err(LockError::Timeout)
            ));
        }
        go_tx.send(()).unwrap();
    });
}

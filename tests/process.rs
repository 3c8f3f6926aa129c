//! `Process`: exit codes, signals, timeouts, panics, die_with_parent, zombies.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Child, eventually};
use shmkit::{ExitStatus, Process, Shared};

#[test]
fn exit_codes_come_back() {
    for code in [0, 1, 42, 255] {
        let child = Child::spawn(move || code);
        let status = child.join();
        assert_eq!(status, ExitStatus::Exited(code));
        assert_eq!(status.code(), Some(code));
        assert_eq!(status.success(), code == 0);
        assert_eq!(status.signal(), None);
    }
}

#[test]
fn the_closure_may_borrow() {
    let words = [3, 4, 5];
    let total: i32 = words.iter().sum();
    let child = Child::spawn(|| words.iter().sum::<i32>() - total);
    assert_eq!(child.join(), ExitStatus::Exited(0));
}

#[test]
fn a_panicking_child_exits_101_and_the_parent_goes_on() {
    let child = Child::spawn(|| panic!("boom in the child"));
    assert_eq!(child.join(), ExitStatus::Exited(101));
}

#[test]
fn join_timeout_on_a_sleeping_child_then_kill() {
    let mut child = Child::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        0
    });
    let start = Instant::now();
    let p = child.process();
    assert_eq!(p.join_timeout(Duration::from_millis(100)).unwrap(), None);
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(p.is_alive());
    assert_eq!(p.exit_status(), None);
    p.kill().unwrap();
    let status = child.join();
    assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[test]
fn terminate_sends_sigterm() {
    let mut child = Child::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        0
    });
    child.process().terminate().unwrap();
    assert_eq!(child.join(), ExitStatus::Signaled(libc::SIGTERM));
}

#[test]
fn a_killed_but_unjoined_child_is_dead() {
    let mut p = Process::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        0
    })
    .unwrap();
    assert!(p.is_alive());
    p.kill().unwrap();
    // A zombie now: not reaped, but not alive either.
    let dead = eventually(Duration::from_secs(10), || !p.is_alive());
    let status = p.join_timeout(Duration::from_secs(10)).unwrap();
    assert!(dead, "a killed child was still reported alive");
    assert_eq!(status, Some(ExitStatus::Signaled(libc::SIGKILL)));
    // Join is repeatable, signals after the end are harmless.
    assert_eq!(p.join().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(p.exit_status(), Some(ExitStatus::Signaled(libc::SIGKILL)));
    p.kill().unwrap();
    p.terminate().unwrap();
    assert!(!p.is_alive());
}

#[test]
fn die_with_parent_kills_the_grandchild() {
    // middle forks a grandchild with die_with_parent, reports its pid, and exits.
    let grandchild_pid = Shared::new(AtomicI32::new(0)).unwrap();
    let plain_pid = Shared::new(AtomicI32::new(0)).unwrap();
    let middle = Child::spawn(|| {
        let Ok(g) = Process::builder().die_with_parent(true).spawn(|| {
            std::thread::sleep(Duration::from_secs(60));
            0
        }) else {
            return 2;
        };
        let Ok(plain) = Process::spawn(|| {
            std::thread::sleep(Duration::from_secs(3));
            0
        }) else {
            return 3;
        };
        grandchild_pid.store(g.pid(), Ordering::SeqCst);
        plain_pid.store(plain.pid(), Ordering::SeqCst);
        0
    });
    assert_eq!(middle.join(), ExitStatus::Exited(0));
    let g = grandchild_pid.load(Ordering::SeqCst);
    let plain = plain_pid.load(Ordering::SeqCst);
    assert!(g > 0 && plain > 0);
    let gone = |pid: i32| {
        // Gone, or a zombie waiting for init to reap it.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    };
    let died = eventually(Duration::from_secs(10), || gone(g));
    // The sibling without the option outlived the middle process.
    let plain_alive_after = !gone(plain);
    // Clean up whatever is left, whatever the outcome.
    for pid in [g, plain] {
        // SAFETY: plain kill(2) of a pid we started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(died, "die_with_parent child {g} outlived its parent");
    assert!(
        plain_alive_after,
        "a child without die_with_parent died too"
    );
}

#[test]
fn many_children_all_reaped() {
    let counter = Shared::new(AtomicU32::new(0)).unwrap();
    let children: Vec<Child> = (0..8)
        .map(|i| {
            let counter = &counter;
            Child::spawn(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                i
            })
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        assert_eq!(child.join(), ExitStatus::Exited(i as i32));
    }
    assert_eq!(counter.load(Ordering::SeqCst), 8);
}

#[test]
fn display_of_exit_status() {
    assert_eq!(ExitStatus::Exited(3).to_string(), "exited with code 3");
    assert_eq!(ExitStatus::Signaled(9).to_string(), "killed by signal 9");
}

//! Who owns a pipe end across `fork` (issue 11, item 5): a handle moved into a
//! `Process::spawn` closure passes its end to the child, so the parent learns of the
//! child's death even if the child never used the end; an end nobody has claimed yet
//! is never reported `Disconnected`; the parent cannot use the child's end.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Child;
use shmkit::{Connection, Error, ExitStatus, Pipe, Shared};

/// Receives a `u64`, waiting at most 10 s (so that a regression fails, not hangs).
fn recv_u64<const CAP: usize>(c: &Connection<'_, CAP>) -> Result<u64, Error> {
    let mut buf = [0u8; 8];
    let n = c.recv_bytes_into_timeout(&mut buf, Duration::from_secs(10))?;
    assert_eq!(n, 8);
    Ok(u64::from_le_bytes(buf))
}

/// A child that dies before its first use of its end: the parent, blocked in `recv`,
/// gets `Disconnected` within 100 ms of the kill. Twice over: with a handle the parent
/// never used, and with one it had used (claimed) before moving it into the child.
#[test]
fn a_child_killed_before_its_first_use_is_disconnected_within_100ms() {
    let mut worst = Duration::ZERO;
    for round in 0..12 {
        let pipe = Shared::new(Pipe::<256>::new()).unwrap();
        let (parent, child_end) = pipe.ends();
        if round % 2 == 1 {
            // Claimed by the parent first: the handoff moves the claim.
            assert!(child_end.poll(Some(Duration::ZERO)).is_ok());
        }
        let child = Child::spawn(move || {
            let _keep = &child_end; // moved in, never used
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        let killed_at = std::sync::Mutex::new(None::<Instant>);
        let woke = std::thread::scope(|s| {
            let receiver = s.spawn(move || {
                // (Bounded, so that a regression fails instead of hanging.)
                let got = parent.recv_bytes_into_timeout(&mut [0u8; 8], Duration::from_secs(10));
                (got, Instant::now())
            });
            // Let the receiver block (and sleep), then kill the child.
            std::thread::sleep(Duration::from_millis(30 + 10 * round as u64));
            *killed_at.lock().unwrap() = Some(Instant::now());
            let mut child = child;
            child.process().kill().unwrap();
            let out = receiver.join().unwrap();
            drop(child);
            out
        });
        assert_eq!(woke.0, Err(Error::Disconnected), "round {round}");
        let killed_at = killed_at.into_inner().unwrap().unwrap();
        assert!(
            woke.1 >= killed_at,
            "round {round}: Disconnected before the kill"
        );
        let latency = woke.1 - killed_at;
        worst = worst.max(latency);
        assert!(
            latency < Duration::from_millis(100),
            "round {round}: Disconnected {latency:?} after the kill"
        );
    }
    println!("child killed before first use: Disconnected at most {worst:?} after the kill");
}

/// The normal case: the child uses the end it was given, and exits; the parent sees
/// its messages, then `Disconnected` (the child's copy closed on exit).
#[test]
fn a_child_uses_the_end_moved_into_it() {
    let pipe = Shared::new(Pipe::<256>::new()).unwrap();
    let (parent, child_end) = pipe.ends();
    let child = Child::spawn(move || {
        for i in 0..100u64 {
            let x: u64 = match child_end.recv() {
                Ok(x) => x,
                Err(_) => return 1,
            };
            if x != i || child_end.send(&(x * 3)).is_err() {
                return 2;
            }
        }
        0
    });
    for i in 0..100u64 {
        parent.send(&i).unwrap();
        assert_eq!(recv_u64(&parent), Ok(i * 3));
    }
    assert_eq!(child.join(), ExitStatus::Exited(0));
    assert_eq!(recv_u64(&parent), Err(Error::Disconnected));
}

/// An end nobody has claimed is not gone: receives wait, sends fill the ring, and
/// unused handles dropped or closed outside a spawn change nothing.
#[test]
fn an_unclaimed_peer_end_is_never_reported_disconnected() {
    let pipe = Shared::new(Pipe::<64>::new()).unwrap();
    let (a, b) = pipe.ends();
    let (_, b2) = pipe.ends();
    b2.close();
    drop(b2);
    drop(b);
    let mut buf = [0u8; 8];
    assert_eq!(a.try_recv_bytes_into(&mut buf), Err(Error::WouldBlock));
    let d = Duration::from_millis(20);
    assert_eq!(a.recv_bytes_into_timeout(&mut buf, d), Err(Error::Timeout));
    assert_eq!(a.poll(Some(d)), Ok(false));
    let mut sent = 0;
    loop {
        match a.try_send_bytes(&[7u8; 8]) {
            Ok(()) => sent += 1,
            Err(Error::WouldBlock) => break,
            Err(e) => panic!("{e:?} after {sent} sends to an unclaimed end"),
        }
    }
    assert_eq!(sent, 3);
    assert_eq!(a.send_bytes_timeout(&[7u8; 8], d), Err(Error::Timeout));
    // The late claimer gets everything.
    let (_, b3) = pipe.ends();
    for _ in 0..sent {
        assert_eq!(b3.try_recv_bytes_into(&mut buf), Ok(8));
    }
}

/// A child that is alive and holds its end without using it yet: the parent waits
/// (never `Disconnected`), and cannot take the child's end (`EndpointInUse`).
#[test]
fn the_parent_cannot_use_the_childs_end_and_waits_for_it() {
    let pipe = Shared::new(Pipe::<256>::new()).unwrap();
    let (parent, child_end) = pipe.ends();
    let go = Shared::new(AtomicU64::new(0)).unwrap();
    let go_ = &go;
    let child = Child::spawn(move || {
        while go_.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        match child_end.send(&99u64) {
            Ok(()) => 0,
            Err(_) => 1,
        }
    });
    let (_, stolen) = pipe.ends();
    assert!(
        matches!(stolen.try_send_bytes(b"x"), Err(Error::EndpointInUse { owner }) if owner != 0)
    );
    assert!(matches!(
        stolen.poll(Some(Duration::ZERO)),
        Err(Error::EndpointInUse { .. })
    ));
    let mut buf = [0u8; 8];
    assert_eq!(parent.try_recv_bytes_into(&mut buf), Err(Error::WouldBlock));
    assert_eq!(
        parent.recv_bytes_into_timeout(&mut buf, Duration::from_millis(30)),
        Err(Error::Timeout)
    );
    go.store(1, Ordering::SeqCst);
    assert_eq!(recv_u64(&parent), Ok(99));
    assert_eq!(child.join(), ExitStatus::Exited(0));
    assert_eq!(recv_u64(&parent), Err(Error::Disconnected));
}

/// A handle the parent used before moving it into a child: the child may get to it
/// before the parent has handed it over (it then waits), and always gets the end.
#[test]
fn a_used_handle_moved_into_a_child_is_handed_over() {
    for round in 0..40u64 {
        let pipe = Shared::new(Pipe::<256>::new()).unwrap();
        let (parent, mover) = pipe.ends();
        // The parent uses the handle (claims the end), then moves it into a child
        // that sends at once.
        mover.send(&round).unwrap();
        assert_eq!(recv_u64(&parent), Ok(round));
        let child = Child::spawn(move || match mover.send(&(round + 1000)) {
            Ok(()) => 0,
            Err(Error::EndpointInUse { .. }) => 1,
            Err(_) => 2,
        });
        assert_eq!(recv_u64(&parent), Ok(round + 1000));
        assert_eq!(child.join(), ExitStatus::Exited(0), "round {round}");
        // The child's copy closed the end on exit.
        assert_eq!(recv_u64(&parent), Err(Error::Disconnected));
    }
}

std::thread_local! {
    static KEPT: std::cell::RefCell<Option<shmkit::Connection<'static, 256>>> =
        const { std::cell::RefCell::new(None) };
}

/// A copy of a used handle that reaches a child some other way than by being moved
/// into its closure (here: the forking thread's thread-local, which the child
/// inherits) is not handed over: the parent still owns the end and may use it. The
/// child's copy waits a grace period for a handoff, then gets `EndpointInUse`.
#[test]
fn a_copy_that_was_not_moved_into_the_child_stays_the_parents() {
    let pipe: &'static Shared<Pipe<256>> = Box::leak(Box::new(Shared::new(Pipe::new()).unwrap()));
    let (kept, other) = pipe.ends();
    kept.send(&1u64).unwrap();
    KEPT.with(|k| *k.borrow_mut() = Some(kept));
    let start = Instant::now();
    let child = Child::spawn(|| {
        KEPT.with(
            |k| match k.borrow().as_ref().unwrap().try_send_bytes(b"x") {
                Err(Error::EndpointInUse { .. }) => 0,
                Ok(()) => 1,
                Err(_) => 2,
            },
        )
    });
    assert_eq!(child.join(), ExitStatus::Exited(0));
    println!("the child's copy was refused after {:?}", start.elapsed());
    KEPT.with(|k| k.borrow().as_ref().unwrap().send(&2u64))
        .unwrap();
    assert_eq!(recv_u64(&other), Ok(1));
    assert_eq!(recv_u64(&other), Ok(2));
    KEPT.with(|k| k.borrow_mut().take());
}

/// Two children of one parent inherit the same count of handles made, yet their
/// handles differ: the sibling that loses the race for an end is refused at once (it
/// does not take the owner's handle for its own copy and wait for a handoff).
#[test]
fn a_sibling_that_loses_the_claim_is_refused_at_once() {
    let pipe = Shared::new(Pipe::<256>::new()).unwrap();
    let claimed = Shared::new(AtomicU64::new(0)).unwrap();
    let (p, c) = (&pipe, &claimed);
    let owner = Child::spawn(move || {
        let (_, end) = p.ends();
        if end.poll(Some(Duration::ZERO)).is_err() {
            return 1;
        }
        c.store(1, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(common::eventually(Duration::from_secs(10), || claimed
        .load(Ordering::SeqCst)
        == 1));
    let loser = Child::spawn(move || {
        let (_, end) = p.ends();
        let start = Instant::now();
        match end.try_send_bytes(b"x") {
            Err(Error::EndpointInUse { .. }) if start.elapsed() < Duration::from_millis(200) => 0,
            Err(Error::EndpointInUse { .. }) => 1,
            _ => 2,
        }
    });
    assert_eq!(loser.join(), ExitStatus::Exited(0));
    drop(owner);
}

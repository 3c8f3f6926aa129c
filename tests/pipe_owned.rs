//! Owned pipe ends (issue 16, item 4): `OwnedConnection`s keep their segment alive, so
//! a pipe and its ends live in one struct, in threads and in spawn closures — under
//! the same rules as the borrowing ends (ownership, hand-off to a forked child,
//! `Disconnected` when the owner dies). The borrowing API keeps working beside them.
#![allow(clippy::disallowed_types)] // tests/common uses std atomics

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Child;
use shmkit::{
    Connection, Error, ExitStatus, OwnedConnection, Pipe, Process, Shared, ShmSafe, Zeroable,
};

const CAP: usize = 1024;
const WAIT: Duration = Duration::from_secs(10);

/// Receives a `u64`, waiting at most 10 s (so that a regression fails, not hangs).
fn recv_u64<const C: usize>(c: &Connection<'_, C>) -> Result<u64, Error> {
    let mut buf = [0u8; 8];
    let n = c.recv_bytes_into_timeout(&mut buf, WAIT)?;
    assert_eq!(n, 8);
    Ok(u64::from_le_bytes(buf))
}

/// What the user wanted to write: the segment and both ends in one struct.
struct Link {
    pipe: Arc<Shared<Pipe<CAP>>>,
    parent: OwnedConnection<CAP>,
    child: OwnedConnection<CAP>,
}

impl Link {
    fn new() -> Link {
        let pipe = Arc::new(Shared::<Pipe<CAP>>::new_zeroed().unwrap());
        let (parent, child) = Pipe::owned_ends(&pipe);
        Link {
            pipe,
            parent,
            child,
        }
    }
}

#[test]
fn a_struct_holding_a_pipe_and_its_ends_works_across_fork() {
    let Link {
        pipe,
        parent,
        child,
    } = Link::new();
    assert_eq!(Arc::strong_count(&pipe), 3);
    let worker = Child::spawn(move || {
        let mut sum = 0;
        while let Ok(x) = recv_u64(&child) {
            sum += x;
            if child.send(&sum).is_err() {
                return 2;
            }
        }
        0
    });
    // The parent's copy of `child` was dropped (handed over) with the closure.
    assert_eq!(Arc::strong_count(&pipe), 2);
    let mut expect = 0;
    for x in 1..=100u64 {
        parent.send(&x).unwrap();
        expect += x;
        assert_eq!(recv_u64(&parent), Ok(expect));
    }
    drop(parent);
    assert_eq!(worker.join(), ExitStatus::Exited(0));
    assert_eq!(Arc::strong_count(&pipe), 1);
}

/// An owned end moved into a spawn closure belongs to the child from the start: the
/// parent cannot use it (a fresh handle on it is refused), and a child killed before
/// its first use is seen as `Disconnected` by the peer.
#[test]
fn an_owned_end_moved_into_a_child_is_handed_over() {
    for claimed_first in [false, true] {
        let (parent, child_end) = Pipe::<CAP>::pair().unwrap();
        if claimed_first {
            assert!(child_end.poll(Some(Duration::ZERO)).is_ok());
        }
        // Dies with this test process, whatever happens to it.
        let spawned = Process::builder().die_with_parent(true).spawn(move || {
            let _keep = &child_end; // moved in, never used
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        let mut child = Child::from(spawned.unwrap());
        // Nothing arrives while the child lives.
        assert_eq!(
            parent.recv_bytes_into_timeout(&mut [0u8; 8], Duration::from_millis(50)),
            Err(Error::Timeout)
        );
        child.process().kill().unwrap();
        assert_eq!(
            recv_u64(&parent),
            Err(Error::Disconnected),
            "claimed first: {claimed_first}"
        );
        assert!(child.join().signal().is_some());
    }
}

/// The parent keeps the segment (`Arc`) and makes a second handle on the end it moved
/// into the child: that handle is refused while the child lives.
#[test]
fn a_second_handle_on_an_end_handed_to_a_child_is_refused() {
    let pipe = Arc::new(Shared::<Pipe<CAP>>::new_zeroed().unwrap());
    let (parent, child_end) = Pipe::owned_ends(&pipe);
    let child = Child::spawn(move || {
        // Wait for the go, answer, then leave.
        match recv_u64(&child_end) {
            Ok(n) => i32::from(child_end.send(&(n + 1)).is_err()),
            Err(_) => 3,
        }
    });
    let (_, second) = Pipe::owned_ends(&pipe);
    match second.try_send_bytes(b"x") {
        Err(Error::EndpointInUse { owner }) => assert_ne!(owner, 0),
        other => panic!("a second handle on the child's end: {other:?}"),
    }
    parent.send(&1u64).unwrap();
    assert_eq!(recv_u64(&parent), Ok(2));
    assert_eq!(child.join(), ExitStatus::Exited(0));
}

/// In one process, two owned handles on one end: the first user owns it, the other
/// is told who does.
#[test]
fn two_owned_handles_on_one_end_in_one_process() {
    let pipe = Arc::new(Shared::<Pipe<CAP>>::new_zeroed().unwrap());
    let (a1, b) = Pipe::owned_ends(&pipe);
    let (a2, _) = Pipe::owned_ends(&pipe);
    a1.send(&5u64).unwrap();
    assert!(matches!(a2.send(&6u64), Err(Error::EndpointInUse { .. })));
    assert_eq!(recv_u64(&b), Ok(5));
    // Dropping the unused handle has no effect on the end.
    drop(a2);
    a1.send(&7u64).unwrap();
    assert_eq!(recv_u64(&b), Ok(7));
}

/// The ends keep the mapping alive: the `Arc` and the other end may go first.
#[test]
fn an_owned_end_outlives_the_segment_handle_and_its_peer() {
    let pipe = Arc::new(Shared::<Pipe<CAP>>::new_zeroed().unwrap());
    let (a, b) = Pipe::owned_ends(&pipe);
    drop(pipe);
    a.send(&9u64).unwrap();
    a.send_bytes(&[3u8; 512]).unwrap();
    drop(a);
    assert_eq!(recv_u64(&b), Ok(9));
    let mut buf = [0u8; 512];
    assert_eq!(b.recv_bytes_into_timeout(&mut buf, WAIT), Ok(512));
    assert_eq!(buf, [3u8; 512]);
    assert_eq!(recv_u64(&b), Err(Error::Disconnected));
}

/// Owned ends are `Send + 'static`: they go into `std::thread::spawn`.
#[test]
fn owned_ends_go_to_threads() {
    let (a, b) = Pipe::<CAP>::pair().unwrap();
    let t = std::thread::spawn(move || {
        let mut n = 0u64;
        while let Ok(x) = recv_u64(&b) {
            n += x;
        }
        n
    });
    for x in 0..1000u64 {
        a.send(&x).unwrap();
    }
    drop(a);
    assert_eq!(t.join().unwrap(), 999 * 1000 / 2);
}

#[derive(ShmSafe, Zeroable)]
#[repr(C)]
struct Results {
    pipes: [Pipe<256>; 3],
}

/// One segment with a pipe per worker: ends found inside a struct, each handed to its
/// child.
#[test]
fn owned_ends_inside_a_struct_one_per_child() {
    let results = Arc::new(Shared::<Results>::new_zeroed().unwrap());
    let mut mine = Vec::new();
    let mut children = Vec::new();
    for w in 0..3u64 {
        let (here, there) = Pipe::owned_ends_in(&results, |r| &r.pipes[w as usize]);
        children.push(Child::spawn(move || {
            i32::from(there.send(&(w * 10)).is_err())
        }));
        mine.push(here);
    }
    for (w, here) in mine.iter().enumerate() {
        assert_eq!(recv_u64(here), Ok(w as u64 * 10));
    }
    for child in children {
        assert_eq!(child.join(), ExitStatus::Exited(0));
    }
    for here in &mine {
        assert_eq!(recv_u64(here), Err(Error::Disconnected));
    }
    drop(mine);
    assert_eq!(Arc::strong_count(&results), 1);
}

/// The borrowing ends work as they did, beside owned ones on the same pipe.
#[test]
fn the_borrowing_api_still_works() {
    let pipe = Shared::<Pipe<CAP>>::new_zeroed().unwrap();
    let (parent, child_end) = pipe.ends();
    let mut p = Process::spawn(move || {
        let n = recv_u64(&child_end).unwrap_or(0);
        i32::from(child_end.send(&(n * 2)).is_err())
    })
    .unwrap();
    parent.send(&21u64).unwrap();
    assert_eq!(recv_u64(&parent), Ok(42));
    assert!(p.join_timeout(WAIT).unwrap().unwrap().success());
}

//! Tests that need the crate's insides: the `FUTEX_WAKE` calls a stream makes after a
//! sleeper was killed asleep (issue 11, item 4), counted by `sys::futex` (a per-thread
//! counter that exists only in unit tests).

extern crate std;
use core::time::Duration;
use std::time::Instant;

use super::super::Pipe;
use super::Connection;
use crate::error::Error;
use crate::process::Process;
use crate::segment::Shared;
use crate::sys::futex::wakes_by_this_thread;

const CAP: usize = 4096;
/// Messages per timed stream.
const N: u64 = 100_000;

fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// Streams `N` messages from `tx` to `rx` in this thread (send one, receive one):
/// nobody ever sleeps. Returns the time taken and the `FUTEX_WAKE`s made.
fn stream(tx: &Connection<'_, CAP>, rx: &Connection<'_, CAP>) -> (Duration, u64) {
    let wakes = wakes_by_this_thread();
    let start = Instant::now();
    for i in 0..N {
        tx.send(&i).unwrap();
        assert_eq!(rx.recv::<u64>(), Ok(i));
    }
    (start.elapsed(), wakes_by_this_thread() - wakes)
}

/// Streams on `(tx, rx)` and on a fresh pipe, alternately, three times each; checks
/// that the stream makes no `FUTEX_WAKE` and runs at the fresh pipe's speed (a
/// lenient bound: the machine is shared; a wake per message costs ~50x).
fn compare_with_a_fresh_pipe(tx: &Connection<'_, CAP>, rx: &Connection<'_, CAP>, what: &str) {
    let fresh = std::boxed::Box::new(Pipe::<CAP>::new());
    let (ftx, frx) = fresh.ends();
    let (mut t_fresh, mut t_adopted) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        let (t, wakes) = stream(&ftx, &frx);
        assert_eq!(wakes, 0);
        t_fresh = t_fresh.min(t);
        let (t, wakes) = stream(tx, rx);
        assert_eq!(
            wakes, 0,
            "{what}: FUTEX_WAKEs in a stream of {N} after adoption"
        );
        t_adopted = t_adopted.min(t);
    }
    let ratio = t_adopted.as_secs_f64() / t_fresh.as_secs_f64();
    std::println!(
        "{what}: {N} messages: fresh pipe {t_fresh:?}, adopted end {t_adopted:?} \
         (ratio {ratio:.2}), 0 FUTEX_WAKEs"
    );
    assert!(
        ratio < 3.0,
        "{what}: adopted stream {ratio:.2}x slower than a fresh one"
    );
}

/// Waits until the child is announced asleep on `notifier`, kills it, waits until
/// `adopter` has adopted its end (a zombie counts as dead), and checks that the dead
/// sleeper was forgotten.
fn kill_asleep_and_adopt<const C: usize>(
    child: &mut Process,
    notifier: &crate::sync::notifier::Notifier,
    adopter: &Connection<'_, C>,
) {
    assert!(eventually(Duration::from_secs(10), || notifier.has_sleepers()));
    child.kill().unwrap();
    assert!(eventually(Duration::from_secs(10), || adopter
        .poll(Some(Duration::ZERO))
        .is_ok()));
    assert!(!notifier.has_sleepers());
}

#[test]
fn a_receiver_killed_asleep_costs_no_wake_after_its_end_is_adopted() {
    let pipe = Shared::new(Pipe::<CAP>::new()).unwrap();
    let (tx, rx) = pipe.ends();
    // The child owns `rx` and sleeps in `recv` on ring 0's "data" notifier.
    let mut child = Process::spawn(move || {
        let _ = rx.recv::<u64>();
        0
    })
    .unwrap();
    let (_, rx2) = pipe.ends();
    kill_asleep_and_adopt(&mut child, &pipe.rings[0].wake.0.data, &rx2);
    compare_with_a_fresh_pipe(&tx, &rx2, "receiver killed asleep");
    assert!(child.join().unwrap().signal().is_some());
}

#[test]
fn a_sender_killed_asleep_costs_no_wake_after_its_end_is_adopted() {
    let pipe = Shared::new(Pipe::<CAP>::new()).unwrap();
    let (tx, rx) = pipe.ends();
    // The child owns `tx`, fills the ring and sleeps in `send` on ring 0's "space".
    let mut child = Process::spawn(move || {
        let mut i = 0u64;
        while tx.send(&i).is_ok() {
            i += 1;
        }
        0
    })
    .unwrap();
    let (tx2, _) = pipe.ends();
    kill_asleep_and_adopt(&mut child, &pipe.rings[0].wake.0.space, &tx2);
    // What the dead sender published arrives, then the adopter's stream.
    let mut i = 0u64;
    loop {
        match rx.try_recv_bytes_into(&mut [0u8; 8]) {
            Ok(8) => i += 1,
            Err(Error::WouldBlock) => break,
            other => panic!("{other:?} after {i} messages"),
        }
    }
    assert!(i > 0);
    compare_with_a_fresh_pipe(&tx2, &rx, "sender killed asleep");
    assert!(child.join().unwrap().signal().is_some());
}

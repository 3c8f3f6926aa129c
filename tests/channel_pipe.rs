//! `Pipe`/`Connection`: messages, errors that keep the message, ownership of ends,
//! closing, a peer's death, adoption, `poll` and `wait`, in one process and across
//! forked ones.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Child;
use shmkit::{Error, ExitStatus, Pipe, Queue, Shared, wait};

#[test]
fn bytes_pods_and_zero_copy_roundtrip() {
    let pipe = Pipe::<256>::new();
    let (a, b) = pipe.ends();
    assert_eq!(a.max_message_len(), 248);
    a.send_bytes(b"hello").unwrap();
    a.send_bytes(b"").unwrap();
    a.send(&0x1122_3344_5566_7788u64).unwrap();
    a.send_with(12, |buf| buf.copy_from_slice(b"zero-copy!!!"))
        .unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(b.try_recv_bytes_into(&mut buf).unwrap(), 0);
    assert_eq!(b.recv::<u64>().unwrap(), 0x1122_3344_5566_7788);
    let (aligned, copy) = b
        .recv_with(|m| (m.as_ptr() as usize % 8 == 0, m.to_vec()))
        .unwrap();
    assert!(aligned, "recv_with hands out 8-byte aligned slices");
    assert_eq!(copy, b"zero-copy!!!");
    assert_eq!(b.try_recv_bytes_into(&mut buf), Err(Error::WouldBlock));
    // And the other direction.
    b.send(&7u32).unwrap();
    assert_eq!(a.recv::<u32>().unwrap(), 7);
}

#[test]
fn failed_receives_leave_the_message_queued() {
    let pipe = Pipe::<256>::new();
    let (a, b) = pipe.ends();
    a.send_bytes(&[9u8; 20]).unwrap();
    let mut small = [0u8; 8];
    assert_eq!(
        b.recv_bytes_into(&mut small),
        Err(Error::BufferTooSmall { needed: 20 })
    );
    assert_eq!(
        b.recv::<u64>(),
        Err(Error::WrongSize {
            expected: 8,
            found: 20
        })
    );
    let mut big = [0u8; 20];
    assert_eq!(b.recv_bytes_into(&mut big).unwrap(), 20);
    assert_eq!(big, [9u8; 20]);
}

#[test]
fn message_size_limits_and_exact_fill() {
    let pipe = Pipe::<64>::new();
    let (a, b) = pipe.ends();
    assert_eq!(
        a.send_bytes(&[0u8; 57]),
        Err(Error::MessageTooLarge { len: 57, max: 56 })
    );
    // Shift the ring's position so the largest message needs a padding record.
    a.send_bytes(&[1u8; 3]).unwrap();
    assert_eq!(a.try_send_bytes(&[2u8; 56]), Err(Error::WouldBlock));
    let mut buf = [0u8; 64];
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 3);
    // The padding to the array's end goes out; the message waits until the
    // receiver has passed it (it needs the ring empty).
    assert_eq!(a.try_send_bytes(&[2u8; 56]), Err(Error::WouldBlock));
    assert_eq!(b.try_recv_bytes_into(&mut buf), Err(Error::WouldBlock));
    a.try_send_bytes(&[2u8; 56]).unwrap();
    assert_eq!(a.try_send_bytes(&[]), Err(Error::WouldBlock));
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 56);
    assert_eq!(&buf[..56], &[2u8; 56]);
}

/// Issue 10, defect 5: a receive frees what it received. A `Pipe<64>` filled with
/// 8-byte messages (16-byte records; 8 bytes always stay free, so three fit): each
/// receive makes room for exactly one more, lap after lap, and a sender blocked for
/// exactly one receive wakes.
#[test]
fn one_receive_makes_room_for_one_send_of_its_size() {
    let pipe = Pipe::<64>::new();
    let (a, b) = pipe.ends();
    let mut sent = 0u64;
    while a.try_send_bytes(&sent.to_le_bytes()).is_ok() {
        sent += 1;
    }
    assert_eq!(sent, 3);
    let mut received = 0u64;
    for _ in 0..50 {
        assert_eq!(b.try_recv_bytes_into(&mut [0u8; 8]), Ok(8));
        received += 1;
        assert_eq!(
            a.try_send_bytes(&sent.to_le_bytes()),
            Ok(()),
            "after {received}"
        );
        sent += 1;
        assert_eq!(
            a.try_send_bytes(&sent.to_le_bytes()),
            Err(Error::WouldBlock)
        );
    }
    // A blocked sender, woken by one receive.
    let done = AtomicU64::new(0);
    let a = std::thread::scope(|s| {
        let done = &done;
        let sender = s.spawn(move || {
            a.send_bytes(&sent.to_le_bytes()).unwrap();
            done.store(1, Ordering::SeqCst);
            a
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(done.load(Ordering::SeqCst), 0, "the ring was full");
        assert_eq!(b.recv::<u64>(), Ok(received));
        assert!(
            common::eventually(Duration::from_secs(10), || done.load(Ordering::SeqCst) == 1),
            "the blocked sender did not wake after one receive"
        );
        sender.join().unwrap()
    });
    for expect in received + 1..=sent {
        let mut buf = [0u8; 8];
        assert_eq!(b.try_recv_bytes_into(&mut buf), Ok(8));
        assert_eq!(u64::from_le_bytes(buf), expect);
    }
    assert_eq!(b.try_recv_bytes_into(&mut [0u8; 8]), Err(Error::WouldBlock));
    drop(a);
}

#[test]
fn timeouts_never_return_early() {
    let pipe = Pipe::<64>::new();
    let (a, b) = pipe.ends();
    let mut buf = [0u8; 8];
    let d = Duration::from_millis(30);
    let start = Instant::now();
    assert_eq!(b.recv_bytes_into_timeout(&mut buf, d), Err(Error::Timeout));
    assert!(start.elapsed() >= d);
    a.send_bytes(&[0u8; 56]).unwrap();
    let start = Instant::now();
    assert_eq!(a.send_bytes_timeout(b"x", d), Err(Error::Timeout));
    assert!(start.elapsed() >= d);
    let start = Instant::now();
    assert!(!a.poll(Some(d)).unwrap());
    assert!(start.elapsed() >= d);
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
}

#[test]
fn close_delivers_everything_then_disconnected() {
    let pipe = Pipe::<256>::new();
    let (a, b) = pipe.ends();
    a.send(&1u64).unwrap();
    a.send(&2u64).unwrap();
    b.send(&3u64).unwrap(); // claims b
    a.close();
    a.close(); // idempotent
    assert!(a.is_closed());
    assert_eq!(a.send(&4u64), Err(Error::Closed));
    assert_eq!(a.recv::<u64>(), Err(Error::Closed));
    assert_eq!(b.recv::<u64>(), Ok(1));
    assert_eq!(b.recv::<u64>(), Ok(2));
    assert_eq!(b.recv::<u64>(), Err(Error::Disconnected));
    assert_eq!(b.send(&5u64), Err(Error::Disconnected));
    assert!(b.poll(None).unwrap(), "a disconnected end polls ready");
}

#[test]
fn a_second_handle_on_an_owned_end_is_refused() {
    let pipe = Pipe::<256>::new();
    let (a, _b) = pipe.ends();
    a.send(&1u8).unwrap();
    let (a2, b2) = pipe.ends();
    assert!(matches!(a2.send(&2u8), Err(Error::EndpointInUse { owner }) if owner != 0));
    // Dropping the refused handle does not close the owner's end.
    drop(a2);
    assert_eq!(b2.recv::<u8>(), Ok(1));
    a.send(&3u8).unwrap();
    assert_eq!(b2.recv::<u8>(), Ok(3));
}

#[test]
fn ends_belong_to_the_first_process_and_unused_copies_close_harmlessly() {
    let pipe = Shared::new(Pipe::<4096>::new()).unwrap();
    let (parent, child_end) = pipe.ends();
    parent.send(&0u32).unwrap(); // the parent owns `parent`
    let shared = &pipe;
    let child = Child::spawn(move || {
        // The child may not use the parent's end (a fresh handle on it)...
        let (parents, _) = shared.ends();
        if !matches!(parents.send(&1u32), Err(Error::EndpointInUse { .. })) {
            return 1;
        }
        // ...but its own end is free: echo until the parent closes.
        loop {
            match child_end.recv::<u32>() {
                Ok(x) => {
                    if child_end.send(&(x + 100)).is_err() {
                        return 2;
                    }
                }
                Err(Error::Disconnected) => return 0,
                Err(_) => return 3,
            }
        }
    });
    for i in 1..=500u32 {
        parent.send(&i).unwrap();
        assert_eq!(parent.recv::<u32>(), Ok(i.wrapping_sub(1) + 100));
    }
    assert_eq!(parent.recv::<u32>(), Ok(600));
    drop(parent); // closes the owned end: the child sees Disconnected
    assert_eq!(child.join(), ExitStatus::Exited(0));
}

#[test]
fn a_killed_peer_is_disconnected_after_its_complete_messages() {
    let pipe = Shared::new(Pipe::<4096>::new()).unwrap();
    let (rx, tx) = pipe.ends();
    let sent = Shared::new(AtomicU64::new(0)).unwrap();
    let sent_ = &sent;
    let mut child = Child::spawn(move || {
        let sent = sent_;
        for i in 0..3u64 {
            tx.send(&i).unwrap();
        }
        sent.store(3, Ordering::SeqCst);
        // Now hang (owning the end, without closing it) until killed.
        loop {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(common::eventually(Duration::from_secs(10), || sent
        .load(Ordering::SeqCst)
        == 3));
    child.process().kill().unwrap();
    let start = Instant::now();
    for i in 0..3u64 {
        assert_eq!(rx.recv::<u64>(), Ok(i));
    }
    // Blocked on an empty ring, the receiver notices the dead owner.
    assert_eq!(rx.recv::<u64>(), Err(Error::Disconnected));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(rx.send(&9u64), Err(Error::Disconnected));

    // A new process adopts the dead process's end (through a fresh handle) and
    // carries on.
    let shared = &pipe;
    let next = Child::spawn(move || match shared.ends().1.send(&42u64) {
        Ok(()) => 0,
        Err(_) => 1,
    });
    // Until the new process has adopted the end, the receiver sees it dead.
    let mut got = Err(Error::Disconnected);
    assert!(common::eventually(Duration::from_secs(10), || {
        got = rx.recv::<u64>();
        got != Err(Error::Disconnected)
    }));
    assert_eq!(got, Ok(42));
    assert_eq!(next.join(), ExitStatus::Exited(0));
    drop(child);
}

#[test]
fn a_blocked_sender_sees_the_receiver_die() {
    let pipe = Shared::new(Pipe::<64>::new()).unwrap();
    let (tx, rx) = pipe.ends();
    let ready = Shared::new(AtomicU64::new(0)).unwrap();
    let ready_ = &ready;
    let mut child = Child::spawn(move || {
        let ready = ready_;
        let _ = rx.poll(Some(Duration::ZERO)); // claim the end
        ready.store(1, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(common::eventually(Duration::from_secs(10), || ready
        .load(Ordering::SeqCst)
        == 1));
    tx.send_bytes(&[0u8; 56]).unwrap(); // fills the ring
    child.process().kill().unwrap();
    assert_eq!(tx.send_bytes(b"more"), Err(Error::Disconnected));
}

#[test]
fn ping_pong_across_processes() {
    let pipe = Shared::new(Pipe::<1024>::new()).unwrap();
    let (a, b) = pipe.ends();
    let child = Child::spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            match b.recv_bytes_into(&mut buf) {
                Ok(n) => {
                    buf[..n].reverse();
                    if b.send_bytes(&buf[..n]).is_err() {
                        return 2;
                    }
                }
                Err(Error::Disconnected) => return 0,
                Err(_) => return 1,
            }
        }
    });
    let mut buf = [0u8; 1024];
    for i in 0..2000usize {
        let msg: Vec<u8> = (0..(i * 7) % 1017).map(|j| (i + j) as u8).collect();
        a.send_bytes(&msg).unwrap();
        let n = a.recv_bytes_into(&mut buf).unwrap();
        let mut back = buf[..n].to_vec();
        back.reverse();
        assert_eq!(back, msg);
    }
    a.close();
    assert_eq!(child.join(), ExitStatus::Exited(0));
}

#[test]
fn wait_reports_ready_connections_and_queues() {
    let pipe = Shared::new(Pipe::<256>::new()).unwrap();
    let queue = Shared::new(Queue::<u64, 8>::new()).unwrap();
    let (a, b) = pipe.ends();
    let d = Duration::from_millis(20);
    let start = Instant::now();
    let ready = wait(&[&b, &queue], Some(d)).unwrap();
    assert!(ready.is_empty());
    assert!(start.elapsed() >= d);

    // Another process makes them ready while we sleep in futex_waitv.
    let queue_ = &queue;
    let child = Child::spawn(move || {
        let queue = queue_;
        std::thread::sleep(Duration::from_millis(20));
        if queue.put(5).is_err() {
            return 1;
        }
        std::thread::sleep(Duration::from_millis(20));
        match a.send(&6u64) {
            Ok(()) => 0,
            Err(_) => 2,
        }
    });
    let ready = wait(&[&b, &queue], Some(Duration::from_secs(10))).unwrap();
    assert!(ready.contains(1), "{ready:?}");
    assert_eq!(queue.get(), Ok(5));
    let ready = wait(&[&b, &queue], Some(Duration::from_secs(10))).unwrap();
    assert_eq!(ready.iter().collect::<Vec<_>>(), vec![0]);
    assert_eq!(b.recv::<u64>(), Ok(6));
    assert_eq!(child.join(), ExitStatus::Exited(0));
    // The child exited owning `a`: its end is dead, so `b` is ready (Disconnected).
    assert!(
        wait(&[&b], Some(Duration::from_secs(10)))
            .unwrap()
            .contains(0)
    );
    assert_eq!(b.recv::<u64>(), Err(Error::Disconnected));

    let many: Vec<&dyn shmkit::Waitable> = vec![&queue; 65];
    assert_eq!(wait(&many, None), Err(Error::InvalidArgument));
}

#[cfg(feature = "serde")]
#[test]
fn serde_values_roundtrip() {
    let pipe = Pipe::<256>::new();
    let (a, b) = pipe.ends();
    a.send_value(&("tuple", 5u32, [1.5f64, -2.0])).unwrap();
    let v: (String, u32, [f64; 2]) = b.recv_value().unwrap();
    assert_eq!(v, ("tuple".to_string(), 5, [1.5, -2.0]));
    a.send_bytes(&[0xff; 3]).unwrap();
    assert_eq!(b.recv_value::<String>(), Err(Error::Decode));
    let long = "x".repeat(300);
    assert_eq!(
        a.send_value(&long),
        Err(Error::MessageTooLarge { len: 302, max: 248 })
    );
}

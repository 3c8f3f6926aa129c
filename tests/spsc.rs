//! The typed SPSC ring: streams between threads and forked processes with tiny
//! capacities (many laps), closing and death of either side, end ownership and its
//! hand-off to a forked child, chunks, timeouts, and scribbled indices.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Child, eventually};
use shmkit::spsc::PushError;
use shmkit::{Error, Process, Shared, Spsc};

#[test]
fn threads_stream_in_order_through_a_tiny_ring() {
    let ring = Box::new(Spsc::<u64, 4>::new());
    let (mut tx, mut rx) = ring.split();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..100_000u64 {
                tx.push(i).unwrap();
            }
        });
        for i in 0..100_000u64 {
            assert_eq!(rx.pop(), Ok(i));
        }
        // The producer's handle was dropped at the end of its thread: closed.
        assert_eq!(rx.pop(), Err(Error::Disconnected));
    });
}

#[test]
fn batches_and_chunks_wrap_and_keep_order() {
    let ring = Box::new(Spsc::<u32, 8>::new());
    let (mut tx, mut rx) = ring.split();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut next = 0u32;
            let mut round = 0usize;
            while next < 50_000 {
                round += 1;
                if round % 2 == 0 {
                    let batch: Vec<u32> = (next..next + (round % 11) as u32 + 1).collect();
                    let n = tx.push_slice(&batch).unwrap();
                    assert!(n >= 1 && n <= batch.len());
                    next += n as u32;
                } else {
                    let mut chunk = tx.write_chunk(round % 7 + 1).unwrap();
                    assert!(!chunk.is_empty());
                    for slot in chunk.iter_mut() {
                        *slot = next;
                        next += 1;
                    }
                    chunk.commit_all();
                }
            }
        });
        let mut expect = 0u32;
        let mut round = 0usize;
        let mut buf = [0u32; 13];
        while expect < 50_000 {
            round += 1;
            match round % 3 {
                0 => {
                    let n = match rx.pop_slice(&mut buf[..round % 13 + 1]) {
                        Ok(n) => n,
                        Err(Error::Disconnected) => break,
                        Err(e) => panic!("{e}"),
                    };
                    for &v in &buf[..n] {
                        assert_eq!(v, expect);
                        expect += 1;
                    }
                }
                1 => {
                    let chunk = match rx.read_chunk(round % 5 + 1) {
                        Ok(c) => c,
                        Err(Error::Disconnected) => break,
                        Err(e) => panic!("{e}"),
                    };
                    // Commit only a prefix: the rest must come again.
                    let take = chunk.len().div_ceil(2);
                    for &v in chunk.iter().take(take) {
                        assert_eq!(v, expect);
                        expect += 1;
                    }
                    chunk.commit(take);
                }
                _ => match rx.pop() {
                    Ok(v) => {
                        assert_eq!(v, expect);
                        expect += 1;
                    }
                    Err(Error::Disconnected) => break,
                    Err(e) => panic!("{e}"),
                },
            }
        }
        assert!(expect >= 50_000);
    });
}

#[test]
fn uncommitted_write_chunk_publishes_nothing() {
    let ring = Box::new(Spsc::<u8, 4>::new());
    let (mut tx, mut rx) = ring.split();
    {
        let mut chunk = tx.write_chunk(4).unwrap();
        chunk.copy_from_slice(&[1, 2, 3]);
        // Dropped uncommitted.
    }
    assert_eq!(rx.try_pop(), Err(Error::WouldBlock));
    let mut chunk = tx.write_chunk(4).unwrap();
    assert_eq!(chunk.len(), 4);
    chunk.copy_from_slice(&[9, 8]);
    chunk.commit(2);
    assert_eq!(rx.len(), Ok(2));
    assert_eq!(rx.try_pop(), Ok(9));
    assert_eq!(rx.try_pop(), Ok(8));
    assert_eq!(rx.try_pop(), Err(Error::WouldBlock));
}

#[test]
fn full_and_empty_and_timeouts() {
    let ring = Box::new(Spsc::<u16, 2>::new());
    let (mut tx, mut rx) = ring.split();
    assert_eq!(rx.try_pop(), Err(Error::WouldBlock));
    let t = Instant::now();
    assert_eq!(
        rx.pop_timeout(Duration::from_millis(20)),
        Err(Error::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(20));
    tx.try_push(1).unwrap();
    tx.try_push(2).unwrap();
    assert!(matches!(tx.try_push(3), Err(PushError::Full(3))));
    let t = Instant::now();
    assert!(matches!(
        tx.push_timeout(4, Duration::from_millis(20)),
        Err(PushError::Timeout(4))
    ));
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(tx.try_push_slice(&[5, 6]), Err(Error::WouldBlock));
    assert_eq!(tx.slots(), Ok(0));
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(tx.try_push_slice(&[5, 6]), Ok(1));
    let mut out = [0u16; 4];
    assert_eq!(rx.try_pop_slice(&mut out), Ok(2));
    assert_eq!(&out[..2], &[2, 5]);
}

#[test]
fn consumer_close_disconnects_the_producer_once_full() {
    let ring = Box::new(Spsc::<u64, 2>::new());
    let (mut tx, mut rx) = ring.split();
    assert_eq!(rx.try_pop(), Err(Error::WouldBlock)); // claims the end
    rx.close();
    assert_eq!(rx.try_pop(), Err(Error::Closed));
    // Room left: pushes are not checked against the consumer (no per-item check).
    tx.push(1).unwrap();
    tx.push(2).unwrap();
    assert!(matches!(tx.push(3), Err(PushError::Disconnected(3))));
    assert!(tx.is_abandoned());
}

#[test]
fn a_blocked_producer_wakes_on_consumer_close() {
    let ring = Box::new(Spsc::<u64, 1>::new());
    let (mut tx, mut rx) = ring.split();
    std::thread::scope(|s| {
        s.spawn(move || {
            assert!(rx.len().is_ok()); // claims the end
            std::thread::sleep(Duration::from_millis(30));
            drop(rx);
        });
        tx.push(1).unwrap();
        assert!(matches!(tx.push(2), Err(PushError::Disconnected(2))));
    });
}

#[test]
fn second_handle_in_the_owner_process_is_refused() {
    let ring = Box::new(Spsc::<u64, 4>::new());
    let mut tx = ring.producer();
    tx.push(1).unwrap();
    let mut tx2 = ring.producer();
    assert!(matches!(
        tx2.push(2),
        Err(PushError::Failed(Error::EndpointInUse { .. }, 2))
    ));
    // An unused second handle dropping does not close the end.
    drop(tx2);
    tx.push(3).unwrap();
    let mut rx = ring.consumer();
    assert_eq!(rx.pop(), Ok(1));
    assert!(matches!(
        ring.consumer().try_pop(),
        Err(Error::EndpointInUse { .. })
    ));
    assert_eq!(rx.pop(), Ok(3));
    // Closed ends stay closed for every handle.
    drop(tx);
    assert_eq!(rx.pop(), Err(Error::Disconnected));
    assert!(matches!(
        ring.producer().push(4),
        Err(PushError::Failed(Error::Closed, 4))
    ));
}

#[test]
fn processes_stream_and_disconnect_after_drain() {
    let ring = Shared::<Spsc<[u64; 2], 8>>::new_zeroed().unwrap();
    let (tx, mut rx) = ring.split();
    let child = Child::spawn(move || {
        let mut tx = tx;
        for i in 0..200_000u64 {
            if tx.push([i, !i]).is_err() {
                return 2;
            }
        }
        0
    });
    for i in 0..200_000u64 {
        assert_eq!(rx.pop(), Ok([i, !i]));
    }
    assert_eq!(rx.pop(), Err(Error::Disconnected));
    assert!(child.join().success());
}

#[test]
fn a_handle_used_by_the_parent_is_handed_to_the_child() {
    let ring = Shared::<Spsc<u64, 4>>::new_zeroed().unwrap();
    let (mut tx, mut rx) = ring.split();
    tx.push(1).unwrap(); // claimed by the parent
    let child = Child::spawn(move || {
        let mut tx = tx;
        // Owned by the child now (the parent re-claimed it for us while dropping).
        for i in 2..1000u64 {
            if tx.push(i).is_err() {
                return 2;
            }
        }
        0
    });
    for i in 1..1000u64 {
        assert_eq!(rx.pop(), Ok(i));
    }
    assert_eq!(rx.pop(), Err(Error::Disconnected));
    assert!(child.join().success());
}

#[test]
fn a_borrowed_handle_does_not_run_in_the_child() {
    let ring = Shared::<Spsc<u64, 4>>::new_zeroed().unwrap();
    let (mut tx, mut rx) = ring.split();
    tx.push(1).unwrap();
    let tx_ref = &mut tx;
    let child = Child::spawn(move || match tx_ref.try_push(2) {
        Err(PushError::Failed(Error::EndpointInUse { .. }, 2)) => 0,
        _ => 1,
    });
    assert!(child.join().success());
    tx.push(3).unwrap();
    assert_eq!(rx.pop(), Ok(1));
    assert_eq!(rx.pop(), Ok(3));
    assert_eq!(rx.try_pop(), Err(Error::WouldBlock));
}

#[test]
fn a_killed_producer_disconnects_and_can_be_adopted() {
    let ring = Shared::<Spsc<u64, 16>>::new_zeroed().unwrap();
    let pushed = Shared::new(AtomicU64::new(0)).unwrap();
    let (tx, mut rx) = ring.split();
    let flag = &pushed;
    let mut child = Child::spawn(move || {
        let mut tx = tx;
        for i in 0..5u64 {
            tx.push(i).unwrap();
        }
        flag.store(5, Ordering::Release);
        loop {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    assert!(eventually(Duration::from_secs(10), || pushed
        .load(Ordering::Acquire)
        == 5));
    child.process().kill().unwrap();
    let _ = child.join();
    for i in 0..5u64 {
        assert_eq!(rx.pop(), Ok(i));
    }
    assert_eq!(rx.pop(), Err(Error::Disconnected));
    // A new producer adopts the dead owner's end and carries on.
    let mut tx = ring.producer();
    tx.push(5).unwrap();
    assert_eq!(rx.pop(), Ok(5));
}

#[test]
fn a_killed_consumer_disconnects_a_blocked_producer() {
    let ring = Shared::<Spsc<u64, 4>>::new_zeroed().unwrap();
    let (mut tx, rx) = ring.split();
    let child = Child::spawn(move || {
        let mut rx = rx;
        let _ = rx.pop();
        loop {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    tx.push(0).unwrap();
    let pid = child.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let t = Instant::now();
    let mut i = 1;
    let err = loop {
        match tx.push(i) {
            Ok(()) => i += 1,
            Err(e) => break e,
        }
        assert!(t.elapsed() < Duration::from_secs(20), "never disconnected");
    };
    assert!(matches!(err, PushError::Disconnected(_)), "{err:?}");
    killer.join().unwrap();
    let _ = child.join();
}

#[test]
fn scribbled_indices_are_corruption_not_ub() {
    let ring = Box::new(Spsc::<u64, 8>::new());
    let (mut tx, mut rx) = ring.split();
    tx.push(1).unwrap();
    assert_eq!(rx.pop(), Ok(1));
    // tail far ahead of head: more items than slots.
    // SAFETY: no chunk is alive.
    unsafe { ring.__scribble(0, &1000u64.to_le_bytes()) };
    assert_eq!(rx.try_pop(), Err(Error::Corrupted));
    assert_eq!(rx.len(), Err(Error::Corrupted));
    // tail behind what the consumer already saw.
    // SAFETY: as above.
    unsafe { ring.__scribble(0, &0u64.to_le_bytes()) };
    assert_eq!(rx.try_pop(), Err(Error::Corrupted));
    // head past tail, seen by the producer once it looks for room.
    // SAFETY: as above.
    unsafe { ring.__scribble(128, &u64::MAX.to_le_bytes()) };
    for _ in 0..7 {
        tx.push(2).unwrap();
    }
    assert!(matches!(
        tx.try_push(3),
        Err(PushError::Failed(Error::Corrupted, 3))
    ));
}

#[test]
fn process_spawn_example_with_new_zeroed_large_ring() {
    let ring = Shared::<Spsc<u64, { 1 << 16 }>>::new_zeroed().unwrap();
    let (tx, mut rx) = ring.split();
    let mut p = Process::spawn(move || {
        let mut tx = tx;
        let items: Vec<u64> = (0..100_000).collect();
        let mut sent = 0;
        while sent < items.len() {
            sent += tx.push_slice(&items[sent..]).unwrap();
        }
        0
    })
    .unwrap();
    let mut buf = vec![0u64; 4096];
    let mut expect = 0u64;
    loop {
        match rx.pop_slice(&mut buf) {
            Ok(n) => {
                for &v in &buf[..n] {
                    assert_eq!(v, expect);
                    expect += 1;
                }
            }
            Err(Error::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(expect, 100_000);
    assert!(
        p.join_timeout(Duration::from_secs(30))
            .unwrap()
            .unwrap()
            .success()
    );
}

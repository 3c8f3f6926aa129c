// Atomics here are values put in segments, not algorithms under loom.
#![allow(clippy::disallowed_types)]

use std::format;
use std::string::String;
use std::vec::Vec;

use super::*;
use crate::segment::ShmSafe;
use crate::{
    Array, Barrier, BoundedSemaphore, Condvar, Event, JoinableQueue, Mutex, Pipe, Queue,
    ReentrantMutex, Semaphore, Shared, Value,
};

fn name(tag: &str) -> String {
    static N: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    format!("shmkit-inspect-{tag}-{}-{n}", std::process::id())
}

/// A named segment holding `value`, and its inspection.
fn inspect<T: ShmSafe>(tag: &str, value: T) -> (Shared<T>, Segment) {
    let name = name(tag);
    let shared = Shared::create(&name, value).unwrap();
    let seg = Segment::open(&name).unwrap();
    (shared, seg)
}

fn me() -> u32 {
    crate::primitive::my_process_id()
}

#[test]
fn a_mutex_shows_its_holder_and_flags() {
    let (m, seg) = inspect("mutex", Mutex::new(7u64));
    let State::Lock(s) = seg.state().unwrap() else {
        panic!()
    };
    assert_eq!(s.holder, None);
    assert!(!s.waiters && !s.owner_died && !s.not_recoverable);
    let guard = m.lock().unwrap();
    let State::Lock(s) = seg.state().unwrap() else {
        panic!()
    };
    let holder = s.holder.unwrap();
    assert_eq!(holder.id, crate::primitive::my_thread_id());
    assert_eq!(holder.liveness, Liveness::Alive);
    assert_eq!(holder.pid, Some(std::process::id() as i32));
    assert!(holder.tid.is_some());
    drop(guard);
    assert_eq!(seg.info().kind, Some(Kind::Mutex));
    assert_eq!(seg.creator().unwrap().id, me());
}

#[test]
fn a_reentrant_mutex_shows_its_depth() {
    let (m, seg) = inspect("rmutex", ReentrantMutex::new(0u32));
    let a = m.lock().unwrap();
    let b = m.lock().unwrap();
    let State::Lock(s) = seg.state().unwrap() else {
        panic!()
    };
    assert_eq!(s.depth, Some(2));
    drop((a, b));
}

#[test]
fn cells_show_their_contents() {
    let (v, seg) = inspect("value", Value::new(-42i32));
    let State::Lock(s) = seg.state().unwrap() else {
        panic!()
    };
    let c = s.contents.unwrap();
    assert_eq!((c.item_type, c.len), ("i32", 1));
    assert_eq!(c.items, [Scalar::Signed(-42)]);
    v.set(5);
    let (_a, seg) = inspect("array", Array::new([1.5f64, 2.0, 3.0]));
    let State::Lock(s) = seg.state().unwrap() else {
        panic!()
    };
    let c = s.contents.unwrap();
    assert_eq!((c.item_type, c.len), ("f64", 3));
    assert_eq!(c.items[0], Scalar::Float(1.5));
    assert_eq!(c.items.len(), 3);
    let (_a, seg) = inspect("array16", Array::new([0u16; 20]));
    let State::Lock(s) = seg.state().unwrap() else {
        panic!()
    };
    assert_eq!(s.contents.unwrap().items.len(), Contents::SHOWN);
    let (_p, seg) = inspect("plain", core::sync::atomic::AtomicU64::new(99));
    assert_eq!(seg.state().unwrap(), State::Plain(Scalar::Unsigned(99)));
}

#[test]
fn semaphores_events_barriers_condvars() {
    let (s, seg) = inspect("sem", Semaphore::new(3));
    s.acquire();
    assert!(matches!(
        seg.state().unwrap(),
        State::Semaphore(SemaphoreState {
            value: 2,
            bound: None,
            ..
        })
    ));
    let (s, seg) = inspect("bsem", BoundedSemaphore::new(2));
    s.acquire();
    assert!(matches!(
        seg.state().unwrap(),
        State::Semaphore(SemaphoreState {
            value: 1,
            bound: Some(2),
            ..
        })
    ));
    let (e, seg) = inspect("event", Event::new());
    assert!(matches!(
        seg.state().unwrap(),
        State::Event(EventState {
            set: false,
            sets: 0,
            ..
        })
    ));
    e.set();
    assert!(matches!(
        seg.state().unwrap(),
        State::Event(EventState {
            set: true,
            sets: 1,
            ..
        })
    ));
    let (_b, seg) = inspect("barrier", Barrier::new(3));
    let State::Barrier(b) = seg.state().unwrap() else {
        panic!()
    };
    assert_eq!((b.parties, b.arrived, b.broken, b.round), (3, 0, false, 0));
    let (c, seg) = inspect("condvar", Condvar::new());
    c.notify_one();
    assert!(matches!(seg.state().unwrap(), State::Condvar(_)));
}

#[test]
fn a_pipe_shows_bytes_queued_and_owners() {
    let name = name("pipe");
    let pipe = Shared::create(&name, Pipe::<4096>::new()).unwrap();
    let seg = Segment::open(&name).unwrap();
    let State::Pipe(p) = seg.state().unwrap() else {
        panic!()
    };
    assert_eq!(p.capacity, 4096);
    assert!(p.ends.iter().all(|e| e.owner.is_none() && !e.closed));
    let (a, b) = pipe.ends();
    a.send_bytes(b"hello").unwrap();
    a.send_bytes(&[7; 20]).unwrap();
    let State::Pipe(p) = seg.state().unwrap() else {
        panic!()
    };
    assert_eq!(p.ends[0].owner.unwrap().id, me());
    assert_eq!(p.ends[0].owner.unwrap().liveness, Liveness::Alive);
    assert_eq!(p.directions[0].queued, (8 + 8) + (8 + 24));
    assert_eq!(p.directions[1].queued, 0);
    let mut buf = [0u8; 64];
    b.recv_bytes_into(&mut buf).unwrap();
    let State::Pipe(p) = seg.state().unwrap() else {
        panic!()
    };
    assert_eq!(p.directions[0].queued, 8 + 24);
    assert_eq!(p.directions[0].received_total, 16);
    b.close();
    let State::Pipe(p) = seg.state().unwrap() else {
        panic!()
    };
    assert!(p.ends[1].closed);
}

#[test]
fn a_queue_shows_depth_and_closed() {
    let (q, seg) = inspect("queue", Queue::<u64, 8>::new());
    for i in 0..5 {
        q.put(i).unwrap();
    }
    q.get().unwrap();
    let State::Queue(s) = seg.state().unwrap() else {
        panic!()
    };
    assert_eq!((s.capacity, s.depth, s.head, s.tail), (8, 4, 1, 5));
    assert!(!s.closed && s.claims.is_empty() && s.unfinished.is_none());
    q.close();
    let State::Queue(s) = seg.state().unwrap() else {
        panic!()
    };
    assert!(s.closed);
    let (q, seg) = inspect("jqueue", JoinableQueue::<[u8; 24], 3>::new());
    q.put([1; 24]).unwrap();
    let State::Queue(s) = seg.state().unwrap() else {
        panic!()
    };
    assert_eq!((s.capacity, s.depth, s.unfinished), (3, 1, Some(1)));
}

#[test]
fn foreign_and_broken_objects_are_named() {
    let n = name("foreign");
    let path = std::path::Path::new("/dev/shm").join(&n);
    std::fs::write(&path, b"hello, I am not a segment").unwrap();
    assert_eq!(
        Segment::open(&n).unwrap_err(),
        OpenError::TooSmall { size: 25 }
    );
    std::fs::write(&path, [0xAB; 4096]).unwrap();
    assert!(matches!(
        Segment::open(&n).unwrap_err(),
        OpenError::NotShmkit { .. }
    ));
    std::fs::write(&path, []).unwrap();
    assert_eq!(Segment::open(&n).unwrap_err(), OpenError::Empty);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(Segment::open(&n).unwrap_err(), OpenError::NotFound);
    assert_eq!(Segment::open("a/b").unwrap_err(), OpenError::InvalidName);
    // A real segment, truncated.
    let (_q, _) = inspect("trunc-src", Queue::<u64, 1024>::new());
    let n = name("trunc");
    let q = Shared::create(&n, Queue::<u64, 1024>::new()).unwrap();
    let path = std::path::Path::new("/dev/shm").join(&n);
    let seg = Segment::open(&n).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    // The open segment notices before it reads past the new end...
    assert!(seg.state().unwrap_err().0.contains("truncated"));
    drop(seg);
    // ...and a fresh open says so.
    assert!(matches!(
        Segment::open(&n).unwrap_err(),
        OpenError::Truncated { size: 4096, .. }
    ));
    drop(q);
}

/// The bytes of a fresh named segment of `T`.
fn bytes_of<T: ShmSafe>(value: T) -> Vec<u8> {
    let n = name("bytes");
    let s = Shared::create(&n, value).unwrap();
    let bytes = std::fs::read(std::path::Path::new("/dev/shm").join(&n)).unwrap();
    drop(s);
    bytes
}

#[test]
fn a_value_of_the_wrong_size_is_named() {
    // `value_size` is the header's u64 at offset 32: shrink it under each object.
    for (bytes, what, size) in [
        (bytes_of(Event::new()), "an Event", 12),
        (bytes_of(Barrier::new(2)), "a Barrier", 24),
        (bytes_of(Condvar::new()), "a Condvar", 8),
        (bytes_of(Semaphore::new(1)), "a semaphore", 12),
    ] {
        let mut bytes = bytes;
        bytes[32..40].copy_from_slice(&4u64.to_le_bytes());
        let err = Segment::from_bytes(&bytes).unwrap().state().unwrap_err();
        assert_eq!(err.0, format!("{what} of 4 bytes (it has {size})"));
    }
}

#[test]
fn a_copy_decodes_with_unknown_participants() {
    let bytes = bytes_of(Mutex::new(0u32));
    let seg = Segment::from_bytes(&bytes).unwrap();
    assert!(seg.object().is_none());
    assert!(matches!(seg.state().unwrap(), State::Lock(_)));
    assert_eq!(seg.creator().unwrap().liveness, Liveness::Unknown);
}

/// Every kind's real bytes, for the scribble tests.
fn samples() -> Vec<Vec<u8>> {
    std::vec![
        bytes_of(Queue::<u64, 4>::new()),
        bytes_of(JoinableQueue::<u32, 16>::new()),
        bytes_of(Pipe::<64>::new()),
        bytes_of(Pipe::<256>::new()),
        bytes_of(Mutex::new(1u8)),
        bytes_of(ReentrantMutex::new(1u64)),
        bytes_of(Value::new(2u16)),
        bytes_of(Array::new([3i64; 5])),
        bytes_of(Semaphore::new(1)),
        bytes_of(BoundedSemaphore::new(1)),
        bytes_of(Event::new()),
        bytes_of(Barrier::new(2)),
        bytes_of(Condvar::new()),
        bytes_of(core::sync::atomic::AtomicU32::new(1)),
    ]
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any bytes at all: an error or a state, never a panic.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..9000)) {
            if let Ok(seg) = Segment::from_bytes(&bytes) {
                let _ = seg.state();
            }
        }

        /// Real segments of every kind with random bytes written over them (header and
        /// value alike): an error or a state, never a panic, and the untouched ones
        /// decode.
        #[test]
        fn scribbled_segments_never_panic(
            which in 0usize..14,
            // Half of the scribbles land in the header, the rest anywhere.
            scribbles in proptest::collection::vec(
                (prop_oneof![0u16..256, any::<u16>()], any::<u64>()),
                0..8,
            ),
        ) {
            let mut bytes = SAMPLES.with(|s| s[which].clone());
            for (at, word) in &scribbles {
                let at = *at as usize % bytes.len();
                let end = (at + 8).min(bytes.len());
                bytes[at..end].copy_from_slice(&word.to_le_bytes()[..end - at]);
            }
            let seg = Segment::from_bytes(&bytes);
            if scribbles.is_empty() {
                prop_assert!(seg.as_ref().unwrap().state().is_ok());
            }
            if let Ok(seg) = seg {
                let _ = seg.state();
            }
        }
    }

    std::thread_local! {
        static SAMPLES: Vec<Vec<u8>> = samples();
    }
}

//! Shared segments: anonymous and named, across fork, and every validation error.
#![allow(clippy::disallowed_types)]

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Child, Unlink, shm_path, unique_name};
use shmkit::{ExitStatus, SegmentErrorKind as Kind, Shared};

#[test]
fn anonymous_writes_are_seen_both_ways_across_fork() {
    let cell = Shared::new(AtomicU64::new(1)).unwrap();
    let flag = Shared::new(AtomicU32::new(0)).unwrap();
    let child = Child::spawn(|| {
        // See the parent's value, write ours, then wait for the parent's answer.
        if cell.load(Ordering::SeqCst) != 1 {
            return 2;
        }
        cell.store(2, Ordering::SeqCst);
        let start = Instant::now();
        while cell.load(Ordering::SeqCst) != 3 {
            if start.elapsed() > Duration::from_secs(10) {
                return 3;
            }
            std::hint::spin_loop();
        }
        flag.store(1, Ordering::SeqCst);
        0
    });
    assert!(common::eventually(Duration::from_secs(10), || cell
        .load(Ordering::SeqCst)
        == 2));
    cell.store(3, Ordering::SeqCst);
    assert_eq!(child.join(), ExitStatus::Exited(0));
    assert_eq!(flag.load(Ordering::SeqCst), 1);
}

#[test]
fn named_create_open_from_another_process_unlink() {
    let name = unique_name("roundtrip");
    let _cleanup = Unlink(name.clone());
    let created = Shared::create(&name, AtomicU64::new(41)).unwrap();
    assert_eq!(created.name(), Some(name.as_str()));
    assert!(created.is_creator());
    assert!(shm_path(&name).exists());

    let child = Child::spawn(|| {
        // The child opens by name: its own mapping, the same bytes.
        let Ok(opened) = Shared::<AtomicU64>::open(&name) else {
            return 2;
        };
        if opened.is_creator() {
            return 3;
        }
        if opened.fetch_add(1, Ordering::SeqCst) != 41 {
            return 4;
        }
        0
    });
    assert_eq!(child.join(), ExitStatus::Exited(0));
    assert_eq!(created.load(Ordering::SeqCst), 42);

    Shared::<AtomicU64>::unlink(&name).unwrap();
    assert!(!shm_path(&name).exists());
    assert_eq!(
        Shared::<AtomicU64>::open(&name).unwrap_err().kind(),
        Kind::NotFound
    );
    // The creator's mapping stays valid after the unlink.
    assert_eq!(created.load(Ordering::SeqCst), 42);
    let err = Shared::<AtomicU64>::unlink(&name).unwrap_err();
    assert_eq!((err.kind(), err.name()), (Kind::NotFound, name.as_str()));
}

#[test]
fn create_twice_is_already_exists() {
    let name = unique_name("twice");
    let _cleanup = Unlink(name.clone());
    let first = Shared::create(&name, 1u64).unwrap();
    let err = Shared::create(&name, 2u64).unwrap_err();
    assert_eq!(err.kind(), Kind::AlreadyExists);
    // The name is in the message, with what to do.
    let text = err.to_string();
    assert!(
        text.contains(&format!("{name:?}")) && text.contains("open_or_create"),
        "{text}"
    );
    // The failed create changed nothing.
    assert_eq!(*first, 1);
    assert_eq!(*Shared::<u64>::open(&name).unwrap(), 1);
}

#[test]
fn wrong_type_wrong_size_and_bad_magic_are_distinct_errors() {
    // Wrong type.
    let name = unique_name("type");
    let _c1 = Unlink(name.clone());
    let _seg = Shared::create(&name, 7u64).unwrap();
    let err = Shared::<i64>::open(&name).unwrap_err();
    assert_eq!(err.kind(), Kind::WrongType);
    assert_eq!(
        (err.expected_type(), err.found_type()),
        (Some("i64"), Some("u64"))
    );
    let text = err.to_string();
    assert!(text.contains("holds a `u64`, not a `i64`"), "{text}");

    // Wrong size: the object was truncated behind the kit's back.
    let name = unique_name("size");
    let _c2 = Unlink(name.clone());
    let _seg = Shared::create(&name, 7u64).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    let real = file.metadata().unwrap().len();
    file.set_len(real * 2).unwrap();
    let err = Shared::<u64>::open(&name).unwrap_err();
    assert_eq!(err.kind(), Kind::WrongSize);
    assert_eq!(err.numbers(), (real, real * 2));

    // Corrupted magic.
    let name = unique_name("magic");
    let _c3 = Unlink(name.clone());
    let _seg = Shared::create(&name, 7u64).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    file.write_all(b"garbage!").unwrap();
    let err = Shared::<u64>::open(&name).unwrap_err();
    assert_eq!(err.kind(), Kind::BadMagic);
    assert_eq!(err.numbers().1, u64::from_le_bytes(*b"garbage!"));

    // A different layout version.
    let name = unique_name("version");
    let _c4 = Unlink(name.clone());
    let _seg = Shared::create(&name, 7u64).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    file.seek(SeekFrom::Start(8)).unwrap();
    file.write_all(&99u32.to_le_bytes()).unwrap();
    let err = Shared::<u64>::open(&name).unwrap_err();
    assert_eq!(err.kind(), Kind::VersionMismatch);
    assert_eq!(err.numbers().0 >> 32, 2);
    assert_eq!(err.numbers().1 >> 32, 99);

    // Another shmkit major.minor (offset 44: kit_version).
    let name = unique_name("kitversion");
    let _c5 = Unlink(name.clone());
    let _seg = Shared::create(&name, 7u64).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    file.seek(SeekFrom::Start(44)).unwrap();
    file.write_all(&((7u32 << 16) | 3).to_le_bytes()).unwrap();
    let err = Shared::<u64>::open(&name).unwrap_err();
    assert_eq!(err.kind(), Kind::VersionMismatch);
    assert!(err.to_string().contains("made by shmkit 7.3"), "{err}");
}

#[test]
fn a_file_that_never_became_ready_is_not_ready() {
    // An object of the right size that nobody initialised: all zeros.
    let name = unique_name("notready");
    let _c = Unlink(name.clone());
    let path = shm_path(&name);
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(4096).unwrap();
    let start = Instant::now();
    let err = Shared::<u64>::open_timeout(&name, Duration::from_millis(50)).unwrap_err();
    assert_eq!(err.kind(), Kind::NotReady);
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[test]
fn open_waits_for_a_slow_creator() {
    let name = unique_name("slow");
    let _c = Unlink(name.clone());
    let ready = Shared::new(AtomicU32::new(0)).unwrap();
    let child = Child::spawn(|| {
        // SAFETY: the closure initialises the slot fully.
        let seg = unsafe {
            Shared::<u64>::create_with(&name, |slot| {
                ready.store(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
                slot.write(99);
            })
        };
        let Ok(seg) = seg else { return 2 };
        // Keep it alive until the parent has read it (it unlinks on drop).
        while ready.load(Ordering::SeqCst) != 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(seg);
        0
    });
    assert!(common::eventually(Duration::from_secs(10), || ready
        .load(Ordering::SeqCst)
        == 1));
    // Still initialising: a short open gives up ...
    assert_eq!(
        Shared::<u64>::open_timeout(&name, Duration::from_millis(10))
            .unwrap_err()
            .kind(),
        Kind::NotReady
    );
    // ... a patient one sees the value.
    let seg = Shared::<u64>::open_timeout(&name, Duration::from_secs(10)).unwrap();
    assert_eq!(*seg, 99);
    ready.store(2, Ordering::SeqCst);
    assert_eq!(child.join(), ExitStatus::Exited(0));
    // The creator unlinked on drop.
    assert!(!shm_path(&name).exists());
}

#[test]
fn only_the_creator_unlinks_never_a_forked_child() {
    let name = unique_name("creator");
    let _c = Unlink(name.clone());
    let seg = Shared::create(&name, 5u32).unwrap();
    let child = Child::spawn(|| {
        if seg.is_creator() {
            return 2;
        }
        // Dropping the inherited handle in the child must not unlink.
        // SAFETY: the child owns its copy of the parent's memory, and it leaves through
        // `_exit` without dropping `seg`, so this bitwise copy is the only handle that
        // drops in the child.
        let copy = unsafe { std::ptr::read(&seg) };
        drop(copy);
        0
    });
    assert_eq!(child.join(), ExitStatus::Exited(0));
    assert!(
        shm_path(&name).exists(),
        "a forked child unlinked the segment"
    );
    let opened = Shared::<u32>::open(&name).unwrap();
    drop(opened); // an opener does not unlink either
    assert!(shm_path(&name).exists());
    drop(seg);
    assert!(!shm_path(&name).exists(), "the creator did not unlink");
}

#[test]
fn names_are_checked() {
    for bad in ["", "a/b", "nul\0", &"n".repeat(251)] {
        assert_eq!(
            Shared::create(bad, 0u8).unwrap_err().kind(),
            Kind::InvalidName,
            "{bad:?}"
        );
        assert_eq!(
            Shared::<u8>::open(bad).unwrap_err().kind(),
            Kind::InvalidName
        );
    }
    // `open` does not wait for a segment to appear.
    let start = Instant::now();
    assert_eq!(
        Shared::<u8>::open(&unique_name("absent"))
            .unwrap_err()
            .kind(),
        Kind::NotFound
    );
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn large_values_are_built_in_place() {
    // 64 MiB: far beyond any thread's stack, so this only works if nothing is built
    // on the stack first.
    type Big = [u64; 8 << 20];
    let big = Shared::<Big>::new_zeroed().unwrap();
    assert!(big.iter().all(|&x| x == 0));
    let name = unique_name("big");
    let _c = Unlink(name.clone());
    let named = Shared::<Big>::create_zeroed(&name).unwrap();
    let opened = Shared::<Big>::open(&name).unwrap();
    assert_eq!(named[12345], 0);
    assert_eq!(opened[(8 << 20) - 1], 0);
    // In-place initialisation of a big value through a closure.
    // SAFETY: every element is written.
    let filled = unsafe {
        Shared::<[AtomicU32; 1 << 20]>::new_with(|slot| {
            let p = slot.as_mut_ptr().cast::<u32>();
            for i in 0..(1 << 20) {
                p.add(i).write(i as u32);
            }
        })
    }
    .unwrap();
    assert_eq!(filled[777].load(Ordering::Relaxed), 777);
}

#[test]
fn a_panicking_initialiser_leaves_nothing_behind() {
    let name = unique_name("panic");
    let _c = Unlink(name.clone());
    let result = std::panic::catch_unwind(|| {
        // SAFETY: the closure never returns.
        let _ = unsafe { Shared::<u64>::create_with(&name, |_| panic!("init failed")) };
    });
    assert!(result.is_err());
    assert!(!shm_path(&name).exists());
}

#[test]
fn debug_and_display() {
    let s = Shared::new(5u32).unwrap();
    assert_eq!(s.to_string(), "5");
    let d = format!("{s:?}");
    assert!(d.contains("\"u32\"") && d.contains("name: None"), "{d}");
}

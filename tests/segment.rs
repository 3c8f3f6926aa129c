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

// ---- identity: two programs, one struct -----------------------------------------

/// Two crates (here: two modules, which give `core::any::type_name` different paths
/// just as two binaries do) with the same `#[repr(C)]` struct.
mod program_a {
    #[derive(shmkit::ShmSafe, shmkit::Zeroable)]
    #[repr(C)]
    pub struct Book {
        pub price: std::sync::atomic::AtomicU64,
        pub qty: std::sync::atomic::AtomicU32,
        pub side: std::sync::atomic::AtomicU32,
    }
}

mod program_b {
    #[derive(shmkit::ShmSafe, shmkit::Zeroable)]
    #[repr(C)]
    pub struct Book {
        pub price: std::sync::atomic::AtomicU64,
        pub qty: std::sync::atomic::AtomicU32,
        pub side: std::sync::atomic::AtomicU32,
    }
}

/// The same name, another layout (two fields swapped: same size, same alignment).
mod program_c {
    #[derive(shmkit::ShmSafe, shmkit::Zeroable)]
    #[repr(C)]
    pub struct Book {
        pub qty: std::sync::atomic::AtomicU32,
        pub side: std::sync::atomic::AtomicU32,
        pub price: std::sync::atomic::AtomicU64,
    }
}

/// Another name chosen by the user.
mod program_d {
    #[derive(shmkit::ShmSafe, shmkit::Zeroable)]
    #[repr(C)]
    #[type_name("exchange.Book.v2")]
    pub struct Book {
        pub price: std::sync::atomic::AtomicU64,
        pub qty: std::sync::atomic::AtomicU32,
        pub side: std::sync::atomic::AtomicU32,
    }
}

#[test]
fn the_same_struct_from_two_crates_meets_on_a_named_segment() {
    let name = unique_name("book");
    let _c = Unlink(name.clone());
    let a = Shared::<program_a::Book>::create_zeroed(&name).unwrap();
    a.price.store(101, Ordering::SeqCst);
    let b = Shared::<program_b::Book>::open(&name).unwrap();
    assert_eq!(b.price.load(Ordering::SeqCst), 101);

    // Another layout under the same name: refused, and the error says so in words.
    let err = Shared::<program_c::Book>::open(&name).unwrap_err();
    assert_eq!(err.kind(), Kind::WrongType);
    assert_eq!(err.found_type(), Some("Book"));
    let text = err.to_string();
    assert!(text.contains("layout differs"), "{text}");

    // Another name: refused, naming both.
    let err = Shared::<program_d::Book>::open(&name).unwrap_err();
    assert_eq!(
        (err.expected_type(), err.found_type()),
        (Some("exchange.Book.v2"), Some("Book"))
    );
    assert!(
        err.to_string()
            .contains("holds a `Book`, not a `exchange.Book.v2`"),
        "{err}"
    );
}

#[test]
fn kit_types_have_readable_names_and_versioned_layouts() {
    use shmkit::segment::{Kind as SegKind, LayoutHasher, TypeName};
    use shmkit::{Mutex, Queue};
    assert_eq!(
        TypeName::of::<Queue<u64, 8>>().as_str(),
        "shmkit::Queue<u64, 8>"
    );
    assert_eq!(
        TypeName::of::<Mutex<program_a::Book>>().as_str(),
        "shmkit::Mutex<Book>"
    );
    assert_eq!(<Queue<u64, 8> as shmkit::ShmSafe>::KIND, SegKind::Queue);
    // The kit's layout version is part of every layout that holds the type.
    assert_ne!(
        LayoutHasher::of::<Mutex<u64>>(),
        LayoutHasher::of::<shmkit::ReentrantMutex<u64>>()
    );
    // A queue of another capacity is another type, named as such.
    let name = unique_name("cap");
    let _c = Unlink(name.clone());
    let _q = Shared::<Queue<u64, 8>>::create_zeroed(&name).unwrap();
    let err = Shared::<Queue<u64, 16>>::open(&name).unwrap_err();
    assert!(
        err.to_string()
            .contains("holds a `shmkit::Queue<u64, 8>`, not a `shmkit::Queue<u64, 16>`"),
        "{err}"
    );
}

#[test]
fn the_header_tells_tools_what_a_segment_holds() {
    use shmkit::segment::{Kind as SegKind, inspect};
    let name = unique_name("inspect");
    let _c = Unlink(name.clone());
    let _m = Shared::<shmkit::Mutex<u64>>::create_zeroed(&name).unwrap();
    let info = inspect(&name).unwrap();
    assert_eq!(info.kind, Some(SegKind::Mutex));
    assert_eq!(info.type_name.as_str(), "shmkit::Mutex<u64>");
    assert_eq!(info.creator_pid, std::process::id() as i32);
    assert_eq!(info.creator_alive(), Some(true));
    assert!(!info.sealed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(info.created_ns <= now && now - info.created_ns < 60_000_000_000);
    // A file that is not ours.
    let other = unique_name("notours");
    let _c2 = Unlink(other.clone());
    std::fs::write(shm_path(&other), vec![7u8; 4096]).unwrap();
    assert_eq!(inspect(&other).unwrap_err().kind(), Kind::BadMagic);
}

// ---- anonymous segments are sealed memfds -----------------------------------------

#[test]
fn anonymous_segments_are_sealed_memfds() {
    let s = Shared::<AtomicU64>::new_zeroed().unwrap();
    assert!(s.is_sealed(), "this kernel gave no sealed memfd");
    // The mapping is a memfd, visible as such in our own map.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(maps.contains("/memfd:shmkit"), "{maps}");
    // Named segments cannot be sealed.
    let name = unique_name("unsealed");
    let _c = Unlink(name.clone());
    assert!(!Shared::create(&name, 1u8).unwrap().is_sealed());
}

// ---- open_timeout and open_or_create ------------------------------------------------

#[test]
fn open_timeout_waits_for_the_segment_to_appear() {
    let name = unique_name("appear");
    let _c = Unlink(name.clone());
    let done = Shared::new(AtomicU32::new(0)).unwrap();
    let child = Child::spawn(|| {
        std::thread::sleep(Duration::from_millis(200));
        let Ok(seg) = Shared::create(&name, 77u64) else {
            return 2;
        };
        while done.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(seg);
        0
    });
    let start = Instant::now();
    let seg = Shared::<u64>::open_timeout(&name, Duration::from_secs(20)).unwrap();
    assert_eq!(*seg, 77);
    assert!(start.elapsed() >= Duration::from_millis(150));
    done.store(1, Ordering::SeqCst);
    assert_eq!(child.join(), ExitStatus::Exited(0));

    // Nobody creates it: NotFound, but only after the timeout.
    let start = Instant::now();
    let err =
        Shared::<u64>::open_timeout(&unique_name("never"), Duration::from_millis(100)).unwrap_err();
    assert_eq!(err.kind(), Kind::NotFound);
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[test]
fn open_or_create_creates_then_opens() {
    let name = unique_name("ooc");
    let _c = Unlink(name.clone());
    let first = Shared::<AtomicU64>::open_or_create_zeroed(&name).unwrap();
    assert!(first.is_creator());
    first.store(5, Ordering::SeqCst);
    let second = Shared::<AtomicU64>::open_or_create(&name, AtomicU64::new(9)).unwrap();
    assert!(!second.is_creator());
    assert_eq!(second.load(Ordering::SeqCst), 5);
    // A live creator's segment of another type is an error, never replaced.
    let err = Shared::<u32>::open_or_create(&name, 1).unwrap_err();
    assert_eq!(err.kind(), Kind::WrongType);
    assert_eq!(first.load(Ordering::SeqCst), 5);
}

/// A child creates `name` (holding `value`) and is then killed: its segment stays.
fn leave_a_dead_creators_segment(name: &str, value: u64) {
    let made = Shared::new(AtomicU32::new(0)).unwrap();
    let mut child = Child::spawn(|| {
        let Ok(seg) = Shared::create(name, AtomicU64::new(value)) else {
            return 2;
        };
        made.store(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(60));
        drop(seg);
        0
    });
    assert!(common::eventually(Duration::from_secs(10), || made
        .load(Ordering::SeqCst)
        == 1));
    child.process().kill().unwrap();
    let status = child.join();
    assert_eq!(status, ExitStatus::Signaled(9));
    assert!(shm_path(name).exists());
}

#[test]
fn open_or_create_replaces_a_dead_creators_segment() {
    let name = unique_name("dead");
    let _c = Unlink(name.clone());
    leave_a_dead_creators_segment(&name, 41);
    // Plain create still refuses, naming the way out.
    let err = Shared::create(&name, AtomicU64::new(0)).unwrap_err();
    assert!(err.to_string().contains("open_or_create"), "{err}");
    // A plain open still opens it (its creator's death does not make it invalid).
    assert_eq!(
        Shared::<AtomicU64>::open(&name)
            .unwrap()
            .load(Ordering::SeqCst),
        41
    );
    let fresh = Shared::<AtomicU64>::open_or_create(&name, AtomicU64::new(1)).unwrap();
    assert!(fresh.is_creator());
    assert_eq!(fresh.load(Ordering::SeqCst), 1);
    // ... also when the restarted program uses another type.
    drop(fresh);
    leave_a_dead_creators_segment(&name, 41);
    let other = Shared::<u32>::open_or_create(&name, 3).unwrap();
    assert!(other.is_creator());
    assert_eq!(*other, 3);
}

#[test]
fn open_or_create_replaces_a_creator_that_died_initialising() {
    let name = unique_name("deadinit");
    let _c = Unlink(name.clone());
    let started = Shared::new(AtomicU32::new(0)).unwrap();
    let mut child = Child::spawn(|| {
        // SAFETY: the closure never returns (the child is killed inside it).
        let _ = unsafe {
            Shared::<u64>::create_with(&name, |_| {
                started.store(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(60));
            })
        };
        0
    });
    assert!(common::eventually(Duration::from_secs(10), || started
        .load(Ordering::SeqCst)
        == 1));
    // While the creator lives, it is not displaced: a short open_or_create gives up.
    let err = Shared::<u64>::open_or_create(&name, 5).unwrap_err();
    assert_eq!(err.kind(), Kind::NotReady);
    assert_ne!(err.creator_id(), 0);
    child.process().kill().unwrap();
    assert_eq!(child.join(), ExitStatus::Signaled(9));
    let start = Instant::now();
    let seg = Shared::<u64>::open_or_create(&name, 5).unwrap();
    assert!(seg.is_creator());
    assert_eq!(*seg, 5);
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn racing_replacers_end_up_on_one_segment() {
    for round in 0..40 {
        let name = unique_name(&format!("race{round}"));
        let _c = Unlink(name.clone());
        leave_a_dead_creators_segment(&name, 41);
        let go = Shared::new(AtomicU32::new(0)).unwrap();
        let children: Vec<Child> = (0..3u64)
            .map(|i| {
                let go = &go;
                let name = &name;
                Child::spawn(move || {
                    while go.load(Ordering::SeqCst) == 0 {
                        std::hint::spin_loop();
                    }
                    let Ok(seg) = Shared::<AtomicU64>::open_or_create(name, AtomicU64::new(0))
                    else {
                        return 2;
                    };
                    if seg.load(Ordering::SeqCst) == 41 {
                        return 3; // the dead creator's segment was handed out
                    }
                    seg.fetch_add(1 << (8 * i), Ordering::SeqCst);
                    // Keep it mapped (and, for its creator, linked) until all are done.
                    while go.load(Ordering::SeqCst) != 4 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    if seg.load(Ordering::SeqCst) == 0x01_0101 {
                        0
                    } else {
                        4
                    }
                })
            })
            .collect();
        go.store(1, Ordering::SeqCst);
        // Each child adds its byte; wait until the one segment shows all three.
        let seen = common::eventually(Duration::from_secs(20), || {
            Shared::<AtomicU64>::open(&name).is_ok_and(|s| s.load(Ordering::SeqCst) == 0x01_0101)
        });
        go.store(4, Ordering::SeqCst);
        for child in children {
            assert_eq!(child.join(), ExitStatus::Exited(0), "round {round}");
        }
        assert!(
            seen,
            "round {round}: the replacers did not meet on one segment"
        );
    }
}

// ---- in place, errors that compose -------------------------------------------------

#[test]
fn a_one_mebibyte_queue_on_a_small_stack() {
    use shmkit::Queue;
    // 65536 slots of 16 bytes: 1 MiB, made on a 64 KiB stack.
    let t = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| {
            let q = Shared::<Queue<u64, 65536>>::new_zeroed().unwrap();
            q.try_put(7).unwrap();
            q.try_get().unwrap()
        })
        .unwrap();
    assert_eq!(t.join().unwrap(), 7);
}

#[test]
fn errors_compose_with_question_mark() {
    use shmkit::{Error, Mutex, Queue};
    fn work(name: &str) -> Result<u64, Error> {
        let q = Shared::<Queue<u64, 4>>::open_or_create_zeroed(name)?;
        q.try_put(1)?;
        let m = Shared::new(Mutex::new(0u64))?;
        *m.lock()? += q.try_get()?;
        let total = *m.lock()?;
        q.try_get()?; // empty: WouldBlock
        Ok(total)
    }
    let name = unique_name("compose");
    let _c = Unlink(name.clone());
    assert_eq!(work(&name), Err(Error::WouldBlock));
    // A segment error keeps the name through `?`, so `main` prints it.
    fn open_absent(name: &str) -> Result<(), Error> {
        Shared::<u64>::open(name)?;
        Ok(())
    }
    let absent = "shmkit-test-absent-name";
    let err = open_absent(absent).unwrap_err();
    assert_eq!(err.segment_kind(), Some(Kind::NotFound));
    assert!(format!("{err:?}").contains(absent), "{err:?}");
    assert!(err.to_string().contains(absent), "{err}");
    assert!(std::mem::size_of::<Error>() <= 32);
}

#[test]
fn open_or_create_never_removes_what_it_cannot_read() {
    // A dead creator's segment of another header layout: its creator id cannot be
    // trusted, so it is an error, and the object stays.
    let name = unique_name("oldlayout");
    let _c = Unlink(name.clone());
    leave_a_dead_creators_segment(&name, 41);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    file.seek(SeekFrom::Start(8)).unwrap();
    file.write_all(&1u32.to_le_bytes()).unwrap();
    let err = Shared::<AtomicU64>::open_or_create(&name, AtomicU64::new(0)).unwrap_err();
    assert_eq!(err.kind(), Kind::VersionMismatch);
    assert!(shm_path(&name).exists());

    // A file that is not a shmkit segment at all.
    let name = unique_name("foreign");
    let _c = Unlink(name.clone());
    std::fs::write(shm_path(&name), vec![0xA5u8; 8192]).unwrap();
    let err = Shared::<AtomicU64>::open_or_create(&name, AtomicU64::new(0)).unwrap_err();
    assert_eq!(err.kind(), Kind::BadMagic);
    assert_eq!(std::fs::read(shm_path(&name)).unwrap(), vec![0xA5u8; 8192]);
}

#[derive(shmkit::ShmSafe, shmkit::Zeroable)]
#[repr(C)]
struct Slots<T, const N: usize> {
    items: [T; N],
    head: AtomicU32,
}

#[derive(shmkit::ShmSafe)]
#[repr(transparent)]
#[shmkit(layout = 3)]
struct Wrapped(AtomicU64);

#[test]
fn the_derive_handles_generics_tuple_structs_and_layout_versions() {
    use shmkit::ShmSafe;
    use shmkit::segment::{LayoutHasher, TypeName};
    assert_eq!(TypeName::of::<Slots<u64, 4>>().as_str(), "Slots<u64, 4>");
    assert_eq!(
        TypeName::of::<Slots<Slots<u8, 2>, 3>>().as_str(),
        "Slots<Slots<u8, 2>, 3>"
    );
    assert_ne!(
        LayoutHasher::of::<Slots<u32, 4>>(),
        LayoutHasher::of::<Slots<i32, 4>>()
    );
    let s = Shared::<Slots<u64, 4>>::new_zeroed().unwrap();
    assert_eq!(s.items, [0; 4]);
    assert_eq!(<Wrapped as ShmSafe>::LAYOUT, 3);
    assert_eq!(TypeName::of::<Wrapped>().as_str(), "Wrapped");
}

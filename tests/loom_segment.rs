//! Loom models of the segment READY handshake, driven through the real code: the
//! creator's half is `HeaderPtr::publish` (creator id, `state = INITIALIZING`, every
//! header field, the user's `init`, `state = READY` with Release, the futex wake), the
//! opener's half `Shared::ready_and_valid` (Acquire loads of `state` and futex sleeps
//! until READY, then the header copied out and validated against `T`), both reached
//! through `shmkit::__loom::segment::Segment`.
//!
//! How the memory is modelled: under `--cfg shmkit_loom` the header's words come from
//! the facade, so `magic`, `state` and `creator_id` are loom atomics and every plain
//! field (version, sizes, kind, type name and hashes, ...) is a loom `UnsafeCell` that
//! the real `write` and `snapshot` access through `with_mut`/`with`; the value `T` is
//! one more loom cell, written by `init` inside the creator's `with_mut` and read by the
//! model through `Opened::read` (as `&*shared` would). So a read of any header field or
//! of the value that the Release/Acquire pair on `state` does not order after the
//! creator's write is a data race loom reports ("Causality violation"), including an
//! opener that reads a field while it has not seen READY (a timed-out opener, one that
//! finds the creator dead): those may read only `state`, `creator_id` and `magic`.
//! The mapping, the file size and the participant registry are stand-ins (the header
//! records `Layout::of::<T>(4096)`'s sizes; see `src/segment/shared/model.rs`).
//!
//! Checked to fail without their protocol step (each mutation made once, then undone):
//! - the READY store in `HeaderPtr::publish` made Relaxed: `ready_then_everything_is_visible`
//!   and `an_opener_that_times_out_reads_no_plain_field` fail with loom's
//!   "Causality violation: Concurrent read and write accesses." on the first header
//!   field `snapshot` reads (`type_name_len`);
//! - READY stored before `init` runs: `ready_then_everything_is_visible` fails with the
//!   same causality violation, on the value (`Opened::read`);
//! - the futex wake after READY removed: `ready_then_everything_is_visible` fails as
//!   loom's "deadlock" (an opener asleep on `state` forever);
//! - `wait_ready` reading a plain field (`snapshot`) on its timeout path, before READY:
//!   `an_opener_that_times_out_reads_no_plain_field` and
//!   `creator_dies_initialising_open_reports_not_ready` fail with the causality
//!   violation.
//!
//! Not modelled: what `open_or_create` does after it finds the creator dead (unlink
//! under `flock`, `O_EXCL` create again) is file-system work loom cannot see; the
//! models stop at the detection (`CreatorDead` for `open_or_create`, `NotReady` for
//! `open`), which is where the header protocol ends.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_segment`.
#![cfg(shmkit_loom)]

use core::time::Duration;

use loom::sync::Arc;
use loom::thread;
use shmkit::__loom::segment::{OpenError, Segment};
use shmkit::__loom::{loom_clock_tick, loom_die_at, loom_until_death};
use shmkit::{SegmentErrorKind, ShmSafe, Zeroable};

/// The user's value: a struct with a derived identity (type name, field layout).
#[derive(ShmSafe, Zeroable, Clone, Copy, PartialEq, Eq, Debug)]
#[repr(C)]
struct Config {
    a: u64,
    b: u64,
}

const VALUE: Config = Config {
    a: 0x1111_2222_3333_4444,
    b: 0x5555_6666_7777_8888,
};

/// Creates the segment holding [`VALUE`], built in place field by field; returns the
/// creator's participant id.
fn create(seg: &Segment<Config>) -> u32 {
    // SAFETY: the only creator of `seg`; `init` writes every field of the value.
    unsafe {
        seg.create(|slot| {
            let p = slot.as_mut_ptr();
            core::ptr::addr_of_mut!((*p).a).write(VALUE.a);
            core::ptr::addr_of_mut!((*p).b).write(VALUE.b);
        })
    }
}

/// Opens with no deadline (the wait ends only at READY) and checks that the header
/// validated (the open succeeded), names the creator, and that the value is complete.
fn open_and_check(seg: &Segment<Config>, watch_creator: bool) -> u32 {
    let opened = match seg.open(None, watch_creator) {
        Ok(opened) => opened,
        Err(e) => panic!("open failed: {e:?}"),
    };
    assert_eq!(opened.read(|v| *v), VALUE);
    opened.creator_id()
}

/// One creator and two openers that start at any point of its work (before the
/// creator id, while it writes the header, while `init` runs, after READY): each sees
/// READY, every header field as written (validation against `Config` passes and the
/// creator id is the creator's) and the value whole, with no racy access on the way.
/// Both openers sleep on `state` until the creator's wake (a lost wake-up would be a
/// deadlock); one watches the creator's liveness as `open_or_create` does.
#[test]
fn ready_then_everything_is_visible() {
    loom::model(|| {
        let seg = Arc::new(Segment::<Config>::new());
        let creator = {
            let seg = seg.clone();
            thread::spawn(move || create(&seg))
        };
        let other = {
            let seg = seg.clone();
            thread::spawn(move || open_and_check(&seg, true))
        };
        let mine = open_and_check(&seg, false);
        let creator_id = creator.join().unwrap();
        assert_eq!(mine, creator_id);
        assert_eq!(other.join().unwrap(), creator_id);
    });
}

/// An opener whose deadline passes at any point of the creator's work (the model's
/// clock ticks once, from a third thread): either it saw READY, and then the header and
/// the value in full, or it gives up with `NotReady` having read nothing but the
/// atomics (a read of a plain field racing the creator would be reported).
#[test]
fn an_opener_that_times_out_reads_no_plain_field() {
    loom::model(|| {
        let seg = Arc::new(Segment::<Config>::new());
        let creator = {
            let seg = seg.clone();
            thread::spawn(move || create(&seg))
        };
        let clock = thread::spawn(loom_clock_tick);
        match seg.open(Some(Duration::from_secs(1)), false) {
            Ok(opened) => assert_eq!(opened.read(|v| *v), VALUE),
            Err(OpenError::Failed(e)) => assert_eq!(e.kind(), SegmentErrorKind::NotReady),
            Err(OpenError::CreatorDead) => panic!("the creator is alive"),
        }
        clock.join().unwrap();
        creator.join().unwrap();
    });
}

/// The creator dies initialising: killed at the die point in `HeaderPtr::publish`
/// after `state = INITIALIZING` and the header fields, before `init` has built the
/// value. The segment never becomes READY. An opener that watches the creator (as
/// `open_or_create` does, with no deadline here so that only the death can end its
/// wait) finds it dead and reports `CreatorDead`, the cue to replace the segment;
/// it never hands out the half-built value.
#[test]
fn creator_dies_initialising_open_or_create_sees_it_dead() {
    loom::model(|| {
        let seg = Arc::new(Segment::<Config>::new());
        let creator = {
            let seg = seg.clone();
            thread::spawn(move || {
                loom_die_at("segment.initialising");
                assert!(loom_until_death(|| create(&seg)).is_none(), "did not die");
            })
        };
        match seg.open(None, true) {
            Err(OpenError::CreatorDead) => {}
            Err(OpenError::Failed(e)) => panic!("expected CreatorDead, got {e:?}"),
            Ok(_) => panic!("a segment that never became READY was opened"),
        }
        creator.join().unwrap();
    });
}

/// The same death seen by a plain `open` (which does not watch the creator): its wait
/// ends at its deadline (which, in the model, passes at the death) with `NotReady`,
/// having read nothing but the atomics.
#[test]
fn creator_dies_initialising_open_reports_not_ready() {
    loom::model(|| {
        let seg = Arc::new(Segment::<Config>::new());
        let creator = {
            let seg = seg.clone();
            thread::spawn(move || {
                loom_die_at("segment.initialising");
                assert!(loom_until_death(|| create(&seg)).is_none(), "did not die");
            })
        };
        match seg.open(Some(Duration::from_secs(1)), false) {
            Err(OpenError::Failed(e)) => assert_eq!(e.kind(), SegmentErrorKind::NotReady),
            Err(OpenError::CreatorDead) => panic!("open does not watch the creator"),
            Ok(_) => panic!("a segment that never became READY was opened"),
        }
        creator.join().unwrap();
    });
}

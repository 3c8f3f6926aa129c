//! Unit tests of segments.

use core::sync::atomic::Ordering;
use core::time::Duration;

use rustix::io::Errno;

use crate::error::SegmentErrorKind;

use super::{Name, Shared};

#[test]
fn miri_names_are_validated() {
    assert!(Name::new("").is_err());
    assert!(Name::new("a/b").is_err());
    assert!(Name::new("a\0b").is_err());
    assert!(Name::new(&"x".repeat(251)).is_err());
    let n = Name::new(&"x".repeat(250)).unwrap();
    assert_eq!(n.as_str().len(), 250);
    assert_eq!(n.c_str().to_bytes().len(), 251);
}

#[test]
fn a_kept_memfd_cannot_be_resized_and_maps_again_as_the_same_value() {
    #![allow(clippy::disallowed_types)]
    use core::sync::atomic::AtomicU64;
    use rustix::fd::AsFd;
    // SAFETY: zero is a valid AtomicU64.
    let a = unsafe { Shared::<AtomicU64>::new_with_fd(|_| {}) }.unwrap();
    a.store(5, Ordering::SeqCst);
    let fd = a.fd().unwrap();
    // The seals hold: neither shrinking nor growing.
    assert_eq!(rustix::fs::ftruncate(fd, 0), Err(Errno::PERM));
    assert_eq!(rustix::fs::ftruncate(fd, 1 << 20), Err(Errno::PERM));
    // What a receiver of the descriptor (SCM_RIGHTS) does.
    let received = rustix::io::dup(fd.as_fd()).unwrap();
    let b = Shared::<AtomicU64>::from_memfd(received, Duration::from_secs(1)).unwrap();
    b.fetch_add(1, Ordering::SeqCst);
    assert_eq!(a.load(Ordering::SeqCst), 6);
    // The wrong type is refused like on `open`.
    let again = rustix::io::dup(fd.as_fd()).unwrap();
    let err = Shared::<u32>::from_memfd(again, Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), SegmentErrorKind::WrongType);
}

#[test]
fn an_unsealed_memfd_is_refused() {
    let fd = rustix::fs::memfd_create(c"plain", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, 4096).unwrap();
    let err = Shared::<u64>::from_memfd(fd, Duration::from_millis(10)).unwrap_err();
    assert_eq!(err.kind(), SegmentErrorKind::NotSealed);
    // Sealable but not sealed: refused too.
    let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
    let fd = rustix::fs::memfd_create(c"plain", flags).unwrap();
    rustix::fs::ftruncate(&fd, 4096).unwrap();
    let err = Shared::<u64>::from_memfd(fd, Duration::from_millis(10)).unwrap_err();
    assert_eq!(err.kind(), SegmentErrorKind::NotSealed);
}

//! # shmkit
//!
//! Low-level inter-process communication for Linux: lock-free ring-buffer channels
//! and futex-based locks, semaphores and cells that live in raw shared memory with
//! fixed layouts, so that forked (or unrelated) processes get Python
//! `multiprocessing`-style tools — with no heap allocation and no system call on the
//! data path.
//!
//! ```
//! use core::sync::atomic::{AtomicU64, Ordering};
//! use shmkit::{Process, Shared};
//!
//! // One counter in shared memory, four forked processes adding to it.
//! let counter = Shared::new(AtomicU64::new(0))?;
//! let mut children = Vec::new();
//! for _ in 0..4 {
//!     children.push(Process::spawn(|| {
//!         for _ in 0..1000 {
//!             counter.fetch_add(1, Ordering::Relaxed);
//!         }
//!         0
//!     })?);
//! }
//! for child in &mut children {
//!     assert!(child.join()?.success());
//! }
//! assert_eq!(counter.load(Ordering::Relaxed), 4000);
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! ## Segments: where shared values live
//!
//! Every shared object is one `T` in a [`Shared<T>`]:
//!
//! | you want | call |
//! |---|---|
//! | a kit type (queue, pipe, lock, cell) for this process and its forked children | `Shared::<T>::new_zeroed()` — built in place, never on the stack |
//! | a small value with parameters (`Barrier::new(4)`, `AtomicU64::new(5)`) | `Shared::new(value)` |
//! | to meet unrelated processes by name | `Shared::create_zeroed(name)` and, in the others, `Shared::open(name)` |
//! | readers that may start before the creator | `Shared::open_timeout(name, timeout)` (waits for the segment to appear) |
//! | a service that comes back after a crash | `Shared::open_or_create_zeroed(name)` (replaces a dead creator's segment) |
//! | your own struct in a segment | `#[derive(ShmSafe)]` on a `#[repr(C)]` struct (see [`ShmSafe`]) |
//!
//! `open` validates the segment's header before it hands out a `&T`: shmkit's version,
//! the type's kind, name and layout (two programs built separately meet when their
//! structs agree; a mismatch is an error naming both types). Constructors return a
//! [`SegmentError`] with the segment's name and what to do; `?` turns it into
//! [`Error`].
//!
//! What a peer can and cannot do: a process that maps a segment can write anything
//! into it. The kit validates every index, length and state it reads, so the worst a
//! faulty or hostile peer causes is an error (`Corrupted`) or a denial of service, never
//! undefined behaviour in us. Anonymous segments are memfds sealed against resizing;
//! named segments (POSIX shared memory, mode 0600) cannot be sealed, so a process of
//! the same user can truncate one under its users (`SIGBUS`).
//!
//! ## Layers
//!
//! | module | what lives there |
//! |---|---|
//! | `sys` (private) | every system call: shared futexes, mappings, shm objects, pids, fork |
//! | `primitive` (private) | atomics, `UnsafeCell`, futex wait/wake — swapped for loom's under `--cfg shmkit_loom` |
//! | [`segment`] | [`ShmSafe`], [`Shared<T>`] |
//! | [`sync`] | locks, semaphores, condition variables, events, barriers |
//! | [`process`] (std) | [`Process`]: fork, join, signals |
//! | [`inspect`] (std) | reading segments from outside, for tools: the `shmkit` command (`shmkit-cli`) |
//! | [`manager`] (manager) | [`Manager`]: a server process holding objects for other processes and hosts, typed proxies |
//! | [`connection`] (manager) | authenticated socket connections, wire-compatible with CPython's `multiprocessing.connection` |
//!
//! ## Features
//!
//! - `std` (default): [`Process`], `From<Error> for std::io::Error`, cached thread ids.
//!   Without it the core builds `#![no_std]`.
//! - `serde`: `Connection::send_value` / `recv_value` carry any serde type (postcard).
//! - `manager` (default, needs `std`): [`Manager`] and [`connection`] (adds `serde`,
//!   `postcard`, `hmac`, `sha2`, `md-5`, `getrandom`).
#![no_std]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "shmkit supports Linux only: it is built on futexes, memfd and /dev/shm (target_os = \"linux\")"
);

#[cfg(any(feature = "std", shmkit_loom))]
extern crate std;

// Lets the derives' `::shmkit::…` paths resolve inside this crate too.
extern crate self as shmkit;

pub mod cell;
pub mod channel;
pub mod error;
mod primitive;
pub mod segment;
pub mod stats;
pub mod sync;
mod sys;

#[cfg(all(feature = "std", not(shmkit_loom)))]
pub mod inspect;

#[cfg(feature = "std")]
pub mod pool;

#[cfg(feature = "std")]
pub mod process;

#[cfg(feature = "manager")]
pub mod manager;
#[cfg(feature = "manager")]
pub use manager::connection;

pub use bytemuck;
/// The traits only; the derives of the same names are shmkit's own (below), which
/// work from any crate.
mod pod_traits {
    pub use bytemuck::{Pod, Zeroable};
}
pub use cell::*;
pub use channel::*;
pub use error::{Error, SegmentError, SegmentErrorKind, SegmentName};
pub use pod_traits::*;
pub use segment::{Shared, ShmSafe};
/// `#[derive(ShmSafe)]`, `#[derive(Pod)]`, `#[derive(Zeroable)]`: see [`ShmSafe`] and the
/// crate docs.
pub use shmkit_derive::{Pod, ShmSafe, Zeroable};
pub use sync::*;

#[cfg(feature = "std")]
pub use pool::*;

#[cfg(feature = "std")]
pub use process::{ExitStatus, Process, ProcessBuilder};

#[cfg(feature = "manager")]
pub use manager::Manager;

/// Failpoints for crash tests (`tests/pipe_crash.rs`): exists only under
/// `--cfg shmkit_failpoints`; not part of the API.
#[cfg(all(shmkit_failpoints, feature = "std"))]
#[doc(hidden)]
pub mod __failpoints {
    pub use crate::channel::ring::failpoint::{POINTS, arm};
}

/// Internals that the loom model tests in `tests/loom_*.rs` drive directly. Exists
/// only under `--cfg shmkit_loom`; not part of the API.
#[cfg(shmkit_loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::primitive::{Deadline, loom_clock_tick, loom_die};
    pub use crate::primitive::{loom_die_at, loom_until_death};
    pub use crate::sync::notifier::Notifier;
    pub use crate::sync::raw_mutex::loom_set_slices_expire;
}

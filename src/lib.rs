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
//! ## Layers
//!
//! | module | what lives there |
//! |---|---|
//! | `sys` (private) | every system call: shared futexes, mappings, shm objects, pids, fork |
//! | `primitive` (private) | atomics, `UnsafeCell`, futex wait/wake — swapped for loom's under `--cfg shmkit_loom` |
//! | [`segment`] | [`ShmSafe`], [`Shared<T>`] |
//! | [`sync`] | locks, semaphores, condition variables, events, barriers |
//! | [`process`] (std) | [`Process`]: fork, join, signals |
//!
//! ## Features
//!
//! - `std` (default): [`Process`], `From<Error> for std::io::Error`, cached thread ids.
//!   Without it the core builds `#![no_std]`.
#![no_std]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "std", shmkit_loom))]
extern crate std;

pub mod cell;
pub mod channel;
pub mod error;
mod primitive;
pub mod segment;
pub mod stats;
pub mod sync;
mod sys;

#[cfg(feature = "std")]
pub mod pool;

#[cfg(feature = "std")]
pub mod process;

pub use bytemuck;
pub use bytemuck::{Pod, Zeroable};
pub use cell::*;
pub use channel::*;
pub use error::Error;
pub use segment::{Shared, ShmSafe};
pub use sync::*;

#[cfg(feature = "std")]
pub use pool::*;

#[cfg(feature = "std")]
pub use process::{ExitStatus, Process, ProcessBuilder};

/// Internals that the loom model tests in `tests/loom_*.rs` drive directly. Exists
/// only under `--cfg shmkit_loom`; not part of the API.
#[cfg(shmkit_loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::primitive::{Deadline, loom_die};
    pub use crate::sync::notifier::Notifier;
    pub use crate::sync::raw_mutex::loom_set_slices_expire;
}

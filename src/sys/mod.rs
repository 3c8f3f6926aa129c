//! The system-call layer: the only code in shmkit that talks to the kernel.
//!
//! Everything here is a thin, documented wrapper over one Linux call made through
//! [`rustix`] (its `linux_raw` backend works without `std`); `libc` is used only where
//! rustix has no wrapper (`fork`, `tgkill`, `pthread_atfork`). Wrappers take references
//! where they can, so that the unsafety of raw memory stays at the mapping boundary.
//!
//! Atomics in this module are `core`'s own: the futex calls need the kernel-visible
//! word, and the loom facade in [`crate::primitive`] decides what the algorithms see.
#![allow(clippy::disallowed_types)]
// Under loom the facade in `crate::primitive` models the kernel (futex, clock, ids),
// so the algorithms call none of these wrappers in that build.
#![cfg_attr(shmkit_loom, allow(dead_code))]

#[cfg(feature = "std")]
pub(crate) mod fds;
pub(crate) mod fork;
pub(crate) mod futex;
#[cfg(feature = "std")]
pub(crate) mod held;
pub(crate) mod ids;
pub(crate) mod mem;
pub(crate) mod membarrier;
pub(crate) mod proc;
pub(crate) mod registry;
pub(crate) mod time;
#[cfg(feature = "std")]
pub(crate) mod tools;

//! The sync layer: futex-based locks and signals that live in shared memory.
//!
//! Every blocking call waits through one protocol (spin per the process's
//! [`WaitStrategy`], then sleep on a shared futex; wakers make a system call only
//! when someone sleeps).

pub(crate) mod notifier;
mod strategy;

pub use strategy::{WaitStrategy, set_wait_strategy, wait_strategy};

//! Measurement kernels shared by the criterion benches (`benches/*.rs`) and by
//! `examples/compare.rs`, so both measure exactly the same code.
//!
//! Every kernel takes an iteration count and returns the elapsed time of just the
//! measured loop (set-up, fork and reaping are outside it). Cross-process kernels fork a
//! peer with `shmkit::Process`, place the two processes per [`Placement`], and reap the
//! peer before returning (killing it if it overruns a generous deadline).
//!
//! The modules form a tree without circles: `kit` (shmkit's side) and `baseline` (the
//! other side) both use `peer` (placing processes) and `run` (shared drivers), and
//! `stats` (interleaved repetitions) uses nothing else here.
#![allow(dead_code, clippy::disallowed_types)]

pub mod baseline;
pub mod kit;
pub mod peer;
pub mod run;
pub mod stats;

#[allow(unused_imports)]
pub use peer::{Placement, allowed_cpus, pin, with_peer};

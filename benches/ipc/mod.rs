//! Measurement kernels shared by the criterion benches (`benches/*.rs`) and by
//! `examples/compare.rs`, so both measure exactly the same code.
//!
//! Every kernel takes an iteration count and returns the elapsed time of just the
//! measured loop (set-up, fork and reaping are outside it). Cross-process kernels fork a
//! peer with `shmkit::Process`, place the two processes per [`Placement`], and reap the
//! peer before returning (killing it if it overruns a generous deadline).
#![allow(dead_code, clippy::disallowed_types)]

pub mod baseline;
pub mod kit;

use std::time::Duration;

use shmkit::Process;

/// Where the two processes of a cross-process kernel run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Parent on CPU 0, peer on CPU 1 (falls back to `Unpinned` on one CPU).
    Pinned,
    /// Wherever the scheduler puts them.
    Unpinned,
    /// Both on CPU 0: spinning while the peer cannot run only delays it.
    SameCore,
}

impl Placement {
    /// CPUs for (parent, peer), or None where the scheduler decides.
    fn cpus(self) -> (Option<usize>, Option<usize>) {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self {
            Placement::Pinned if n >= 2 => (Some(0), Some(1)),
            Placement::SameCore => (Some(0), Some(0)),
            _ => (None, None),
        }
    }

    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Placement::Pinned => "pinned",
            Placement::Unpinned => "unpinned",
            Placement::SameCore => "one core",
        }
    }
}

/// Pins the calling thread to `cpu`, or lets it run anywhere (`None`).
pub fn pin(cpu: Option<usize>) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it; the
    // syscall reads `size_of::<cpu_set_t>()` bytes from a valid pointer.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match cpu {
            Some(c) => libc::CPU_SET(c, &mut set),
            None => {
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                for c in 0..n {
                    libc::CPU_SET(c, &mut set);
                }
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Runs `peer` in a forked process placed per `placement`, runs `measure` here, then
/// reaps the peer. Panics if the peer fails or overruns.
pub fn with_peer<P, M, R>(placement: Placement, peer: P, measure: M) -> R
where
    P: FnOnce() -> i32,
    M: FnOnce() -> R,
{
    let (mine, theirs) = placement.cpus();
    let mut child = Process::spawn(|| {
        pin(theirs);
        peer()
    })
    .expect("fork");
    pin(mine);
    let result = measure();
    pin(None);
    match child
        .join_timeout(Duration::from_secs(120))
        .expect("waitpid")
    {
        Some(status) if status.success() => result,
        Some(status) => panic!("benchmark peer failed: {status}"),
        None => {
            let _ = child.kill();
            let _ = child.join();
            panic!("benchmark peer overran its deadline");
        }
    }
}

/// The median of `runs` measurements of `f`.
pub fn median<F: FnMut() -> f64>(runs: usize, mut f: F) -> f64 {
    let mut v: Vec<f64> = (0..runs).map(|_| f()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

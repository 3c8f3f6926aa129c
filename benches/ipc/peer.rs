//! Placing and running the two processes of a cross-process kernel.

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
        let allowed = allowed_cpus();
        match self {
            Placement::Pinned if allowed.len() >= 2 => (Some(allowed[0]), Some(allowed[1])),
            Placement::SameCore => (Some(allowed[0]), Some(allowed[0])),
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

/// The CPUs this process was allowed to run on before any kernel pinned it, read once.
///
/// Reading the mask afresh (as `available_parallelism` does) would be wrong once a
/// kernel has pinned the parent: the next placement would see one CPU, put both
/// processes on it, and every spinning hand-off would cost a scheduler time slice.
pub fn allowed_cpus() -> &'static [usize] {
    static CPUS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    CPUS.get_or_init(|| {
        // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills at most
        // `size_of::<cpu_set_t>()` bytes of it; CPU_ISSET reads inside it.
        let cpus: Vec<usize> = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let rc = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
            assert_eq!(
                rc,
                0,
                "sched_getaffinity: {}",
                std::io::Error::last_os_error()
            );
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        };
        assert!(!cpus.is_empty(), "no CPU in this process's affinity mask");
        cpus
    })
}

/// Pins the calling thread to `cpu`, or lets it run on every CPU it was first allowed
/// (`None`). Panics if the kernel refuses, so that no table reports a placement that
/// did not happen.
pub fn pin(cpu: Option<usize>) {
    let allowed = allowed_cpus();
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it (every CPU
    // number here is below CPU_SETSIZE); the syscall reads `size_of::<cpu_set_t>()`
    // bytes from a valid pointer.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match cpu {
            Some(c) => libc::CPU_SET(c, &mut set),
            None => allowed.iter().for_each(|&c| libc::CPU_SET(c, &mut set)),
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity({cpu:?}): {}",
        std::io::Error::last_os_error()
    );
}

/// Runs `peer` in a forked process placed per `placement`, runs `measure` here, then
/// reaps the peer. Panics if the peer fails or overruns.
pub fn with_peer<P, M, R>(placement: Placement, peer: P, measure: M) -> R
where
    P: FnOnce() -> i32 + Send,
    M: FnOnce() -> R,
{
    // `cpus()` reads the mask saved on first use, before anything was pinned.
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

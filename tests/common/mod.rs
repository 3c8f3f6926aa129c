//! Helpers shared by the integration tests that fork.
//!
//! Every child is wrapped in a [`Child`] guard: joined with a deadline, and killed
//! and reaped if the test fails first, so no test leaves a process behind. Named
//! segments get unique names and an [`Unlink`] guard, so none is left in /dev/shm.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shmkit::{ExitStatus, Process, Shared};

/// How long any test waits for a child before it kills it and fails.
pub const CHILD_DEADLINE: Duration = Duration::from_secs(60);

/// A child process that is killed and reaped if the test ends without joining it.
pub struct Child(Option<Process>);

impl Child {
    /// Forks a child running `f`.
    ///
    /// The child dies with the test thread that forked it (`die_with_parent`): a
    /// test run killed from outside (a timeout, Ctrl-C) leaves no child behind
    /// spinning in a crash loop.
    pub fn spawn<F: FnOnce() -> i32 + Send>(f: F) -> Child {
        let process = shmkit::ProcessBuilder::new()
            .die_with_parent(true)
            .spawn(f)
            .expect("fork");
        Child(Some(process))
    }

    /// Wraps an already spawned process.
    pub fn from(process: Process) -> Child {
        Child(Some(process))
    }

    /// The running process.
    pub fn process(&mut self) -> &mut Process {
        self.0.as_mut().expect("not joined yet")
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.0.as_ref().expect("not joined yet").pid()
    }

    /// Joins within [`CHILD_DEADLINE`]; kills the child and panics past it.
    pub fn join(mut self) -> ExitStatus {
        self.join_within(CHILD_DEADLINE)
    }

    /// Joins within `deadline`; kills the child and panics past it.
    pub fn join_within(&mut self, deadline: Duration) -> ExitStatus {
        let mut p = self.0.take().expect("joined once");
        match p.join_timeout(deadline).expect("waitpid") {
            Some(status) => status,
            None => {
                let _ = p.kill();
                let _ = p.join();
                panic!("child {} still running after {deadline:?}: killed", p.pid());
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(p) = self.0.as_mut() {
            let _ = p.kill();
            let _ = p.join();
        }
    }
}

/// A segment name no other test (or test run) uses.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "shmkit-test-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Unlinks a named segment when dropped (if it still exists).
pub struct Unlink(pub String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = Shared::<()>::unlink(&self.0);
    }
}

/// `/dev/shm/<name>`.
pub fn shm_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new("/dev/shm").join(name)
}

/// Polls `cond` every millisecond until it holds or `deadline` passes.
pub fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// xorshift64*: a small seeded generator for tests that print their seed.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// splitmix64's finaliser: a well-mixed function of `x`.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a over a byte slice.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The number in environment variable `var`, or `default`.
pub fn env_u64(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A seed: environment variable `var`, or the clock.
pub fn env_seed(var: &str) -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    env_u64(var, clock | 1)
}

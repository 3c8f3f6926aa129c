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
    pub fn spawn<F: FnOnce() -> i32 + Send>(f: F) -> Child {
        Child(Some(Process::spawn(f).expect("fork")))
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

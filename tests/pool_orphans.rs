//! A pool whose owner is killed (`kill -9`) leaves nothing running: its zygote sees its
//! parent die and kills and reaps the workers, then exits.
//!
//! Own test binary: it makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`),
//! so that the orphaned zygote is re-parented to us and we can reap it and check how
//! it ended, instead of leaving it to whatever init this machine runs.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use shmkit::{Pool, Shared};

/// `[zygote, worker, worker, ready]`, published by the doomed owner.
static PIDS: OnceLock<Shared<[AtomicI32; 4]>> = OnceLock::new();

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// The pool's owner: builds a pool, keeps both workers busy, publishes the pids, and
/// waits to be killed.
fn owner() -> i32 {
    let pids = PIDS.get().unwrap();
    let pool = Pool::new(2).unwrap();
    let workers = pool.worker_pids();
    let _busy: Vec<_> = (0..4)
        .map(|_| pool.apply_async(sleep_ms, 600_000))
        .collect();
    pids[0].store(parent_of(workers[0]).unwrap_or(0), Ordering::SeqCst);
    pids[1].store(workers[0], Ordering::SeqCst);
    pids[2].store(workers[1], Ordering::SeqCst);
    pids[3].store(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(600));
    0
}

#[test]
fn the_zygote_and_its_workers_die_with_the_pools_owner() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only changes who adopts our orphans.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
    let pids = PIDS.get_or_init(|| Shared::new([const { AtomicI32::new(0) }; 4]).unwrap());
    let mut doomed = common::Child::spawn(owner);
    assert!(common::eventually(Duration::from_secs(60), || {
        pids[3].load(Ordering::SeqCst) == 1
    }));
    let [zygote, w1, w2] = [0, 1, 2].map(|i| pids[i].load(Ordering::SeqCst));
    assert!(zygote > 0 && w1 > 0 && w2 > 0);
    assert_eq!(parent_of(zygote), Some(doomed.pid()));
    doomed.process().kill().unwrap();
    assert_eq!(
        doomed.join(),
        shmkit::ExitStatus::Signaled(libc::SIGKILL),
        "the owner was killed"
    );
    // The zygote, adopted by us, notices its parent's death, kills and reaps both
    // workers (busy in ten-minute tasks), and exits 0.
    let mut status = 0;
    let reaped = common::eventually(Duration::from_secs(30), || {
        // SAFETY: waitpid on our adopted child with a valid out-pointer.
        unsafe { libc::waitpid(zygote, &mut status, libc::WNOHANG) == zygote }
    });
    if !reaped {
        // SAFETY: kill(2)/waitpid(2) of our own (adopted) child, unreaped.
        unsafe {
            libc::kill(zygote, libc::SIGKILL);
            libc::waitpid(zygote, &mut status, 0);
        }
        panic!("the zygote outlived its parent by 30 s");
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "zygote status {status:#x}"
    );
    for w in [w1, w2] {
        assert!(
            !std::path::Path::new(&format!("/proc/{w}")).exists(),
            "worker {w} outlived the zygote"
        );
    }
    println!("owner killed: zygote {zygote} killed and reaped workers {w1} and {w2}, then exited");
}

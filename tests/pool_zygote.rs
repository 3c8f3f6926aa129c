//! The pool's zygote: workers (first ones and replacements) are forked from a
//! single-threaded process forked at `build`, not from whichever thread of ours is
//! waiting. Locks our threads hold when a worker is replaced do not reach it; nothing
//! is left behind when the pool ends, however it ends; workers keep none of our file
//! descriptors; `fork` failing with `EAGAIN` is waited out.
//!
//! Own test binary: these tests hold stderr's lock, install a panic hook, and look at
//! every process in `/proc`.
#![allow(clippy::disallowed_types)]

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use shmkit::{PanicMessage, Pool, PoolError, Shared};

/// Does process `pid` exist (running, or a zombie not reaped yet)?
fn exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// `pid`'s parent, or `None` if it is gone.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces; split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// Every process whose parent is `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| parent_of(p) == Some(pid))
        .collect()
}

fn me() -> i32 {
    std::process::id() as i32
}

/// The pool's zygote and its children, checked against what the pool says.
fn census(pool: &Pool) -> (i32, Vec<i32>) {
    let workers = pool.worker_pids();
    let zygote = parent_of(workers[0]).expect("a live worker");
    assert_eq!(parent_of(zygote), Some(me()), "the zygote is our child");
    let mut children = children_of(zygote);
    children.sort_unstable();
    let mut sorted = workers.clone();
    sorted.sort_unstable();
    assert_eq!(children, sorted, "the zygote's children are the workers");
    (zygote, workers)
}

/// Neither the zygote nor any worker exists any more, and nothing is the zygote's
/// child.
fn assert_gone(what: &str, zygote: i32, workers: &[i32]) {
    assert!(!exists(zygote), "{what}: zygote {zygote} still exists");
    for &w in workers {
        assert!(!exists(w), "{what}: worker {w} still exists");
    }
    assert!(
        children_of(zygote).is_empty(),
        "{what}: the zygote has children"
    );
    println!("{what}: zygote {zygote} and workers {workers:?} are gone");
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Writes a line through `std::io::stderr()`'s lock (not the captured `eprintln!`).
fn shout(x: u32) -> u32 {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "task {x} writes to stderr from worker {}",
        std::process::id()
    );
    x + 1
}

fn boom(x: u32) -> u32 {
    if x == 7 {
        panic!("boom in the replacement: {x}");
    }
    x
}

/// A lock of ours that no task ever takes.
static PARKED: Mutex<()> = Mutex::new(());

const PATIENCE: Duration = Duration::from_secs(30);

/// The tests of this binary run one at a time: one of them parks a thread in the panic
/// hook, another holds stderr's lock, and a process forked meanwhile by another test
/// (the `EAGAIN` test's child) would inherit those locks, held.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn a_replacement_forked_while_we_hold_stderr_and_a_mutex_runs_and_panics_normally() {
    let _serial = serial();
    let pool = Pool::new(1).unwrap();
    let first = pool.worker_pids()[0];
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let _stderr = std::io::stderr().lock();
            let _parked = PARKED.lock().unwrap();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(120));
        });
        locked_rx.recv().unwrap();
        // SAFETY: kill(2) of our own pool's idle worker, alive and unreaped.
        assert_eq!(unsafe { libc::kill(first, libc::SIGKILL) }, 0);
        // Its replacement is forked now, while our other thread holds both locks.
        let shouted = pool.apply_async(shout, 1);
        let r = shouted.get_timeout(PATIENCE);
        let boomed = pool.apply_async(boom, 7).get_timeout(PATIENCE);
        let pids = pool.worker_pids();
        release_tx.send(()).unwrap();
        assert_eq!(r, Ok(2), "the replacement wrote to stderr");
        assert_eq!(
            boomed,
            Err(PoolError::TaskPanicked {
                message: PanicMessage::new("boom in the replacement: 7")
            })
        );
        assert_eq!(pids.len(), 1);
        assert_ne!(pids[0], first, "the worker was replaced");
    });
    assert_eq!(pool.map(shout, &[1, 2, 3]), Ok(vec![2, 3, 4]));
}

#[test]
fn nothing_is_left_after_drop_terminate_join_or_a_panicking_owner() {
    let _serial = serial();
    // Drop, with a task running and one queued.
    let (zygote, workers) = {
        let pool = Pool::new(2).unwrap();
        let census = census(&pool);
        let _busy = pool.apply_async(sleep_ms, 600_000);
        let _queued = pool.apply_async(sleep_ms, 600_000);
        census
    };
    assert_gone("drop", zygote, &workers);

    // Terminate (gone before the pool is dropped).
    let pool = Pool::new(2).unwrap();
    let (zygote, workers) = census(&pool);
    let busy = pool.apply_async(sleep_ms, 600_000);
    pool.terminate();
    assert_gone("terminate", zygote, &workers);
    assert_eq!(busy.get(), Err(PoolError::Closed));
    drop(busy);
    drop(pool);

    // Join, with replacements made along the way (max_tasks_per_child).
    let pool = Pool::builder()
        .workers(2)
        .max_tasks_per_child(1)
        .build()
        .unwrap();
    let ran = pool.map(|x: u32| x + 1, &[1, 2, 3, 4]).unwrap();
    assert_eq!(ran, [2, 3, 4, 5]);
    let (zygote, workers) = census(&pool);
    pool.join();
    assert_gone("join", zygote, &workers);
    drop(pool);

    // A thread that panics while it owns a pool: unwinding drops it.
    let (tx, rx) = mpsc::channel();
    let owner = std::thread::spawn(move || {
        let pool = Pool::new(2).unwrap();
        tx.send(census(&pool)).unwrap();
        let _busy = pool.apply_async(sleep_ms, 600_000);
        std::panic::panic_any("the owner of a pool panics");
    });
    assert!(owner.join().is_err());
    let (zygote, workers) = rx.recv().unwrap();
    assert_gone("panicking owner", zygote, &workers);
}

#[test]
fn a_pool_built_on_a_thread_that_exits_keeps_its_zygote_and_workers() {
    let _serial = serial();
    // PR_SET_PDEATHSIG on the zygote would fire when this thread exits.
    let pool = std::thread::spawn(|| Pool::new(2).unwrap()).join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (zygote, workers) = census(&pool);
    assert_eq!(pool.map(|x: u64| x * 3, &[1, 2, 3]), Ok(vec![3, 6, 9]));
    // SAFETY: kill(2) of one of our pool's idle workers, alive and unreaped.
    assert_eq!(unsafe { libc::kill(workers[0], libc::SIGKILL) }, 0);
    assert_eq!(pool.map(|x: u64| x * 3, &[4, 5, 6]), Ok(vec![12, 15, 18]));
    assert_eq!(census(&pool).0, zygote);
}

/// The inode behind descriptor `fd` here (0 if it is not open).
fn inode_of(fd: i32) -> u64 {
    // SAFETY: an all-zero `stat` is a valid out-buffer for fstat.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat only writes `st`.
    if unsafe { libc::fstat(fd, &mut st) } == 0 {
        st.st_ino
    } else {
        0
    }
}

/// The descriptors process `pid` has open, with what each points at.
fn fds_of(pid: i32) -> Vec<(i32, String)> {
    let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let fd: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort_unstable();
    fds
}

/// The kit's own descriptor: the participant registry (a file in /dev/shm, or a memfd).
fn is_registry(target: &str) -> bool {
    target.contains("shmkit-registry") || target.starts_with("/memfd:")
}

#[test]
fn workers_keep_no_descriptor_of_ours_but_stdio() {
    let _serial = serial();
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    let (read_end, write_end) = std::io::pipe().unwrap();
    use std::os::fd::AsRawFd;
    let ours = [
        file.as_raw_fd(),
        read_end.as_raw_fd(),
        write_end.as_raw_fd(),
    ];
    let pool = Pool::new(2).unwrap();
    for fd in ours {
        let inode = inode_of(fd);
        assert_ne!(inode, 0);
        assert_ne!(
            pool.apply(inode_of, fd),
            Ok(inode),
            "fd {fd} reached a worker"
        );
    }
    assert_eq!(pool.apply(inode_of, 2), Ok(inode_of(2)), "stderr is kept");
    let (zygote, workers) = census(&pool);
    // Workers: stdio, and the kit's registry descriptor (a worker's own, reopened at
    // its fork, so its lifeline is its own). A worker the zygote has just forked may
    // not have closed what it inherited yet (it does so first thing): give it a moment.
    for w in workers {
        let stray = || {
            fds_of(w)
                .into_iter()
                .filter(|(fd, target)| *fd > 2 && !is_registry(target))
                .collect::<Vec<_>>()
        };
        let start = std::time::Instant::now();
        while !stray().is_empty() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(stray(), Vec::new(), "worker {w} keeps descriptors of ours");
    }
    // The zygote: stdio, the registry, and descriptors of its own (its doorbell,
    // pidfds).
    for (fd, target) in fds_of(zygote).into_iter().filter(|(fd, _)| *fd > 2) {
        assert!(
            target == "anon_inode:[eventfd]"
                || target == "anon_inode:[pidfd]"
                || is_registry(&target),
            "zygote {zygote} has fd {fd} -> {target}"
        );
    }
}

static SLOW_HOOK_ENTERED: AtomicBool = AtomicBool::new(false);
const SLOW_HOOK_TEXT: &str = "a panic whose hook takes its time";

#[test]
fn a_zygote_forked_while_another_thread_panics_is_replaced_not_waited_for() {
    let _serial = serial();
    // A thread of ours sits in the panic hook (holding std's hook lock) while the
    // pool forks its zygote, which then cannot install the workers' hook: the pool
    // must notice, and fork another zygote once the panic is over.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() == Some(&SLOW_HOOK_TEXT) {
            SLOW_HOOK_ENTERED.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1500));
        } else {
            previous(info);
        }
    }));
    let panicker = std::thread::spawn(|| std::panic::panic_any(SLOW_HOOK_TEXT));
    assert!(common::eventually(Duration::from_secs(30), || {
        SLOW_HOOK_ENTERED.load(Ordering::SeqCst)
    }));
    let start = Instant::now();
    let pool = Pool::new(1).unwrap();
    let took = start.elapsed();
    assert!(panicker.join().is_err());
    println!("build while another thread was in the panic hook took {took:?}");
    assert_eq!(
        pool.apply(boom, 7).map_err(|e| e.to_string()),
        Err("the pool task panicked: boom in the replacement: 7".into())
    );
    assert_eq!(pool.apply(boom, 1), Ok(1));
}

#[test]
fn a_killed_zygote_ends_the_pool_with_zygote_died() {
    let _serial = serial();
    let pool = Pool::new(2).unwrap();
    let (zygote, workers) = census(&pool);
    let busy = pool.apply_async(sleep_ms, 600_000);
    // SAFETY: kill(2) of our own child, alive and unreaped.
    assert_eq!(unsafe { libc::kill(zygote, libc::SIGKILL) }, 0);
    let died = PoolError::ZygoteDied {
        pid: zygote,
        signal: Some(libc::SIGKILL),
    };
    assert_eq!(busy.get_timeout(PATIENCE), Err(died));
    assert_eq!(pool.apply(sleep_ms, 1), Err(PoolError::Closed));
    assert!(pool.worker_pids().is_empty());
    // The workers die with their zygote (PR_SET_PDEATHSIG), reaped by whoever adopts
    // them; none runs on.
    assert!(common::eventually(PATIENCE, || workers.iter().all(|&w| {
        !exists(w)
            || std::fs::read_to_string(format!("/proc/{w}/stat"))
                .is_ok_and(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
    })));
    drop(busy);
    drop(pool);
    assert!(!exists(zygote), "the zygote was reaped");
}

/// Where the child of the `EAGAIN` test reports what it saw (before its pool exists).
static REPORT: OnceLock<Shared<AtomicI32>> = OnceLock::new();

/// `setrlimit`/`prlimit` of `RLIMIT_NPROC`'s soft limit for `pid` (0: ourselves).
fn set_nproc(pid: i32, soft: u64) -> bool {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit with a null new limit only reads into `old`.
    if unsafe { libc::prlimit(pid, libc::RLIMIT_NPROC, std::ptr::null(), &mut old) } != 0 {
        return false;
    }
    let new = libc::rlimit {
        rlim_cur: soft.min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: valid pointers to rlimit structs.
    unsafe { libc::prlimit(pid, libc::RLIMIT_NPROC, &new, std::ptr::null_mut()) == 0 }
}

/// Runs in a forked child, as user `nobody` (root ignores `RLIMIT_NPROC`). Exit 0: every
/// check passed; 77: could not drop privileges; other codes name the failed check.
fn eagain_child() -> i32 {
    let report = REPORT.get().unwrap();
    // SAFETY: plain system calls on our own credentials.
    let dropped = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(65534, 65534, 65534) == 0
            && libc::setresuid(65534, 65534, 65534) == 0
    };
    if !dropped {
        return 77;
    }
    // 1. Our own fork of the zygote fails with EAGAIN until a helper thread (made
    // before the limit drops: a thread counts too) lifts the limit 300 ms later.
    let helper = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(300));
        set_nproc(0, libc::RLIM_INFINITY)
    });
    if !set_nproc(0, 1) {
        return 10;
    }
    let start = Instant::now();
    let pool = match Pool::new(1) {
        Ok(pool) => pool,
        Err(e) => {
            report.store(e.raw_os_error().unwrap_or(-1), Ordering::SeqCst);
            return 11;
        }
    };
    let waited = start.elapsed();
    if !helper.join().unwrap_or(false) {
        return 12;
    }
    if waited < Duration::from_millis(250) {
        return 13; // the zygote was forked before the limit was lifted?
    }
    // 2. The zygote's fork of a replacement fails with EAGAIN until we lift its limit.
    let worker = pool.worker_pids()[0];
    let Some(zygote) = parent_of(worker) else {
        return 14;
    };
    if !set_nproc(zygote, 1) {
        return 15;
    }
    // SAFETY: kill(2) of our pool's idle worker, alive and unreaped.
    unsafe { libc::kill(worker, libc::SIGKILL) };
    let pending = pool.apply_async(|x: u32| x + 1, 41);
    if pending.get_timeout(Duration::from_millis(300)) != Err(PoolError::Timeout) {
        return 16; // replaced despite the limit?
    }
    if !set_nproc(zygote, libc::RLIM_INFINITY) {
        return 17;
    }
    if pending.get_timeout(PATIENCE) != Ok(42) {
        return 18;
    }
    if pool.worker_pids().first() == Some(&worker) {
        return 19;
    }
    0
}

#[test]
fn fork_failing_with_eagain_is_retried_not_fatal() {
    let _serial = serial();
    let report = REPORT.get_or_init(|| Shared::new(AtomicI32::new(0)).unwrap());
    let status = common::Child::spawn(eagain_child).join();
    match status.code() {
        Some(0) => println!("EAGAIN from fork was waited out, at build and for a replacement"),
        Some(77) => println!("SKIPPED: cannot switch to user nobody here"),
        _ => panic!(
            "EAGAIN child: {status:?} (errno seen: {})",
            report.load(Ordering::SeqCst)
        ),
    }
}

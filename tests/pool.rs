//! Pool behaviour across real forked workers: results, crashes, replacement, shutdown.
//!
//! Tasks that must tell the test something (that they started, which pid ran them) go
//! through statics holding `Shared` segments made before the pool forks: a worker is a
//! fork, so it sees the same static pointing at the same shared mapping.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmkit::{Error, PanicMessage, Pool, PoolError, Shared};

fn mix(x: u64) -> u64 {
    let mut h = x ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..8 {
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
    }
    h
}

fn my_pid(_: u32) -> i32 {
    std::process::id() as i32
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Does process `pid` still exist (running, or a zombie not reaped yet)? Workers are
/// children of the pool's zygote, which reaps them as they die: once the pool has
/// reported a worker's death, or the pool is dropped, its pid must be gone. (A pid can
/// be reused; in these short tests, with pid_max far above what they fork, it is not.)
fn exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid of `pid`'s parent (`None` if it is gone).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces; split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

fn crash_iters() -> usize {
    std::env::var("SHMKIT_CRASH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

#[test]
fn map_over_100k_items_equals_the_sequential_result() {
    let pool = Pool::new(2).unwrap();
    let items: Vec<u64> = (0..100_000).collect();
    let expected: Vec<u64> = items.iter().map(|&x| mix(x)).collect();
    assert_eq!(pool.map(mix, &items).unwrap(), expected);
    // Odd sizes and types: 3-byte arguments, results wider than arguments.
    let small: Vec<[u8; 3]> = (0..1001u32).map(|i| [i as u8, (i >> 8) as u8, 7]).collect();
    let wide = pool
        .map(
            |b: [u8; 3]| [u64::from(b[0]), u64::from(b[1]), u64::from(b[2])],
            &small,
        )
        .unwrap();
    for (b, w) in small.iter().zip(&wide) {
        assert_eq!(*w, [u64::from(b[0]), u64::from(b[1]), 7]);
    }
    assert_eq!(pool.map(mix, &[]).unwrap(), Vec::<u64>::new());
    // Items of the largest size allowed.
    let big = [[3u8; Pool::MAX_ITEM_SIZE]; 40];
    let sums = pool
        .map(
            |b: [u8; 1024]| b.iter().map(|&x| u32::from(x)).sum::<u32>(),
            &big,
        )
        .unwrap();
    assert_eq!(sums, vec![3 * 1024; 40]);
}

#[test]
fn imap_keeps_order_and_imap_unordered_yields_every_index_once() {
    let pool = Pool::new(2).unwrap();
    let items: Vec<u64> = (0..5000).collect();
    let it = pool.imap(mix, &items);
    assert_eq!(it.len(), 5000);
    let got: Vec<u64> = it.map(|r| r.unwrap()).collect();
    assert_eq!(got, items.iter().map(|&x| mix(x)).collect::<Vec<_>>());

    let mut seen = vec![false; items.len()];
    let it = pool.imap_unordered(mix, &items);
    assert_eq!(it.len(), 5000);
    for (i, r) in it {
        assert!(!seen[i], "index {i} twice");
        seen[i] = true;
        assert_eq!(r.unwrap(), mix(items[i]));
    }
    assert!(seen.iter().all(|&s| s));

    // Dropping an iterator early leaves the pool usable.
    let mut it = pool.imap(mix, &items);
    assert_eq!(it.next().unwrap().unwrap(), mix(0));
    drop(it);
    assert_eq!(pool.map(mix, &items[..10]).unwrap()[9], mix(9));
}

#[test]
fn starmap_apply_and_apply_async() {
    let pool = Pool::new(2).unwrap();
    let pairs: Vec<(u64, u8)> = (0..300).map(|i| (i * 1000, (i % 7) as u8)).collect();
    let got = pool
        .starmap(|a: u64, b: u8| a + u64::from(b), &pairs)
        .unwrap();
    for ((a, b), g) in pairs.iter().zip(&got) {
        assert_eq!(*g, a + u64::from(*b));
    }
    assert_eq!(pool.apply(mix, 5).unwrap(), mix(5));

    let pending: Vec<_> = (0..20).map(|i| pool.apply_async(mix, i)).collect();
    for (i, r) in pending.iter().enumerate() {
        assert_eq!(r.get().unwrap(), mix(i as u64));
        assert!(r.ready());
        assert_eq!(r.get().unwrap(), mix(i as u64), "get is repeatable");
    }

    // get_timeout never returns before its timeout, and the task keeps running.
    let slow = pool.apply_async(sleep_ms, 300);
    let start = Instant::now();
    assert_eq!(
        slow.get_timeout(Duration::from_millis(20)),
        Err(PoolError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(slow.get().unwrap(), 300);
}

fn picky(x: u32) -> u32 {
    assert!(x != 3, "three is refused (got {x})");
    x * 10
}

fn refused(text: &str) -> PoolError {
    PoolError::TaskPanicked {
        message: PanicMessage::new(text),
    }
}

#[test]
fn a_panicking_task_fails_alone_with_its_message_and_its_worker_lives_on() {
    let pool = Pool::new(2).unwrap();
    let before = pool.worker_pids();
    let items: Vec<u32> = (0..8).collect();
    let three = refused("three is refused (got 3)");
    assert_eq!(pool.map(picky, &items), Err(three));
    let got: Vec<_> = pool.imap(picky, &items).collect();
    for (i, r) in got.iter().enumerate() {
        if i == 3 {
            assert_eq!(*r, Err(three));
        } else {
            assert_eq!(*r, Ok(i as u32 * 10));
        }
    }
    assert_eq!(pool.apply(picky, 3), Err(three));
    assert_eq!(pool.apply(picky, 4), Ok(40));
    assert_eq!(pool.worker_pids(), before, "no worker was replaced");
    let e = pool.apply(picky, 3).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the pool task panicked: three is refused (got 3)"
    );
}

/// Panics on every item divisible by 3, each with its own text; the long ones are cut.
fn thirds(x: u32) -> u32 {
    if x % 3 == 0 {
        if x == 9 {
            panic!("{}", "é".repeat(200));
        }
        panic!("no multiples of three: {x}");
    }
    x
}

#[test]
fn every_panicking_item_of_a_chunk_keeps_its_own_message() {
    // One worker, one chunk of 12 items with four panics in it.
    let pool = Pool::new(1).unwrap();
    let items: Vec<u32> = (0..12).collect();
    let check = |i: usize, r: &Result<u32, PoolError>| match i % 3 {
        0 if i == 9 => match r {
            Err(PoolError::TaskPanicked { message }) => {
                assert!(message.is_truncated());
                assert_eq!(message.as_str(), "é".repeat(PanicMessage::CAPACITY / 2));
            }
            other => panic!("item 9: {other:?}"),
        },
        0 => assert_eq!(*r, Err(refused(&format!("no multiples of three: {i}")))),
        _ => assert_eq!(*r, Ok(i as u32)),
    };
    for (i, r) in pool.imap(thirds, &items).enumerate() {
        check(i, &r);
    }
    let mut seen = 0;
    for (i, r) in pool.imap_unordered(thirds, &items) {
        check(i, &r);
        seen += 1;
    }
    assert_eq!(seen, 12);
    assert_eq!(
        pool.map(thirds, &items[1..]),
        Err(refused("no multiples of three: 3"))
    );
    let pending: Vec<_> = items.iter().map(|&x| pool.apply_async(thirds, x)).collect();
    for (i, p) in pending.iter().enumerate() {
        check(i, &p.get());
    }
}

static RUNNING: OnceLock<Shared<AtomicI32>> = OnceLock::new();

/// Item 0 records its worker's pid and then sleeps "forever"; others are quick.
fn stuck_on_zero(x: u64) -> u64 {
    if x == 0 {
        RUNNING
            .get()
            .unwrap()
            .store(std::process::id() as i32, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(600));
    }
    x + 1
}

#[test]
fn kill_9_of_a_worker_during_map_fails_that_map_and_the_pool_goes_on() {
    let running = RUNNING.get_or_init(|| Shared::new(AtomicI32::new(0)).unwrap());
    let pool = Pool::new(2).unwrap();
    let items: Vec<u64> = (0..64).collect();
    let (victim, result) = std::thread::scope(|s| {
        let mapping = s.spawn(|| pool.map(stuck_on_zero, &items));
        assert!(
            common::eventually(Duration::from_secs(30), || running.load(Ordering::SeqCst)
                != 0),
            "item 0 never started"
        );
        let victim = running.load(Ordering::SeqCst);
        // SAFETY: kill(2) with a pid of one of our own workers, which is alive (it is
        // sleeping inside the task) and unreaped (so the pid is not reused).
        assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);
        (victim, mapping.join().unwrap())
    });
    println!("killed worker {victim}: map returned {result:?}");
    assert_eq!(
        result,
        Err(PoolError::WorkerDied {
            pid: victim,
            signal: Some(libc::SIGKILL)
        })
    );
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), 2);
    assert!(!pids.contains(&victim), "the dead worker was replaced");
    assert!(!exists(victim), "the dead worker was reaped");
    let items: Vec<u64> = (1..1000).collect();
    assert_eq!(
        pool.map(stuck_on_zero, &items).unwrap(),
        items.iter().map(|x| x + 1).collect::<Vec<_>>()
    );
}

/// Dies by SIGKILL on item 13, exits with code 3 on item 14.
fn fragile(x: u32) -> u32 {
    match x {
        // SAFETY: raise(3) on our own process; SIGKILL ends it here.
        13 => unsafe {
            libc::raise(libc::SIGKILL);
            0
        },
        // SAFETY: _exit ends the process at once, running nothing of the parent's.
        14 => unsafe { libc::_exit(3) },
        _ => x + 1,
    }
}

#[test]
fn workers_dying_mid_task_fail_exactly_their_items_and_are_replaced() {
    let pool = Pool::new(2).unwrap();
    let iters = crash_iters();
    let mut deaths = 0;
    for round in 0..iters {
        let before = pool.worker_pids();
        let items: Vec<u32> = (0..40).collect();
        match pool.map(fragile, &items) {
            Err(PoolError::WorkerDied { pid, signal }) => {
                assert!(before.contains(&pid), "round {round}: pid {pid} was ours");
                assert!(signal == Some(libc::SIGKILL) || signal.is_none());
                deaths += 1;
            }
            other => panic!("round {round}: {other:?}"),
        }
        // Item by item: only the dying items fail (one item per chunk: apply).
        for x in [12, 13, 14, 15] {
            let r = pool.apply(fragile, x);
            match x {
                13 => assert!(matches!(
                    r,
                    Err(PoolError::WorkerDied {
                        signal: Some(libc::SIGKILL),
                        ..
                    })
                )),
                14 => assert!(matches!(r, Err(PoolError::WorkerDied { signal: None, .. }))),
                _ => assert_eq!(r, Ok(x + 1)),
            }
        }
        assert_eq!(pool.worker_pids().len(), 2);
    }
    let items: Vec<u32> = (20..60).collect();
    assert_eq!(
        pool.map(fragile, &items).unwrap(),
        items.iter().map(|x| x + 1).collect::<Vec<_>>()
    );
    println!("crash rounds: {iters} (SHMKIT_CRASH_ITERS), maps failed by a death: {deaths}");
}

#[test]
fn tasks_posted_to_workers_killed_while_idle_are_run_by_their_replacements() {
    let pool = Pool::new(2).unwrap();
    let pids = pool.worker_pids();
    for &pid in &pids {
        // SAFETY: kill(2) of our own idle, unreaped worker.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    }
    // Wait until both are dead (zombies), so the next chunks go to dead mailboxes.
    assert!(common::eventually(Duration::from_secs(30), || {
        pids.iter().all(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
                .unwrap_or(true)
        })
    }));
    let items: Vec<u64> = (0..100).collect();
    let got = pool.map(mix, &items).unwrap();
    assert_eq!(got, items.iter().map(|&x| mix(x)).collect::<Vec<_>>());
    let now = pool.worker_pids();
    assert!(now.iter().all(|p| !pids.contains(p)));
}

#[test]
fn max_tasks_per_child_replaces_workers() {
    let pool = Pool::builder()
        .workers(2)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let first = pool.worker_pids();
    let items: Vec<u32> = (0..20).collect();
    let ran_on = pool.map(my_pid, &items).unwrap();
    let mut counts = std::collections::HashMap::new();
    for pid in &ran_on {
        *counts.entry(*pid).or_insert(0) += 1;
    }
    println!(
        "20 tasks, max 3 per child: ran on {} processes",
        counts.len()
    );
    assert!(counts.values().all(|&n| n <= 3), "{counts:?}");
    assert!(counts.len() >= 7, "{counts:?}");
    // Once the workers that are leaving have been reaped and replaced, every process
    // that ran tasks is either gone or one of the current workers.
    let current = pool.worker_pids();
    assert!(
        counts
            .keys()
            .all(|pid| !exists(*pid) || current.contains(pid)),
        "{counts:?} {current:?}"
    );
    assert_ne!(pool.worker_pids(), first);
    assert_eq!(pool.worker_pids().len(), 2);
}

static INIT_MARK: AtomicU64 = AtomicU64::new(0);

fn init_worker() {
    INIT_MARK.store(0xfeed, Ordering::Relaxed);
}

fn init_mark(_: u8) -> u64 {
    INIT_MARK.load(Ordering::Relaxed)
}

fn init_panics() {
    panic!("initializer refuses");
}

#[test]
fn the_initializer_runs_in_every_worker_including_replacements() {
    let pool = Pool::builder()
        .workers(2)
        .initializer(init_worker)
        .build()
        .unwrap();
    assert_eq!(pool.map(init_mark, &[0; 16]).unwrap(), vec![0xfeed; 16]);
    assert_eq!(
        INIT_MARK.load(Ordering::Relaxed),
        0,
        "not run in the parent"
    );
    for pid in pool.worker_pids() {
        // SAFETY: kill(2) of our own unreaped worker.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert_eq!(pool.map(init_mark, &[0; 16]).unwrap(), vec![0xfeed; 16]);
}

#[test]
fn a_pool_whose_initializer_panics_fails_its_tasks_instead_of_hanging() {
    let pool = Pool::builder()
        .workers(2)
        .initializer(init_panics)
        .build()
        .unwrap();
    match pool.map(mix, &[1, 2, 3]) {
        Err(PoolError::WorkerDied { signal: None, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(pool.worker_pids().is_empty(), "the pool gave up");
    assert_eq!(pool.apply(mix, 1), Err(PoolError::Closed));
}

#[test]
fn bad_configurations_are_refused() {
    assert_eq!(Pool::new(0).err(), Some(Error::InvalidArgument));
    let r = Pool::builder().workers(1).max_tasks_per_child(0).build();
    assert_eq!(r.err(), Some(Error::InvalidArgument));
}

#[test]
fn terminate_during_a_long_task_returns_promptly() {
    let pool = Pool::new(2).unwrap();
    let pids = pool.worker_pids();
    let long = pool.apply_async(sleep_ms, 600_000);
    let queued: Vec<_> = (0..3)
        .map(|_| pool.apply_async(sleep_ms, 600_000))
        .collect();
    let start = Instant::now();
    pool.terminate();
    let took = start.elapsed();
    println!("terminate with a 10-minute task running took {took:?}");
    // The task would take ten minutes; a minute is far beyond any scheduling noise.
    assert!(took < Duration::from_secs(60));
    assert_eq!(long.get(), Err(PoolError::Closed));
    for q in &queued {
        assert_eq!(q.get(), Err(PoolError::Closed));
    }
    assert!(pool.worker_pids().is_empty());
    assert!(pids.iter().all(|&p| !exists(p)));
    assert_eq!(pool.map(mix, &[1]), Err(PoolError::Closed));
}

#[test]
fn close_then_join_runs_what_was_queued_and_reaps_the_workers() {
    let pool = Pool::new(2).unwrap();
    let pids = pool.worker_pids();
    let pending: Vec<_> = (0..6).map(|i| pool.apply_async(sleep_ms, 10 + i)).collect();
    pool.close();
    assert_eq!(pool.map(mix, &[1]), Err(PoolError::Closed));
    assert_eq!(pool.apply_async(mix, 1).get(), Err(PoolError::Closed));
    assert_eq!(
        pool.imap(mix, &[1, 2]).collect::<Vec<_>>(),
        vec![Err(PoolError::Closed); 2]
    );
    pool.join();
    for (i, p) in pending.iter().enumerate() {
        assert_eq!(p.get(), Ok(10 + i as u64));
    }
    assert!(pool.worker_pids().is_empty());
    assert!(pids.iter().all(|&p| !exists(p)));
    pool.join(); // again: nothing to do
}

#[test]
fn after_drop_no_worker_process_or_zombie_is_left() {
    let mut all = Vec::new();
    let zygote;
    {
        let pool = Pool::builder()
            .workers(3)
            .max_tasks_per_child(2)
            .build()
            .unwrap();
        all.extend(pool.map(my_pid, &[0; 12]).unwrap());
        let live = pool.worker_pids();
        zygote = parent_of(live[0]).expect("a live worker");
        all.extend(live);
        assert_eq!(parent_of(zygote), Some(std::process::id() as i32));
        let _busy = pool.apply_async(sleep_ms, 600_000);
        let _never = pool.apply_async(sleep_ms, 600_000);
    }
    all.sort_unstable();
    all.dedup();
    println!(
        "{} worker pids seen, zygote {zygote}; checking /proc for each",
        all.len()
    );
    for pid in all {
        assert!(
            !exists(pid),
            "worker {pid} still exists (running or zombie)"
        );
    }
    assert!(!exists(zygote), "the zygote was reaped");
}

#[test]
fn one_pool_serves_several_threads_at_once() {
    let pool = Pool::new(2).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let pool = &pool;
                s.spawn(move || {
                    for round in 0..5 {
                        let items: Vec<u64> =
                            (0..2000).map(|i| i + t * 1_000_000 + round).collect();
                        let got = pool.map(mix, &items).unwrap();
                        assert_eq!(got, items.iter().map(|&x| mix(x)).collect::<Vec<_>>());
                        let a = pool.apply_async(mix, t);
                        assert_eq!(a.get().unwrap(), mix(t));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// Per-test run counters (one `Shared` array each, made before that test's pool is
/// built, so that its workers, forked later, see it).
type Counts = [AtomicU32; 512];
static RUNS: [OnceLock<Shared<Counts>>; 4] = [const { OnceLock::new() }; 4];

fn runs(t: usize) -> &'static Shared<Counts> {
    RUNS[t].get_or_init(|| Shared::new([const { AtomicU32::new(0) }; 512]).unwrap())
}

/// Counts its runs in `RUNS[T]`; item `K` SIGKILLs its own worker (every time).
fn killer<const T: usize, const K: u32>(x: u32) -> u32 {
    runs(T)[x as usize].fetch_add(1, Ordering::SeqCst);
    if x == K {
        // SAFETY: raise(3) on our own process; SIGKILL ends it here.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    x * 10
}

fn run_counts(t: usize, n: usize) -> Vec<u32> {
    runs(t)[..n]
        .iter()
        .map(|c| c.swap(0, Ordering::SeqCst))
        .collect()
}

fn died(pid: i32) -> PoolError {
    PoolError::WorkerDied {
        pid,
        signal: Some(libc::SIGKILL),
    }
}

#[test]
fn a_dead_worker_fails_only_the_item_it_was_running_one_worker() {
    let _ = runs(0);
    let pool = Pool::new(1).unwrap();
    let items: Vec<u32> = (0..8).collect();

    // imap: item 1 kills its worker; 0 keeps its result, 2..8 run on the replacement.
    let victim = pool.worker_pids()[0];
    let got: Vec<_> = pool.imap(killer::<0, 1>, &items).collect();
    for (i, r) in got.iter().enumerate() {
        match i {
            1 => assert_eq!(*r, Err(died(victim)), "item 1"),
            _ => assert_eq!(*r, Ok(i as u32 * 10), "item {i}"),
        }
    }
    assert_eq!(run_counts(0, 8), [1; 8], "every item ran exactly once");
    assert_ne!(pool.worker_pids(), [victim], "replaced");

    // imap_unordered: the same, by index.
    let victim = pool.worker_pids()[0];
    let mut seen = 0;
    for (i, r) in pool.imap_unordered(killer::<0, 1>, &items) {
        seen += 1;
        match i {
            1 => assert_eq!(r, Err(died(victim)), "item 1"),
            _ => assert_eq!(r, Ok(i as u32 * 10), "item {i}"),
        }
    }
    assert_eq!(seen, 8);
    assert_eq!(run_counts(0, 8), [1; 8]);

    // map: fails with that death; item 0, which had finished, is not run again.
    let victim = pool.worker_pids()[0];
    assert_eq!(pool.map(killer::<0, 1>, &items), Err(died(victim)));
    // Chunks posted before the map returned finish in the background: a task queued
    // behind them on the only worker waits them out.
    assert_eq!(pool.apply(mix, 1), Ok(mix(1)));
    let counts = run_counts(0, 8);
    assert_eq!(counts[..2], [1, 1], "{counts:?}");
    assert!(counts.iter().all(|&c| c <= 1), "{counts:?}");

    // apply_async: one item per task; only the killer's fails.
    let victim = pool.worker_pids()[0];
    let pending: Vec<_> = items
        .iter()
        .map(|&x| pool.apply_async(killer::<0, 1>, x))
        .collect();
    for (i, p) in pending.iter().enumerate() {
        match i {
            1 => assert_eq!(p.get(), Err(died(victim)), "item 1"),
            _ => assert_eq!(p.get(), Ok(i as u32 * 10), "item {i}"),
        }
    }
    assert_eq!(run_counts(0, 8), [1; 8]);
}

#[test]
fn a_dead_worker_fails_one_item_of_a_chunk_of_63() {
    let _ = runs(1);
    let pool = Pool::new(2).unwrap();
    // 504 items on 2 workers: chunks of 504 / (4 * 2) = 63; item 100 is in the
    // second chunk, with 37 items before it and 26 after it.
    let items: Vec<u32> = (0..504).collect();
    let pids = pool.worker_pids();
    let got: Vec<_> = pool.imap(killer::<1, 100>, &items).collect();
    let failed: Vec<usize> = (0..504).filter(|&i| got[i].is_err()).collect();
    assert_eq!(failed, [100], "exactly the killer failed");
    match got[100] {
        Err(PoolError::WorkerDied { pid, signal }) => {
            assert!(pids.contains(&pid), "{pid} was one of {pids:?}");
            assert_eq!(signal, Some(libc::SIGKILL));
        }
        other => panic!("{other:?}"),
    }
    for (i, r) in got.iter().enumerate().filter(|(i, _)| *i != 100) {
        assert_eq!(*r, Ok(i as u32 * 10));
    }
    assert_eq!(run_counts(1, 504), [1; 504], "every item ran exactly once");

    let mut failures = 0;
    for (i, r) in pool.imap_unordered(killer::<1, 100>, &items) {
        match r {
            Ok(v) => assert_eq!(v, i as u32 * 10),
            Err(e) => {
                assert_eq!(i, 100, "{e}");
                failures += 1;
            }
        }
    }
    assert_eq!(failures, 1);
    assert_eq!(run_counts(1, 504), [1; 504]);
}

static STALL: OnceLock<Shared<AtomicU32>> = OnceLock::new();

fn stall(ms: u64) -> u64 {
    STALL.get().unwrap().fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn map_timeout_gives_up_in_time_and_the_pool_goes_on() {
    let stalls = STALL.get_or_init(|| Shared::new(AtomicU32::new(0)).unwrap());
    let pool = Pool::new(2).unwrap();
    assert_eq!(
        pool.map_timeout(stall, &[1, 2, 3], Duration::from_secs(60)),
        Ok(vec![1, 2, 3])
    );
    // One item sleeps for a minute: the map gives up after 200 ms, not before.
    let start = Instant::now();
    let r = pool.map_timeout(stall, &[5, 60_000, 5, 5], Duration::from_millis(200));
    let took = start.elapsed();
    println!("map_timeout(200 ms) with a 60 s item returned {r:?} after {took:?}");
    assert_eq!(r, Err(PoolError::Timeout));
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    // The other worker still serves (the stuck one is busy for a minute).
    assert_eq!(pool.map(stall, &[1, 1]), Ok(vec![1, 1]));
    assert_eq!(pool.apply(stall, 2), Ok(2));
    assert!(stalls.load(Ordering::SeqCst) >= 8);
    pool.terminate();
}

static TALLY: OnceLock<Shared<shmkit::Mutex<u64>>> = OnceLock::new();

/// Adds `x` to the shared tally under the kit's (robust, participant-id) lock.
fn add_locked(x: u64) -> u64 {
    let mut g = TALLY.get().unwrap().lock().unwrap();
    *g += x;
    *g
}

/// Takes the tally's lock and dies holding it.
fn die_holding(_: u8) -> u8 {
    core::mem::forget(TALLY.get().unwrap().lock().unwrap());
    // SAFETY: raise(3) on our own process; SIGKILL ends it here.
    unsafe { libc::raise(libc::SIGKILL) };
    0
}

#[test]
fn tasks_use_the_kits_locks_and_a_worker_dying_inside_one_is_seen_dead() {
    let tally = TALLY.get_or_init(|| Shared::new(shmkit::Mutex::new(0)).unwrap());
    // The parent takes part first (its registry descriptor is open when the pool forks:
    // the zygote and the workers must keep the kit's own descriptor).
    *tally.lock().unwrap() += 1;
    let pool = Pool::new(2).unwrap();
    let items = vec![1u64; 500];
    assert!(pool.map(add_locked, &items).is_ok());
    assert_eq!(*tally.lock().unwrap(), 501);
    assert!(matches!(
        pool.apply(die_holding, 0),
        Err(PoolError::WorkerDied { .. })
    ));
    match tally.lock_timeout(Duration::from_secs(30)) {
        Err(shmkit::LockError::OwnerDead(g)) => {
            assert_eq!(*g, 501);
            g.make_consistent();
        }
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("the dead worker's lock was taken as free"),
    }
    assert_eq!(pool.apply(add_locked, 9), Ok(510));
}

static CRASH_RUNS: OnceLock<Shared<[AtomicU32; 2048]>> = OnceLock::new();

/// About 20 µs of work, counted in `CRASH_RUNS`.
fn counted_work(x: u32) -> u32 {
    CRASH_RUNS.get().unwrap()[x as usize].fetch_add(1, Ordering::SeqCst);
    let mut h = u64::from(x);
    for _ in 0..10_000 {
        h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0xbf58_476d_1ce4_e5b9;
    }
    std::hint::black_box(h);
    x ^ 0x5a5a
}

#[test]
fn random_kills_and_pauses_during_imap_fail_only_items_in_progress_and_run_none_twice() {
    let runs = CRASH_RUNS.get_or_init(|| Shared::new([const { AtomicU32::new(0) }; 2048]).unwrap());
    let items: Vec<u32> = (0..2000).collect();
    let (mut total_kills, mut total_pauses, mut total_failed) = (0, 0, 0);
    for round in 0..crash_iters() {
        let pool = Pool::new(2).unwrap();
        let zygote = parent_of(pool.worker_pids()[0]).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (results, (kills, pauses)) = std::thread::scope(|s| {
            let killer = s.spawn(|| {
                let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ round as u64;
                let (mut kills, mut pauses) = (0, 0);
                while !stop.load(Ordering::SeqCst) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    std::thread::sleep(Duration::from_micros(seed % 3000));
                    let pids = pool.worker_pids();
                    let Some(&victim) = pids.get((seed >> 32) as usize % pids.len().max(1)) else {
                        continue;
                    };
                    // Every fourth time, pause the worker or the zygote a moment
                    // instead (a stopped process is slow, never dead).
                    if seed % 4 == 0 {
                        let paused = if seed % 8 == 0 { zygote } else { victim };
                        if paused == zygote || parent_of(victim) == Some(zygote) {
                            // SAFETY: kill(2) of our own zygote (our child) or of one of
                            // its unreaped workers.
                            unsafe { libc::kill(paused, libc::SIGSTOP) };
                            std::thread::sleep(Duration::from_micros(seed % 2000));
                            // SAFETY: as above.
                            unsafe { libc::kill(paused, libc::SIGCONT) };
                            pauses += 1;
                        }
                        continue;
                    }
                    // Still the zygote's child (alive or not yet reaped, so the pid is
                    // still the worker's): kill it.
                    if parent_of(victim) == Some(zygote) {
                        // SAFETY: kill(2) of one of our pool's unreaped workers.
                        unsafe { libc::kill(victim, libc::SIGKILL) };
                        kills += 1;
                    }
                }
                (kills, pauses)
            });
            let results: Vec<_> = pool.imap(counted_work, &items).collect();
            stop.store(true, Ordering::SeqCst);
            (results, killer.join().unwrap())
        });
        let mut failed = 0;
        for (i, r) in results.iter().enumerate() {
            let ran = runs[i].swap(0, Ordering::SeqCst);
            match r {
                Ok(v) => {
                    assert_eq!(*v, i as u32 ^ 0x5a5a, "round {round}: item {i}");
                    assert_eq!(ran, 1, "round {round}: item {i} ran {ran} times");
                }
                Err(PoolError::WorkerDied { signal, .. }) => {
                    assert_eq!(*signal, Some(libc::SIGKILL));
                    assert!(ran <= 1, "round {round}: failed item {i} ran {ran} times");
                    failed += 1;
                }
                Err(e) => panic!("round {round}: item {i}: {e}"),
            }
        }
        assert!(
            failed <= kills,
            "round {round}: {failed} items failed for {kills} kills"
        );
        total_kills += kills;
        total_pauses += pauses;
        total_failed += failed;
    }
    println!(
        "{} rounds of 2000 items (SHMKIT_CRASH_ITERS): {total_kills} workers killed and \
         {total_pauses} workers or zygote paused (SIGSTOP) at random, {total_failed} items \
         failed with WorkerDied, none ran twice",
        crash_iters()
    );
}

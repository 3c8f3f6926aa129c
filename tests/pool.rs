//! Pool behaviour across real forked workers: results, crashes, replacement, shutdown.
//!
//! Tasks that must tell the test something (that they started, which pid ran them) go
//! through statics holding `Shared` segments made before the pool forks: a worker is a
//! fork, so it sees the same static pointing at the same shared mapping.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmkit::{Error, Pool, PoolError, Shared};

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

/// Is `pid` still a process of ours (running or a zombie)? `false` if it is gone, or
/// the pid now belongs to a process that is not our child (reused).
fn is_our_child(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ppid ...": comm may hold spaces; split after the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let ppid: i32 = rest.split(' ').nth(1).unwrap().parse().unwrap();
    ppid == std::process::id() as i32
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

#[test]
fn a_panicking_task_fails_alone_and_its_worker_lives_on() {
    fn picky(x: u32) -> u32 {
        assert!(x != 3, "three is refused");
        x * 10
    }
    let pool = Pool::new(2).unwrap();
    let before = pool.worker_pids();
    let items: Vec<u32> = (0..8).collect();
    assert_eq!(pool.map(picky, &items), Err(PoolError::TaskPanicked));
    let got: Vec<_> = pool.imap(picky, &items).collect();
    for (i, r) in got.iter().enumerate() {
        if i == 3 {
            assert_eq!(*r, Err(PoolError::TaskPanicked));
        } else {
            assert_eq!(*r, Ok(i as u32 * 10));
        }
    }
    assert_eq!(pool.apply(picky, 3), Err(PoolError::TaskPanicked));
    assert_eq!(pool.apply(picky, 4), Ok(40));
    assert_eq!(pool.worker_pids(), before, "no worker was replaced");
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
    assert!(!is_our_child(victim), "the dead worker was reaped");
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
    assert!(
        counts
            .keys()
            .all(|pid| !is_our_child(*pid) || pool.worker_pids().contains(pid))
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
    assert!(pids.iter().all(|&p| !is_our_child(p)));
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
    assert!(pids.iter().all(|&p| !is_our_child(p)));
    pool.join(); // again: nothing to do
}

#[test]
fn after_drop_no_worker_process_or_zombie_is_left() {
    let mut all = Vec::new();
    {
        let pool = Pool::builder()
            .workers(3)
            .max_tasks_per_child(2)
            .build()
            .unwrap();
        all.extend(pool.map(my_pid, &[0; 12]).unwrap());
        all.extend(pool.worker_pids());
        let _busy = pool.apply_async(sleep_ms, 600_000);
        let _never = pool.apply_async(sleep_ms, 600_000);
    }
    all.sort_unstable();
    all.dedup();
    println!("{} worker pids seen; checking /proc for each", all.len());
    for pid in all {
        assert!(
            !is_our_child(pid),
            "worker {pid} is still our child (running or zombie)"
        );
    }
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

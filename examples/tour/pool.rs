//! A process pool: map over forked workers, a crash survived, a worker recycled.

use std::time::Instant;

use shmkit::{Pool, PoolError};

/// CPU-bound work: about 20 µs of integer mixing.
fn work(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..10_000 {
        h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0xbf58_476d_1ce4_e5b9;
    }
    h
}

/// Item 7 kills its own worker (as a `kill -9` from outside would).
fn fragile(x: u32) -> u32 {
    if x == 7 {
        // SAFETY: raise(3) on our own process; SIGKILL ends it here.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    x * 2
}

fn picky(x: u32) -> u32 {
    assert!(x != 3, "three is refused");
    x
}

fn whoami(_: u8) -> i32 {
    std::process::id() as i32
}

pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    println!("\n== process pool ==");
    let pool = Pool::new(2)?;
    println!("2 workers forked: {:?}", pool.worker_pids());

    // 1. map, against the same work done sequentially.
    let items: Vec<u64> = (0..2000).collect();
    let start = Instant::now();
    let sequential: Vec<u64> = items.iter().map(|&x| work(x)).collect();
    let t_seq = start.elapsed();
    let start = Instant::now();
    let parallel = pool.map(work, &items)?;
    let t_par = start.elapsed();
    assert_eq!(parallel, sequential);
    println!(
        "map of a CPU-bound fn over {} items: sequential {t_seq:?}, pool {t_par:?} ({:.2}x; two idle cores give ~2x)",
        items.len(),
        t_seq.as_secs_f64() / t_par.as_secs_f64()
    );

    // 2. A worker dies in the middle of a task: that task fails, the pool goes on.
    let before = pool.worker_pids();
    let r = pool.map(fragile, &(0..10).collect::<Vec<_>>());
    println!("a worker killed by SIGKILL during map: {r:?}");
    assert!(matches!(
        r,
        Err(PoolError::WorkerDied {
            signal: Some(9),
            ..
        })
    ));
    println!(
        "workers before {before:?}, after {:?} (one replaced)",
        pool.worker_pids()
    );
    assert_eq!(pool.map(fragile, &[1, 2, 3])?, [2, 4, 6]);
    // Only the item that was running fails; the rest of its chunk is kept or rerun.
    let each: Vec<_> = pool.imap(fragile, &(0..10).collect::<Vec<_>>()).collect();
    let failed: Vec<usize> = (0..10).filter(|&i| each[i].is_err()).collect();
    println!("imap over 0..10, item 7 killing its worker: only {failed:?} failed");
    assert_eq!(failed, [7]);

    // A task that panics fails alone, and its message comes back.
    match pool.apply(picky, 3) {
        Err(PoolError::TaskPanicked { message }) => {
            println!("a panicking task: TaskPanicked {{ message: {message:?} }}");
            assert_eq!(message.as_str(), "three is refused");
        }
        other => panic!("{other:?}"),
    }
    let pending = pool.apply_async(work, 42);
    assert_eq!(pending.get()?, work(42));
    println!(
        "and later tasks succeed: apply_async(work, 42) = {:#x}",
        pending.get()?
    );

    // 3. max_tasks_per_child: workers are recycled after k tasks.
    let recycling = Pool::builder().workers(2).max_tasks_per_child(2).build()?;
    let pids = recycling.map(whoami, &[0; 8])?;
    let mut distinct = pids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    println!(
        "8 tasks with max_tasks_per_child(2) ran on {} processes",
        distinct.len()
    );
    assert!(distinct.len() >= 4);

    // 4. join: the workers exit and are reaped.
    pool.join();
    assert!(pool.worker_pids().is_empty());
    println!("joined: no worker left");
    Ok(())
}

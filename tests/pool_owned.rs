//! Pool result handles own what they need (issue 16, item 4): an `AsyncResult` or an
//! `imap` iterator holds the pool's state itself, so it can sit in a struct beside the
//! pool, leave the function that made it, or outlive the `Pool` handle; the pool ends
//! when the last of them goes.

use std::time::{Duration, Instant};

use shmkit::{AsyncResult, Imap, Pool, PoolError};

fn square(x: u64) -> u64 {
    x * x
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(50));
    x * x
}

/// Does process `pid` still exist (running, or a zombie not reaped yet)?
fn exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// The user: the pool and its pending results in one struct.
struct Batch {
    pool: Pool,
    pending: Vec<AsyncResult<u64>>,
}

#[test]
fn a_struct_holds_the_pool_and_its_results() {
    let pool = Pool::new(2).unwrap();
    let pending = (0..8).map(|x| pool.apply_async(square, x)).collect();
    let batch = Batch { pool, pending };
    let got: Vec<u64> = batch.pending.iter().map(|r| r.get().unwrap()).collect();
    assert_eq!(got, [0, 1, 4, 9, 16, 25, 36, 49]);
    batch.pool.join();
}

/// An iterator returned from the function that made the pool and the items.
fn squares_of(n: u64) -> Imap<u64, u64> {
    let pool = Pool::new(2).unwrap();
    let items: Vec<u64> = (0..n).collect();
    pool.imap(square, &items)
}

#[test]
fn an_imap_iterator_outlives_its_pool_handle_and_items() {
    let got: Result<Vec<u64>, PoolError> = squares_of(100).collect();
    assert_eq!(got.unwrap(), (0..100).map(square).collect::<Vec<_>>());
}

/// The `Pool` handle dropped first: the tasks still run and deliver; the workers go
/// when the last result handle does.
#[test]
fn results_keep_the_pool_alive_and_the_last_one_ends_it() {
    let pool = Pool::new(2).unwrap();
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), 2);
    let a = pool.apply_async(slow_square, 3);
    let rest = pool.imap_unordered(slow_square, &[4, 5, 6]);
    drop(pool);
    // In another thread, to show they are `Send + 'static`.
    let t = std::thread::spawn(move || {
        let mut got: Vec<u64> = rest.map(|(_, r)| r.unwrap()).collect();
        got.sort_unstable();
        got
    });
    assert_eq!(a.get(), Ok(9));
    assert_eq!(t.join().unwrap(), [16, 25, 36]);
    assert!(
        pids.iter().all(|&p| exists(p)),
        "workers alive while a handle is"
    );
    drop(a);
    assert!(
        eventually(Duration::from_secs(10), || pids.iter().all(|&p| !exists(p))),
        "workers still there after the last handle was dropped"
    );
}

/// `terminate` still ends the pool at once: handles then report `Closed`.
#[test]
fn terminate_ends_the_pool_under_its_handles() {
    let pool = Pool::new(1).unwrap();
    let long = pool.apply_async(slow_square, 7);
    let after = pool.apply_async(slow_square, 8);
    pool.terminate();
    assert_eq!(after.get(), Err(PoolError::Closed));
    let _ = long.get();
    drop(pool);
    assert!(long.ready());
}

/// The calls that borrowed before still read the same.
#[test]
fn the_old_calls_read_as_before() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.apply(square, 12), Ok(144));
    let r = pool.apply_async(square, 5);
    assert_eq!(r.get(), Ok(25));
    let ordered: Vec<_> = pool.imap(square, &[1, 2, 3]).collect();
    assert_eq!(ordered, [Ok(1), Ok(4), Ok(9)]);
    assert_eq!(pool.map(square, &[4, 5]), Ok(vec![16, 25]));
}

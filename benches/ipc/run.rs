//! Drivers shared by both sides of the comparisons: fan-out over processes, MPMC over
//! threads. (Both `kit` and `baseline` use them; neither uses the other.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmkit::{Process, Shared};

/// Forks `procs` processes that wait for a start signal, run `work`, and exit; returns
/// the time from the start signal until the last one finished.
pub fn fan_out(procs: u64, work: impl Fn() + Sync) -> Duration {
    let go = Shared::new(AtomicU64::new(0)).expect("map");
    let done = Shared::new(AtomicU64::new(0)).expect("map");
    let mut children: Vec<Process> = (0..procs)
        .map(|_| {
            Process::spawn(|| {
                while go.load(Ordering::Acquire) == 0 {
                    std::hint::spin_loop();
                }
                work();
                done.fetch_add(1, Ordering::AcqRel);
                0
            })
            .expect("fork")
        })
        .collect();
    let start = Instant::now();
    go.store(1, Ordering::Release);
    while done.load(Ordering::Acquire) < procs {
        std::thread::yield_now();
    }
    let elapsed = start.elapsed();
    for c in &mut children {
        let status = c.join_timeout(Duration::from_secs(120)).expect("waitpid");
        if status.is_none() {
            let _ = c.kill();
            let _ = c.join();
            panic!("fan-out child overran its deadline");
        }
    }
    elapsed
}

/// Runs an MPMC exchange between threads; returns the time until every item arrived.
pub fn run_mpmc(
    msgs: u64,
    producers: u64,
    consumers: u64,
    put: impl Fn(u64) + Sync,
    get: impl Fn() -> Option<u64> + Sync,
) -> Duration {
    let per = msgs / producers;
    let total = per * producers;
    let taken = AtomicU64::new(0);
    let sum = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for p in 0..producers {
            let put = &put;
            s.spawn(move || {
                for i in 0..per {
                    put(p * per + i);
                }
            });
        }
        for _ in 0..consumers {
            let (get, taken, sum) = (&get, &taken, &sum);
            s.spawn(move || {
                let mut local = 0u64;
                while taken.load(Ordering::Relaxed) < total {
                    match get() {
                        Some(v) => {
                            local = local.wrapping_add(v);
                            taken.fetch_add(1, Ordering::Relaxed);
                        }
                        None => std::hint::spin_loop(),
                    }
                }
                sum.fetch_add(local, Ordering::Relaxed);
            });
        }
    });
    let elapsed = start.elapsed();
    assert_eq!(
        sum.load(Ordering::Relaxed),
        total * (total - 1) / 2,
        "lost or duplicated items"
    );
    elapsed
}

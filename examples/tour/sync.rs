//! Locks, semaphores, events, barriers and cells shared by forked processes, and a
//! lock whose holder is killed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmkit::{
    Array, Barrier, Condvar, Event, LockError, Mutex, Process, Semaphore, Shared, ShmSafe, Value,
};

/// Everything the processes of this section share, in one `#[repr(C)]` struct:
/// `#[derive(ShmSafe)]` checks that every field may live in shared memory. (It holds
/// a `Semaphore(2)` and a `Barrier(4)`, values with parameters, so it is built with
/// `Shared::new`; a struct whose fresh state is all zeros would use `new_zeroed`.)
#[derive(ShmSafe)]
#[repr(C)]
struct Board {
    total: Value<u64>,
    slots: Array<u32, 4>,
    sem: Semaphore,
    inside: AtomicU32,
    max_inside: AtomicU32,
    barrier: Barrier,
    go: Event,
    queue: Mutex<u64>,
    changed: Condvar,
    robust: Mutex<u64>,
    holding: AtomicU32,
}

pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    println!("\n== locks, semaphores, events, barriers, cells ==");
    let board = Shared::new(Board {
        total: Value::new(0),
        slots: Array::new([0; 4]),
        sem: Semaphore::new(2),
        inside: AtomicU32::new(0),
        max_inside: AtomicU32::new(0),
        barrier: Barrier::new(4),
        go: Event::new(),
        queue: Mutex::new(0),
        changed: Condvar::new(),
        robust: Mutex::new(0),
        holding: AtomicU32::new(0),
    })?;

    // 1. Four processes wait for one Event, meet at a Barrier, add to a Value under
    //    its lock, and pass a Semaphore(2) that never lets three in at once.
    const ADDS: u64 = 50_000;
    let start = Instant::now();
    let mut workers = Vec::new();
    for me in 0..4u32 {
        let b = &board;
        workers.push(Process::spawn(move || {
            b.go.wait();
            let Ok(turn) = b.barrier.wait() else { return 1 };
            if b.slots.set(me as usize, turn.index()).is_err() {
                return 2;
            }
            for _ in 0..ADDS {
                b.total.update(|t| *t += 1);
            }
            for _ in 0..200 {
                b.sem.acquire();
                let now = b.inside.fetch_add(1, Ordering::SeqCst) + 1;
                b.max_inside.fetch_max(now, Ordering::SeqCst);
                b.inside.fetch_sub(1, Ordering::SeqCst);
                b.sem.release();
            }
            0
        })?);
    }
    board.go.set();
    for w in &mut workers {
        assert!(w.join()?.success());
    }
    let mut order = [0u32; 4];
    board.slots.copy_to(&mut order);
    println!(
        "4 processes: Event released them, Barrier gave indices {order:?}, Value = {} ({:?}), \
         Semaphore(2) admitted at most {} at once",
        board.total.get(),
        start.elapsed(),
        board.max_inside.load(Ordering::SeqCst)
    );
    assert_eq!(board.total.get(), 4 * ADDS);
    let mut sorted = order;
    sorted.sort();
    assert_eq!(sorted, [0, 1, 2, 3]);
    assert!(board.max_inside.load(Ordering::SeqCst) <= 2);

    // 2. Condvar: a child produces numbers one at a time; we consume them.
    let b = &board;
    let mut producer = Process::spawn(move || {
        for i in 1..=1_000u64 {
            let g = b.queue.lock().unwrap();
            let Ok(mut g) = b.changed.wait_while(g, |v| *v != 0) else {
                return 1;
            };
            *g = i;
            drop(g);
            b.changed.notify_all();
        }
        0
    })?;
    let mut sum = 0;
    for _ in 0..1_000 {
        let g = board.queue.lock().unwrap();
        let mut g = board.changed.wait_while(g, |v| *v == 0).unwrap();
        sum += *g;
        *g = 0;
        drop(g);
        board.changed.notify_all();
    }
    assert!(producer.join()?.success());
    println!("Condvar hand-off of 1..=1000 from a child: sum {sum}");
    assert_eq!(sum, 500_500);

    // 3. A robust Mutex: its holder is killed with SIGKILL (and not yet reaped).
    let mut holder = Process::spawn(move || {
        let mut g = b.robust.lock().unwrap();
        *g = 41;
        b.holding.store(1, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })?;
    while board.holding.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(5));
    let killed = Instant::now();
    holder.kill()?;
    match board.robust.lock_timeout(Duration::from_secs(10)) {
        Err(LockError::OwnerDead(mut g)) => {
            println!(
                "holder killed: the next lock() got OwnerDead after {:?}, saw its {} and repaired it",
                killed.elapsed(),
                *g
            );
            *g += 1;
            g.make_consistent();
        }
        other => return Err(format!("expected OwnerDead, got {:?}", other.map(|_| ())).into()),
    }
    println!(
        "after make_consistent the mutex is normal: {}",
        *board.robust.lock().unwrap()
    );
    assert_eq!(*board.robust.lock().unwrap(), 42);
    holder.join()?;
    Ok(())
}

//! Channels: a Pipe ping-pong between two processes, and a Queue fanning work out to
//! worker processes (with a JoinableQueue's join, and `wait` on both kinds).

use std::time::{Duration, Instant};

use shmkit::{Error, JoinableQueue, Pipe, Process, Queue, Shared, wait};

pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    println!("\n== pipes and queues ==");

    // 1. Ping-pong: the child adds one and sends it back, until the parent closes.
    //    `Pipe::pair()`: a fresh pipe in its own segment, and two owned ends that keep
    //    it alive themselves (Python's `Pipe()`).
    let (parent, child) = Pipe::<4096>::pair()?;
    // `move`: the child's end goes into the child (the parent's copy is then claimed
    // for the child, so the parent would see it die even before its first receive).
    let mut echo = Process::spawn(move || {
        loop {
            match child.recv::<u64>() {
                Ok(x) => child.send(&(x + 1)).unwrap(),
                Err(Error::Disconnected) => return 0, // Python's EOFError
                Err(_) => return 1,
            }
        }
    })?;
    const ROUNDS: u64 = 20_000;
    let start = Instant::now();
    let mut x = 0u64;
    for _ in 0..ROUNDS {
        parent.send(&x)?;
        x = parent.recv::<u64>()?;
    }
    let took = start.elapsed();
    parent.close();
    assert_eq!(echo.join()?.code(), Some(0));
    assert_eq!(x, ROUNDS);
    println!(
        "pipe ping-pong: {ROUNDS} round trips between two processes in {took:?} ({:?} each); \
         the child saw Disconnected when the parent closed",
        took / ROUNDS as u32
    );

    // 2. Fan-out: 3 worker processes square numbers from one queue into another.
    //    Kit types are all zeros when fresh: `new_zeroed` builds them in place.
    let jobs = Shared::<JoinableQueue<u64, 256>>::new_zeroed()?;
    let results = Shared::<Queue<[u64; 2], 256>>::new_zeroed()?;
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(Process::spawn(|| {
            let mut done = 0;
            while let Ok(n) = jobs.get() {
                results.put([n, n * n]).unwrap();
                jobs.task_done().unwrap();
                done += 1;
            }
            (done > 0) as i32 // exit 1 if it got work
        })?);
    }
    const JOBS: u64 = 10_000;
    let start = Instant::now();
    let mut sum = 0u64;
    let mut got = 0u64;
    for n in 0..JOBS {
        jobs.put(n).unwrap();
        // Collect results as they come, so neither queue stays full.
        while let Ok([k, sq]) = results.try_get() {
            assert_eq!(sq, k * k);
            sum += sq;
            got += 1;
        }
    }
    while got < JOBS {
        let [k, sq] = results.get_timeout(Duration::from_secs(10))?;
        assert_eq!(sq, k * k);
        sum += sq;
        got += 1;
    }
    jobs.join(); // every job was taken and marked done
    jobs.close(); // workers drain, then see Closed and exit
    let busy = workers
        .iter_mut()
        .map(|w| w.join().map(|s| s.code() == Some(1)))
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(sum, (0..JOBS).map(|n| n * n).sum::<u64>());
    println!(
        "queue fan-out: {JOBS} jobs squared by 3 worker processes in {:?}; sum of squares {sum}; \
         workers that got work: {}/3; lost {}",
        start.elapsed(),
        busy.iter().filter(|b| **b).count(),
        jobs.lost()
    );

    // 3. wait on a pipe end and a queue at once (Python's connection.wait).
    //    (Here the pipe's ends borrow its segment: `ends()` works without `std` too.)
    let q = Shared::<Queue<u32, 4>>::new_zeroed()?;
    let pipe = Shared::<Pipe<256>>::new_zeroed()?;
    let (a, b) = pipe.ends();
    let mut poker = Process::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        a.send_bytes(b"ping").unwrap();
        0
    })?;
    let start = Instant::now();
    let ready = wait(&[&q, &b], Some(Duration::from_secs(10)))?;
    println!(
        "wait([queue, pipe end]): ready {:?} after {:?} (the other process wrote to the pipe)",
        ready.iter().collect::<Vec<_>>(),
        start.elapsed()
    );
    assert!(ready.contains(1) && !ready.contains(0));
    poker.join()?;
    Ok(())
}

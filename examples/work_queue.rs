//! A work queue with result pipes: one `Queue` of jobs feeds several worker processes,
//! and each worker sends its results back over a `Pipe` of its own.
//!
//! ```sh
//! cargo run --example work_queue
//! ```
//!
//! - The queue is many-producer, many-consumer: every worker takes jobs from it, first
//!   come, first served. Closing it lets the workers drain what is queued, then stop.
//! - A pipe has exactly two ends, each used by one process: one pipe per worker, with
//!   the parent holding the other end of each. `Pipe::pair()` gives *owned* ends, which
//!   keep their segment alive themselves, so they sit in a `Vec` and move into the
//!   worker's closure without borrowing anything.
//! - `shmkit::wait` blocks until any of the result pipes has something (or its worker
//!   is gone), like Python's `multiprocessing.connection.wait`.

use shmkit::{Error, OwnedConnection, Pipe, Pod, Process, Queue, Shared, Waitable, Zeroable};

/// A job: find the longest Collatz chain that starts in `[from, to)`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Job {
    id: u64,
    from: u64,
    to: u64,
}

/// What a worker sends back. `#[repr(C)]` with no padding (8 + 4 + 4 + 8 + 8 bytes):
/// `Pod` refuses padding, so `worker` and `_pad` fill what would have been a hole
/// before the next `u64`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Done {
    job: u64,
    worker: u32,
    _pad: u32,
    start: u64,
    steps: u64,
}

const WORKERS: u32 = 4;
const JOBS: u64 = 64;
const SPAN: u64 = 5_000;
/// Bytes per direction of each result pipe: room for many `Done`s (40 bytes each).
const CAP: usize = 4096;

fn collatz_steps(mut n: u64) -> u64 {
    let mut steps = 0;
    while n != 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

/// A worker: takes jobs until the queue is closed and empty, sends one `Done` each.
fn worker(me: u32, jobs: &Queue<Job, 256>, results: OwnedConnection<CAP>) -> i32 {
    while let Ok(job) = jobs.get() {
        let (start, steps) = (job.from..job.to)
            .map(|n| (n, collatz_steps(n)))
            .max_by_key(|&(_, steps)| steps)
            .unwrap_or((0, 0));
        let done = Done {
            job: job.id,
            worker: me,
            _pad: 0,
            start,
            steps,
        };
        if results.send(&done).is_err() {
            return 1; // the parent is gone
        }
    }
    0 // dropping `results` closes this end: the parent sees `Disconnected`
}

fn main() -> Result<(), Error> {
    // Kit types are made in place with `new_zeroed`: nothing is built on the stack.
    let jobs = Shared::<Queue<Job, 256>>::new_zeroed()?;

    let mut results: Vec<OwnedConnection<CAP>> = Vec::new();
    let mut workers = Vec::new();
    for me in 0..WORKERS {
        let (mine, theirs) = Pipe::<CAP>::pair()?;
        let jobs = &jobs; // borrowed by the child (it shares the mapping)
        // `theirs` is moved in: from now on that end belongs to the child.
        workers.push(Process::spawn(move || worker(me, jobs, theirs))?);
        results.push(mine);
    }

    for id in 0..JOBS {
        let from = 1 + id * SPAN;
        jobs.put(Job {
            id,
            from,
            to: from + SPAN,
        })?;
    }
    jobs.close(); // the workers drain the queue, then `get` says Closed

    // Collect until every worker has closed its pipe: `results` holds the open ones.
    let mut answers: Vec<Option<Done>> = vec![None; JOBS as usize];
    let mut per_worker = vec![0u32; WORKERS as usize];
    while !results.is_empty() {
        let waiting: Vec<&dyn Waitable> = results.iter().map(|r| r as &dyn Waitable).collect();
        let ready = shmkit::wait(&waiting, None)?;
        let mut closed = Vec::new();
        for i in ready.iter() {
            // Ready: a receive returns at once, with a message or `Disconnected`.
            match results[i].recv::<Done>() {
                Ok(done) => {
                    per_worker[done.worker as usize] += 1;
                    answers[done.job as usize] = Some(done);
                }
                Err(Error::Disconnected) => closed.push(i), // drained, worker done
                Err(e) => return Err(e),
            }
        }
        for i in closed.into_iter().rev() {
            results.swap_remove(i);
        }
    }
    for (w, mut p) in workers.into_iter().enumerate() {
        let status = p.join()?;
        assert!(status.success(), "worker {w} ended with {status:?}");
    }

    let best = answers
        .iter()
        .map(|a| a.expect("every job answered exactly once"))
        .max_by_key(|d| d.steps)
        .expect("some jobs");
    println!(
        "{JOBS} jobs over {WORKERS} workers (jobs per worker: {per_worker:?}); \
         longest Collatz chain below {}: {} steps, from {}",
        1 + JOBS * SPAN,
        best.steps,
        best.start
    );
    Ok(())
}

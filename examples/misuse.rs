//! Deliberate misuse: what the kit says when you get it wrong. Every mistake below is
//! caught at run time with an error (never a crash, a hang or a wrong answer), and
//! every message says what to do instead.
//!
//! ```sh
//! cargo run --example misuse
//! ```
//!
//! (Some mistakes never get that far: a lock guard moved into `Process::spawn`, a pool
//! task whose argument is larger than 1024 bytes, a struct with padding in a
//! `#[derive(Pod)]`, or a field that cannot live in shared memory in a
//! `#[derive(ShmSafe)]` are compile errors, with messages that say the same.)

use std::fmt::Display;
use std::sync::Arc;

use shmkit::{Error, Mutex, Pipe, Process, PutError, Queue, Shared};

/// Prints what was tried and the error it gave, as a program would log it.
fn show(n: u32, what: &str, error: impl Display) {
    println!("{n}. {what}\n   error: {error}\n");
}

fn main() -> Result<(), Error> {
    let name = format!("shmkit-example-misuse-{}", std::process::id());

    // 1. Opening a named segment with another type than its creator's.
    let orders = Shared::<Queue<u64, 8>>::create_zeroed(&name)?;
    match Shared::<Queue<u32, 8>>::open(&name) {
        Err(e) => show(1, "open a `Queue<u64, 8>` segment as a `Queue<u32, 8>`", e),
        Ok(_) => unreachable!("the header records the type"),
    }

    // 2. Creating a named segment that exists (a restarted service, say).
    match Shared::<Queue<u64, 8>>::create_zeroed(&name) {
        Err(e) => show(2, "create a segment whose name is taken", e),
        Ok(_) => unreachable!("create is exclusive"),
    }

    // 3. A second handle on a pipe end that another handle already uses.
    let pipe = Arc::new(Shared::<Pipe<256>>::new_zeroed()?);
    let (a, _b) = Pipe::owned_ends(&pipe);
    a.send(&1u64)?; // `a` owns end 0 from now on
    let (a_again, _) = Pipe::owned_ends(&pipe);
    match a_again.send(&2u64) {
        Err(e) => show(3, "send on a second handle of a pipe end that is in use", e),
        Ok(()) => unreachable!("an end belongs to one handle"),
    }

    // 4. A full queue, with the non-blocking `try_put`: the item comes back.
    for i in 0..8 {
        orders.try_put(i).map_err(Error::from)?;
    }
    match orders.try_put(8) {
        Err(e @ PutError::Full(item)) => {
            show(4, &format!("try_put({item}) into a full queue of 8"), e)
        }
        other => unreachable!("{other:?}"),
    }

    // 5. Forking while holding a lock guard: the child could write through a copy of
    //    it after the parent unlocks.
    let total = Shared::<Mutex<u64>>::new_zeroed()?;
    let guard = total.lock()?;
    let counter = &total;
    match Process::spawn(move || {
        let _ = counter.try_lock();
        0
    }) {
        Err(e) => show(5, "Process::spawn while this thread holds a lock guard", e),
        Ok(mut p) => {
            let _ = p.join();
            unreachable!("spawn refuses while a guard is alive")
        }
    }
    drop(guard);

    // 6. A message larger than the pipe can ever carry.
    let (tx, _rx) = Pipe::<256>::pair()?;
    match tx.send_bytes(&[0u8; 300]) {
        Err(e) => show(6, "send 300 bytes through a Pipe<256>", e),
        Ok(()) => unreachable!("the largest message is CAP - 8"),
    }

    // 7. Receiving a message as another type than it was sent as.
    let (tx, rx) = Pipe::<256>::pair()?;
    tx.send(&7u64)?;
    match rx.recv::<u32>() {
        Err(e) => show(7, "recv::<u32>() of a message sent as a u64", e),
        Ok(v) => unreachable!("{v}"),
    }
    assert_eq!(rx.recv::<u64>()?, 7, "the message stayed queued");

    // Errors convert into `shmkit::Error` with `?`, keeping what matters (here, the
    // segment's name), so `fn main() -> Result<(), shmkit::Error>` reports it too.
    let e: Error = Shared::<Queue<u32, 8>>::open(&name).unwrap_err().into();
    show(8, "the first error, converted into shmkit::Error by `?`", e);
    Ok(())
}

//! Sets up a few segments for `shmkit` to look at, then waits:
//!
//! - `demo-orders`: a `Queue<Order, 1024>` that a child filled with 37 orders;
//! - `demo-book`: a `Mutex<[u64; 4]>` whose holder was killed holding it;
//! - `demo-feed`: a `Pipe<4096>` with an end owned by a live child and bytes queued;
//! - `demo-stale`: a `Queue<u64, 8>` whose creator was killed (for `shmkit clean`).
//!
//! ```text
//! cargo run -p shmkit-cli --example scene -- 60     # keeps them for 60 seconds
//! shmkit ls; shmkit inspect demo-orders; shmkit clean --dry-run
//! ```

use std::time::Duration;

use shmkit::{Event, Mutex, Pipe, Pod, Process, Queue, Shared, Zeroable};

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Order {
    id: u64,
    price: u64,
    qty: u32,
    side: u32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    for name in ["demo-orders", "demo-book", "demo-feed", "demo-stale"] {
        let _ = Shared::<()>::unlink(name);
    }
    let ready = Shared::new(Event::new())?;

    let orders = Shared::<Queue<Order, 1024>>::create_zeroed("demo-orders")?;
    let mut filler = Process::spawn(|| {
        let q = Shared::<Queue<Order, 1024>>::open("demo-orders").unwrap();
        for id in 0..37 {
            let o = Order {
                id,
                price: 100 + id,
                qty: 10,
                side: (id % 2) as u32,
            };
            q.put(o).unwrap();
        }
        0
    })?;
    filler.join()?;

    let book = Shared::<Mutex<[u64; 4]>>::create_zeroed("demo-book")?;
    let mut holder = Process::spawn(|| {
        let _guard = book.lock().unwrap();
        ready.set();
        std::thread::sleep(Duration::from_secs(3600));
        0
    })?;
    ready.wait();
    holder.kill()?;
    holder.join()?;
    ready.clear();

    let feed = Shared::<Pipe<4096>>::create_zeroed("demo-feed")?;
    let (ours, theirs) = feed.ends();
    let signal = &ready;
    let mut reader = Process::spawn(move || {
        let mut buf = [0u8; 64];
        let _ = theirs.recv_bytes_into(&mut buf);
        signal.set();
        std::thread::sleep(Duration::from_secs(3600));
        0
    })?;
    ours.send_bytes(b"hello")?;
    ready.wait();
    for tick in 0..12u64 {
        ours.send(&tick)?;
    }

    let mut stale = Process::spawn(|| {
        let q = Shared::<Queue<u64, 8>>::create_zeroed("demo-stale").unwrap();
        q.put(7).unwrap();
        ready.set();
        std::thread::sleep(Duration::from_secs(3600));
        drop(q);
        0
    })?;
    ready.clear();
    ready.wait();
    stale.kill()?;
    stale.join()?;

    println!("demo-orders, demo-book, demo-feed, demo-stale: ready for {secs} s");
    std::thread::sleep(Duration::from_secs(secs));
    reader.kill()?;
    reader.join()?;
    ours.close();
    drop(ours);
    drop((orders, book));
    let _ = Shared::<()>::unlink("demo-stale");
    Ok(())
}

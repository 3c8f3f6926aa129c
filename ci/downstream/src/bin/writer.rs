//! The first program: creates a named `Mutex<Book>` and a `Queue<Order, 1024>`, starts
//! `reader` (another binary, with its own definitions of the types), and checks what the
//! reader did through them.

use std::process::Command;
use std::time::Duration;

use shmkit::{Mutex, Pod, Queue, Shared, ShmSafe, Zeroable};

#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable, ShmSafe)]
#[repr(C)]
struct Order {
    id: u64,
    price: u32,
    qty: u16,
    side: u8,
    _pad: u8,
}

#[derive(Clone, Copy, Pod, Zeroable, ShmSafe)]
#[repr(C)]
#[type_name("downstream.Book")]
struct Book {
    bids: u64,
    asks: u64,
    last_price: u32,
    _pad: [u8; 4],
}

fn main() -> Result<(), shmkit::Error> {
    // 1. A 1 MiB queue in a debug build on a 64 KiB stack: nothing is built on it.
    let t = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| -> Result<u64, shmkit::Error> {
            let q = Shared::<Queue<u64, 65536>>::new_zeroed()?;
            q.try_put(42)?;
            Ok(q.try_get()?)
        })
        .expect("thread");
    assert_eq!(t.join().expect("no stack overflow")?, 42);
    // `Shared::new(value)` copies a 1 MiB value once, not once per call frame: in a
    // debug build it fits the 8 MiB of a main thread (it needed 9-10 MiB before; building
    // `Queue::new()` alone takes 3-4 MiB there, which is why `new_zeroed` is the way).
    let t = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| -> Result<u64, shmkit::Error> {
            let q = Shared::new(Queue::<u64, 65536>::new())?;
            q.try_put(43)?;
            Ok(q.try_get()?)
        })
        .expect("thread");
    assert_eq!(t.join().expect("no stack overflow")?, 43);

    // 2. Two binaries meet on named segments holding their own structs.
    let (book_name, orders_name) = downstream::names(std::process::id());
    let book = Shared::<Mutex<Book>>::create_zeroed(&book_name)?;
    let orders = Shared::<Queue<Order, 1024>>::create_zeroed(&orders_name)?;
    book.lock()?.last_price = 100;

    let reader = std::env::current_exe()
        .expect("current_exe")
        .with_file_name("reader");
    let status = Command::new(&reader)
        .arg(std::process::id().to_string())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", reader.display()));
    assert!(status.success(), "reader failed: {status}");

    // The reader put three orders and updated the book.
    let mut got = Vec::new();
    while let Ok(order) = orders.get_timeout(Duration::from_secs(5)) {
        got.push(order);
        if got.len() == 3 {
            break;
        }
    }
    assert_eq!(got.iter().map(|o| o.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(got[2].price, 103);
    let b = *book.lock()?;
    assert_eq!((b.bids, b.asks, b.last_price), (2, 1, 103));

    // 3. Errors say which segment, in words.
    let err = Shared::<Mutex<Book>>::create(&book_name, Mutex::new(b)).unwrap_err();
    assert!(err.to_string().contains(&book_name), "{err}");
    let err = Shared::<Queue<u64, 1024>>::open(&orders_name).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("holds a `shmkit::Queue<Order, 1024>`, not a `shmkit::Queue<u64, 1024>`"),
        "{text}"
    );
    // `?` into shmkit::Error keeps the name.
    let small: shmkit::Error = err.into();
    assert!(
        format!("{small:?}").contains("shmkit-downstream"),
        "{small:?}"
    );

    println!(
        "downstream: derives, two binaries on named segments, 1 MiB queue on a small stack: ok"
    );
    Ok(())
}

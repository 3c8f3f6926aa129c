//! Two programs meet on named segments holding their own struct.
//!
//! ```sh
//! cargo run --example named            # a service and a client, forked from one binary
//! cargo run --example named -- client  # start clients first, in another terminal ...
//! cargo run --example named -- service # ... then the service: the clients wait for it
//! ```
//!
//! The service uses `open_or_create`, so that after a crash (try `kill -9` on it) a
//! restarted service replaces its dead predecessor's segments instead of failing with
//! "already exists". Clients use `open_timeout`, so they may start first.
//! `ci/downstream` does the same with two separately built binaries.

use std::time::Duration;

use shmkit::{Mutex, Pod, Process, Queue, Shared, ShmSafe, Zeroable};

/// One order. `Pod` (every bit pattern valid) lets it travel through a `Queue`;
/// `ShmSafe` lets it sit in a `Mutex`. No padding: `Pod` forbids it, so the spare
/// bytes are an explicit field.
#[derive(Clone, Copy, Debug, Pod, Zeroable, ShmSafe)]
#[repr(C)]
struct Order {
    id: u64,
    price: u32,
    qty: u16,
    _pad: [u8; 2],
}

/// The service's running totals. The name is chosen here, not taken from the crate
/// path, so any program with this definition meets it.
#[derive(Clone, Copy, Debug, Pod, Zeroable, ShmSafe)]
#[repr(C)]
#[type_name("example.Totals")]
struct Totals {
    orders: u64,
    volume: u64,
}

const ORDERS: &str = "shmkit-example-orders";
const TOTALS: &str = "shmkit-example-totals";

fn service(count: u64) -> Result<(), shmkit::Error> {
    // A 1 MiB queue, built in place: no stack, no copy.
    let orders = Shared::<Queue<Order, 65536>>::open_or_create_zeroed(ORDERS)?;
    let totals = Shared::<Mutex<Totals>>::open_or_create_zeroed(TOTALS)?;
    println!(
        "service: {} the segments",
        if orders.is_creator() {
            "created"
        } else {
            "opened"
        }
    );
    for _ in 0..count {
        let order = orders.get_timeout(Duration::from_secs(30))?;
        let mut t = totals.lock()?;
        t.orders += 1;
        t.volume += u64::from(order.price) * u64::from(order.qty);
    }
    println!("service: {:?}", *totals.lock()?);
    Ok(())
}

fn client(first_id: u64, count: u64) -> Result<(), shmkit::Error> {
    // Waits up to 30 s for the service to create the segments.
    let orders = Shared::<Queue<Order, 65536>>::open_timeout(ORDERS, Duration::from_secs(30))?;
    for id in first_id..first_id + count {
        orders.put(Order {
            id,
            price: 100 + id as u32 % 7,
            qty: 10,
            _pad: [0; 2],
        })?;
    }
    println!("client: sent {count} orders");
    Ok(())
}

fn main() -> Result<(), shmkit::Error> {
    match std::env::args().nth(1).as_deref() {
        Some("service") => service(1000),
        Some("client") => client(0, 1000),
        _ => {
            // Both roles from one binary: the client first, to show it waiting.
            let mut c = Process::spawn(|| client(0, 1000).map_or(1, |()| 0))?;
            std::thread::sleep(Duration::from_millis(200));
            service(1000)?;
            assert!(c.join()?.success());
            // The service created the segments and unlinks them as its handles drop;
            // a second `create` now would succeed.
            Ok(())
        }
    }
}

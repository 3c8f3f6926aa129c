//! The second program: its own definitions of `Order` and `Book` (same fields, same
//! `#[repr(C)]`), built as a separate binary. Opens the writer's segments by name.

use std::time::Duration;

use shmkit::{Mutex, Pod, Queue, Shared, ShmSafe, Zeroable};

#[derive(Clone, Copy, Pod, Zeroable, ShmSafe)]
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
    let tag: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: reader WRITER_PID");
    let (book_name, orders_name) = downstream::names(tag);
    let wait = Duration::from_secs(10);
    let book = Shared::<Mutex<Book>>::open_timeout(&book_name, wait)?;
    let orders = Shared::<Queue<Order, 1024>>::open_timeout(&orders_name, wait)?;
    assert_eq!(book.lock()?.last_price, 100);
    for (id, side) in [(1u64, 0u8), (2, 0), (3, 1)] {
        let price = 100 + id as u32;
        orders.put(Order {
            id,
            price,
            qty: 10,
            side,
            _pad: 0,
        })?;
        let mut b = book.lock()?;
        if side == 0 {
            b.bids += 1;
        } else {
            b.asks += 1;
        }
        b.last_price = price;
    }
    Ok(())
}

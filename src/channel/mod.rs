//! Channels: Python's `Pipe`/`Connection` and `Queue`/`JoinableQueue`, as lock-free
//! rings in shared memory.
//!
//! - [`Pipe<CAP>`]: two SPSC byte rings of `CAP` bytes; [`Pipe::ends`] gives the two
//!   [`Connection`]s. Variable-length messages, zero-copy both ways
//!   ([`Connection::send_with`], [`Connection::recv_with`]), `Pod` values
//!   ([`Connection::send`], [`Connection::recv`]), batches
//!   ([`Connection::send_many`], [`Connection::recv_many`]), and with the `serde`
//!   feature any serialisable value (postcard).
//! - [`Spsc<T, N>`]: a typed single-producer single-consumer ring of `N` `Pod` slots
//!   (rtrb's design: cached opposite indices, no per-item header or peer check), with
//!   batch and zero-copy chunk operations: the fastest way to stream small items
//!   between two processes.
//! - [`Queue<T, N>`]: a bounded MPMC queue of `Pod` items (Vyukov's sequence-numbered
//!   slots, as in crossbeam's `ArrayQueue`, with fixed-width words and crash recovery);
//!   [`JoinableQueue`] adds `task_done`/`join`.
//! - [`wait`]: blocks until any of several connections or queues is ready to receive
//!   (Python's `multiprocessing.connection.wait`), on `futex_waitv`.
//!
//! Blocking calls spin, then sleep on a shared futex through the kit's one sleep/wake
//! protocol; a send or put makes a system call only when someone sleeps. They sleep
//! in bounded slices (1 ms, doubling to 50 ms) so that a peer killed without a word
//! is noticed: a dead pipe end gives [`Error::Disconnected`](crate::Error), a queue
//! slot whose producer died mid-put is skipped ([`Queue::lost`]).
//!
//! ```
//! use shmkit::{Process, Queue, Shared};
//!
//! let queue = Shared::<Queue<u64, 64>>::new_zeroed()?; // built in place
//! let mut worker = Process::spawn(|| {
//!     let mut sum = 0;
//!     while let Ok(x) = queue.get() {
//!         sum += x;
//!     }
//!     (sum == 5050) as i32
//! })?;
//! for x in 1..=100 {
//!     queue.put(x).unwrap();
//! }
//! queue.close(); // the worker drains what is queued, then gets Closed
//! assert_eq!(worker.join()?.code(), Some(1));
//! # Ok::<(), shmkit::Error>(())
//! ```

use core::time::Duration;

use crate::primitive::Deadline;
use crate::sync::notifier::Notifier;

pub(crate) mod anchor;
mod connection;
pub(crate) mod joinable;
pub(crate) mod pipe;
pub(crate) mod queue;
pub(crate) mod ring;
pub mod spsc;
mod wait;

pub use connection::Connection;
#[cfg(feature = "std")]
pub use connection::OwnedConnection;
pub use joinable::JoinableQueue;
pub use pipe::Pipe;
pub use queue::{GetError, PutError, Queue};
pub use spsc::Spsc;
pub use wait::{Ready, ReadyIter, Waitable, wait};

/// The first sleep slice of a blocked call; later ones double up to [`MAX_SLICE`].
const FIRST_SLICE: Duration = Duration::from_millis(1);
/// The longest sleep slice: the bound on how late a blocked call notices a dead peer.
const MAX_SLICE: Duration = Duration::from_millis(50);

/// How often a handle may ask whether a peer process lives (a few system calls).
/// Under loom, every time (time stands still there).
pub(crate) fn liveness_period() -> Duration {
    if cfg!(shmkit_loom) {
        Duration::ZERO
    } else {
        Duration::from_millis(1)
    }
}

/// Copies `src` into `dst` (same length). Most messages are small: up to 64 bytes go
/// as a few overlapping fixed-size loads and stores inline, where `copy_from_slice`
/// would call `memcpy` (a call and a size dispatch that cost as much as the rest of a
/// small send).
#[inline(always)]
pub(crate) fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    assert_eq!(dst.len(), n);
    if n > 64 {
        dst.copy_from_slice(src);
    } else if n > 32 {
        // Two 16-byte pieces from each end, two more from the middle: they overlap
        // and cover all of 33..=64 bytes.
        let (a, b) = (read::<16>(src, 0), read::<16>(src, 16));
        let (c, d) = (read::<16>(src, n - 32), read::<16>(src, n - 16));
        dst[..16].copy_from_slice(&a);
        dst[16..32].copy_from_slice(&b);
        dst[n - 32..n - 16].copy_from_slice(&c);
        dst[n - 16..].copy_from_slice(&d);
    } else if n >= 16 {
        let (a, b) = (read::<16>(src, 0), read::<16>(src, n - 16));
        dst[..16].copy_from_slice(&a);
        dst[n - 16..].copy_from_slice(&b);
    } else if n >= 8 {
        let (a, b) = (read::<8>(src, 0), read::<8>(src, n - 8));
        dst[..8].copy_from_slice(&a);
        dst[n - 8..].copy_from_slice(&b);
    } else if n >= 4 {
        let (a, b) = (read::<4>(src, 0), read::<4>(src, n - 4));
        dst[..4].copy_from_slice(&a);
        dst[n - 4..].copy_from_slice(&b);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// `N` bytes of `b` from `at`, by value.
#[inline(always)]
fn read<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn miri_copy_bytes_copies_every_length() {
        for n in 0..=80usize {
            let src: Vec<u8> = (0..n).map(|i| (i * 7 + 1) as u8).collect();
            let mut dst = std::vec![0u8; n];
            super::copy_bytes(&mut dst, &src);
            assert_eq!(dst, src, "length {n}");
        }
    }
}

/// Overwrites the bytes of `object` from `offset` with `bytes`, as a scribbling peer
/// would, skipping those at which `in_field` is false (the padding between fields, which
/// is no field's memory); bytes past the object are ignored. For the fuzz targets and
/// the tests of validation.
///
/// # Safety
///
/// Every byte of `S` for which `in_field` holds must lie inside an atomic or an
/// `UnsafeCell` (so that a write through a pointer derived from `&S` is allowed), and
/// the caller keeps its own contract on who may access `object` meanwhile (the writes
/// are plain volatile ones).
#[cfg(not(shmkit_loom))]
pub(crate) unsafe fn scribble_fields<S>(
    object: &S,
    offset: usize,
    bytes: &[u8],
    in_field: impl Fn(usize) -> bool,
) {
    let size = core::mem::size_of::<S>();
    let start = offset.min(size);
    let n = bytes.len().min(size - start);
    let base = core::ptr::from_ref(object).cast::<u8>().cast_mut();
    for (i, &b) in bytes[..n].iter().enumerate() {
        let at = start + i;
        if in_field(at) {
            // SAFETY: `at < size_of::<S>()`, and the byte lies inside an atomic or an
            // `UnsafeCell` (the caller's contract), so writing through a pointer derived
            // from `&S` is allowed.
            unsafe { base.add(at).write_volatile(b) };
        }
    }
}

/// The earlier of two deadlines.
pub(crate) fn earlier(a: Deadline, b: Deadline) -> Deadline {
    match (a.as_ns(), b.as_ns()) {
        (Some(x), Some(y)) if y < x => b,
        (None, Some(_)) => b,
        _ => a,
    }
}

/// Blocks on `notifier` until `attempt(check)` returns `Some`, or `deadline` passes
/// (`None`). `attempt(false)` must be cheap (it runs in the spin loop);
/// `attempt(true)`, made after each sleep slice, may also look for dead peers.
///
/// The spin phase comes first and reads no clock: most waits between processes that
/// both run end there, within a few hundred nanoseconds, and a clock read costs tens of
/// them. The sleep slices (and the liveness checks between them) are set up only after.
pub(crate) fn block_on<R>(
    notifier: &Notifier,
    deadline: Deadline,
    attempt: impl FnMut(bool) -> Option<R>,
) -> Option<R> {
    block_on_hinted(notifier, deadline, || true, attempt)
}

/// How often (in polls) the spin phase of [`block_on_hinted`] attempts regardless of
/// its hint.
const HINT_OVERRIDE: u32 = 64;

/// As [`block_on`], but the spin phase makes an attempt only when `hint()` says one
/// is worth making (or at every [`HINT_OVERRIDE`]th poll). `hint` is a read-only look for operations whose failed attempt
/// still writes shared lines: spinning on such attempts takes those lines, at every
/// poll, from the very process whose progress we wait for. A `false` that is wrong
/// only delays the attempt: every [`HINT_OVERRIDE`]th poll, the attempts after the
/// spin phase, and the re-check after a sleeper announces itself ignore the hint.
pub(crate) fn block_on_hinted<R>(
    notifier: &Notifier,
    deadline: Deadline,
    mut hint: impl FnMut() -> bool,
    mut attempt: impl FnMut(bool) -> Option<R>,
) -> Option<R> {
    let strategy = crate::sync::wait_strategy();
    // Every `HINT_OVERRIDE`th poll attempts whatever the hint says: a `Spin` strategy
    // never leaves the spin phase, and a hint that stays wrong must not hold it there.
    let mut polls = 0u32;
    let spun = notifier.spin(strategy, deadline, &mut || {
        polls = polls.wrapping_add(1);
        if hint() || polls % HINT_OVERRIDE == 0 {
            attempt(false)
        } else {
            None
        }
    });
    if let Some(r) = spun {
        return Some(r);
    }
    let mut slice = FIRST_SLICE;
    loop {
        if let Some(r) = attempt(true) {
            return Some(r);
        }
        if deadline.expired() {
            return None;
        }
        let until = earlier(deadline, Deadline::after(slice));
        if let Some(r) = notifier.park(strategy, until, &mut || attempt(false)) {
            return Some(r);
        }
        slice = (slice * 2).min(MAX_SLICE);
    }
}

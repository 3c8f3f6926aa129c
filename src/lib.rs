//! # shmkit
//!
//! Low-level inter-process communication for Linux: lock-free ring-buffer channels
//! and futex-based locks, semaphores and cells that live in raw shared memory with
//! fixed layouts, so that forked (or unrelated) processes get Python
//! `multiprocessing`-style tools — with no heap allocation and no system call on the
//! data path.
//!
//! ```
//! use core::sync::atomic::{AtomicU64, Ordering};
//! use shmkit::{Process, Shared};
//!
//! // One counter in shared memory, four forked processes adding to it.
//! let counter = Shared::new(AtomicU64::new(0))?;
//! let mut children = Vec::new();
//! for _ in 0..4 {
//!     children.push(Process::spawn(|| {
//!         for _ in 0..1000 {
//!             counter.fetch_add(1, Ordering::Relaxed);
//!         }
//!         0
//!     })?);
//! }
//! for child in &mut children {
//!     assert!(child.join()?.success());
//! }
//! assert_eq!(counter.load(Ordering::Relaxed), 4000);
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! ## First programs
//!
//! Each of these is a complete program in `examples/` (`cargo run --example NAME`),
//! written from these docs:
//!
//! | example | shows |
//! |---|---|
//! | `work_queue` | a [`Queue`] of jobs feeding several worker processes, each sending its results back over a [`Pipe`] of its own (owned ends: [`Pipe::pair`]) |
//! | `meet_writer` + `meet_reader` | two separately built programs, each with its own `#[repr(C)]` struct, meeting on a named segment ([`Shared::open_or_create_zeroed`], [`Shared::open_timeout`]) |
//! | `pool_struct` | a [`Pool`] mapping a function over a `#[derive(Pod)]` struct, and how to remove its padding |
//! | `misuse` | what the kit says when you get it wrong: the wrong type, a second handle on a pipe end, a full queue, a fork while holding a lock guard, a message too large |
//! | `named` | a service and its clients on named segments, restartable after a crash |
//! | `tour` | a walk through every part of the kit |
//!
//! ## Which primitive?
//!
//! | you need to pass or share | use | notes |
//! |---|---|---|
//! | messages between **two** processes (one producer, one consumer each way) | [`Pipe`] and its two [`Connection`] ends | duplex; variable-length bytes, `Pod` values, or any serde value (`serde`); zero-copy [`send_with`](Connection::send_with)/[`recv_with`](Connection::recv_with); the peer's death is seen as `Disconnected` |
//! | a fast **stream** of fixed-size items from one process to another | [`Spsc<T, N>`](Spsc) and its [`Producer`](spsc::Producer) / [`Consumer`](spsc::Consumer) | rtrb's design in shared memory: no per-item header, batches and zero-copy chunks |
//! | items from **many** producers to **many** consumers | [`Queue<T, N>`](Queue) ([`JoinableQueue`] to wait until all are processed) | fixed-size `Pod` items; a producer or consumer killed mid-operation wedges nobody |
//! | a **number** several processes update | an atomic (`AtomicU64`, ...) in a [`Shared`] | Python's `RawValue`: lock-free, nothing to recover after a crash |
//! | a **struct** several processes read and write | [`Mutex<YourStruct>`](Mutex) (robust: `OwnerDead` after a holder's crash), or [`Value<T>`](Value) for a `Pod` struct | your struct needs `#[derive(ShmSafe)]` and `#[repr(C)]` |
//! | a fixed **array** of numbers | [`Array<T, N>`](Array) | `get`/`set` by index, or lock the whole array |
//! | "wake up", "go", "how many may enter" | [`Event`], [`Condvar`], [`Semaphore`]/[`BoundedSemaphore`], [`Barrier`] | |
//! | CPU-bound work over many items | [`Pool`] (`map`, `imap`, `apply_async`) | a plain `fn` over `Pod` arguments; a crashed worker fails one item |
//! | several of these, at once | [`wait`] | blocks until any of several connections or queues is ready |
//! | the above between **unrelated** programs on one host | a named [`Shared`] holding any of them | [`Shared::create_zeroed`], [`Shared::open`], [`Shared::open_or_create_zeroed`] |
//! | objects of varying size (strings, maps, lists), **other hosts**, Python programs | [`Manager`] (feature `manager`) | a server process and typed proxies over a socket; slower (a round trip per call) |
//!
//! ## Segments: where shared values live
//!
//! Every shared object is one `T` in a [`Shared<T>`]:
//!
//! | you want | call |
//! |---|---|
//! | a kit type (queue, pipe, lock, cell) for this process and its forked children | `Shared::<T>::new_zeroed()` — built in place, never on the stack |
//! | a small value with parameters (`Barrier::new(4)`, `AtomicU64::new(5)`) | `Shared::new(value)` |
//! | to meet unrelated processes by name | `Shared::create_zeroed(name)` and, in the others, `Shared::open(name)` |
//! | readers that may start before the creator | `Shared::open_timeout(name, timeout)` (waits for the segment to appear) |
//! | a service that comes back after a crash | `Shared::open_or_create_zeroed(name)` (replaces a dead creator's segment) |
//! | your own struct in a segment | `#[derive(ShmSafe)]` on a `#[repr(C)]` struct (see [`ShmSafe`]) |
//! | a pipe and its ends in one struct, or ends for threads | [`Pipe::pair`], [`Pipe::owned_ends`] ([`OwnedConnection`]) |
//!
//! `open` validates the segment's header before it hands out a `&T`: shmkit's version,
//! the type's kind, name and layout (two programs built separately meet when their
//! structs agree; a mismatch is an error naming both types). Constructors return a
//! [`SegmentError`] with the segment's name and what to do; `?` turns it into
//! [`Error`].
//!
//! ## Type map
//!
//! Every public type, by layer; each layer uses only those above it. (Beneath them, two
//! private layers: the system calls, and the facade that lets loom stand in for the
//! atomics.)
//!
//! **Segments** ([`segment`])
//!
//! | type | what it is |
//! |---|---|
//! | [`Shared<T>`] | one `T` in a shared mapping of its own, anonymous or named, behind a validated header |
//! | [`ShmSafe`] | may live in shared memory (fixed `#[repr(C)]` layout, no pointers); `#[derive(ShmSafe)]` checks every field |
//! | [`Pod`], [`Zeroable`] | bytemuck's traits ("every bit pattern is valid", "all-zero is valid"), with shmkit's derives that work from any crate |
//! | [`segment::TypeName`] | the name a segment records for its type; `#[type_name("…")]` chooses it |
//! | [`segment::Kind`] | which kit type (or a user type) a segment holds |
//! | [`segment::LayoutHasher`] | builds a type's layout digest (for hand-written `ShmSafe` impls) |
//! | [`segment::SegmentInfo`], [`segment::inspect`] | a named segment's header, read without knowing its type |
//!
//! **Errors** ([`error`])
//!
//! | type | what it is |
//! |---|---|
//! | [`Error`] | the kit's one error type: small, `Copy`, in every `Result` of the data path |
//! | [`SegmentError`], [`SegmentErrorKind`], [`SegmentName`] | why a segment could not be created or opened, with its name and both type names |
//! | [`PutError<T>`](PutError), [`GetError`] | a queue operation's failure; `PutError` hands the item back |
//! | [`LockError<G>`](LockError), [`LockResult<G>`](LockResult) | a lock's failure; `OwnerDead` hands the guard over |
//! | [`BarrierError`] | a barrier round that broke or timed out |
//!
//! **Sync** ([`sync`])
//!
//! | type | what it is |
//! |---|---|
//! | [`Mutex<T>`](Mutex), [`MutexGuard`] | a robust lock around a `T` (Python's `Lock`) |
//! | [`ReentrantMutex<T>`](ReentrantMutex), [`ReentrantMutexGuard`] | a lock its holder may take again (`RLock`) |
//! | [`Semaphore`], [`BoundedSemaphore`] | counting semaphores; the bounded one refuses to grow past its start |
//! | [`Condvar`], [`WaitTimeoutResult`] | a condition variable over a [`Mutex`] |
//! | [`Event`] | a flag to wait for |
//! | [`Barrier`], [`BarrierWaitResult`] | `n` parties wait for each other, round after round |
//! | [`WaitStrategy`], [`set_wait_strategy`], [`wait_strategy`] | how blocking calls wait: spin, then sleep (default), or one of the two |
//!
//! **Cells** ([`cell`])
//!
//! | type | what it is |
//! |---|---|
//! | [`Value<T>`](Value) | one `Pod` value behind a robust lock (Python's `Value`) |
//! | [`Array<T, N>`](Array) | `N` `Pod` values behind a robust lock (Python's `Array`) |
//!
//! **Channels** ([`channel`])
//!
//! | type | what it is |
//! |---|---|
//! | [`Pipe<CAP>`](Pipe) | two byte rings of `CAP` bytes: a duplex channel between two processes |
//! | [`Connection<'a, CAP>`](Connection) | one end of a pipe, borrowing it (also without `std`) |
//! | [`OwnedConnection<CAP>`](OwnedConnection) | one end of a pipe that keeps the pipe alive itself (`std`) |
//! | [`Spsc<T, N>`](Spsc) | a typed single-producer, single-consumer ring of `N` `Pod` items |
//! | [`spsc::Producer`], [`spsc::Consumer`] | its two ends, borrowing it |
//! | [`spsc::PushError`] | a push that failed, handing the item back |
//! | [`spsc::WriteChunk`], [`spsc::ReadChunk`] | free slots to fill, or queued items to read, in place |
//! | [`Queue<T, N>`](Queue) | a bounded many-producer, many-consumer queue of `Pod` items |
//! | [`JoinableQueue<T, N>`](JoinableQueue) | a queue with `task_done` and `join` |
//! | [`wait`], [`Waitable`], [`Ready`], [`ReadyIter`] | wait until any of several connections or queues is ready |
//!
//! **Processes** ([`process`], `std`)
//!
//! | type | what it is |
//! |---|---|
//! | [`Process`], [`ProcessBuilder`] | a forked child running a closure (Python's `Process`) |
//! | [`ExitStatus`] | how a child ended: its exit code or the signal that killed it |
//!
//! **Pools** ([`pool`], `std`)
//!
//! | type | what it is |
//! |---|---|
//! | [`Pool`], [`PoolBuilder`] | forked workers running a plain `fn` over `Pod` items (Python's `Pool`) |
//! | [`AsyncResult<U>`](AsyncResult) | a task started by `apply_async`, to wait for |
//! | [`Imap<T, U>`](Imap), [`ImapUnordered<T, U>`](ImapUnordered) | results of `imap` (input order) and `imap_unordered` (completion order) as they come |
//! | [`PoolError`], [`PanicMessage`] | why a task failed (a worker died, the task panicked — with its message) |
//!
//! **Server process** ([`manager`] and [`connection`], feature `manager`)
//!
//! | type | what it is |
//! |---|---|
//! | [`manager::Manager`] | a server process holding objects, and the client handle on it |
//! | [`manager::Server`] | a bound server, to serve in this process ([`Manager::bind`](manager::Manager::bind)) |
//! | [`manager::Dict`], [`manager::List`], [`manager::Namespace`] | proxies on collections of serde values |
//! | [`manager::Queue`], [`manager::JoinableQueue`], [`manager::Value`], [`manager::Array`] | proxies on queues and cells of serde values |
//! | [`manager::Lock`], [`manager::RLock`], [`manager::Semaphore`], [`manager::BoundedSemaphore`], [`manager::Condition`], [`manager::Event`], [`manager::Barrier`] | proxies on the server's locks and signals, freed when a client dies |
//! | [`manager::Proxy`], [`manager::Token`] | what every proxy is, and a proxy passed to another process |
//! | [`manager::Error`], [`manager::Kind`], [`manager::Stats`] | the manager's errors, the kinds of object, the server's counters |
//! | [`connection::Listener`], [`connection::Client`], [`connection::Connection`] | authenticated sockets, wire-compatible with CPython's `multiprocessing.connection` |
//! | [`connection::Address`], [`connection::ToAddress`], [`connection::Options`] | where to listen or connect, and how (timeouts, frame limits, key digests) |
//!
//! **Tools** ([`inspect`], `std`; [`stats`]): reading live segments from outside
//! ([`inspect::Segment`], its [`inspect::State`] and one state type per kit type,
//! [`inspect::mappers`], [`inspect::clean`]), as the `shmkit` command does; and
//! process-local counters of the slow paths ([`stats::futex_wakes`],
//! [`stats::slice_rescues`]).
//!
//! ## Crashes and safety, in plain words
//!
//! **A process may die at any instruction** (`kill -9` included), and the others go on:
//!
//! | what the dead process was doing | what the others see |
//! |---|---|
//! | holding a [`Mutex`] or [`ReentrantMutex`] | the next `lock` gets [`LockError::OwnerDead`] with the guard, within a few milliseconds: repair the data, call `make_consistent` |
//! | holding a [`Value`] or [`Array`] lock | nothing to do: the lock is taken over; the data is whatever it wrote (every bit pattern is valid) |
//! | owning a [`Pipe`] end | the peer receives every message sent in full, then `Disconnected`; a half-written message is never delivered; another process may adopt the end |
//! | in the middle of a `Queue` `put` or `get` | the slot is reclaimed once the claimer is found dead; that one item is lost and counted in [`Queue::lost`] |
//! | holding [`Semaphore`] permits, or waiting at a [`Barrier`] | the permits are not given back, and the round stays one short: use the `_timeout` forms where that can happen |
//! | running a [`Pool`] task | that item fails with [`PoolError::WorkerDied`] (pid and signal); a new worker takes the dead one's place |
//! | creating a named segment | the segment stays in `/dev/shm`: [`Shared::open_or_create_zeroed`] replaces it, `shmkit clean` removes it |
//! | holding a [`Manager`] lock | the server gives it back when the client's connection drops |
//!
//! **A peer with write access can do anything to the bytes it can write**, and no
//! more. It can deny service: hold a lock for ever, fill a queue, never answer. It can
//! change the data: the messages and items it sends, the fields of a shared struct,
//! even a lock's word (then the data that lock guards may change under a guard, as it
//! could by the peer writing the data directly). It cannot make the kit read or write
//! outside a segment, panic, or wait without the bound you gave: every index, length
//! and state read from shared memory is validated, and what no correct run writes is
//! reported as [`Error::Corrupted`] (or the operation's `Corrupted` variant). Every
//! value the kit hands out is `Pod` or validated, so it may be wrong but never
//! invalid. Anonymous segments are memfds sealed against resizing; named segments
//! (POSIX shared memory, mode 0600) cannot be sealed, so a process of the same user can
//! truncate one under its users (`SIGBUS`): name segments only among processes you
//! trust that far.
//!
//! **Safe code cannot cause undefined behaviour**, across `fork` included: a lock
//! guard (a `&mut` into shared memory) can never reach a child, because
//! [`Process::spawn`] takes only `Send` closures (guards are not `Send`) and refuses
//! to fork while any guard is alive in the process ([`Error::GuardHeld`]); a pipe end
//! moved into the closure is handed to the child, so parent and child never use one
//! end at once.
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `std` | yes | [`Process`], [`Pool`], [`OwnedConnection`] and [`Pipe::pair`], the [`inspect`] module, `std::error::Error` and `From<Error> for std::io::Error`, cached thread ids. Without it the core (segments, sync, cells, channels with borrowing ends) builds `#![no_std]` |
//! | `serde` | no | `Connection::send_value` / `Connection::recv_value`: any serde value through a pipe, encoded with postcard straight into the ring |
//! | `manager` | yes | the server process: [`manager`] and [`connection`] (needs `std`; turns on `serde`; adds `postcard`, `hmac`, `sha2`, `md-5`, `getrandom`) |
//!
//! On docs.rs every item shows the features it needs.
#![no_std]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// docs.rs: show the features an item needs, never the test-only cfgs.
#![cfg_attr(docsrs, doc(auto_cfg(hide(shmkit_loom, shmkit_failpoints))))]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "shmkit supports Linux only: it is built on futexes, memfd and /dev/shm (target_os = \"linux\")"
);

#[cfg(any(feature = "std", shmkit_loom))]
extern crate std;

// Lets the derives' `::shmkit::…` paths resolve inside this crate too.
extern crate self as shmkit;

pub mod cell;
pub mod channel;
pub mod error;
mod fingerprint;
mod layout;
mod primitive;
pub mod segment;
pub mod stats;
pub mod sync;
mod sys;
mod text;

#[cfg(all(feature = "std", not(shmkit_loom)))]
pub mod inspect;

#[cfg(feature = "std")]
pub mod pool;

#[cfg(feature = "std")]
pub mod process;

#[cfg(feature = "manager")]
pub mod manager;
#[cfg(feature = "manager")]
pub use manager::connection;

pub use bytemuck;
/// `Pod` and `Zeroable`: bytemuck's traits, with shmkit's own derives of the same
/// names (which work from any crate) in the macro namespace. The glob brings the
/// traits (and, when bytemuck's `derive` feature is on, bytemuck's derives, which the
/// explicit imports shadow), so the names re-exported below carry exactly one trait
/// and one derive each, whatever features are unified.
mod pod_traits {
    pub use bytemuck::*;
    pub use shmkit_derive::{Pod, Zeroable};
}
pub use cell::{Array, Value};
#[cfg(feature = "std")]
pub use channel::OwnedConnection;
pub use channel::spsc;
pub use channel::{
    Connection, GetError, JoinableQueue, Pipe, PutError, Queue, Ready, ReadyIter, Spsc, Waitable,
    wait,
};
pub use error::{Error, SegmentError, SegmentErrorKind, SegmentName};
pub use pod_traits::{Pod, Zeroable};
pub use segment::{Shared, ShmSafe};
/// `#[derive(ShmSafe)]`: see [`ShmSafe`].
pub use shmkit_derive::ShmSafe;
pub use sync::{
    Barrier, BarrierError, BarrierWaitResult, BoundedSemaphore, Condvar, Event, LockError,
    LockResult, Mutex, MutexGuard, ReentrantMutex, ReentrantMutexGuard, Semaphore, WaitStrategy,
    WaitTimeoutResult, set_wait_strategy, wait_strategy,
};

#[cfg(all(feature = "std", shmkit_loom))]
#[doc(hidden)]
pub use pool::__loom_pool;
#[cfg(feature = "std")]
pub use pool::{AsyncResult, Imap, ImapUnordered, PanicMessage, Pool, PoolBuilder, PoolError};

#[cfg(feature = "std")]
pub use process::{ExitStatus, Process, ProcessBuilder};

#[cfg(feature = "manager")]
pub use manager::Manager;

/// Failpoints for crash tests (`tests/pipe_crash.rs`): exists only under
/// `--cfg shmkit_failpoints`; not part of the API.
#[cfg(all(shmkit_failpoints, feature = "std"))]
#[doc(hidden)]
pub mod __failpoints {
    pub use crate::channel::ring::failpoint::{POINTS, arm};
}

/// Internals that the loom model tests in `tests/loom_*.rs` drive directly. Exists
/// only under `--cfg shmkit_loom`; not part of the API.
#[cfg(shmkit_loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::primitive::{Deadline, loom_clock_tick, loom_die};
    pub use crate::primitive::{loom_die_at, loom_until_death};
    pub use crate::sync::notifier::Notifier;
    pub use crate::sync::raw_mutex::loom_set_slices_expire;
    /// The segment READY handshake over a model segment (`tests/loom_segment.rs`).
    pub mod segment {
        pub use crate::segment::loom_model::{MODEL_REGISTRY, OpenError, Opened, Segment};
    }
}

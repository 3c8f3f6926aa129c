//! The server process: [`Manager`], its typed proxies, and the authenticated
//! [`connection`]s underneath (feature `manager`, std only).
//!
//! Shared memory serves processes on one host that share a parent; a manager serves
//! everyone else — unrelated processes, other hosts, Python programs at the
//! connection level. A server process holds the objects; clients call methods on
//! them through proxies over a Unix socket or TCP.
//!
//! | proxy | made by | methods |
//! |---|---|---|
//! | [`Dict<K, V>`] | [`Manager::dict`] | `get`, `insert`, `remove`/`pop`, `contains_key`, `len`, `keys`, `values`, `items`, `update`, `clear`, `setdefault` |
//! | [`List<T>`] | [`Manager::list`] | `push`, `get`, `set`, `insert`, `pop`, `remove`, `len`, `extend`, `slice`, `to_vec` |
//! | [`Namespace`] | [`Manager::namespace`] | `get`/`set`/`remove` by attribute name, `names` |
//! | [`Value<T>`], [`Array<T>`] | [`Manager::value`], [`Manager::array`] | `get`, `set` |
//! | [`Queue<T>`], [`JoinableQueue<T>`] | [`Manager::queue`], [`Manager::joinable_queue`] | `put`, `get` and their `try_`/`_timeout` forms, `qsize`; `task_done`, `join` |
//! | [`Lock`], [`RLock`] | [`Manager::lock`], [`Manager::rlock`] | `acquire`, `try_acquire`, `acquire_timeout`, `release` |
//! | [`Semaphore`], [`BoundedSemaphore`] | [`Manager::semaphore`], ... | `acquire`, `try_acquire`, `acquire_timeout`, `release`, `value` |
//! | [`Condition`], [`Event`], [`Barrier`] | [`Manager::condition`], ... | as the shared-memory ones |
//!
//! # Beyond Python's managers
//!
//! - **Crashes.** A client that dies holding a `Lock`, `RLock` or `Condition` (or
//!   semaphore permits) has them given back by the server when its connections close
//!   — the kernel closes them when it dies; the next acquirer of the lock gets
//!   [`Error::OwnerDead`] (it holds the lock). A blocked call of one client never
//!   blocks another. A dead server makes every call fail (at once if its process
//!   died; within [`Options::liveness`](connection::Options::liveness) if its host
//!   vanished) instead of hanging.
//! - **No code runs on a client's say-so.** Values are postcard bytes that the
//!   server stores and returns without decoding them (Python's managers unpickle what
//!   clients send).
//! - **Fork.** A child forked after [`Manager::start`] uses the manager as it is
//!   (Python's proxies need `_connect()` after a fork).
//!
//! # Fork safety of the server
//!
//! [`Manager::start`] binds the socket and draws the key in the caller, then forks
//! the server with [`Process::spawn`](crate::Process::spawn). The child touches no
//! lock that another thread of the parent might have held at the fork: it allocates
//! (glibc's `malloc` is reset for the child by its own fork handlers), makes system
//! calls, and spawns threads with an explicit stack size (so `std` does not read the
//! environment under its lock). It watches its parent through a pidfd and exits when
//! the parent *process* exits (not a parent thread, which `PR_SET_PDEATHSIG` would
//! follow). Sockets of other managers the parent had open are closed in the child by
//! the kit's fork handler (`src/manager/forksafe.rs`).
//!
//! # The local fast path
//!
//! A client of a server on the same host (a Unix-socket address) moves its calls
//! onto the kit's own shared-memory [`Pipe`](crate::Pipe): it creates the pipe in a
//! memfd, seals its size, and passes the descriptor over the authenticated socket
//! (`SCM_RIGHTS`). The socket stays open as the liveness channel: the kernel closes
//! it when the client dies, and the server then gives back what the client held. A
//! call then costs two ring hand-offs instead of two socket wake-ups
//! ([`Options::fast_path`](connection::Options::fast_path) turns it off).

use std::path::Path;

pub mod connection;
mod error;
pub(crate) mod fastpath;
pub(crate) mod forksafe;
mod handle;
pub mod protocol;
mod proxy;
mod server;
mod session;

pub use error::Error;
pub use handle::Manager;
pub use protocol::{Kind, Stats};
pub use proxy::{
    Array, Barrier, BoundedSemaphore, Condition, Dict, Event, JoinableQueue, List, Lock, Namespace,
    Proxy, Queue, RLock, Semaphore, Token, Value,
};
pub use server::Server;

/// A random `u64` from the kernel.
pub(crate) fn random_u64() -> Result<u64, Error> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Error::Os(e.raw_os_error().unwrap_or(0)))?;
    Ok(u64::from_ne_bytes(b))
}

/// The body of the server process forked by [`Manager::start`]: serve until told to
/// stop or until the parent process exits; then remove the socket directory.
fn server_process(server: Server, parent: i32, dir: &Path) -> i32 {
    let cleanup = {
        let dir = dir.to_path_buf();
        move || {
            let _ = std::fs::remove_file(dir.join("socket"));
            let _ = std::fs::remove_dir(&dir);
        }
    };
    let watch_cleanup = cleanup.clone();
    let watcher = std::thread::Builder::new()
        .name("shmkit-manager-watch".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            wait_for_exit(parent);
            watch_cleanup();
            // SAFETY: `_exit` ends the process at once; nothing of it runs after.
            unsafe { libc::_exit(0) }
        });
    if watcher.is_err() {
        cleanup();
        return 1;
    }
    let code = match server.serve() {
        Ok(()) => 0,
        Err(_) => 1,
    };
    cleanup();
    code
}

/// Returns when process `pid` has exited (or is no longer our parent).
fn wait_for_exit(pid: i32) {
    let still_parent = || rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) == Some(pid);
    if !still_parent() {
        return;
    }
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        if let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) {
            if still_parent() {
                use std::os::fd::AsFd;
                let _ = connection::stream::poll_fd(fd.as_fd(), rustix::event::PollFlags::IN, None);
            }
            return;
        }
    }
    // No pidfd: look every 100 ms.
    while still_parent() {
        std::thread::sleep(core::time::Duration::from_millis(100));
    }
}

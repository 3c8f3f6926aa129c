//! The server: holds the objects, serves each client connection on its own thread.
//!
//! # Why a thread per connection
//!
//! A call may block for as long as its client asked (a `get` on an empty queue, an
//! `acquire` of a held lock). With a thread per connection such a call simply sleeps
//! on its object's condition variable, and no other client notices; the code is
//! straight-line, and the kernel schedules the waiting. An event loop would need
//! every blocking operation turned into a resumable state machine and its own
//! timers, to save threads that a manager does not have many of: clients are
//! processes, tens or hundreds, and an idle thread costs a stack of virtual memory
//! and no CPU. The number of connections is capped (`MAX_CONNECTIONS`), so a flood
//! of sockets cannot exhaust the server.

use core::time::Duration;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::string::{String, ToString};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::vec::Vec;

pub(crate) mod conn;
mod link;
pub(crate) mod object;
pub(crate) mod ops;
mod ops_sync;
mod reply;

use object::Object;

use super::Error;
use super::connection::auth::{Side, handshake};
use super::connection::{Address, Listener, Options, ToAddress};
use super::protocol::{ErrorCode, Kind, Stats};

/// At most this many connections (authenticated or in their handshake) at once.
const MAX_CONNECTIONS: usize = 4096;
/// At most this many objects.
const MAX_OBJECTS: usize = 1 << 20;
/// The longest object name.
const MAX_NAME: usize = 1024;
/// The stack of a connection thread (explicit: `thread::spawn` would otherwise read
/// `RUST_MIN_STACK` from the environment, under a lock a forked server must not take).
const STACK: usize = 256 * 1024;

#[allow(clippy::disallowed_types)] // process-local counters and flags, never in shared memory
type Counter = core::sync::atomic::AtomicU64;
#[allow(clippy::disallowed_types)] // as above
type Flag = core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering::Relaxed;

#[derive(Default)]
struct Registry {
    by_name: HashMap<String, u32>,
    objects: Vec<Arc<Object>>,
}

/// What every connection thread of one server shares.
pub(crate) struct Shared {
    registry: RwLock<Registry>,
    /// Live sessions and how many connections each has.
    sessions: Mutex<HashMap<u64, u32>>,
    stopping: Flag,
    /// The listening descriptor while `serve` runs (shut down to stop `accept`).
    listening: Mutex<Option<i32>>,
    accepted: Counter,
    failed: Counter,
    decoded: Counter,
    live: Counter,
    pub(crate) fast: Counter,
    threads: Counter,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            registry: RwLock::new(Registry::default()),
            sessions: Mutex::new(HashMap::new()),
            stopping: Flag::new(false),
            listening: Mutex::new(None),
            accepted: Counter::new(0),
            failed: Counter::new(0),
            decoded: Counter::new(0),
            live: Counter::new(0),
            fast: Counter::new(0),
            threads: Counter::new(0),
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }

    pub(crate) fn count_decoded(&self) {
        self.decoded.fetch_add(1, Relaxed);
    }

    /// Stops the server: no more accepts; connections end within a second.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Relaxed);
        if let Some(fd) = *self
            .listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            // SAFETY: `serve` clears `listening` (under this mutex) before it closes
            // the descriptor, so `fd` is open here.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Read);
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            accepted: self.accepted.load(Relaxed),
            handshakes_failed: self.failed.load(Relaxed),
            requests_decoded: self.decoded.load(Relaxed),
            connections: self.live.load(Relaxed),
            fast_paths: self.fast.load(Relaxed),
            sessions: self
                .sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len() as u64,
            objects: self
                .registry
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .objects
                .len() as u64,
        }
    }

    /// Gets or creates the object `name`.
    pub(crate) fn open(
        &self,
        kind: Kind,
        name: &str,
        init: &[u8],
        param: u64,
        create: bool,
    ) -> Result<(u32, Arc<Object>), ErrorCode> {
        if name.len() > MAX_NAME {
            return Err(ErrorCode::InvalidArgument);
        }
        let mut reg = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(&id) = reg.by_name.get(name) {
            let obj = reg.objects[id as usize].clone();
            if obj.kind != kind {
                return Err(ErrorCode::WrongKind);
            }
            return Ok((id, obj));
        }
        if !create {
            return Err(ErrorCode::NotFound);
        }
        if reg.objects.len() >= MAX_OBJECTS {
            return Err(ErrorCode::InvalidArgument);
        }
        let obj = Arc::new(Object::new(kind, init, param).ok_or(ErrorCode::InvalidArgument)?);
        let id = reg.objects.len() as u32;
        reg.objects.push(obj.clone());
        reg.by_name.insert(name.to_string(), id);
        Ok((id, obj))
    }

    pub(crate) fn object(&self, id: u32) -> Option<Arc<Object>> {
        self.registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .objects
            .get(id as usize)
            .cloned()
    }

    /// A connection joins session `session` (0: a new one); returns its id.
    pub(crate) fn join(&self, session: u64) -> u64 {
        let mut s = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let id = if session != 0 {
            session
        } else {
            loop {
                let id = super::random_u64().unwrap_or(0);
                if id != 0 && !s.contains_key(&id) {
                    break id;
                }
            }
        };
        *s.entry(id).or_insert(0) += 1;
        id
    }

    /// A connection of `session` closed; the last one ends the session and gives
    /// back what it held.
    pub(crate) fn leave(&self, session: u64) {
        let ended = {
            let mut s = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            match s.get_mut(&session) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    s.remove(&session);
                    true
                }
                None => false,
            }
        };
        if ended {
            let objects = self
                .registry
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .objects
                .clone();
            for o in objects {
                o.release_session(session);
            }
        }
    }
}

/// A manager server bound to its address, not yet serving (from
/// [`Manager::bind`](super::Manager::bind)).
pub struct Server {
    listener: Listener,
    shared: Arc<Shared>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("address", self.listener.address())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `address`; clients must present `authkey`.
    pub(crate) fn bind(
        address: impl ToAddress,
        authkey: &[u8],
        options: Options,
    ) -> Result<Server, Error> {
        Ok(Server::from_listener(Listener::bind_with(
            address, authkey, options,
        )?))
    }

    pub(crate) fn from_listener(listener: Listener) -> Server {
        Server {
            listener,
            shared: Arc::new(Shared::new()),
        }
    }

    /// The address clients connect to (with the port the kernel picked for
    /// `tcp:HOST:0`).
    pub fn address(&self) -> &Address {
        self.listener.address()
    }

    /// Serves clients until one of them calls
    /// [`Manager::shutdown`](super::Manager::shutdown) (Python's
    /// `serve_forever`). Then stops accepting, ends every connection (within a
    /// second), removes the Unix socket file it created, and returns.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if `accept` fails for a reason other than a passing lack of
    /// descriptors or memory.
    pub fn serve(self) -> Result<(), Error> {
        let Server {
            mut listener,
            shared,
        } = self;
        *shared
            .listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(listener.fd().as_raw_fd());
        let result = accept_loop(&listener, &shared);
        shared.stopping.store(true, Relaxed);
        *shared
            .listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        // The process that served removes the socket file (it may be a child forked
        // after `bind`, which `Listener`'s drop would leave it to its parent).
        listener.remove_socket_file();
        drop(listener);
        // Connection threads notice within IDLE_CHECK (or a wait SLICE).
        let start = std::time::Instant::now();
        while shared.threads.load(Relaxed) > 0 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        result
    }
}

fn accept_loop(listener: &Listener, shared: &Arc<Shared>) -> Result<(), Error> {
    loop {
        let sock = match listener.accept_raw() {
            Ok(s) => s,
            Err(_) if shared.stopping() => return Ok(()),
            Err(Error::Os(e))
                if e == libc::EMFILE
                    || e == libc::ENFILE
                    || e == libc::ENOMEM
                    || e == libc::ENOBUFS =>
            {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => return Err(e),
        };
        if shared.stopping() {
            return Ok(());
        }
        shared.accepted.fetch_add(1, Relaxed);
        if shared.threads.load(Relaxed) as usize >= MAX_CONNECTIONS {
            shared.failed.fetch_add(1, Relaxed);
            continue;
        }
        shared.threads.fetch_add(1, Relaxed);
        let key = listener.authkey().to_vec();
        let options = listener.options().clone();
        let sh = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("shmkit-manager".into())
            .stack_size(STACK)
            .spawn(move || {
                match handshake(sock, &key, &options, true, Side::Accepting) {
                    Ok(conn) => {
                        sh.live.fetch_add(1, Relaxed);
                        conn::serve_connection(&sh, conn);
                        sh.live.fetch_sub(1, Relaxed);
                    }
                    Err(_) => {
                        sh.failed.fetch_add(1, Relaxed);
                    }
                }
                sh.threads.fetch_sub(1, Relaxed);
            });
        if spawned.is_err() {
            shared.threads.fetch_sub(1, Relaxed);
            shared.failed.fetch_add(1, Relaxed);
        }
    }
}

//! `Manager`: a handle on a server process, local or remote.

use core::time::Duration;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use super::Error;
use super::connection::{Address, Listener, Options, ToAddress};
use super::protocol::{Reply, Request, Stats};
use super::server::Server;
use super::session::{SessionCell, Target};
use crate::primitive::my_process_id;
use crate::process::Process;

#[allow(clippy::disallowed_types)] // a process-local flag, never in shared memory
type Flag = core::sync::atomic::AtomicBool;

/// A server process this handle started.
struct Started {
    process: Mutex<Process>,
    /// The process that started it (only it stops the server on drop).
    creator: u32,
    /// The private directory of its socket.
    dir: PathBuf,
}

struct Inner {
    target: Target,
    session: SessionCell,
    started: Option<Started>,
    shut: Flag,
}

/// A handle on a manager: a server process that holds objects — dicts, lists,
/// queues, locks, ... — which other processes, here or on other hosts, use through
/// typed proxies (Python's `multiprocessing.Manager`).
///
/// - [`Manager::start`] forks a private server for this process and the processes
///   it forks (a Unix socket in a fresh 0700 directory, a random 32-byte key); it
///   dies with this process, and stops when the last handle is dropped.
/// - [`Manager::serve`] runs a server in this process for clients elsewhere;
///   [`Manager::connect`] attaches to one.
///
/// Objects have names: [`dict`](Manager::dict)`::<K, V>("jobs")` gets the dict
/// `jobs`, creating it if needed, so processes that never met find the same object.
/// Values travel as postcard bytes; the server stores bytes and never decodes them.
///
/// The handle is cheap to clone and may be used from many threads at once (each
/// call takes a pooled connection). A child forked after `start` (or `connect`) uses
/// it as it is: on its first call it opens its own session.
///
/// # Examples
///
/// ```
/// use shmkit::{Manager, Process};
///
/// let manager = Manager::start()?;
/// let jobs = manager.dict::<String, u64>("jobs")?;
/// let queue = manager.queue::<u64>("done", 0)?;
/// let mut child = Process::spawn(|| {
///     // The child uses the manager's proxies as they are.
///     jobs.insert(&"child".to_string(), &7).unwrap();
///     queue.put(&42).unwrap();
///     0
/// })?;
/// assert_eq!(queue.get()?, 42);
/// assert!(child.join()?.success());
/// assert_eq!(jobs.get(&"child".to_string())?, Some(7));
/// manager.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for Manager {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Manager")
            .field("address", &self.inner.target.address)
            .field("started_here", &self.inner.started.is_some())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Forks a server process for this process and its children, and connects to
    /// it. See the type's docs.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if the directory, the socket or the fork fails.
    pub fn start() -> Result<Manager, Error> {
        Manager::start_with(Options::default())
    }

    /// As [`start`](Self::start), with `options` for the server and this handle.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn start_with(options: Options) -> Result<Manager, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| Error::Os(e.raw_os_error().unwrap_or(0)))?;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(std::format!("shmkit-manager-{:016x}", super::random_u64()?));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let socket = dir.join("socket");
        let mut listener = match Listener::bind_with(&socket, &key, options.clone()) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e);
            }
        };
        // The server process removes the socket file; the parent's copy of the
        // listener (dropped by `Process::spawn` after the fork) must not.
        listener.keep_socket_file();
        let server = Server::from_listener(listener);
        let parent = std::process::id() as i32;
        let server_dir = dir.clone();
        let process =
            match Process::spawn(move || super::server_process(server, parent, &server_dir)) {
                Ok(p) => p,
                Err(e) => {
                    let _ = std::fs::remove_file(&socket);
                    let _ = std::fs::remove_dir(&dir);
                    return Err(e.into());
                }
            };
        Ok(Manager::new(
            Target {
                address: Address::Unix(socket),
                authkey: key.to_vec(),
                options,
            },
            Some(Started {
                process: Mutex::new(process),
                creator: my_process_id(),
                dir,
            }),
        ))
    }

    /// Binds a server to `address` without serving yet, so that the caller can read
    /// its address (the port picked for `tcp:HOST:0`) before calling
    /// [`Server::serve`].
    ///
    /// # Errors
    ///
    /// As [`Listener::bind`].
    pub fn bind(address: impl ToAddress, authkey: &[u8]) -> Result<Server, Error> {
        Server::bind(address, authkey, Options::default())
    }

    /// As [`bind`](Self::bind), with `options`.
    ///
    /// # Errors
    ///
    /// As [`Listener::bind`].
    pub fn bind_with(
        address: impl ToAddress,
        authkey: &[u8],
        options: Options,
    ) -> Result<Server, Error> {
        Server::bind(address, authkey, options)
    }

    /// Runs a server on `address` in this process until a client calls
    /// [`shutdown`](Self::shutdown) (Python's `get_server().serve_forever()`).
    ///
    /// ```no_run
    /// // On the server host:
    /// shmkit::Manager::serve("tcp:0.0.0.0:5000", b"shared secret")?;
    /// # Ok::<(), shmkit::manager::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind) and [`Server::serve`].
    pub fn serve(address: impl ToAddress, authkey: &[u8]) -> Result<(), Error> {
        Manager::bind(address, authkey)?.serve()
    }

    /// Attaches to the server at `address`. The connection is made (and the key
    /// checked) now.
    ///
    /// ```no_run
    /// // On any other host:
    /// let m = shmkit::Manager::connect("tcp:server.example:5000", b"shared secret")?;
    /// let jobs = m.queue::<String>("jobs", 0)?;
    /// jobs.put(&"resize img-0001.png".to_string())?;
    /// # Ok::<(), shmkit::manager::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Client::connect`](super::connection::Client::connect).
    pub fn connect(address: impl ToAddress, authkey: &[u8]) -> Result<Manager, Error> {
        Manager::connect_with(address, authkey, Options::default())
    }

    /// As [`connect`](Self::connect), with `options`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub fn connect_with(
        address: impl ToAddress,
        authkey: &[u8],
        options: Options,
    ) -> Result<Manager, Error> {
        let m = Manager::new(
            Target {
                address: address.to_address()?,
                authkey: authkey.to_vec(),
                options,
            },
            None,
        );
        m.inner.session.get(&m.inner.target)?;
        Ok(m)
    }

    fn new(target: Target, started: Option<Started>) -> Manager {
        Manager {
            inner: Arc::new(Inner {
                target,
                session: SessionCell::new(),
                started,
                shut: Flag::new(false),
            }),
        }
    }

    /// The server's address.
    pub fn address(&self) -> &Address {
        &self.inner.target.address
    }

    /// The key clients must present (for [`start`](Self::start), the random one;
    /// give it to unrelated processes that should connect).
    pub fn authkey(&self) -> &[u8] {
        &self.inner.target.authkey
    }

    /// The server's counters.
    ///
    /// # Errors
    ///
    /// As any call: [`Error::Disconnected`] if the server is gone, ...
    pub fn stats(&self) -> Result<Stats, Error> {
        self.request(&Request::Stats, |r| match r {
            Reply::Stats(s) => Ok(s),
            _ => Err(unexpected()),
        })
    }

    /// Stops the server (any client may; Python's `shutdown`). A server this handle
    /// started is waited for and its socket directory removed. Later calls through
    /// any handle fail.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the server was gone already.
    pub fn shutdown(&self) -> Result<(), Error> {
        let r = self.request(&Request::Shutdown, |r| match r {
            Reply::Unit => Ok(()),
            _ => Err(unexpected()),
        });
        self.inner
            .shut
            .store(true, core::sync::atomic::Ordering::Relaxed);
        if let Some(s) = &self.inner.started {
            if s.creator == my_process_id() {
                s.stop(Duration::from_secs(5));
            }
        }
        r
    }

    /// Sends one request (not `Call`) and decodes its reply.
    pub(crate) fn request<R>(
        &self,
        request: &Request<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let inner = &*self.inner;
        if inner.shut.load(core::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        inner
            .session
            .get(&inner.target)?
            .call(&inner.target, request, f)
    }
}

pub(crate) fn unexpected() -> Error {
    Error::Protocol("unexpected reply")
}

impl Started {
    /// Stops the server process (it is told first; killed if it lingers) and
    /// removes its socket directory.
    fn stop(&self, grace: Duration) {
        let mut p = self.process.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(p.join_timeout(grace), Ok(Some(_))) {
            let _ = p.kill();
            let _ = p.join_timeout(Duration::from_secs(5));
        }
        let _ = std::fs::remove_file(self.dir.join("socket"));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(s) = &self.started {
            // Only the process that started the server stops it: a forked child
            // dropping its copy of the last handle must not.
            if s.creator == my_process_id() {
                let _ = s
                    .process
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .kill();
                s.stop(Duration::from_secs(5));
            }
        }
    }
}

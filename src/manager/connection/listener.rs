//! `Listener`: accepts authenticated connections.

use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::vec::Vec;

use super::stream::{Connection, Sock};
use super::{Address, Options, ToAddress, auth};
use crate::manager::Error;

enum Inner {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// A listening socket that hands out authenticated [`Connection`]s (Python's
/// `multiprocessing.connection.Listener`).
///
/// [`accept`](Self::accept) runs the authkey handshake (this side challenges first,
/// then answers the client's challenge) before it returns a connection; a client
/// with the wrong key gets `#FAILURE#` and this side an [`Error::Authentication`].
///
/// A Unix socket is created with mode 0600 — it is bound in a fresh 0700 directory,
/// made 0600, then moved into place, so it is never reachable with wider rights —
/// and removed when the listener is dropped. A missing parent directory is created
/// with mode 0700.
///
/// # Examples
///
/// ```
/// use shmkit::connection::{Client, Listener};
///
/// let dir = std::env::temp_dir().join(format!("shmkit-doc-{}", std::process::id()));
/// let listener = Listener::bind(dir.join("socket"), b"key")?;
/// let address = listener.address().clone();
/// let t = std::thread::spawn(move || -> Result<(), shmkit::manager::Error> {
///     let mut c = Client::connect(&address, b"key")?;
///     c.send_bytes(b"ping")?;
///     assert_eq!(c.recv_bytes(16)?, b"pong");
///     Ok(())
/// });
/// let mut conn = listener.accept()?;
/// assert_eq!(conn.recv_bytes(16)?, b"ping");
/// conn.send_bytes(b"pong")?;
/// t.join().unwrap()?;
/// # drop(listener); let _ = std::fs::remove_dir(&dir);
/// # Ok::<(), shmkit::manager::Error>(())
/// ```
pub struct Listener {
    inner: Inner,
    address: Address,
    authkey: Vec<u8>,
    options: Options,
    /// The socket file this process created (removed on drop, by this process only).
    created: Option<(PathBuf, u32)>,
}

impl core::fmt::Debug for Listener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Listens on `address` with the default [`Options`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`]; [`Error::Os`] (`EADDRINUSE` if the socket path
    /// exists or the port is taken, `EACCES`).
    pub fn bind(address: impl ToAddress, authkey: &[u8]) -> Result<Listener, Error> {
        Listener::bind_with(address, authkey, Options::default())
    }

    /// Listens on `address` with `options`.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn bind_with(
        address: impl ToAddress,
        authkey: &[u8],
        options: Options,
    ) -> Result<Listener, Error> {
        let address = address.to_address()?;
        let (inner, address, created) = match &address {
            Address::Unix(path) => {
                let l = bind_private_unix(path)?;
                (
                    Inner::Unix(l),
                    address.clone(),
                    Some((path.clone(), std::process::id())),
                )
            }
            Address::Tcp(_) => {
                let addrs = address.resolve()?;
                let l = TcpListener::bind(&addrs[..])?;
                let local = l.local_addr()?;
                (Inner::Tcp(l), local.to_address()?, None)
            }
        };
        Ok(Listener {
            inner,
            address,
            authkey: authkey.to_vec(),
            options,
            created,
        })
    }

    /// The address clients connect to (for `tcp:HOST:0`, with the port the kernel
    /// picked).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Waits for a client, runs the handshake, and returns the connection.
    ///
    /// # Errors
    ///
    /// [`Error::Authentication`] if the client's key differs (or it does not speak
    /// the handshake), [`Error::Timeout`] if it did not finish the handshake within
    /// [`Options::handshake_timeout`], [`Error::Os`] if `accept` fails.
    pub fn accept(&self) -> Result<Connection, Error> {
        let sock = self.accept_raw()?;
        auth::handshake(
            sock,
            &self.authkey,
            &self.options,
            false,
            auth::Side::Accepting,
        )
    }

    /// Accepts a socket without the handshake.
    pub(crate) fn accept_raw(&self) -> Result<Sock, Error> {
        loop {
            let r = match &self.inner {
                Inner::Unix(l) => l.accept().map(|(s, _)| Sock::Unix(s)),
                Inner::Tcp(l) => l.accept().map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    Sock::Tcp(s)
                }),
            };
            match r {
                Ok(s) => return Ok(s),
                // A client that gave up before we accepted it, or a signal.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The listening descriptor (the server shuts it down to stop `accept`).
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match &self.inner {
            Inner::Unix(l) => l.as_fd(),
            Inner::Tcp(l) => l.as_fd(),
        }
    }

    pub(crate) fn authkey(&self) -> &[u8] {
        &self.authkey
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// Removes the socket file this listener created, whichever process asks (the
    /// one that served on it, say, after a fork).
    pub(crate) fn remove_socket_file(&mut self) {
        if let Some((path, _)) = self.created.take() {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Leaves the socket file in place when dropped (a forked server owns it).
    pub(crate) fn keep_socket_file(&mut self) {
        self.created = None;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some((path, pid)) = &self.created {
            // Not while a parent drops its copy of a closure it just forked with
            // (`Process::spawn(move || server.serve())`): the child serves on it.
            if *pid == std::process::id() && crate::primitive::handoff_target().is_none() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Binds a Unix socket at `path` that is never reachable with more than mode 0600:
/// bound inside a fresh 0700 directory beside it, chmod-ed, then renamed into place
/// (refusing to replace anything there).
fn bind_private_unix(path: &Path) -> Result<UnixListener, Error> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)?;
    }
    let scratch = parent.join(std::format!(
        ".shmkit-{:016x}",
        crate::manager::random_u64()?
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&scratch)?;
    let tmp = scratch.join("s");
    let result = (|| -> Result<UnixListener, Error> {
        let l = UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            path,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(|e| Error::Os(e.raw_os_error()))?;
        Ok(l)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&scratch);
    result
}

//! Authenticated socket connections, wire-compatible with CPython's
//! `multiprocessing.connection`.
//!
//! A [`Listener`] accepts connections on a Unix socket or a TCP port; a [`Client`]
//! connects to one. Both sides prove that they hold the same authkey (each challenges
//! the other, HMAC-SHA256), then exchange byte frames. The frames and the handshake
//! are CPython's, so either side may be a Python program:
//!
//! ```no_run
//! use shmkit::connection::{Client, Listener};
//!
//! // Rust side:
//! let listener = Listener::bind("tcp:127.0.0.1:6000", b"secret")?;
//! let mut conn = listener.accept()?;
//! let hello = conn.recv_bytes(1024)?;
//! conn.send_bytes(&hello)?;
//! # Ok::<(), shmkit::manager::Error>(())
//! ```
//! ```python
//! # Python side (3.12 or later; 3.11 needs Options::allow_legacy_md5):
//! from multiprocessing.connection import Client
//! with Client(("127.0.0.1", 6000), authkey=b"secret") as c:
//!     c.send_bytes(b"hello")
//!     assert c.recv_bytes() == b"hello"
//! ```
//!
//! # Hostile peers
//!
//! Until the handshake succeeds nothing but its three frames is read, each capped at
//! 256 bytes, and the whole handshake must finish within
//! [`Options::handshake_timeout`] (a peer that sends nothing, or a byte a minute,
//! is dropped). After it, frames are capped by [`Options::max_frame`] (default
//! 64 MiB), checked before any allocation; a negative or oversized length closes the
//! connection with [`Error::Protocol`](crate::manager::Error::Protocol) or
//! [`Error::FrameTooLarge`](crate::manager::Error::FrameTooLarge).
//!
//! # Security model
//!
//! The authkey is a shared secret: whoever holds it may connect. The handshake never
//! sends the key, and a recorded handshake cannot be replayed (each side picks a fresh
//! random challenge). Traffic after it is **not encrypted or integrity-protected**:
//! on an untrusted network, tunnel it (SSH, WireGuard, TLS stunnel). A Unix socket
//! created here is mode 0600 (only its owner may connect).

use core::time::Duration;

mod address;
pub(crate) mod auth;
pub(crate) mod client;
pub(crate) mod listener;
mod sock;
pub(crate) mod stream;
pub mod wire;

pub use address::{Address, ToAddress};
pub use client::Client;
pub use listener::Listener;
pub use stream::Connection;

/// The default cap on a frame after the handshake: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;
/// The default deadline of the whole handshake: 5 seconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The default liveness window of manager calls: 10 seconds.
pub const DEFAULT_LIVENESS: Duration = Duration::from_secs(10);

/// How a [`Listener`] or a [`Client`] treats its connections.
///
/// ```
/// use core::time::Duration;
/// let options = shmkit::connection::Options::new()
///     .handshake_timeout(Duration::from_secs(2))
///     .max_frame(1 << 20)
///     .allow_legacy_md5(true); // talk to Python 3.11 and older
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_frame: usize,
    pub(crate) allow_legacy_md5: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) liveness: Duration,
    pub(crate) fast_path: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_frame: DEFAULT_MAX_FRAME,
            allow_legacy_md5: false,
            timeout: None,
            liveness: DEFAULT_LIVENESS,
            fast_path: true,
        }
    }
}

impl Options {
    /// The defaults: a 5 s handshake, 64 MiB frames, SHA-256 only, no call timeout.
    pub fn new() -> Options {
        Options::default()
    }

    /// The deadline of the whole authkey handshake (default 5 s).
    pub fn handshake_timeout(mut self, d: Duration) -> Options {
        self.handshake_timeout = d;
        self
    }

    /// The longest frame accepted after the handshake (default 64 MiB).
    pub fn max_frame(mut self, bytes: usize) -> Options {
        self.max_frame = bytes;
        self
    }

    /// Accept and answer the legacy HMAC-MD5 handshake of Python 3.11 and older
    /// (default: refused — MD5 is broken as a hash, and HMAC-MD5 is kept only for
    /// old peers).
    pub fn allow_legacy_md5(mut self, yes: bool) -> Options {
        self.allow_legacy_md5 = yes;
        self
    }

    /// The timeout of every blocking call on the connections made (default `None`:
    /// wait forever, as Python does). See [`Connection::set_timeout`].
    pub fn timeout(mut self, d: Option<Duration>) -> Options {
        self.timeout = d;
        self
    }

    /// Manager clients: how long a call waits for any sign of life from the server
    /// (a reply, or the heartbeat a blocked call sends every second) before it
    /// takes the server for dead and fails with `Timeout` (default 10 s). A server
    /// whose process died is noticed at once (its sockets close); this bounds the
    /// wait for a server whose host vanished.
    pub fn liveness(mut self, d: Duration) -> Options {
        self.liveness = d;
        self
    }

    /// Manager clients of a server on this host (a Unix-socket address): move calls
    /// onto a shared-memory pipe passed to the server as a sealed memfd, keeping the
    /// socket for authentication and liveness (default `true`). `false` keeps every
    /// call on the socket.
    pub fn fast_path(mut self, yes: bool) -> Options {
        self.fast_path = yes;
        self
    }
}

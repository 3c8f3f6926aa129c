//! The error type of the `connection` and `manager` modules.

use core::fmt;

/// What a socket connection, a handshake or a manager call can fail with.
///
/// Unlike the kit's core [`Error`](crate::Error), this one speaks of networks and
/// servers: a refused key, a peer that broke the protocol, a server that died. It
/// converts from the core error (for the operations they share) and into
/// [`std::io::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The authkey handshake failed: the keys differ, or the peer asked for a digest
    /// that is not allowed (legacy HMAC-MD5 without opting in), or it did not speak the
    /// handshake at all. The text says which.
    Authentication(&'static str),
    /// The peer broke the framing or request protocol (a negative length, a reply that
    /// does not decode, ...). The connection is closed.
    Protocol(&'static str),
    /// A frame longer than the configured maximum was announced; nothing was
    /// allocated for it, and the connection is closed.
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The maximum this side accepts.
        max: usize,
    },
    /// The receive buffer is too small for the next message, which stays queued.
    BufferTooSmall {
        /// The length of the next message.
        needed: usize,
    },
    /// A deadline passed: the call's own timeout, the handshake deadline, or the
    /// liveness window of a server that stopped answering.
    Timeout,
    /// The peer closed the connection, or died (for a manager: the server is gone).
    Disconnected,
    /// This handle was closed, or the manager was shut down.
    Closed,
    /// A non-blocking call (`try_*`) could not proceed now: the queue is empty or
    /// full, the lock is held.
    WouldBlock,
    /// An address that is neither `unix:PATH`, a path, `tcp:HOST:PORT` nor
    /// `HOST:PORT`, or that does not resolve.
    InvalidAddress,
    /// A value could not be serialized.
    Encode,
    /// A message did not deserialize into the requested type.
    Decode,
    /// The manager has an object of this name, but of another kind.
    WrongKind,
    /// The manager has no object of this name (opening from a token).
    NotFound,
    /// An index past the end of a manager list or array.
    IndexOutOfBounds {
        /// The index that was asked for.
        index: u64,
        /// The container's length.
        len: u64,
    },
    /// The lock was acquired, but its previous holder's client died while holding it
    /// (the server released it when that client's connection dropped). **The caller
    /// holds the lock now**, as with the shared-memory `Mutex`'s `OwnerDead`.
    OwnerDead,
    /// Released a lock that the caller does not hold (an `RLock` or a `Condition`
    /// owned by another thread or client, or not held at all).
    NotOwner,
    /// A counter would pass its bound: a `BoundedSemaphore` released more often than
    /// acquired, `task_done` called more often than items were put.
    Overflow,
    /// The barrier is broken (aborted, or a waiter timed out).
    Broken,
    /// An argument the server refuses (a barrier of zero parties, a name too long, ...).
    InvalidArgument,
    /// The operating system refused: the raw `errno`.
    Os(i32),
    /// An I/O error without an `errno`.
    Io(std::io::ErrorKind),
    /// An error of the kit's shared-memory core (the fast path's pipe, a fork).
    Kit(crate::Error),
}

impl Error {
    /// The raw `errno` for [`Error::Os`], `None` for every other variant.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os(code) => Some(*code),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::WouldBlock | K::TimedOut => Error::Timeout,
            K::UnexpectedEof
            | K::BrokenPipe
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected => Error::Disconnected,
            kind => match e.raw_os_error() {
                Some(code) => Error::Os(code),
                None => Error::Io(kind),
            },
        }
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        match e {
            E::Timeout => Error::Timeout,
            E::Closed => Error::Closed,
            E::Disconnected => Error::Disconnected,
            E::WouldBlock => Error::WouldBlock,
            E::Encode => Error::Encode,
            E::Decode => Error::Decode,
            E::Overflow => Error::Overflow,
            E::InvalidArgument => Error::InvalidArgument,
            E::Os(code) => Error::Os(code),
            E::BufferTooSmall { needed } => Error::BufferTooSmall { needed },
            E::MessageTooLarge { len, max } => Error::FrameTooLarge {
                len: len as u64,
                max,
            },
            E::IndexOutOfBounds { index, len } => Error::IndexOutOfBounds {
                index: index as u64,
                len: len as u64,
            },
            other => Error::Kit(other),
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e {
            Error::Os(code) => return std::io::Error::from_raw_os_error(code),
            Error::Io(kind) => kind,
            Error::Timeout => K::TimedOut,
            Error::Disconnected => K::ConnectionAborted,
            Error::Closed => K::NotConnected,
            Error::WouldBlock => K::WouldBlock,
            Error::Authentication(_) => K::PermissionDenied,
            Error::InvalidAddress | Error::InvalidArgument => K::InvalidInput,
            _ => K::InvalidData,
        };
        std::io::Error::new(kind, e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Authentication(why) => write!(f, "authentication failed: {why}"),
            Error::Protocol(why) => write!(f, "protocol error: {why}"),
            Error::FrameTooLarge { len, max } => {
                write!(
                    f,
                    "frame of {len} bytes is larger than the maximum of {max}"
                )
            }
            Error::BufferTooSmall { needed } => {
                write!(f, "buffer too small: the next message needs {needed} bytes")
            }
            Error::Timeout => f.write_str("timed out"),
            Error::Disconnected => f.write_str("the peer closed the connection or died"),
            Error::Closed => f.write_str("closed"),
            Error::WouldBlock => f.write_str("the operation would block"),
            Error::InvalidAddress => f.write_str(
                "invalid address (expected unix:PATH, a path, tcp:HOST:PORT or HOST:PORT)",
            ),
            Error::Encode => f.write_str("a value could not be serialized"),
            Error::Decode => f.write_str("a message did not deserialize into the requested type"),
            Error::NotFound => f.write_str("the manager has no object of this name"),
            Error::WrongKind => {
                f.write_str("the manager holds an object of this name of another kind")
            }
            Error::IndexOutOfBounds { index, len } => {
                write!(f, "index {index} out of bounds for length {len}")
            }
            Error::OwnerDead => f.write_str(
                "lock acquired, but its previous holder died holding it (the caller holds it now)",
            ),
            Error::NotOwner => f.write_str("the caller does not hold this lock"),
            Error::Overflow => f.write_str("a counter would pass its bound"),
            Error::Broken => f.write_str("the barrier is broken"),
            Error::InvalidArgument => f.write_str("invalid argument"),
            Error::Os(code) => write!(f, "{}", std::io::Error::from_raw_os_error(*code)),
            Error::Io(kind) => write!(f, "I/O error: {kind}"),
            Error::Kit(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for Error {}

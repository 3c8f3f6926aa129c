//! The kit's one error type.
//!
//! Operations that can hand a value back (a queue `put` that found the queue full,
//! a lock taken from a dead owner) have their own small error enums next to them;
//! everything else reports an [`Error`].

use core::fmt;

/// Everything that can go wrong in shmkit, as a small `Copy` value.
///
/// Variants name what differed or what was refused, so that a caller (or a log line)
/// can act without guessing. Nothing in this enum owns memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A named segment with this name exists already (`create` uses `O_EXCL`).
    AlreadyExists,
    /// No named segment with this name exists.
    NotFound,
    /// A segment name is empty, longer than 250 bytes, or holds `/` or NUL.
    InvalidName,
    /// The segment does not start with shmkit's magic number.
    BadMagic {
        /// The first eight bytes that were found instead.
        found: u64,
    },
    /// The segment was written by a different layout version of shmkit.
    VersionMismatch {
        /// The layout version this build of shmkit writes and reads.
        expected: u32,
        /// The layout version recorded in the segment.
        found: u32,
    },
    /// The segment holds a different type than the one asked for.
    WrongType {
        /// Fingerprint of the requested type.
        expected: u64,
        /// Fingerprint recorded in the segment.
        found: u64,
    },
    /// A size differs: a segment's size on `open`, or a message's length on a typed receive
    /// (the message then stays queued).
    WrongSize {
        /// The size that was expected.
        expected: u64,
        /// The size that was found.
        found: u64,
    },
    /// The segment's creator did not finish initialising it in time.
    NotReady,
    /// Shared state failed validation: a peer wrote garbage into the segment.
    Corrupted,
    /// A non-blocking operation could not proceed now.
    WouldBlock,
    /// A deadline passed before the operation could complete.
    Timeout,
    /// This handle (or the object) was closed.
    Closed,
    /// The peer closed its end or died, and everything it fully sent has been received.
    Disconnected,
    /// A message longer than the channel can ever hold.
    MessageTooLarge {
        /// The message's length in bytes.
        len: usize,
        /// The longest message this channel can carry.
        max: usize,
    },
    /// The receive buffer is too small for the next message, which stays queued.
    BufferTooSmall {
        /// The length of the next message.
        needed: usize,
    },
    /// A pipe end is owned by another process or handle.
    EndpointInUse,
    /// An index past the end of a fixed-size container.
    IndexOutOfBounds {
        /// The index that was asked for.
        index: usize,
        /// The container's length.
        len: usize,
    },
    /// A counter would pass its bound (a bounded semaphore released too often,
    /// `task_done` called more often than items were put).
    Overflow,
    /// An argument outside what the call accepts.
    InvalidArgument,
    /// A value could not be serialized.
    Encode,
    /// A message could not be deserialized into the requested type.
    Decode,
    /// The operating system refused: the raw `errno`.
    Os(i32),
    /// `Process::spawn` would have forked while a lock guard was alive in this process:
    /// a child could keep using a reference into the locked data after the parent
    /// unlocks. Drop guards before spawning (see `Process::spawn`).
    GuardHeld,
}

impl Error {
    /// Is this [`Timeout`](Error::Timeout)? (Every error type of the kit that can time
    /// out has this method.)
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// The raw `errno` for [`Error::Os`], `None` for every other variant.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os(code) => Some(*code),
            _ => None,
        }
    }

    /// Maps an errno from the sys layer onto the kit's error.
    pub(crate) fn from_errno(errno: rustix::io::Errno) -> Self {
        Error::Os(errno.raw_os_error())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyExists => f.write_str("a segment with this name already exists"),
            Error::NotFound => f.write_str("no segment with this name exists"),
            Error::InvalidName => {
                f.write_str("invalid segment name (1 to 250 bytes, without '/' or NUL)")
            }
            Error::BadMagic { found } => {
                write!(f, "not a shmkit segment (magic {found:#018x})")
            }
            Error::VersionMismatch { expected, found } => write!(
                f,
                "segment layout version {found}, this build of shmkit reads version {expected}"
            ),
            Error::WrongType { expected, found } => write!(
                f,
                "segment holds another type (fingerprint {found:#018x}, expected {expected:#018x})"
            ),
            Error::WrongSize { expected, found } => {
                write!(f, "wrong size: expected {expected} bytes, found {found}")
            }
            Error::NotReady => f.write_str("the segment's creator did not finish initialising it"),
            Error::Corrupted => f.write_str("shared state failed validation (corrupted)"),
            Error::WouldBlock => f.write_str("the operation would block"),
            Error::Timeout => f.write_str("timed out"),
            Error::Closed => f.write_str("closed"),
            Error::Disconnected => f.write_str("the peer disconnected"),
            Error::MessageTooLarge { len, max } => {
                write!(
                    f,
                    "message of {len} bytes is larger than the maximum of {max}"
                )
            }
            Error::BufferTooSmall { needed } => {
                write!(f, "buffer too small: the next message needs {needed} bytes")
            }
            Error::EndpointInUse => f.write_str("this end is owned by another process or handle"),
            Error::IndexOutOfBounds { index, len } => {
                write!(f, "index {index} out of bounds for length {len}")
            }
            Error::Overflow => f.write_str("counter overflow"),
            Error::InvalidArgument => f.write_str("invalid argument"),
            Error::Encode => f.write_str("could not encode the value"),
            Error::Decode => f.write_str("could not decode the message"),
            Error::Os(code) => write!(f, "operating system error {code}"),
            Error::GuardHeld => f.write_str(
                "a lock guard is alive in this process: drop it before forking a child, \
                 which could otherwise use the locked data after the parent unlocks",
            ),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(feature = "std")]
impl From<Error> for std::io::Error {
    fn from(error: Error) -> Self {
        use std::io::ErrorKind;
        let kind = match error {
            Error::Os(code) => return std::io::Error::from_raw_os_error(code),
            Error::AlreadyExists => ErrorKind::AlreadyExists,
            Error::NotFound => ErrorKind::NotFound,
            Error::InvalidName | Error::InvalidArgument => ErrorKind::InvalidInput,
            Error::WouldBlock => ErrorKind::WouldBlock,
            Error::Timeout => ErrorKind::TimedOut,
            Error::Disconnected | Error::Closed => ErrorKind::BrokenPipe,
            Error::Corrupted
            | Error::BadMagic { .. }
            | Error::VersionMismatch { .. }
            | Error::WrongType { .. }
            | Error::WrongSize { .. }
            | Error::Decode => ErrorKind::InvalidData,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn miri_raw_os_error_only_for_os() {
        assert_eq!(Error::Os(28).raw_os_error(), Some(28));
        assert_eq!(Error::Timeout.raw_os_error(), None);
    }

    #[cfg(feature = "std")]
    #[test]
    fn converts_to_io_error() {
        extern crate std;
        use std::string::ToString;
        let io: std::io::Error = Error::Timeout.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        let io: std::io::Error = Error::Os(2).into();
        assert_eq!(io.raw_os_error(), Some(2));
        assert!(
            Error::WrongType {
                expected: 1,
                found: 2
            }
            .to_string()
            .contains("another type")
        );
    }
}

//! The kit's one error type, and the detailed errors that convert into it.
//!
//! Operations that can hand a value back (a queue `put` that found the queue full,
//! a lock taken from a dead owner) have their own small error enums next to them;
//! everything else reports an [`Error`]. Every one of them converts into [`Error`]
//! with `?` (dropping what it handed back).
//!
//! [`Error`] sits in every `Result` of the data path, so it stays `Copy` and 32 bytes.
//! Creating or opening a segment is a cold path whose failures need words: those
//! return a [`SegmentError`] (about 600 bytes, still `Copy` and allocation-free) with
//! the segment's full name, both type names and the numbers that differed; converted
//! into [`Error`] it keeps its kind and the first [`SegmentName::MAX`] bytes of the
//! name, so that even `fn main() -> Result<(), shmkit::Error>` says which segment.

use core::fmt;

mod convert;
mod segment;

pub(crate) use segment::MAX_NAME;
use segment::write_segment;
pub use segment::{SegmentError, SegmentErrorKind, SegmentName};

/// Everything that can go wrong in shmkit, as a small `Copy` value.
///
/// Variants name what differed or what was refused, so that a caller (or a log line)
/// can act without guessing. Nothing in this enum owns memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A segment could not be created, opened or validated. The segment's name (its
    /// first [`SegmentName::MAX`] bytes) is kept so that a `main` returning
    /// `Result<(), shmkit::Error>` still says which segment; the full details (both
    /// type names, sizes, versions) are in the [`SegmentError`] that `Shared`'s
    /// constructors return.
    Segment {
        /// What went wrong.
        kind: SegmentErrorKind,
        /// The OS error for [`SegmentErrorKind::Os`] (and the other kinds that came
        /// from a system call), 0 otherwise.
        errno: i16,
        /// The segment's name (empty for an anonymous segment).
        name: SegmentName,
    },
    /// A size differs: a message's length on a typed receive (the message then stays
    /// queued).
    WrongSize {
        /// The size that was expected.
        expected: u64,
        /// The size that was found.
        found: u64,
    },
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
    /// A pipe end is owned by another process or handle: a `Pipe` end belongs to one
    /// process (use a `Queue` for many producers or consumers, or one `Pipe` per
    /// process).
    EndpointInUse {
        /// The participant id of the end's owner (see `shmkit ls`).
        owner: u32,
    },
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
    /// A barrier round was aborted, reset, or broken by another party's timeout.
    Broken,
    /// A lock's previous holder died holding it. Converting a
    /// [`LockError::OwnerDead`](crate::LockError::OwnerDead) into this drops its guard
    /// without `make_consistent`, which leaves the lock not recoverable for everyone.
    OwnerDead,
    /// A lock whose dead holder's data was never made consistent: it can never be
    /// taken again.
    NotRecoverable,
    /// A pool worker died while running the task.
    WorkerDied {
        /// The worker's pid.
        pid: i32,
        /// The signal that killed it; `None` if it exited.
        signal: Option<i32>,
    },
    /// A pool task panicked.
    TaskPanicked,
    /// `Process::spawn` would have forked while a lock guard was alive in this process:
    /// a child could keep using a reference into the locked data after the parent
    /// unlocks. Drop guards before spawning (see `Process::spawn`).
    GuardHeld,
}

// `Error` sits in every `Result` of the data path: keep it at four words.
const _: () = assert!(core::mem::size_of::<Error>() <= 32);

impl Error {
    /// Is this [`Timeout`](Error::Timeout)? (Every error type of the kit that can time
    /// out has this method.)
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// The raw `errno` for [`Error::Os`] (and for a segment error that came from a
    /// system call), `None` for every other variant.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os(code) => Some(*code),
            Error::Segment { errno, .. } if *errno != 0 => Some(i32::from(*errno)),
            _ => None,
        }
    }

    /// The kind of segment error, `None` for every other variant.
    pub fn segment_kind(&self) -> Option<SegmentErrorKind> {
        match self {
            Error::Segment { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Maps an errno from the sys layer onto the kit's error.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) fn from_errno(errno: rustix::io::Errno) -> Self {
        Error::Os(errno.raw_os_error())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Segment { kind, errno, name } => {
                write_segment(f, name.as_str(), name.is_truncated())?;
                f.write_str(" ")?;
                kind.describe(f)?;
                if *errno != 0 {
                    write!(f, " (os error {errno})")?;
                }
                Ok(())
            }
            Error::WrongSize { expected, found } => {
                write!(f, "wrong size: expected {expected} bytes, found {found}")
            }
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
            Error::EndpointInUse { owner } => write!(
                f,
                "this pipe end is owned by participant {owner} (another process or handle): \
                 a Pipe end belongs to one process; use a Queue for many producers or \
                 consumers, or one Pipe per process"
            ),
            Error::IndexOutOfBounds { index, len } => {
                write!(f, "index {index} out of bounds for length {len}")
            }
            Error::Overflow => f.write_str("counter overflow"),
            Error::InvalidArgument => f.write_str("invalid argument"),
            Error::Encode => f.write_str("could not encode the value"),
            Error::Decode => f.write_str("could not decode the message"),
            Error::Os(code) => write!(f, "operating system error {code}"),
            Error::Broken => {
                f.write_str("the barrier is broken (aborted, reset, or a party timed out)")
            }
            Error::OwnerDead => f.write_str(
                "the lock's previous holder died holding it (handle LockError::OwnerDead \
                 to repair the data and call make_consistent)",
            ),
            Error::NotRecoverable => f.write_str(
                "the lock is not recoverable (a dead holder's data was never made consistent)",
            ),
            Error::WorkerDied {
                pid,
                signal: Some(sig),
            } => write!(f, "pool worker {pid} was killed by signal {sig}"),
            Error::WorkerDied { pid, signal: None } => {
                write!(f, "pool worker {pid} exited during the task")
            }
            Error::TaskPanicked => f.write_str("the pool task panicked"),
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
            Error::Segment { kind, .. } => match kind {
                SegmentErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
                SegmentErrorKind::NotFound => ErrorKind::NotFound,
                SegmentErrorKind::InvalidName => ErrorKind::InvalidInput,
                SegmentErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                SegmentErrorKind::NotReady => ErrorKind::TimedOut,
                SegmentErrorKind::NoSpace | SegmentErrorKind::Os => ErrorKind::Other,
                _ => ErrorKind::InvalidData,
            },
            Error::InvalidArgument => ErrorKind::InvalidInput,
            Error::WouldBlock => ErrorKind::WouldBlock,
            Error::Timeout => ErrorKind::TimedOut,
            Error::Disconnected | Error::Closed => ErrorKind::BrokenPipe,
            Error::Corrupted | Error::WrongSize { .. } | Error::Decode => ErrorKind::InvalidData,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
    }
}

// ---- conversions from the operation errors: `q.put(x)?` in a fn returning `Error` ----
//
// Each drops what the operation error hands back (the item, the guard).

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miri_raw_os_error_only_for_os() {
        assert_eq!(Error::Os(28).raw_os_error(), Some(28));
        assert_eq!(Error::Timeout.raw_os_error(), None);
    }

    #[test]
    fn miri_segment_names_survive_the_conversion() {
        let e = SegmentError::new(SegmentErrorKind::AlreadyExists, "orders");
        let small: Error = e.into();
        assert_eq!(small.segment_kind(), Some(SegmentErrorKind::AlreadyExists));
        let text = std::format!("{small}");
        assert!(
            text.starts_with("segment \"orders\" already exists"),
            "{text}"
        );
        let debug = std::format!("{small:?}");
        assert!(
            debug.contains("\"orders\"") && debug.contains("AlreadyExists"),
            "{debug}"
        );
        // A long name keeps its start, marked as cut.
        let long = "a-very-long-segment-name-used-by-some-program";
        let small: Error = SegmentError::new(SegmentErrorKind::NotFound, long).into();
        let debug = std::format!("{small:?}");
        assert!(debug.contains("a-very-long-segment-name-us…"), "{debug}");
    }

    #[test]
    fn miri_operation_errors_convert() {
        fn put() -> Result<(), Error> {
            Err(crate::PutError::Full(5u64))?
        }
        assert_eq!(put(), Err(Error::WouldBlock));
        fn get() -> Result<u64, Error> {
            Err(crate::GetError::Closed)?
        }
        assert_eq!(get(), Err(Error::Closed));
        let e: Error = crate::LockError::<()>::Timeout.into();
        assert_eq!(e, Error::Timeout);
        let e: Error = crate::BarrierError::Broken.into();
        assert_eq!(e, Error::Broken);
        let text = std::format!("{}", Error::EndpointInUse { owner: 42 });
        assert!(
            text.contains("participant 42") && text.contains("use a Queue"),
            "{text}"
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn converts_to_io_error() {
        use std::string::ToString;
        let io: std::io::Error = Error::Timeout.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        let io: std::io::Error = Error::Os(2).into();
        assert_eq!(io.raw_os_error(), Some(2));
        let io: std::io::Error = SegmentError::new(SegmentErrorKind::NotFound, "x").into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert!(io.to_string().contains("\"x\""));
    }
}

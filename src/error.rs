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

use crate::segment::TypeName;

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

impl<T> From<crate::PutError<T>> for Error {
    /// `Full` becomes [`Error::WouldBlock`]; the item is dropped.
    fn from(e: crate::PutError<T>) -> Self {
        match e {
            crate::PutError::Full(_) => Error::WouldBlock,
            crate::PutError::Timeout(_) => Error::Timeout,
            crate::PutError::Closed(_) => Error::Closed,
            crate::PutError::Corrupted(_) => Error::Corrupted,
        }
    }
}

impl From<crate::GetError> for Error {
    /// `Empty` becomes [`Error::WouldBlock`].
    fn from(e: crate::GetError) -> Self {
        match e {
            crate::GetError::Empty => Error::WouldBlock,
            crate::GetError::Timeout => Error::Timeout,
            crate::GetError::Closed => Error::Closed,
            crate::GetError::Corrupted => Error::Corrupted,
        }
    }
}

impl<G> From<crate::LockError<G>> for Error {
    /// `OwnerDead(guard)` becomes [`Error::OwnerDead`]: the guard is dropped without
    /// `make_consistent`, so the lock becomes not recoverable for everyone (as if this
    /// holder had died too). Match `OwnerDead` yourself where the data can be repaired.
    fn from(e: crate::LockError<G>) -> Self {
        match e {
            crate::LockError::OwnerDead(_) => Error::OwnerDead,
            crate::LockError::NotRecoverable => Error::NotRecoverable,
            crate::LockError::WouldBlock => Error::WouldBlock,
            crate::LockError::Timeout => Error::Timeout,
            crate::LockError::Corrupted => Error::Corrupted,
        }
    }
}

impl From<crate::BarrierError> for Error {
    fn from(e: crate::BarrierError) -> Self {
        match e {
            crate::BarrierError::Broken => Error::Broken,
            crate::BarrierError::Timeout => Error::Timeout,
            crate::BarrierError::Corrupted => Error::Corrupted,
        }
    }
}

#[cfg(feature = "std")]
impl From<crate::PoolError> for Error {
    fn from(e: crate::PoolError) -> Self {
        // Braced patterns match whatever shape a variant takes.
        #[allow(unreachable_patterns)]
        match e {
            crate::PoolError::WorkerDied { pid, signal, .. } => Error::WorkerDied { pid, signal },
            #[allow(clippy::unneeded_struct_pattern)]
            crate::PoolError::TaskPanicked { .. } => Error::TaskPanicked,
            crate::PoolError::Closed => Error::Closed,
            crate::PoolError::Timeout => Error::Timeout,
            crate::PoolError::Other { 0: e, .. } => e,
            _ => Error::InvalidArgument,
        }
    }
}

impl From<SegmentError> for Error {
    /// Keeps the kind, the errno and the first [`SegmentName::MAX`] bytes of the name.
    fn from(e: SegmentError) -> Self {
        Error::Segment {
            kind: e.kind,
            errno: e.errno as i16,
            name: SegmentName::new(e.name()),
        }
    }
}

// ---- segment errors --------------------------------------------------------------

/// What went wrong with a segment; see [`SegmentError`] for the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SegmentErrorKind {
    /// A segment with this name exists already (`create` uses `O_EXCL`).
    AlreadyExists,
    /// No segment with this name exists.
    NotFound,
    /// A name is empty, longer than 250 bytes, or holds `/` or NUL.
    InvalidName,
    /// The segment belongs to another user (segments are created with mode 0600).
    PermissionDenied,
    /// `/dev/shm` (or memory) is full.
    NoSpace,
    /// The object does not start with shmkit's magic number: not a shmkit segment.
    BadMagic,
    /// Made by a build of shmkit with another header layout or another major.minor
    /// version: the two builds may give the same bytes different meanings.
    VersionMismatch,
    /// Holds another type, or a type of the same name with another layout.
    WrongType,
    /// The object's size differs from what the type needs.
    WrongSize,
    /// The creator did not finish initialising it in time (or died doing so).
    NotReady,
    /// The header failed validation.
    Corrupted,
    /// A received memory file descriptor is not sealed against shrinking, so its
    /// sender could truncate it under us.
    NotSealed,
    /// Another system call failed; see the errno.
    Os,
}

impl SegmentErrorKind {
    /// A short description with what to do about it.
    fn describe(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SegmentErrorKind::AlreadyExists => {
                "already exists (open it with Shared::open, or use Shared::open_or_create, \
                 which also takes over a segment whose creator died)"
            }
            SegmentErrorKind::NotFound => {
                "does not exist (create it first, or wait for it with Shared::open_timeout)"
            }
            SegmentErrorKind::InvalidName => {
                "is not a valid name (1 to 250 bytes, without '/' or NUL)"
            }
            SegmentErrorKind::PermissionDenied => {
                "is not accessible: permission denied (segments are created with mode 0600: \
                 use the same user)"
            }
            SegmentErrorKind::NoSpace => {
                "could not be made: no space left (/dev/shm or memory is full: remove stale \
                 segments)"
            }
            SegmentErrorKind::BadMagic => "is not a shmkit segment",
            SegmentErrorKind::VersionMismatch => {
                "was made by an incompatible build of shmkit (rebuild both programs with \
                 the same shmkit major.minor version)"
            }
            SegmentErrorKind::WrongType => {
                "holds another type (open it with the type its creator used)"
            }
            SegmentErrorKind::WrongSize => {
                "has the wrong size for its type (truncated or resized by another program?)"
            }
            SegmentErrorKind::NotReady => {
                "did not become ready in time (its creator is still initialising it, or died)"
            }
            SegmentErrorKind::Corrupted => "has a header that failed validation (corrupted)",
            SegmentErrorKind::NotSealed => {
                "is a memory file that is not sealed against shrinking (refused)"
            }
            SegmentErrorKind::Os => "could not be used: the operating system refused",
        })
    }
}

/// The longest segment name, in bytes (the kit adds the leading `/`).
pub(crate) const MAX_NAME: usize = 250;

/// Why a segment could not be created, opened or validated, with everything needed
/// to say so in words: the segment's name, both type names, the sizes or versions
/// that differed.
///
/// Returned by [`Shared`](crate::Shared)'s constructors. It is `Copy` and owns no
/// heap memory (about 600 bytes, returned only on these cold paths); `?` converts it
/// into the kit's small [`Error`], which keeps the kind and the start of the name.
///
/// # Examples
///
/// ```
/// use shmkit::{SegmentErrorKind, Shared};
///
/// let err = Shared::<u64>::open("shmkit-doc-never-created").unwrap_err();
/// assert_eq!(err.kind(), SegmentErrorKind::NotFound);
/// assert_eq!(err.name(), "shmkit-doc-never-created");
/// assert!(err.to_string().starts_with("segment \"shmkit-doc-never-created\" does not exist"));
/// ```
#[derive(Clone, Copy)]
pub struct SegmentError {
    kind: SegmentErrorKind,
    errno: i32,
    name_len: u8,
    name: [u8; MAX_NAME],
    expected: u64,
    found: u64,
    expected_type: TypeName,
    found_type: TypeName,
    creator: u32,
}

impl SegmentError {
    /// An error of `kind` about the segment `name` (`""` for anonymous).
    pub(crate) fn new(kind: SegmentErrorKind, name: &str) -> SegmentError {
        let mut buf = [0u8; MAX_NAME];
        let mut len = name.len().min(MAX_NAME);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        buf[..len].copy_from_slice(&name.as_bytes()[..len]);
        SegmentError {
            kind,
            errno: 0,
            name_len: len as u8,
            name: buf,
            expected: 0,
            found: 0,
            expected_type: TypeName::new(),
            found_type: TypeName::new(),
            creator: 0,
        }
    }

    /// From a system call's errno: the common ones get a kind of their own.
    pub(crate) fn os(errno: rustix::io::Errno, name: &str) -> SegmentError {
        use rustix::io::Errno;
        let kind = match errno {
            Errno::EXIST => SegmentErrorKind::AlreadyExists,
            Errno::NOENT => SegmentErrorKind::NotFound,
            Errno::INVAL | Errno::NAMETOOLONG => SegmentErrorKind::InvalidName,
            Errno::ACCESS | Errno::PERM => SegmentErrorKind::PermissionDenied,
            Errno::NOSPC | Errno::NOMEM => SegmentErrorKind::NoSpace,
            _ => SegmentErrorKind::Os,
        };
        let mut e = SegmentError::new(kind, name);
        e.errno = errno.raw_os_error();
        e
    }

    /// The same error with another kind.
    pub(crate) fn with_kind(mut self, kind: SegmentErrorKind) -> SegmentError {
        self.kind = kind;
        self
    }

    /// Records the numbers that differed.
    pub(crate) fn with_numbers(mut self, expected: u64, found: u64) -> SegmentError {
        self.expected = expected;
        self.found = found;
        self
    }

    /// Records the two type names.
    pub(crate) fn types(mut self, expected: TypeName, found: TypeName) -> SegmentError {
        self.expected_type = expected;
        self.found_type = found;
        self
    }

    /// Records the creator's participant id.
    pub(crate) fn creator(mut self, id: u32) -> SegmentError {
        self.creator = id;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> SegmentErrorKind {
        self.kind
    }

    /// The segment's name; empty for an anonymous segment.
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len as usize]).unwrap_or("")
    }

    /// The raw `errno`, for kinds that came from a system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        (self.errno != 0).then_some(self.errno)
    }

    /// For [`WrongType`](SegmentErrorKind::WrongType): the type this program asked for.
    pub fn expected_type(&self) -> Option<&str> {
        (self.kind == SegmentErrorKind::WrongType).then(|| self.expected_type.as_str())
    }

    /// For [`WrongType`](SegmentErrorKind::WrongType): the type the segment holds.
    pub fn found_type(&self) -> Option<&str> {
        (self.kind == SegmentErrorKind::WrongType).then(|| self.found_type.as_str())
    }

    /// The numbers that differed, as `(expected, found)`: sizes in bytes for
    /// [`WrongSize`](SegmentErrorKind::WrongSize); `(0, magic)` for
    /// [`BadMagic`](SegmentErrorKind::BadMagic); for
    /// [`VersionMismatch`](SegmentErrorKind::VersionMismatch), the header layout
    /// version in the high 32 bits and shmkit's `major << 16 | minor` in the low ones.
    pub fn numbers(&self) -> (u64, u64) {
        (self.expected, self.found)
    }

    /// The participant id of the segment's creator, where the error is about it
    /// ([`NotReady`](SegmentErrorKind::NotReady)); 0 if unknown.
    pub fn creator_id(&self) -> u32 {
        self.creator
    }
}

fn write_segment(f: &mut fmt::Formatter<'_>, name: &str, truncated: bool) -> fmt::Result {
    if name.is_empty() {
        return f.write_str("anonymous segment");
    }
    write!(f, "segment {name:?}")?;
    if truncated {
        f.write_str("…")?;
    }
    Ok(())
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::segment::KitVersion;
        write_segment(f, self.name(), false)?;
        f.write_str(" ")?;
        match self.kind {
            SegmentErrorKind::BadMagic => write!(
                f,
                "is not a shmkit segment (it starts with {:#018x})",
                self.found
            ),
            SegmentErrorKind::VersionMismatch => {
                let (eh, ek) = ((self.expected >> 32) as u32, self.expected as u32);
                let (fh, fk) = ((self.found >> 32) as u32, self.found as u32);
                if eh != fh {
                    write!(
                        f,
                        "has header layout version {fh}; this build of shmkit reads \
                         version {eh} (rebuild both programs with the same shmkit)"
                    )
                } else {
                    write!(
                        f,
                        "was made by shmkit {}, this is shmkit {} (rebuild both programs \
                         with the same shmkit major.minor version)",
                        KitVersion(fk),
                        KitVersion(ek)
                    )
                }
            }
            SegmentErrorKind::WrongType => {
                if self.expected_type == self.found_type {
                    write!(
                        f,
                        "holds a `{}` whose layout differs from this program's `{}` (the \
                         two programs were built from different definitions of the type)",
                        self.found_type, self.expected_type
                    )
                } else {
                    write!(
                        f,
                        "holds a `{}`, not a `{}` (open it with the type its creator used)",
                        self.found_type, self.expected_type
                    )
                }
            }
            SegmentErrorKind::WrongSize => write!(
                f,
                "is {} bytes, but its type needs {} (truncated or resized by another \
                 program?)",
                self.found, self.expected
            ),
            SegmentErrorKind::NotReady if self.creator != 0 => write!(
                f,
                "did not become ready in time (its creator, participant {}, is still \
                 initialising it or died doing so)",
                self.creator
            ),
            kind => kind.describe(f),
        }?;
        if self.errno != 0 {
            write!(f, " (os error {})", self.errno)?;
        }
        Ok(())
    }
}

impl fmt::Debug for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SegmentError");
        d.field("kind", &self.kind).field("name", &self.name());
        if self.errno != 0 {
            d.field("errno", &self.errno);
        }
        if self.kind == SegmentErrorKind::WrongType {
            d.field("expected_type", &self.expected_type)
                .field("found_type", &self.found_type);
        }
        if self.expected != 0 || self.found != 0 {
            d.field("expected", &self.expected)
                .field("found", &self.found);
        }
        d.finish()
    }
}

impl PartialEq for SegmentError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.errno == other.errno
            && self.name() == other.name()
            && self.expected == other.expected
            && self.found == other.found
            && self.expected_type == other.expected_type
            && self.found_type == other.found_type
            && self.creator == other.creator
    }
}

impl Eq for SegmentError {}

impl core::error::Error for SegmentError {}

#[cfg(feature = "std")]
impl From<SegmentError> for std::io::Error {
    fn from(e: SegmentError) -> Self {
        let text = std::string::ToString::to_string(&e);
        let kind = std::io::Error::from(Error::from(e)).kind();
        std::io::Error::new(kind, text)
    }
}

/// The first [`SegmentName::MAX`] bytes of a segment's name, kept inside the small
/// [`Error`]. Prints as a string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentName {
    len: u8,
    buf: [u8; SegmentName::MAX],
}

impl SegmentName {
    /// How many bytes of the name an [`Error`] keeps.
    pub const MAX: usize = 27;

    /// The first [`SegmentName::MAX`] bytes of `name` (cut at a character boundary).
    pub fn new(name: &str) -> SegmentName {
        let mut len = name.len().min(Self::MAX);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let mut buf = [0u8; Self::MAX];
        buf[..len].copy_from_slice(&name.as_bytes()[..len]);
        // The top bit of `len` marks a cut name.
        let cut = if len < name.len() { 0x80 } else { 0 };
        SegmentName {
            len: len as u8 | cut,
            buf,
        }
    }

    /// The kept part of the name.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..(self.len & 0x7F) as usize]).unwrap_or("")
    }

    /// Was the name longer than what is kept?
    pub fn is_truncated(&self) -> bool {
        self.len & 0x80 != 0
    }
}

impl fmt::Debug for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_truncated() {
            write!(f, "\"{}…\"", self.as_str().escape_debug())
        } else {
            fmt::Debug::fmt(self.as_str(), f)
        }
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.is_truncated() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

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

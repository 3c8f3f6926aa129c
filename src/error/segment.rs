//! [`SegmentError`]: what went wrong creating or opening a segment, in words.

use core::fmt;

#[cfg(feature = "std")]
use super::Error;
use crate::fingerprint::TypeName;

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
    /// Made by a process that identifies its participants in another participant
    /// registry (another user, or another `SHMKIT_REGISTRY`): its lock owners and
    /// claims would be read against the wrong table.
    ForeignRegistry,
    /// Another system call failed; see the errno.
    Os,
}

impl SegmentErrorKind {
    /// A short description with what to do about it.
    pub(super) fn describe(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
            SegmentErrorKind::ForeignRegistry => {
                "was made under another participant registry (run both programs as the same \
                 user, with the same SHMKIT_REGISTRY)"
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
    pub(super) kind: SegmentErrorKind,
    pub(super) errno: i32,
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
        let (len, _) = crate::text::copy_text(name, &mut buf);
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

pub(super) fn write_segment(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    truncated: bool,
) -> fmt::Result {
    if name.is_empty() {
        return f.write_str("anonymous segment");
    }
    write!(f, "segment {name:?}")?;
    crate::text::ellipsis(f, truncated)
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::fingerprint::KitVersion;
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
        let mut buf = [0u8; Self::MAX];
        let (len, cut) = crate::text::copy_text(name, &mut buf);
        // The top bit of `len` marks a cut name.
        let cut = if cut { 0x80 } else { 0 };
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
        crate::text::ellipsis(f, self.is_truncated())
    }
}

//! Looking at segments from outside, for tools: what `shmkit ls`, `shmkit inspect` and
//! `shmkit clean` (the `shmkit-cli` crate) are built on.
//!
//! - [`Segment::open`] maps a named segment (`/dev/shm/NAME`) **read-only**, without
//!   taking any lock and without ever blocking, and validates its header.
//! - [`Segment::state`] decodes the live state of the value, if its type is one of the
//!   kit's own: a queue's depth and claims, a pipe's bytes queued per direction and
//!   end owners, a lock's holder, a semaphore's permits, the sleepers on every
//!   notifier. Each type's layout is known here through the type itself
//!   (`core::mem::offset_of!` on its real fields), so a layout change moves the
//!   decoder with it, or breaks the build.
//! - Participant ids found in a segment (holders, owners, claimers) are judged by the
//!   participant registry ([`Participant`]), never by pid; the pid the registry
//!   recorded is shown for people only.
//! - [`mappers`] tells which processes map a segment (from `/proc/*/maps`), and
//!   [`clean`] removes a segment whose creator is dead and that nobody maps, following
//!   the kit's replacement protocol.
//!
//! Everything read from a segment can be anything (a scribbled, truncated or foreign
//! file): every word is read once, atomically, inside bounds, and validated; what no
//! correct run writes is reported as [`Corrupted`], never a panic, an out-of-bounds
//! read or a loop without bound. Reads are snapshots: a segment in use changes while
//! it is read, so two numbers of one state may come from slightly different instants.
//!
//! ```
//! use shmkit::inspect::{Segment, State};
//! use shmkit::{Semaphore, Shared};
//!
//! let name = format!("shmkit-doc-inspect-mod-{}", std::process::id());
//! let sem = Shared::create(&name, Semaphore::new(3))?;
//! sem.acquire();
//! let seg = Segment::open(&name).unwrap();
//! match seg.state().unwrap() {
//!     State::Semaphore(s) => assert_eq!(s.value, 2),
//!     other => panic!("{other:?}"),
//! }
//! # drop(sem);
//! # Ok::<(), shmkit::Error>(())
//! ```

use core::fmt;
use core::ptr::NonNull;

use std::string::String;
use std::vec::Vec;

use rustix::fd::OwnedFd;
use rustix::io::Errno;

use crate::fingerprint::KIT_VERSION;
use crate::segment::header::{
    HEADER_SIZE, HeaderPtr, LAYOUT_VERSION, MAGIC, STATE_INITIALIZING, STATE_READY,
};
use crate::segment::{Kind, SegmentInfo};
use crate::sys;

mod barrier;
mod clean;
mod condvar;
mod event;
mod lock;
mod mappers;
mod participant;
mod pipe;
mod queue;
mod semaphore;
mod sleepers;
mod view;

pub use barrier::BarrierState;
pub use clean::{Cleaned, Kept, clean};
pub use condvar::CondvarState;
pub use event::EventState;
pub use lock::{Contents, LockState, Scalar};
pub use mappers::{Mappers, mappers};
pub use participant::{Liveness, Participant};
pub use pipe::{PipeDirection, PipeEnd, PipeState};
pub use queue::{Claim, ClaimSide, QueueState};
pub use semaphore::SemaphoreState;
pub use sleepers::Sleepers;
pub use view::Corrupted;

use participant::Judge;
use view::{View, corrupt};

/// What the decoders need besides the bytes.
pub(crate) struct Ctx {
    judge: Judge,
    stamp_now: u32,
}

/// The live state of a segment's value, as [`Segment::state`] decodes it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum State {
    /// A `Queue` or `JoinableQueue`.
    Queue(QueueState),
    /// A `Pipe`.
    Pipe(PipeState),
    /// A `Mutex`, `ReentrantMutex`, `Value` or `Array` (see the header's kind).
    Lock(LockState),
    /// A `Semaphore` or `BoundedSemaphore`.
    Semaphore(SemaphoreState),
    /// An `Event`.
    Event(EventState),
    /// A `Barrier`.
    Barrier(BarrierState),
    /// A `Condvar`.
    Condvar(CondvarState),
    /// A primitive or an atomic (`u64`, `AtomicU32`, ...): its value.
    Plain(Scalar),
    /// Nothing is decoded beyond the header; the reason says why (a user's own type,
    /// the kit's internal plumbing, a kind or a shmkit version this build does not
    /// know).
    HeaderOnly(&'static str),
}

/// The `(device, inode)` pair that names a segment's object (not its name): what
/// `/proc/*/maps` shows for every mapping of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// Why a segment could not be opened for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// Not a valid segment name (1 to 250 bytes, without `/` or NUL).
    InvalidName,
    /// No such object in `/dev/shm`.
    NotFound,
    /// Not readable by this user.
    PermissionDenied,
    /// A directory, FIFO, socket, device or symbolic link, not a shared-memory object.
    NotAFile,
    /// Another program holds a lease on it (opening would wait): try again.
    Busy,
    /// Zero bytes: a segment being created this instant, or one whose creator died
    /// before sizing it.
    Empty,
    /// Smaller than a segment header.
    TooSmall {
        /// The object's size in bytes.
        size: u64,
    },
    /// The participant registry (`shmkit-registry-<uid>`), not a segment.
    Registry,
    /// Does not start with shmkit's magic number.
    NotShmkit {
        /// The first eight bytes, little-endian.
        magic: u64,
    },
    /// The header is not complete yet (or never will be).
    Creating {
        /// The creator, if it has recorded itself; a dead one abandoned it.
        creator: Option<Participant>,
    },
    /// Made with another header layout version: nothing past the first 16 bytes can
    /// be read.
    Version {
        /// The version found.
        found: u32,
    },
    /// Shorter than its header says (truncated by someone).
    Truncated {
        /// The size the header records.
        expected: u64,
        /// The object's size.
        size: u64,
    },
    /// A header field failed validation.
    BadHeader(String),
    /// Another system error (the errno).
    Os(i32),
}

impl OpenError {
    fn from_errno(e: Errno) -> OpenError {
        match e {
            Errno::NOENT => OpenError::NotFound,
            Errno::ACCESS | Errno::PERM => OpenError::PermissionDenied,
            Errno::LOOP | Errno::NOTDIR | Errno::ISDIR | Errno::NXIO => OpenError::NotAFile,
            Errno::WOULDBLOCK => OpenError::Busy,
            Errno::INVAL | Errno::NAMETOOLONG => OpenError::InvalidName,
            e => OpenError::Os(e.raw_os_error()),
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::InvalidName => {
                f.write_str("not a valid segment name (1 to 250 bytes, without '/')")
            }
            OpenError::NotFound => f.write_str("no such segment in /dev/shm"),
            OpenError::PermissionDenied => f.write_str(
                "permission denied (segments are created with mode 0600: run as their owner)",
            ),
            OpenError::NotAFile => f.write_str("not a shared-memory object (not a regular file)"),
            OpenError::Busy => f.write_str("another program holds a lease on it: try again"),
            OpenError::Empty => f.write_str(
                "empty: a segment being created right now, or one whose creator died before \
                 sizing it",
            ),
            OpenError::TooSmall { size } => write!(
                f,
                "{size} bytes: too small to be a shmkit segment (the header is {HEADER_SIZE})"
            ),
            OpenError::Registry => f.write_str("the participant registry, not a segment"),
            OpenError::NotShmkit { magic } => write!(
                f,
                "not a shmkit segment (it starts with {:?})",
                DisplayMagic(*magic)
            ),
            OpenError::Creating { creator } => match creator {
                Some(p) if p.liveness == Liveness::Dead => write!(
                    f,
                    "abandoned: its creator (participant {}) died while creating it",
                    p.id
                ),
                Some(p) => {
                    write!(f, "still being created by participant {}", p.id)?;
                    if let Some(pid) = p.pid {
                        write!(f, " (pid {pid})")?;
                    }
                    Ok(())
                }
                None => f.write_str("still being created (its header is not written yet)"),
            },
            OpenError::Version { found } => write!(
                f,
                "made with segment header layout version {found}; this tool reads version \
                 {LAYOUT_VERSION}"
            ),
            OpenError::Truncated { expected, size } => write!(
                f,
                "truncated: its header says {expected} bytes, the object has {size}"
            ),
            OpenError::BadHeader(what) => write!(f, "header corrupted: {what}"),
            OpenError::Os(e) => write!(
                f,
                "cannot be read: {}",
                std::io::Error::from_raw_os_error(*e)
            ),
        }
    }
}

impl core::error::Error for OpenError {}

/// Eight bytes shown as text where they are printable, as hex escapes where not.
struct DisplayMagic(u64);

impl fmt::Debug for DisplayMagic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("b\"")?;
        for b in self.0.to_le_bytes() {
            for c in core::ascii::escape_default(b) {
                f.write_str(core::str::from_utf8(&[c]).unwrap_or("?"))?;
            }
        }
        f.write_str("\"")
    }
}

/// A segment mapped read-only for inspection. Unmapped on drop.
pub struct Segment {
    base: NonNull<u8>,
    map_len: usize,
    /// The object's size when it was opened.
    size: u64,
    info: SegmentInfo,
    object: Option<ObjectId>,
    /// Kept open to notice a truncation before reading (`fstat`).
    fd: Option<OwnedFd>,
    judge: Judge,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("info", &self.info)
            .field("object", &self.object)
            .finish()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: our own mapping of `map_len` bytes; nothing borrows from it past
        // `&self` methods, which cannot outlive the drop.
        unsafe { sys::mem::unmap(self.base, self.map_len) };
    }
}

impl Segment {
    /// Opens the named segment `/dev/shm/NAME` read-only (`O_RDONLY | O_NONBLOCK |
    /// O_NOFOLLOW`, then a `PROT_READ` mapping) and validates its header: magic, header
    /// layout version, READY, sizes and offsets. Takes no lock and writes nothing.
    ///
    /// # Errors
    ///
    /// An [`OpenError`] saying what the object is instead (not found, not ours,
    /// being created, truncated, ...).
    pub fn open(name: &str) -> Result<Segment, OpenError> {
        if name.is_empty() || name.len() > 250 || name.contains(['/', '\0']) {
            return Err(OpenError::InvalidName);
        }
        let fd = sys::tools::open_shm_readonly_nonblocking(name).map_err(OpenError::from_errno)?;
        let st = sys::tools::object(&fd).map_err(OpenError::from_errno)?;
        if !st.regular {
            return Err(OpenError::NotAFile);
        }
        let size = st.size;
        if size == 0 {
            return Err(OpenError::Empty);
        }
        if size > isize::MAX as u64 {
            return Err(OpenError::BadHeader(std::format!(
                "an object of {size} bytes"
            )));
        }
        let base = sys::mem::map_fd_readonly(&fd, size as usize).map_err(OpenError::from_errno)?;
        let judge = |registry| Judge::for_registry(registry);
        let mut seg = Segment {
            base,
            map_len: size as usize,
            size,
            info: empty_info(),
            object: Some(ObjectId {
                dev: st.dev,
                ino: st.ino,
            }),
            fd: Some(fd),
            judge: Judge::blind(),
        };
        seg.read_header(judge)?;
        Ok(seg)
    }

    /// Inspects `bytes` as if they were a segment's object (a copy kept in memory of
    /// its own): for tests and fuzzing of the decoders. Participant ids are not judged
    /// (every one is [`Liveness::Unknown`]).
    ///
    /// # Errors
    ///
    /// As [`Segment::open`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Segment, OpenError> {
        if bytes.is_empty() {
            return Err(OpenError::Empty);
        }
        let len = bytes.len().next_multiple_of(sys::mem::page_size());
        let base = sys::mem::map_anonymous(len).map_err(OpenError::from_errno)?;
        // SAFETY: a fresh private mapping of `len >= bytes.len()` bytes that nothing
        // else refers to yet.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), base.as_ptr(), bytes.len()) };
        let mut seg = Segment {
            base,
            map_len: len,
            size: bytes.len() as u64,
            info: empty_info(),
            object: None,
            fd: None,
            judge: Judge::blind(),
        };
        seg.read_header(|_| Judge::blind())?;
        Ok(seg)
    }

    /// The whole object as a window.
    fn view(&self) -> View<'_> {
        // SAFETY: our mapping stays while `self` does; it is read-only (or our own
        // copy), and written only by other processes.
        unsafe { View::new(self.base, self.size as usize) }
    }

    /// Reads and validates the header (see `segment::header`'s protocol).
    fn read_header(&mut self, judge: impl Fn(u64) -> Judge) -> Result<(), OpenError> {
        let view = self.view();
        let size = self.size;
        let magic = if size >= 8 {
            view.u64(0).map_err(|e| OpenError::BadHeader(e.0))?
        } else {
            0
        };
        if magic == sys::registry::MAGIC {
            return Err(OpenError::Registry);
        }
        if size < HEADER_SIZE as u64 {
            return Err(if magic == MAGIC {
                OpenError::Truncated {
                    expected: HEADER_SIZE as u64,
                    size,
                }
            } else {
                OpenError::TooSmall { size }
            });
        }
        // SAFETY: the mapping is page-aligned and at least HEADER_SIZE long, and stays
        // while `self` does.
        let header = unsafe { HeaderPtr::new(self.base) };
        // SYNC POINT with the Release store of READY in `Shared::initialise`.
        let state = header.state().load(core::sync::atomic::Ordering::Acquire);
        let creator = header
            .creator_id()
            .load(core::sync::atomic::Ordering::Relaxed);
        let magic = header.magic_relaxed();
        if state != STATE_READY {
            if state == STATE_INITIALIZING || (state == 0 && (magic == MAGIC || magic == 0)) {
                let creator = (creator != 0).then(|| judge(0).participant(creator));
                return Err(OpenError::Creating { creator });
            }
            if magic == MAGIC {
                return Err(OpenError::BadHeader(std::format!("state word {state:#x}")));
            }
        }
        if magic != MAGIC {
            return Err(OpenError::NotShmkit { magic });
        }
        let h = header.snapshot();
        if h.version != LAYOUT_VERSION {
            return Err(OpenError::Version { found: h.version });
        }
        if h.size > size {
            return Err(OpenError::Truncated {
                expected: h.size,
                size,
            });
        }
        let bad = |what: String| Err(OpenError::BadHeader(what));
        if h.size != size {
            return bad(std::format!(
                "it says {} bytes, the object has {size}",
                h.size
            ));
        }
        if h.value_offset < HEADER_SIZE as u64 || h.value_offset % 64 != 0 {
            return bad(std::format!("value offset {}", h.value_offset));
        }
        if h.value_offset
            .checked_add(h.value_size)
            .is_none_or(|end| end > size)
        {
            return bad(std::format!(
                "a value of {} bytes at offset {} runs past the end ({size} bytes)",
                h.value_size,
                h.value_offset
            ));
        }
        self.info = SegmentInfo::from_snapshot(&h, size);
        self.judge = judge(h.registry);
        Ok(())
    }

    /// What the header says.
    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    /// The object's `(device, inode)` (`None` for [`Segment::from_bytes`]).
    pub fn object(&self) -> Option<ObjectId> {
        self.object
    }

    /// The addresses of this process's read-only mapping of the object: for a tool
    /// that absorbs `SIGBUS` there (another process truncating the object while it is
    /// read).
    pub fn mapped_range(&self) -> core::ops::Range<usize> {
        let start = self.base.as_ptr() as usize;
        start..start + self.map_len
    }

    /// The creator, judged by the participant registry (if it recorded itself).
    pub fn creator(&self) -> Option<Participant> {
        (self.info.creator_id != 0).then(|| self.judge.participant(self.info.creator_id))
    }

    /// Decodes the value's live state now (see the module docs). Call it again for a
    /// fresh snapshot.
    ///
    /// # Errors
    ///
    /// [`Corrupted`] if a word holds what no correct run writes, or if the object was
    /// truncated since it was opened.
    pub fn state(&self) -> Result<State, Corrupted> {
        if let Some(fd) = &self.fd {
            match sys::tools::object(fd) {
                Ok(st) if st.size < self.size => corrupt!(
                    "truncated to {} bytes (from {}) while being inspected",
                    st.size,
                    self.size
                ),
                _ => {}
            }
        }
        let info = &self.info;
        let value = self
            .view()
            .sub(info.value_offset as usize, info.value_size as usize)?;
        let ctx = Ctx {
            judge: self.judge,
            stamp_now: sleepers::stamp_now(),
        };
        let Some(kind) = info.kind else {
            return Ok(State::HeaderOnly(
                "a kind this build of shmkit does not know (a newer shmkit?)",
            ));
        };
        let kit = matches!(kind, Kind::User | Kind::Plain | Kind::Internal);
        if !kit
            && KIT_VERSION != (u32::from(info.kit_version.0) << 16 | u32::from(info.kit_version.1))
        {
            return Ok(State::HeaderOnly(
                "made by another shmkit major.minor version, whose layouts this tool does not read",
            ));
        }
        let name = info.type_name.as_str();
        Ok(match kind {
            Kind::User => State::HeaderOnly("a user type: the header is all shmkit knows of it"),
            Kind::Internal => State::HeaderOnly("the kit's internal plumbing"),
            Kind::Plain => match lock::plain(&value, name)? {
                Some(v) => State::Plain(v),
                None => State::HeaderOnly("a plain array or unit"),
            },
            Kind::Queue => State::Queue(queue::decode(&value, info, false, &ctx)?),
            Kind::JoinableQueue => State::Queue(queue::decode(&value, info, true, &ctx)?),
            Kind::Pipe => State::Pipe(pipe::decode(&value, name, &ctx)?),
            Kind::Mutex => State::Lock(lock::mutex(&value, &ctx)?),
            Kind::ReentrantMutex => State::Lock(lock::reentrant(&value, &ctx)?),
            Kind::Value => State::Lock(lock::cell(&value, name, false, &ctx)?),
            Kind::Array => State::Lock(lock::cell(&value, name, true, &ctx)?),
            Kind::Semaphore => State::Semaphore(semaphore::decode(&value, false, ctx.stamp_now)?),
            Kind::BoundedSemaphore => {
                State::Semaphore(semaphore::decode(&value, true, ctx.stamp_now)?)
            }
            Kind::Condvar => State::Condvar(condvar::decode(&value, ctx.stamp_now)?),
            Kind::Event => State::Event(event::decode(&value, ctx.stamp_now)?),
            Kind::Barrier => State::Barrier(barrier::decode(&value, ctx.stamp_now)?),
        })
    }
}

/// Placeholder info until the header is read (never handed out).
fn empty_info() -> SegmentInfo {
    SegmentInfo {
        kind: None,
        raw_kind: 0,
        type_name: crate::segment::TypeName::new(),
        size: 0,
        value_size: 0,
        creator_id: 0,
        creator_pid: 0,
        created_ns: 0,
        kit_version: (0, 0),
        sealed: false,
        value_offset: 0,
        item_stride: 0,
        registry: 0,
    }
}

/// The generic arguments of a type name, split at the top level:
/// `shmkit::Queue<[u8; 4], 8>` gives `["[u8; 4]", "8"]`. `None` without a `<...>`.
pub(crate) fn generic_args(name: &str) -> Option<Vec<&str>> {
    let open = name.find('<')?;
    let inner = name.get(open + 1..name.len().checked_sub(1)?)?;
    if !name.ends_with('>') {
        return None;
    }
    let mut args = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '<' | '[' | '(' => depth += 1,
            '>' | ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                args.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    args.push(inner[start..].trim());
    Some(args)
}

#[cfg(test)]
mod tests;

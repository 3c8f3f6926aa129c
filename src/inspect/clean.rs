//! Removing a segment left behind by a dead creator that nobody uses any more.
//!
//! A segment is removed only when all of these hold, checked in this order:
//!
//! 1. It is a shmkit segment of this header layout (magic and version): anything else
//!    in `/dev/shm` — another program's object, the participant registry — is never
//!    touched.
//! 2. Its creator is **certainly dead**: the participant registry says `Dead` for the
//!    creator id recorded in the header, and the segment was made under this
//!    registry. Alive, or unknown (no id recorded, another user's or another
//!    `SHMKIT_REGISTRY`'s segment, a failed check): kept.
//! 3. We hold `flock(LOCK_EX | LOCK_NB)` on the object, as `Shared::open_or_create`
//!    does when it replaces a dead creator's segment: two cleaners, or a cleaner and a
//!    replacer, never act on the same object at once (the other one is left alone:
//!    kept, "busy").
//! 4. **Nobody holds it open or mapped.** Where the kernel can answer, it does: a
//!    write lease (`F_SETLEASE`) is granted only if no other open file description of
//!    the object exists — and a mapping keeps one alive — in any process, whatever its
//!    PID namespace or user. The lease is held until the name is gone, so a process
//!    that opens the name meanwhile waits for us, then finds nothing (and creates
//!    afresh). Where leases cannot answer (not supported, disabled, not the file's
//!    owner, or `SIGIO` not ignored in this process — a lease break would end it), the
//!    answer comes from `/proc/*/maps` instead, and only if every process's maps were
//!    readable: otherwise we cannot tell, and the segment is kept.
//! 5. The name still names the same object (same device and inode): then it is
//!    unlinked.
//!
//! iceoryx2's `remove_stale_resources` makes the same decision for its services from
//! per-service node lists; shmkit segments keep no such list, so the kernel's count of
//! open file descriptions stands in for it.

use std::string::String;
use std::vec::Vec;

use rustix::fd::OwnedFd;
use rustix::io::Errno;

use super::participant::{Judge, Liveness, Participant};
use super::{ObjectId, OpenError, mappers};
use crate::segment::header::{
    HEADER_SIZE, HeaderPtr, LAYOUT_VERSION, MAGIC, STATE_INITIALIZING, STATE_READY,
};
use crate::sys;
use crate::sys::tools::Lease;

/// What [`clean`] did with one name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cleaned {
    /// Its creator was dead and nobody used it: unlinked.
    Removed,
    /// `dry_run`: it would have been removed (every check passed, nothing changed).
    WouldRemove,
    /// Kept, for this reason.
    Kept(Kept),
}

/// Why [`clean`] kept a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kept {
    /// Not a shmkit segment of this header layout, or unreadable: never removed.
    NotOurs(OpenError),
    /// Its creator is alive.
    CreatorAlive(Participant),
    /// Whether its creator lives cannot be told (no id recorded yet, another
    /// registry, or the check failed).
    CreatorUnknown(Option<Participant>),
    /// Processes hold it open or map it (their pids, where `/proc` shows them).
    InUse {
        /// The pids found in `/proc/*/maps` (may be empty: the kernel's lease said
        /// someone holds it, and that someone is not visible here).
        pids: Vec<i32>,
    },
    /// Neither a lease nor `/proc` could tell whether someone maps it.
    CannotTell(String),
    /// Another process is replacing or cleaning it right now (holds its `flock`).
    Busy,
    /// The name was replaced (or removed) by someone else meanwhile.
    Replaced,
    /// The unlink failed.
    Failed(String),
}

impl core::fmt::Display for Kept {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Kept::NotOurs(e) => write!(f, "{e}"),
            Kept::CreatorAlive(p) => {
                write!(f, "its creator is alive (participant {}", p.id)?;
                if let Some(pid) = p.pid {
                    write!(f, ", pid {pid}")?;
                }
                f.write_str(")")
            }
            Kept::CreatorUnknown(None) => f.write_str("no creator recorded"),
            Kept::CreatorUnknown(Some(p)) => write!(
                f,
                "cannot tell whether its creator (participant {}) lives (no registry here, \
                 or the segment was made under another one)",
                p.id
            ),
            Kept::InUse { pids } if pids.is_empty() => {
                f.write_str("in use (open or mapped by a process this user cannot see)")
            }
            Kept::InUse { pids } => {
                f.write_str("in use: mapped by pid")?;
                for (i, pid) in pids.iter().enumerate() {
                    write!(f, "{}{pid}", if i == 0 { " " } else { ", " })?;
                }
                Ok(())
            }
            Kept::CannotTell(why) => write!(f, "cannot tell whether it is in use ({why})"),
            Kept::Busy => f.write_str("another process is replacing or cleaning it right now"),
            Kept::Replaced => f.write_str("replaced or removed by another process meanwhile"),
            Kept::Failed(why) => write!(f, "could not be removed: {why}"),
        }
    }
}

/// What the header says about who made the object.
struct Facts {
    creator: u32,
    registry: u64,
}

/// Reads the creator id and registry of a shmkit header of this layout version, READY
/// or still initialising (a creator that died mid-creation leaves the latter).
fn facts(fd: &OwnedFd, size: u64) -> Result<Facts, OpenError> {
    if size == 0 {
        return Err(OpenError::Empty);
    }
    if size < HEADER_SIZE as u64 {
        return Err(OpenError::TooSmall { size });
    }
    let base = sys::mem::map_fd_readonly(fd, HEADER_SIZE).map_err(OpenError::from_errno)?;
    // SAFETY: a fresh read-only mapping of HEADER_SIZE bytes, unmapped below.
    let header = unsafe { HeaderPtr::new(base) };
    // SYNC POINT with the Release stores of INITIALIZING and READY in
    // `Shared::initialise`.
    let state = header.state().load(core::sync::atomic::Ordering::Acquire);
    let magic = header.magic_relaxed();
    let creator = header
        .creator_id()
        .load(core::sync::atomic::Ordering::Relaxed);
    let snapshot = (state == STATE_READY).then(|| header.snapshot());
    // SAFETY: nothing refers into the mapping any more.
    unsafe { sys::mem::unmap(base, HEADER_SIZE) };
    if magic == sys::registry::MAGIC {
        return Err(OpenError::Registry);
    }
    match (state, snapshot) {
        (_, Some(h)) if h.magic == MAGIC => {
            if h.version != LAYOUT_VERSION {
                return Err(OpenError::Version { found: h.version });
            }
            Ok(Facts {
                creator,
                registry: h.registry,
            })
        }
        // Initialising: the creator id is written first, the rest (registry too) may
        // not be yet. The magic may not be written yet either.
        (STATE_INITIALIZING, None) if magic == MAGIC || magic == 0 => Ok(Facts {
            creator,
            registry: 0,
        }),
        (0, None) if magic == 0 => Err(OpenError::Creating { creator: None }),
        _ => Err(OpenError::NotShmkit { magic }),
    }
}

/// Removes the segment `name` if its creator is dead and nobody uses it (see the
/// module docs for every check); with `dry_run`, only says whether it would.
///
/// Never removes anything but a shmkit segment of this header layout, never the
/// participant registry, and never a segment whose creator may be alive or that a
/// process may map.
pub fn clean(name: &str, dry_run: bool) -> Cleaned {
    let kept = |k| Cleaned::Kept(k);
    if name.is_empty() || name.len() > 250 || name.contains(['/', '\0']) {
        return kept(Kept::NotOurs(OpenError::InvalidName));
    }
    let fd = match sys::tools::open_shm_readonly_nonblocking(name) {
        Ok(fd) => fd,
        Err(e) => return kept(Kept::NotOurs(OpenError::from_errno(e))),
    };
    let st = match sys::tools::object(&fd) {
        Ok(st) => st,
        Err(e) => return kept(Kept::NotOurs(OpenError::from_errno(e))),
    };
    if !st.regular {
        return kept(Kept::NotOurs(OpenError::NotAFile));
    }
    let object = ObjectId {
        dev: st.dev,
        ino: st.ino,
    };
    let facts = match facts(&fd, st.size) {
        Ok(f) => f,
        Err(e) => return kept(Kept::NotOurs(e)),
    };
    if facts.creator == 0 {
        return kept(Kept::CreatorUnknown(None));
    }
    let creator = Judge::for_registry(facts.registry).participant(facts.creator);
    match creator.liveness {
        Liveness::Dead => {}
        Liveness::Alive => return kept(Kept::CreatorAlive(creator)),
        Liveness::Unknown => return kept(Kept::CreatorUnknown(Some(creator))),
    }
    match sys::mem::try_lock_exclusive(&fd) {
        Ok(true) => {}
        Ok(false) => return kept(Kept::Busy),
        Err(e) => return kept(Kept::Failed(std::format!("flock: {e}"))),
    }
    let leased = if sys::tools::sigio_is_safe() {
        sys::tools::try_write_lease(&fd)
    } else {
        Lease::Unavailable(Errno::NOTSUP)
    };
    let outcome = match leased {
        Lease::Granted => unlink_if_same(name, object, dry_run),
        Lease::InUse => kept(Kept::InUse {
            pids: mappers().of(object).to_vec(),
        }),
        Lease::Unavailable(why) => {
            let found = mappers();
            let pids = found.of(object);
            if !pids.is_empty() {
                kept(Kept::InUse {
                    pids: pids.to_vec(),
                })
            } else if found.unreadable > 0 {
                kept(Kept::CannotTell(std::format!(
                    "no lease ({why}), and the maps of {} processes are unreadable",
                    found.unreadable
                )))
            } else {
                unlink_if_same(name, object, dry_run)
            }
        }
    };
    if leased == Lease::Granted {
        sys::tools::release_lease(&fd);
    }
    // Dropping `fd` releases the flock.
    outcome
}

/// Step 5: unlink `name` if it still names `object`.
fn unlink_if_same(name: &str, object: ObjectId, dry_run: bool) -> Cleaned {
    match sys::tools::shm_name_object(name) {
        Ok((dev, ino)) if dev == object.dev && ino == object.ino => {}
        Ok(_) | Err(Errno::NOENT) => return Cleaned::Kept(Kept::Replaced),
        Err(e) => return Cleaned::Kept(Kept::Failed(std::format!("stat: {e}"))),
    }
    if dry_run {
        return Cleaned::WouldRemove;
    }
    match sys::tools::unlink_shm(name) {
        Ok(()) => Cleaned::Removed,
        Err(Errno::NOENT) => Cleaned::Kept(Kept::Replaced),
        Err(e) => Cleaned::Kept(Kept::Failed(std::format!("unlink: {e}"))),
    }
}

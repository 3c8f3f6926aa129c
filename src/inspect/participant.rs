//! Who holds what: participant ids read from a segment, judged by the participant
//! registry (never by pid).

use crate::primitive::id_liveness;
use crate::sys::proc::Liveness as SysLiveness;

/// Whether a participant is alive, as the participant registry tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// Its process holds its registry slot's lifeline (the answer may be a moment
    /// stale).
    Alive,
    /// Certainly gone: the kernel released its lifeline, or its slot moved on.
    Dead,
    /// Cannot be told: no registry on this machine, the segment was made under another
    /// registry (another user, another `SHMKIT_REGISTRY`), or the check failed. Treat
    /// it as alive.
    Unknown,
}

impl Liveness {
    /// `"alive"`, `"dead"` or `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Alive => "alive",
            Liveness::Dead => "dead",
            Liveness::Unknown => "unknown",
        }
    }
}

impl core::fmt::Display for Liveness {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A participant id found in a segment (a lock's holder, a pipe end's owner, a queue
/// claim's claimer), with what the registry says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Participant {
    /// The participant id as stored (registry slot + generation).
    pub id: u32,
    /// Alive, dead, or unknown.
    pub liveness: Liveness,
    /// Its process's pid as the registry recorded it at claim time (in the
    /// participant's own PID namespace), while it is alive: for display only.
    pub pid: Option<i32>,
    /// Its thread's tid, for a thread participant (a lock holder), while alive.
    pub tid: Option<i32>,
}

/// How ids of one segment are judged: under this process's registry, if the segment
/// was made under it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judge {
    /// `Some(true)`: the segment's ids are ours to judge.
    registry_ours: Option<bool>,
}

/// Registry entry kind of a thread participant (see `sys::registry`).
const THREAD: u32 = 2;

impl Judge {
    /// The judge for a segment made under the registry with nonce `registry`.
    pub(crate) fn for_registry(registry: u64) -> Judge {
        let ours = crate::sys::registry::nonce_if_exists();
        Judge {
            registry_ours: ours.map(|n| registry == 0 || registry == n),
        }
    }

    /// A judge that tells nothing (every id `Unknown`): for bytes that are not a live
    /// segment (a copy, a fuzz input).
    pub(crate) fn blind() -> Judge {
        Judge {
            registry_ours: None,
        }
    }

    /// What the registry says about `id` (non-zero).
    pub(crate) fn participant(&self, id: u32) -> Participant {
        let liveness = if self.registry_ours == Some(true) {
            match id_liveness(id) {
                SysLiveness::Alive => Liveness::Alive,
                SysLiveness::Dead => Liveness::Dead,
                SysLiveness::Unknown => Liveness::Unknown,
            }
        } else {
            Liveness::Unknown
        };
        let (mut pid, mut tid) = (None, None);
        if liveness == Liveness::Alive {
            if let Some((kind, p, t, _parent)) = crate::sys::registry::describe(id) {
                pid = Some(p);
                tid = (kind == THREAD).then_some(t);
            }
        }
        Participant {
            id,
            liveness,
            pid,
            tid,
        }
    }
}

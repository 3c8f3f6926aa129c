//! One worker's [`Slot`], a shared segment made before the zygote is forked: the
//! worker's [`Life`] record, through which the zygote and the parent agree on which
//! process serves the slot, and the worker's [`Mailbox`].
//!
//! The parent never forks, waits for or signals a worker itself: workers are children
//! of the zygote, which alone reaps them (a pid is only ever used by the process that
//! can reap it, so it always names the right process). The parent asks for a worker by
//! setting the slot's state to `REQUESTED`; the zygote forks one and publishes its pid
//! (for display: `Pool::worker_pids`, `PoolError::WorkerDied`) as `LIVE`; when it
//! reaps it, it publishes how it ended as `DEAD`:
//!
//! ```text
//! state      value  owner   meaning                               next
//! EMPTY        0    parent  no worker, none asked for             parent -> REQUESTED
//! REQUESTED    1    zygote  the parent wants a worker here        zygote forks -> LIVE,
//!                                                                 or cannot -> FAILED
//! LIVE         2    zygote  a worker runs here; `pid` is its pid  zygote reaps -> DEAD
//! DEAD         3    parent  it was reaped; `exit` says how it     parent accounts, resets
//!                           ended                                 the mailbox -> REQUESTED
//! FAILED       4    parent  no fork possible; `exit` is errno     parent ends the pool
//! ```
//!
//! Each hand-over is a Release store of `state` paired with the other side's Acquire
//! load. The zygote's reap of a dead worker (`waitpid`) comes after everything that
//! worker wrote, so a parent that sees `DEAD` sees the worker's last writes to its
//! mailbox too.

use super::mailbox::Mailbox;
use crate::primitive::{AtomicU32, Ordering};
use crate::process::ExitStatus;
use crate::segment::ShmSafe;

/// See the module docs' state table.
pub(crate) const EMPTY: u32 = 0;
/// See the module docs' state table.
pub(crate) const REQUESTED: u32 = 1;
/// See the module docs' state table.
pub(crate) const LIVE: u32 = 2;
/// See the module docs' state table.
pub(crate) const DEAD: u32 = 3;
/// See the module docs' state table.
pub(crate) const FAILED: u32 = 4;

/// `exit`: set for a worker killed by a signal (the low byte is the signal).
const SIGNALED: u32 = 0x100;

/// A worker's life record. All-zero bytes are an `EMPTY` one.
///
/// ```text
/// offset size field  written by
///      0    4 state  both, per the state table
///      4    4 kill   parent: 1 = the zygote should SIGKILL this slot's worker
///      8    4 pid    zygote, before LIVE: the worker's pid (for display)
///     12    4 exit   zygote, before DEAD: code | SIGNALED + signal; before FAILED: errno
///     16   48 (padding to one line)
/// ```
#[repr(C)]
pub struct Life {
    state: AtomicU32,
    kill: AtomicU32,
    pid: AtomicU32,
    exit: AtomicU32,
    _pad: [u8; 48],
}

/// What the parent read in a [`Life`], validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// No worker, none asked for.
    Empty,
    /// Asked for; the zygote has not answered yet.
    Requested,
    /// A worker runs with this pid.
    Live(i32),
    /// The worker with this pid was reaped; how it ended (`None`: the record was
    /// scribbled).
    Dead(i32, Option<ExitStatus>),
    /// The zygote could not fork: this errno.
    Failed(i32),
    /// The state word holds no state: the record was scribbled.
    Corrupt,
}

impl Life {
    /// Parent: what the record says now.
    pub(crate) fn seen(&self) -> Seen {
        // SYNC POINT with the Release stores of LIVE, DEAD and FAILED by the zygote
        // (`born`, `died`, `failed`): `pid` and `exit` were written before them.
        let state = self.state.load(Ordering::Acquire);
        let pid = self.pid.load(Ordering::Relaxed) as i32;
        let exit = self.exit.load(Ordering::Relaxed);
        match state {
            EMPTY => Seen::Empty,
            REQUESTED => Seen::Requested,
            LIVE => Seen::Live(pid),
            DEAD => Seen::Dead(pid, decode_exit(exit)),
            FAILED => Seen::Failed(exit as i32),
            _ => Seen::Corrupt,
        }
    }

    /// Parent, state `EMPTY` or `DEAD` (the mailbox reset for the newcomer): asks the
    /// zygote for a worker here. The caller then rings the zygote's doorbell.
    pub(crate) fn request(&self) {
        self.kill.store(0, Ordering::Relaxed);
        // SYNC POINT with the Acquire load in `requested`: the reset mailbox (and the
        // cleared `kill`) are visible to the zygote, and through its fork to the worker.
        self.state.store(REQUESTED, Ordering::Release);
    }

    /// Parent: asks the zygote to kill this slot's worker (a retiring worker that does
    /// not leave, a worker that scribbled its mailbox). The caller rings the doorbell.
    pub(crate) fn ask_kill(&self) {
        // Relaxed: the doorbell (a system call) carries it to the zygote, which only
        // acts on it for a worker it still has, and reports the death as usual.
        self.kill.store(1, Ordering::Relaxed);
    }

    /// Zygote: is a worker asked for here?
    pub(crate) fn requested(&self) -> bool {
        // SYNC POINT with the Release store in `request`.
        self.state.load(Ordering::Acquire) == REQUESTED
    }

    /// Zygote: has the parent asked for this slot's worker to be killed?
    pub(crate) fn kill_asked(&self) -> bool {
        self.kill.load(Ordering::Relaxed) != 0
    }

    /// Zygote, state `REQUESTED`: worker `pid` was forked for this slot.
    pub(crate) fn born(&self, pid: i32) {
        self.pid.store(pid as u32, Ordering::Relaxed);
        self.exit.store(0, Ordering::Relaxed);
        // SYNC POINT with the Acquire load in `seen`.
        self.state.store(LIVE, Ordering::Release);
    }

    /// Zygote, state `LIVE`: the worker was reaped; it ended as `status`.
    pub(crate) fn died(&self, status: ExitStatus) {
        self.exit.store(encode_exit(status), Ordering::Relaxed);
        // SYNC POINT with the Acquire load in `seen`.
        self.state.store(DEAD, Ordering::Release);
    }

    /// Zygote, state `REQUESTED`: no worker could be forked (`errno`).
    pub(crate) fn failed(&self, errno: i32) {
        self.exit.store(errno as u32, Ordering::Relaxed);
        // SYNC POINT with the Acquire load in `seen`.
        self.state.store(FAILED, Ordering::Release);
    }
}

fn encode_exit(status: ExitStatus) -> u32 {
    match status {
        ExitStatus::Exited(code) => (code as u32) & 0xff,
        ExitStatus::Signaled(sig) => SIGNALED | ((sig as u32) & 0xff),
    }
}

/// `None` for a word `encode_exit` never writes.
fn decode_exit(word: u32) -> Option<ExitStatus> {
    match (word & SIGNALED != 0, word & 0xff) {
        _ if word > (SIGNALED | 0xff) => None,
        (true, sig @ 1..=64) => Some(ExitStatus::Signaled(sig as i32)),
        (true, _) => None,
        (false, code) => Some(ExitStatus::Exited(code as i32)),
    }
}

/// One worker's shared segment. All-zero bytes are a valid slot (`EMPTY`, `IDLE`).
///
/// ```text
/// offset  size  field
///      0    64  life     the zygote <-> parent record (see the module docs)
///     64     …  mailbox  the parent <-> worker hand-over (see `mailbox`)
/// ```
#[repr(C)]
pub struct Slot {
    pub(crate) life: Life,
    pub(crate) mailbox: Mailbox,
}

crate::layout::pin_layout!(Life { state: 0, kill: 4, pid: 8, exit: 12, _pad: 16 }, size 64);
crate::layout::pin_layout!(Slot { life: 0, mailbox: 64 }, size 64 + core::mem::size_of::<Mailbox>());

// SAFETY: repr(C) of two ShmSafe parts: `Life` is four atomics and padding (every bit
// pattern is decoded by `seen`), `Mailbox` is ShmSafe; no pointers, no Drop.
unsafe impl ShmSafe for Slot {
    crate::segment::kit_identity!(Internal, 1, "shmkit::pool::Slot");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miri_exit_words_round_trip_and_scribbles_decode_to_none() {
        for status in [
            ExitStatus::Exited(0),
            ExitStatus::Exited(3),
            ExitStatus::Exited(255),
            ExitStatus::Signaled(9),
            ExitStatus::Signaled(64),
        ] {
            assert_eq!(decode_exit(encode_exit(status)), Some(status));
        }
        assert_eq!(decode_exit(SIGNALED), None);
        assert_eq!(decode_exit(SIGNALED | 65), None);
        assert_eq!(decode_exit(u32::MAX), None);
        assert_eq!(decode_exit(0x200), None);
    }

    #[test]
    fn miri_the_life_record_reads_what_was_written_and_flags_garbage() {
        let life = Life {
            state: AtomicU32::new(EMPTY),
            kill: AtomicU32::new(0),
            pid: AtomicU32::new(0),
            exit: AtomicU32::new(0),
            _pad: [0; 48],
        };
        assert_eq!(life.seen(), Seen::Empty);
        life.ask_kill();
        life.request();
        assert!(life.requested() && !life.kill_asked());
        assert_eq!(life.seen(), Seen::Requested);
        life.born(1234);
        assert_eq!(life.seen(), Seen::Live(1234));
        life.died(ExitStatus::Signaled(9));
        assert_eq!(life.seen(), Seen::Dead(1234, Some(ExitStatus::Signaled(9))));
        life.failed(11);
        assert_eq!(life.seen(), Seen::Failed(11));
        life.state.store(17, Ordering::Relaxed);
        assert_eq!(life.seen(), Seen::Corrupt);
    }
}

//! `Pipe<CAP>`: its two ends (owner, closed) and its two byte rings (bytes queued,
//! totals, sleepers).

use super::participant::Participant;
use super::sleepers::{self, Sleepers};
use super::view::{Corrupted, View, corrupt};
use super::{Ctx, generic_args};
use crate::channel::pipe::{END_CLOSED, EndState, Pipe};
use crate::channel::ring::{DATA_OFFSET, Line, Ring, Wakers};
use crate::primitive::ID_MASK;

/// One end of a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeEnd {
    /// The process that owns the end, once one has used it.
    pub owner: Option<Participant>,
    /// The owner's handle token (tells a process's handles apart).
    pub token: u32,
    /// Has the owner closed it?
    pub closed: bool,
}

/// One direction of a pipe: the ring that end `from` sends on and the other end
/// receives from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeDirection {
    /// The sending end (0 or 1).
    pub from: u8,
    /// Bytes queued now (records: 8-byte headers plus payloads rounded up to 8).
    pub queued: u64,
    /// Bytes ever published on this ring (the producer's index).
    pub sent_total: u64,
    /// Bytes ever consumed (the consumer's index).
    pub received_total: u64,
    /// Receivers asleep, waiting for data.
    pub receivers_asleep: Sleepers,
    /// Senders asleep, waiting for room.
    pub senders_asleep: Sleepers,
}

/// The live state of a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeState {
    /// Each ring's capacity in bytes (`CAP`).
    pub capacity: u64,
    /// End 0 and end 1.
    pub ends: [PipeEnd; 2],
    /// End 0 → end 1, and end 1 → end 0.
    pub directions: [PipeDirection; 2],
}

const ENDS: usize = core::mem::offset_of!(Pipe<64>, ends);
const RINGS: usize = core::mem::offset_of!(Pipe<64>, rings);
const END_SIZE: usize = core::mem::size_of::<Line<EndState>>();
const OWNER: usize = core::mem::offset_of!(EndState, owner);
const FLAGS: usize = core::mem::offset_of!(EndState, flags);
const TAIL: usize = core::mem::offset_of!(Ring<64>, tail);
const HEAD: usize = core::mem::offset_of!(Ring<64>, head);
const WAKE: usize = core::mem::offset_of!(Ring<64>, wake);
const DATA_WAKER: usize = WAKE + core::mem::offset_of!(Wakers, data) + sleepers::IN_NOTIFIER;
const SPACE_WAKER: usize = WAKE + core::mem::offset_of!(Wakers, space) + sleepers::IN_NOTIFIER;
/// Rings are 128-aligned: a ring's size is its header lines plus `CAP` rounded up.
const RING_ALIGN: usize = core::mem::align_of::<Ring<64>>();
const _: () = {
    assert!(core::mem::size_of::<Ring<64>>() == DATA_OFFSET + 128);
    assert!(core::mem::size_of::<Ring<4096>>() == DATA_OFFSET + 4096);
    assert!(core::mem::size_of::<Pipe<4096>>() == RINGS + 2 * (DATA_OFFSET + 4096));
};

/// The size of a `Ring<cap>`.
fn ring_size(cap: u64) -> u64 {
    DATA_OFFSET as u64 + cap.next_multiple_of(RING_ALIGN as u64)
}

/// The capacity of the pipe: from the type name (`shmkit::Pipe<4096>`), checked
/// against the value's size; from the size alone if the name says nothing.
fn capacity(type_name: &str, size: u64) -> Result<u64, Corrupted> {
    let from_name = match generic_args(type_name).as_deref() {
        Some([cap]) => cap.parse::<u64>().ok(),
        _ => None,
    };
    let cap = match from_name {
        Some(cap) => cap,
        // The ring array rounded to 128: exact for every CAP but 64 (which reads 128).
        None => match size.checked_sub(RINGS as u64) {
            Some(rings) if rings % 2 == 0 && rings / 2 > DATA_OFFSET as u64 => {
                rings / 2 - DATA_OFFSET as u64
            }
            _ => corrupt!("a Pipe of {size} bytes has no room for its rings"),
        },
    };
    if !cap.is_power_of_two() || !(64..=1 << 31).contains(&cap) {
        corrupt!("a Pipe capacity of {cap} (a power of two in 64..=2^31)");
    }
    let expected = RINGS as u64 + 2 * ring_size(cap);
    if size != expected {
        corrupt!("a Pipe<{cap}> of {size} bytes (it has {expected})");
    }
    Ok(cap)
}

/// Decodes a `Pipe<CAP>`.
pub(crate) fn decode(value: &View<'_>, type_name: &str, ctx: &Ctx) -> Result<PipeState, Corrupted> {
    let cap = capacity(type_name, value.len() as u64)?;
    let mut ends = [PipeEnd {
        owner: None,
        token: 0,
        closed: false,
    }; 2];
    for (i, end) in ends.iter_mut().enumerate() {
        let at = ENDS + i * END_SIZE;
        let word = value.u64(at + OWNER)?;
        let id = (word >> 32) as u32;
        if id >= ID_MASK {
            corrupt!("end {i}'s owner id {id:#x} is out of range");
        }
        end.owner = (id != 0).then(|| ctx.judge.participant(id));
        end.token = word as u32;
        end.closed = value.u32(at + FLAGS)? & END_CLOSED != 0;
    }
    let ring = ring_size(cap) as usize;
    let direction = |i: usize| -> Result<PipeDirection, Corrupted> {
        let at = RINGS + i * ring;
        let (tail, head) = (value.u64(at + TAIL)?, value.u64(at + HEAD)?);
        let queued = tail.wrapping_sub(head);
        if queued > cap || tail % 8 != 0 || head % 8 != 0 {
            corrupt!("ring {i}: head {head} and tail {tail} (capacity {cap})");
        }
        Ok(PipeDirection {
            from: i as u8,
            queued,
            sent_total: tail,
            received_total: head,
            receivers_asleep: sleepers::at(value, at + DATA_WAKER, ctx.stamp_now)?,
            senders_asleep: sleepers::at(value, at + SPACE_WAKER, ctx.stamp_now)?,
        })
    };
    let directions = [direction(0)?, direction(1)?];
    Ok(PipeState {
        capacity: cap,
        ends,
        directions,
    })
}

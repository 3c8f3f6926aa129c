//! `Queue<T, N>` and `JoinableQueue<T, N>`: items queued, claims in flight and by
//! whom, closed, lost, sleepers, and a joinable queue's unfinished tasks.
//!
//! The slot state word (see `channel::queue::state`): bits 63..62 the kind (FREE,
//! WRITING, FULL, READING); a claim (WRITING, READING) carries 32 bits of lap and the
//! claimer's 30-bit participant id in bits 29..0.

use std::vec::Vec;

use super::participant::Participant;
use super::sleepers::{self, Sleepers};
use super::view::{Corrupted, View, corrupt};
use super::{Ctx, generic_args};
use crate::primitive::ID_MASK;
use crate::segment::SegmentInfo;

/// Which operation holds a claimed slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimSide {
    /// A put in progress (the item is being written).
    Put,
    /// A get in progress (the item is being read).
    Get,
}

/// A slot held by an operation in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The slot's index, `0..N`.
    pub slot: u64,
    /// Put or get.
    pub side: ClaimSide,
    /// The claiming process. A dead one's slot is reclaimed (and its item counted in
    /// `lost`) by the next process that needs it.
    pub by: Participant,
}

/// The live state of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    /// `N`.
    pub capacity: u64,
    /// Items published and not taken (slots in the FULL state).
    pub depth: u64,
    /// The consumers' position hint: gets so far, roughly (a get in progress or a
    /// position passed after a crash may or may not be counted).
    pub head: u64,
    /// The producers' position hint: puts so far, roughly.
    pub tail: u64,
    /// Has the queue been closed?
    pub closed: bool,
    /// Items dropped with a process that died holding them (as counted so far: slots
    /// of dead claimers not yet reclaimed are in `claims`).
    pub lost: u64,
    /// Slots held by puts and gets in progress.
    pub claims: Vec<Claim>,
    /// Consumers asleep, waiting for an item.
    pub consumers_asleep: Sleepers,
    /// Producers asleep, waiting for room.
    pub producers_asleep: Sleepers,
    /// For a `JoinableQueue`: tasks put and not yet marked done.
    pub unfinished: Option<u64>,
    /// For a `JoinableQueue`: callers of `join` asleep.
    pub joiners_asleep: Option<Sleepers>,
}

// The layout of `Queue<T, N>` (`channel::queue`): head, tail, closed and lost, the
// two notifiers, then the slots.
const HEAD: usize = 0;
const TAIL: usize = 128;
const CLOSED: usize = 256;
const LOST: usize = 264;
const NOT_EMPTY: usize = 384 + sleepers::IN_NOTIFIER;
const NOT_FULL: usize = 392 + sleepers::IN_NOTIFIER;
const SLOTS: usize = 512;
/// The queue's lines make its size a multiple of 128.
const ALIGN: u64 = 128;
// A `JoinableQueue`: the unfinished count and its notifier on a line, then the queue.
const UNFINISHED: usize = 0;
const DONE: usize = 8 + sleepers::IN_NOTIFIER;
const JOINABLE_QUEUE: usize = 128;

// The slot state word.
const KIND_SHIFT: u32 = 62;
const WRITING: u64 = 1;
const FULL: u64 = 2;
const READING: u64 = 3;

/// `N` and the slot stride: `N` from the type name (`shmkit::Queue<T, N>`), the
/// stride from the header, both checked against the value's size.
fn geometry(value_size: u64, info: &SegmentInfo) -> Result<(u64, u64), Corrupted> {
    let name = info.type_name.as_str();
    let stride = u64::from(info.item_stride);
    if stride < 8 || stride % 8 != 0 {
        corrupt!("a slot stride of {stride} bytes");
    }
    let slots = value_size.saturating_sub(SLOTS as u64);
    let n = match generic_args(name)
        .as_deref()
        .and_then(|a| a.last().copied())
    {
        Some(n) if !info.type_name.is_truncated() => match n.parse::<u64>() {
            Ok(n) => n,
            Err(_) => corrupt!("a capacity of {n:?} in the type name"),
        },
        // A name cut short: the most slots that fit.
        _ => slots / stride,
    };
    let fits = n
        .checked_mul(stride)
        .and_then(|s| s.checked_add(SLOTS as u64))
        .map(|end| end.next_multiple_of(ALIGN));
    if n == 0 || fits != Some(value_size) {
        corrupt!("{n} slots of {stride} bytes do not make a queue of {value_size} bytes");
    }
    Ok((n, stride))
}

/// Decodes a `Queue<T, N>` (or, with `joinable`, a `JoinableQueue<T, N>`).
pub(crate) fn decode(
    value: &View<'_>,
    info: &SegmentInfo,
    joinable: bool,
    ctx: &Ctx,
) -> Result<QueueState, Corrupted> {
    let (queue, unfinished, joiners) = if joinable {
        let q = value.sub(JOINABLE_QUEUE, value.len().saturating_sub(JOINABLE_QUEUE))?;
        (
            q,
            Some(value.u64(UNFINISHED)?),
            Some(sleepers::at(value, DONE, ctx.stamp_now)?),
        )
    } else {
        (*value, None, None)
    };
    let (n, stride) = geometry(queue.len() as u64, info)?;
    let mut depth = 0;
    let mut claims = Vec::new();
    for slot in 0..n {
        // In bounds: `geometry` checked that N slots of `stride` fit.
        let state = queue.u64(SLOTS + (slot * stride) as usize)?;
        match state >> KIND_SHIFT {
            FULL => depth += 1,
            kind @ (WRITING | READING) => {
                let id = (state & u64::from(ID_MASK)) as u32;
                if id == 0 || id >= ID_MASK {
                    corrupt!("slot {slot} is claimed by id {id:#x}, which no participant has");
                }
                claims.push(Claim {
                    slot,
                    side: if kind == WRITING {
                        ClaimSide::Put
                    } else {
                        ClaimSide::Get
                    },
                    by: ctx.judge.participant(id),
                });
            }
            _ => {}
        }
    }
    Ok(QueueState {
        capacity: n,
        depth,
        head: queue.u64(HEAD)?,
        tail: queue.u64(TAIL)?,
        closed: queue.u32(CLOSED)? != 0,
        lost: queue.u64(LOST)?,
        claims,
        consumers_asleep: sleepers::at(&queue, NOT_EMPTY, ctx.stamp_now)?,
        producers_asleep: sleepers::at(&queue, NOT_FULL, ctx.stamp_now)?,
        unfinished,
        joiners_asleep: joiners,
    })
}

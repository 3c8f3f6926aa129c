//! `Queue<T, N>` and `JoinableQueue<T, N>`: items queued, claims in flight and by
//! whom, closed, lost, sleepers, and a joinable queue's unfinished tasks.
//!
//! Offsets and the slot state word's decoding come from the queue itself
//! (`channel::queue::outside`): a FULL slot holds an item; a claim (WRITING, READING)
//! names its claimer's participant id.

use std::vec::Vec;

use super::participant::Participant;
use super::sleepers::{self, Sleepers};
use super::view::{Corrupted, View, corrupt};
use super::{Ctx, generic_args};
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

use crate::channel::joinable::{DONE_OFFSET, QUEUE_OFFSET, UNFINISHED_OFFSET};
use crate::channel::queue::outside::{
    self, ALIGN, CLOSED, HEAD, LOST, NOT_EMPTY, NOT_FULL, SLOTS, STATE, SlotState, TAIL,
};

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
        .map(|end| end.next_multiple_of(ALIGN as u64));
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
        let q = value.sub(QUEUE_OFFSET, value.len().saturating_sub(QUEUE_OFFSET))?;
        (
            q,
            Some(value.u64(UNFINISHED_OFFSET)?),
            Some(sleepers::at(
                value,
                DONE_OFFSET + sleepers::IN_NOTIFIER,
                ctx.stamp_now,
            )?),
        )
    } else {
        (*value, None, None)
    };
    let (n, stride) = geometry(queue.len() as u64, info)?;
    let mut depth = 0;
    let mut claims = Vec::new();
    for slot in 0..n {
        // In bounds: `geometry` checked that N slots of `stride` fit.
        let word = queue.u64(SLOTS + (slot * stride) as usize + STATE)?;
        match outside::slot(word) {
            SlotState::Free => {}
            SlotState::Full => depth += 1,
            SlotState::Claim { put, id } => claims.push(Claim {
                slot,
                side: if put { ClaimSide::Put } else { ClaimSide::Get },
                by: ctx.judge.participant(id),
            }),
            SlotState::Invalid => corrupt!(
                "slot {slot}'s state word {word:#018x} names a claimer no participant can be"
            ),
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
        consumers_asleep: sleepers::at(&queue, NOT_EMPTY + sleepers::IN_NOTIFIER, ctx.stamp_now)?,
        producers_asleep: sleepers::at(&queue, NOT_FULL + sleepers::IN_NOTIFIER, ctx.stamp_now)?,
        unfinished,
        joiners_asleep: joiners,
    })
}

//! The sequential model of one direction of a `Pipe` for the linearizability
//! checker (`common/lincheck.rs`): a FIFO of messages with an exact capacity (in
//! messages: the test uses records that tile the ring, so no padding), and the two
//! ends' owners — unclaimed, a live generation, dead, closed.
//!
//! End 0 sends, end 1 receives. Each end is owned by one process at a time, the
//! *generation* `g = 1, 2, ...` of its side; a generation claims the end (first use,
//! or adoption once the previous owner is dead), may close it, and dies ([`POp::Die`]:
//! killed, or exited without closing). Every operation of generation `g` needs `g` to
//! own its end, alive: so a killed process's pending operation is placed before its
//! death or not at all.
//!
//! Results (what `Connection` promises, read off `send.rs`, `recv.rs`, `batch.rs`):
//! - A send returned `Ok`: its message was appended (there was room) — also after the
//!   receiver closed (a send that checked the peer before the close publishes after
//!   it; nobody can receive it). `WouldBlock` / `Timeout`: the ring was full and the
//!   receiver not closed (a closed peer is checked first, every attempt).
//!   `Disconnected`: the receiver was dead or closed (never merely unclaimed).
//! - A receive returned the front message; `WouldBlock` / `Timeout`: empty and the
//!   sender not closed; `Disconnected`: empty and the sender dead or closed. A dead
//!   sender may also get `WouldBlock` (liveness is checked at most once a period).
//! - `poll`: `true` if a message is queued or the sender is dead or closed; `false`
//!   if empty and the sender not closed.
//! - Batches. `send_many` publishes its messages in runs (a run is one store, but
//!   where runs end depends on room and the ring's end, which a history cannot
//!   see), so a call that sent `n` messages is `n` appends inside its interval, in
//!   order ([`POp::SendPart`]). If it sent fewer than it was given, the ring was full
//!   right after the last (`try_send_many`: it stops when a fresh look at `head`
//!   shows no room, and since the publication only the receiver has moved, which
//!   only frees room), or the receiver was gone at some point after the last
//!   (`send_many`: [`POp::SendGone`], a separate point, since the receiver may take
//!   the last message before it closes).
//!   `recv_many` reads ahead from its own unpublished `head` and publishes `head`
//!   once per run (again when the sender has not yet published the next message, at
//!   the ring's end), so a call that returned `n` messages is `n` removals inside its
//!   interval, in order ([`POp::RecvPart`]); if `n` is below its `max`, the ring was
//!   empty after the last.
//! - A receiver killed inside `recv_with`'s callback leaves the message queued: the
//!   history carries a completed [`POp::Peek`] (that message was at the front, and
//!   stays) instead of a pending receive.
//!
//! Include it with `#[path = "common/pipe_model.rs"] mod pipe_model;` beside
//! `lincheck`.
#![allow(dead_code)]

use std::collections::VecDeque;

use super::lincheck::Model;

/// Who owns an end: `owner` is the generation that claimed it (0: nobody yet),
/// `killed` the last generation that died, `closed` final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct End {
    pub owner: u32,
    pub killed: u32,
    pub closed: bool,
}

impl End {
    /// Does generation `g` own the end, alive?
    fn alive(&self, g: u32) -> bool {
        self.owner == g && self.killed < g && !self.closed
    }

    /// Closed, or its owner dead (an unclaimed end is neither).
    fn gone(&self) -> bool {
        self.closed || (self.owner != 0 && self.killed >= self.owner)
    }

    /// May generation `g` claim it now?
    fn claimable(&self, g: u32) -> bool {
        !self.closed
            && g > self.owner
            && g > self.killed
            && (self.owner == 0 || self.killed >= self.owner)
    }
}

/// The pipe's direction: messages, capacity, both ends, and the batch call under way
/// on each side as (call id, parts placed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PipeModel {
    pub cap: usize,
    pub items: VecDeque<u64>,
    pub ends: [End; 2],
    pub seq: [(u32, u32); 2],
}

impl PipeModel {
    pub fn new(cap: usize) -> Self {
        PipeModel {
            cap,
            items: VecDeque::new(),
            ends: [End::default(); 2],
            seq: [(u32::MAX, 0); 2],
        }
    }

    fn full(&self) -> bool {
        self.items.len() >= self.cap
    }

    /// May part `idx` of call `call` on `side` come next?
    fn in_turn(&self, side: usize, call: u32, idx: u32) -> bool {
        let (c, next) = self.seq[side];
        if c == call { next == idx } else { idx == 0 }
    }
}

/// What must hold right after the last part of a batch call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Nothing,
    /// The ring was full (a `try_send_many` that stopped early).
    Full,
    /// The ring was empty (a `recv_many` that returned fewer than its `max`).
    Empty,
}

/// An operation. `side` 0 is the sending end, 1 the receiving end; `g` a generation;
/// `call` identifies one batch call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum POp {
    /// The first use of the end by generation `g` (claim or adoption).
    Claim {
        side: usize,
        g: u32,
    },
    /// Generation `g` of `side` died (killed, or exited without closing).
    Die {
        side: usize,
        g: u32,
    },
    Close {
        side: usize,
        g: u32,
    },
    /// `try_send_bytes`, `send_bytes`, `send_bytes_timeout` of message `v`.
    Send {
        g: u32,
        v: u64,
    },
    /// A `send_many` / `try_send_many` that sent nothing.
    SendNone {
        g: u32,
    },
    /// One message of a `send_many` / `try_send_many` that sent some.
    SendPart {
        g: u32,
        call: u32,
        idx: u32,
        v: u64,
        then: Then,
    },
    /// A `send_many` that sent `after` of its messages stopped because the receiver
    /// was gone (dead or closed): after its last part.
    SendGone {
        g: u32,
        call: u32,
        after: u32,
    },
    /// `try_recv_bytes_into`, `recv_bytes_into`, `recv_bytes_into_timeout`,
    /// `recv_with`, or a `recv_many` / `try_recv_many` that received nothing.
    Recv {
        g: u32,
    },
    /// One message of a `recv_many` / `try_recv_many` that received some.
    RecvPart {
        g: u32,
        call: u32,
        idx: u32,
        v: u64,
        then: Then,
    },
    /// Killed inside `recv_with`'s callback, which saw `v`: `v` was at the front,
    /// and stays queued.
    Peek {
        g: u32,
        v: u64,
    },
    Poll {
        g: u32,
    },
}

/// What an operation returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PRet {
    /// A send, claim, close, death or batch part went through.
    Ok,
    Got(u64),
    Ready(bool),
    WouldBlock,
    Timeout,
    Disconnected,
    /// A claim found the end closed.
    Closed,
}

impl PipeModel {
    /// The state after `op` took effect (whatever it returned), or `None` if it
    /// cannot take effect here. `ret` checks only what the return adds to that.
    fn effect(&self, op: &POp) -> Option<Self> {
        let mut next = self.clone();
        match *op {
            POp::Claim { side, g } => {
                if !self.ends[side].claimable(g) {
                    return None;
                }
                next.ends[side].owner = g;
            }
            POp::Die { side, g } => next.ends[side].killed = self.ends[side].killed.max(g),
            POp::Close { side, g } => {
                if !self.ends[side].alive(g) {
                    return None;
                }
                next.ends[side].closed = true;
            }
            POp::Send { g, v } => {
                if !self.ends[0].alive(g) || self.full() {
                    return None;
                }
                next.items.push_back(v);
            }
            POp::SendPart {
                g, call, idx, v, ..
            } => {
                if !self.ends[0].alive(g) || self.full() || !self.in_turn(0, call, idx) {
                    return None;
                }
                next.items.push_back(v);
                next.seq[0] = (call, idx + 1);
            }
            POp::Recv { g } => {
                if !self.ends[1].alive(g) {
                    return None;
                }
                next.items.pop_front()?;
            }
            POp::RecvPart {
                g, call, idx, v, ..
            } => {
                if !self.ends[1].alive(g)
                    || !self.in_turn(1, call, idx)
                    || self.items.front() != Some(&v)
                {
                    return None;
                }
                next.items.pop_front();
                next.seq[1] = (call, idx + 1);
            }
            POp::SendNone { .. } | POp::SendGone { .. } | POp::Peek { .. } | POp::Poll { .. } => {
                return None;
            }
        }
        Some(next)
    }
}

impl Model for PipeModel {
    type Op = POp;
    type Ret = PRet;

    fn step(&self, op: &POp, ret: &PRet) -> Option<Self> {
        let (tx, rx) = (self.ends[0], self.ends[1]);
        let empty = self.items.is_empty();
        let keep = |ok: bool| ok.then(|| self.clone());
        match (*op, *ret) {
            (POp::Claim { side, .. }, PRet::Closed) => keep(self.ends[side].closed),
            (POp::Claim { .. } | POp::Die { .. } | POp::Close { .. }, PRet::Ok) => self.effect(op),
            // Sends.
            (POp::Send { .. }, PRet::Ok) => self.effect(op),
            (POp::Send { g, .. } | POp::SendNone { g }, PRet::WouldBlock | PRet::Timeout) => {
                keep(tx.alive(g) && self.full() && !rx.closed)
            }
            (POp::Send { g, .. } | POp::SendNone { g }, PRet::Disconnected) => {
                keep(tx.alive(g) && rx.gone())
            }
            (POp::SendPart { then, .. }, PRet::Ok) => {
                let next = self.effect(op)?;
                let ok = match then {
                    Then::Nothing => true,
                    Then::Full => next.full(),
                    Then::Empty => false,
                };
                ok.then_some(next)
            }
            // Receives.
            (POp::Recv { g }, PRet::Got(v)) if rx.alive(g) && self.items.front() == Some(&v) => {
                self.effect(op)
            }
            (POp::Recv { g }, PRet::WouldBlock | PRet::Timeout) => {
                keep(rx.alive(g) && empty && !tx.closed)
            }
            (POp::Recv { g }, PRet::Disconnected) => keep(rx.alive(g) && empty && tx.gone()),
            (POp::RecvPart { then, .. }, PRet::Ok) => {
                let next = self.effect(op)?;
                let ok = match then {
                    Then::Nothing => true,
                    Then::Empty => next.items.is_empty(),
                    Then::Full => false,
                };
                ok.then_some(next)
            }
            (POp::SendGone { g, call, after }, PRet::Ok) => {
                keep(tx.alive(g) && self.seq[0] == (call, after) && rx.gone())
            }
            (POp::Peek { g, v }, PRet::Ok) => keep(rx.alive(g) && self.items.front() == Some(&v)),
            (POp::Poll { g }, PRet::Ready(ready)) => keep(
                rx.alive(g)
                    && if ready {
                        !empty || tx.gone()
                    } else {
                        empty && !tx.closed
                    },
            ),
            _ => None,
        }
    }

    fn step_pending(&self, op: &POp) -> Vec<Self> {
        self.effect(op).into_iter().collect()
    }
}

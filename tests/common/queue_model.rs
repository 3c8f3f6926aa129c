//! The sequential model of `Queue` for the linearizability checker
//! (`common/lincheck.rs`): FIFO with a capacity, `Empty`/`Full`/`Timeout`/`Closed`,
//! `Stalled`, and items dropped by crashes.
//!
//! - A put that returned `Ok` appended its item; `Full`/`Timeout`: the queue held
//!   `cap` items; `Closed`: it was closed. A get returned the front item; `Empty` /
//!   `Timeout`: it held none; `Closed`: closed and none. `Stalled` (either side)
//!   changed nothing and says nothing about the state.
//! - `close` is not ordered against puts already under way (the queue's documented
//!   behaviour: a put checks `closed` before it claims its slot, so one that checked
//!   before the close completes after it): a put may return `Ok`, a get `Empty` /
//!   `Timeout`, after the close; `Closed` answers are checked strictly.
//! - Crashes: a pending (killed) put may have appended its item or not; an item
//!   appended by a pending put may later vanish (its claim was reclaimed before it
//!   was published): the history carries a pending [`QOp::Vanish`] for each pending
//!   put. A pending get may have removed the front item or not.
//!
//! Include it with `#[path = "common/queue_model.rs"] mod queue_model;` beside
//! `lincheck`.
#![allow(dead_code)]

use std::collections::VecDeque;

use super::lincheck::Model;

/// The queue: items with "may vanish" flags, the capacity, closed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueModel {
    pub cap: usize,
    pub items: VecDeque<(u64, bool)>,
    pub closed: bool,
}

impl QueueModel {
    pub fn new(cap: usize) -> Self {
        QueueModel {
            cap,
            items: VecDeque::new(),
            closed: false,
        }
    }
}

/// An operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QOp {
    Put(u64),
    Get,
    Close,
    /// Not an operation of the queue: the drop of a killed producer's item, whose
    /// claim was reclaimed (always pending, one per pending put).
    Vanish(u64),
}

/// What an operation returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QRet {
    /// A put went through; a close returned.
    Ok,
    Full,
    Empty,
    Timeout,
    Closed,
    Stalled,
    Got(u64),
}

impl Model for QueueModel {
    type Op = QOp;
    type Ret = QRet;

    fn step(&self, op: &QOp, ret: &QRet) -> Option<Self> {
        let len = self.items.len();
        match (*op, *ret) {
            (_, QRet::Stalled) => Some(self.clone()),
            (QOp::Put(v), QRet::Ok) if len < self.cap => {
                let mut next = self.clone();
                next.items.push_back((v, false));
                Some(next)
            }
            (QOp::Put(_), QRet::Full | QRet::Timeout) if len == self.cap => Some(self.clone()),
            (QOp::Put(_), QRet::Closed) if self.closed => Some(self.clone()),
            (QOp::Get, QRet::Got(v)) if self.items.front().map(|f| f.0) == Some(v) => {
                let mut next = self.clone();
                next.items.pop_front();
                Some(next)
            }
            (QOp::Get, QRet::Empty | QRet::Timeout) if len == 0 => Some(self.clone()),
            (QOp::Get, QRet::Closed) if len == 0 && self.closed => Some(self.clone()),
            (QOp::Close, QRet::Ok) => {
                let mut next = self.clone();
                next.closed = true;
                Some(next)
            }
            _ => None,
        }
    }

    fn step_pending(&self, op: &QOp) -> Vec<Self> {
        let mut next = self.clone();
        let moved = match *op {
            QOp::Put(v) if self.items.len() < self.cap => {
                next.items.push_back((v, true));
                true
            }
            QOp::Get => next.items.pop_front().is_some(),
            QOp::Close => {
                next.closed = true;
                true
            }
            QOp::Vanish(v) => match next.items.iter().position(|&(x, may)| x == v && may) {
                Some(i) => next.items.remove(i).is_some(),
                None => false,
            },
            _ => false,
        };
        if moved { vec![next] } else { Vec::new() }
    }
}

//! A linearizability checker for histories recorded by several processes, generic
//! over a sequential model.
//!
//! The search is Wing & Gong's ("Testing and verifying concurrent objects", 1993)
//! with Lowe's memoisation of (linearized set, model state) pairs ("Testing for
//! linearizability", 2017), as in Porcupine: depth-first, at each point trying every
//! operation that may come next — one whose call precedes the earliest return among
//! the operations not yet placed — against the model, and never visiting the same
//! set-and-state twice. A history of a few hundred operations checks in well under a
//! second unless it is very concurrent.
//!
//! Crashes: an operation whose process was killed before it returned is *pending*:
//! it may have taken effect (at any instant after its call, with any result the
//! model allows) or not at all. The search may place it, or leave it out.
//!
//! Include it with `#[path = "common/lincheck.rs"] mod lincheck;`.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification: a state that operations move.
pub trait Model: Clone + Eq + Hash + Debug {
    /// An operation with its arguments.
    type Op: Debug;
    /// What an operation returned.
    type Ret: Debug;

    /// The state after `op` returned `ret` from this state, or `None` if the
    /// specification does not allow that result here.
    fn step(&self, op: &Self::Op, ret: &Self::Ret) -> Option<Self>;

    /// The states after `op` took effect from this state, whatever it returned (its
    /// process was killed before the return was recorded). Results that leave the
    /// state as it is need not be listed: leaving the operation out covers them.
    fn step_pending(&self, op: &Self::Op) -> Vec<Self>;
}

/// One operation of a history.
#[derive(Debug, Clone)]
pub struct Event<M: Model> {
    /// Which process made it (for the report).
    pub process: usize,
    /// The operation.
    pub op: M::Op,
    /// What it returned; `None` if its process died first (pending).
    pub ret: Option<M::Ret>,
    /// When it was called (any clock shared by all processes, e.g. CLOCK_MONOTONIC).
    pub call: u64,
    /// When it returned (ignored if pending).
    pub ret_at: u64,
}

impl<M: Model> Event<M> {
    /// An event of `process`: `op`, called at `call`, returned `ret` at `ret_at`
    /// (`ret` `None`: pending).
    pub fn new(process: usize, op: M::Op, ret: Option<M::Ret>, call: u64, ret_at: u64) -> Self {
        Event {
            process,
            op,
            ret,
            call,
            ret_at,
        }
    }

    fn end(&self) -> u64 {
        if self.ret.is_some() {
            self.ret_at
        } else {
            u64::MAX
        }
    }
}

/// Why a history was not found linearizable.
#[derive(Debug)]
pub enum Failure {
    /// No order exists. `placed` is the longest run of completed operations the
    /// search could order; `stuck` are the operations it could not place next.
    NotLinearizable { placed: usize, stuck: Vec<usize> },
    /// The search visited more than the budget of states without an answer.
    OutOfBudget { visited: usize },
}

/// Checks `history` against the model starting at `init`, visiting at most `budget`
/// (set, state) pairs. On success, returns how many pairs it visited.
pub fn check<M: Model>(init: &M, history: &[Event<M>], budget: usize) -> Result<usize, Failure> {
    let n = history.len();
    let completed = history.iter().filter(|e| e.ret.is_some()).count();
    // Operations by call time; `order[k]` is an index into `history`.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| history[i].call);
    let words = n.div_ceil(64).max(1);
    let mut seen: HashSet<(Vec<u64>, M)> = HashSet::new();
    // Depth-first: (placed set, completed placed, state).
    let mut stack: Vec<(Vec<u64>, usize, M)> = vec![(vec![0; words], 0, init.clone())];
    let mut best = 0usize;
    let mut best_stuck = Vec::new();
    let placed_has = |set: &[u64], i: usize| set[i / 64] & (1 << (i % 64)) != 0;
    while let Some((set, done, state)) = stack.pop() {
        if done == completed {
            return Ok(seen.len());
        }
        if seen.len() > budget {
            return Err(Failure::OutOfBudget {
                visited: seen.len(),
            });
        }
        // The earliest return among the operations not yet placed: whatever comes
        // next must have been called before it.
        let horizon = order
            .iter()
            .filter(|&&i| !placed_has(&set, i))
            .map(|&i| history[i].end())
            .min()
            .unwrap_or(u64::MAX);
        let mut candidates = Vec::new();
        for &i in &order {
            let e = &history[i];
            if e.call > horizon {
                break;
            }
            if !placed_has(&set, i) {
                candidates.push(i);
            }
        }
        if done >= best {
            best = done;
            best_stuck = candidates.clone();
        }
        for &i in candidates.iter().rev() {
            let e = &history[i];
            let nexts: Vec<M> = match &e.ret {
                Some(ret) => state.step(&e.op, ret).into_iter().collect(),
                None => state.step_pending(&e.op),
            };
            let mut next_set = set.clone();
            next_set[i / 64] |= 1 << (i % 64);
            let next_done = done + usize::from(e.ret.is_some());
            for next in nexts {
                let key = (next_set.clone(), next);
                if seen.insert(key.clone()) {
                    stack.push((key.0, next_done, key.1));
                }
            }
        }
    }
    Err(Failure::NotLinearizable {
        placed: best,
        stuck: best_stuck,
    })
}

/// A report of a failed check: the failure and the history around the operations
/// the search could not place, by call time.
pub fn explain<M: Model>(history: &[Event<M>], failure: &Failure) -> String {
    use std::fmt::Write;
    let mut out = format!("{failure:?}\n");
    let mut order: Vec<usize> = (0..history.len()).collect();
    order.sort_by_key(|&i| history[i].call);
    let t0 = order.first().map_or(0, |&i| history[i].call);
    for &i in &order {
        let e = &history[i];
        let ret = match &e.ret {
            Some(r) => format!("{r:?} at {}", e.ret_at - t0),
            None => "pending".to_string(),
        };
        let mark = match failure {
            Failure::NotLinearizable { stuck, .. } if stuck.contains(&i) => "  <-- next?",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  #{i:<4} p{} {:?} call {} -> {ret}{mark}",
            e.process,
            e.op,
            e.call - t0
        );
    }
    out
}

#[cfg(test)]
mod checker_tests {
    use super::*;

    /// A read/write register: the textbook model.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    struct Register(u32);

    #[derive(Debug)]
    enum RegOp {
        Write(u32),
        Read,
    }

    impl Model for Register {
        type Op = RegOp;
        type Ret = u32;
        fn step(&self, op: &RegOp, ret: &u32) -> Option<Self> {
            match op {
                RegOp::Write(v) => Some(Register(*v)),
                RegOp::Read => (self.0 == *ret).then(|| self.clone()),
            }
        }
        fn step_pending(&self, op: &RegOp) -> Vec<Self> {
            match op {
                RegOp::Write(v) => vec![Register(*v)],
                RegOp::Read => Vec::new(),
            }
        }
    }

    fn ev(process: usize, op: RegOp, ret: Option<u32>, call: u64, ret_at: u64) -> Event<Register> {
        Event::new(process, op, ret, call, ret_at)
    }

    #[test]
    fn register_histories() {
        // Overlapping write and read: the read may see either value.
        let h = [
            ev(0, RegOp::Write(1), Some(0), 0, 10),
            ev(1, RegOp::Read, Some(1), 5, 6),
            ev(1, RegOp::Read, Some(1), 11, 12),
        ];
        assert!(check(&Register(0), &h, 1000).is_ok());
        let h = [
            ev(0, RegOp::Write(1), Some(0), 0, 10),
            ev(1, RegOp::Read, Some(0), 5, 6),
            ev(1, RegOp::Read, Some(1), 7, 8),
        ];
        assert!(check(&Register(0), &h, 1000).is_ok());
        // A read after the write returned cannot see the old value.
        let h = [
            ev(0, RegOp::Write(1), Some(0), 0, 10),
            ev(1, RegOp::Read, Some(0), 11, 12),
        ];
        assert!(matches!(
            check(&Register(0), &h, 1000),
            Err(Failure::NotLinearizable { .. })
        ));
        // New then old, by one reader, while the write is in progress: no order.
        let h = [
            ev(0, RegOp::Write(1), Some(0), 0, 100),
            ev(1, RegOp::Read, Some(1), 5, 6),
            ev(1, RegOp::Read, Some(0), 7, 8),
        ];
        assert!(check(&Register(0), &h, 1000).is_err());
        // A pending write (killed writer) may or may not have happened.
        for seen in [0, 1] {
            let h = [
                ev(0, RegOp::Write(1), None, 0, 0),
                ev(1, RegOp::Read, Some(seen), 50, 60),
            ];
            assert!(check(&Register(0), &h, 1000).is_ok());
        }
        let h = [
            ev(0, RegOp::Write(1), None, 0, 0),
            ev(1, RegOp::Read, Some(1), 50, 60),
            ev(1, RegOp::Read, Some(0), 70, 80),
        ];
        assert!(check(&Register(0), &h, 1000).is_err());
    }
}

//! The objects a server holds, their states, and how a call waits on one.

use core::time::Duration;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::string::String;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;
use std::vec::Vec;

use super::link::Ctx;
use super::reply::WaitEnd;
use crate::manager::protocol::{Kind, Wait};

/// How long a blocked call sleeps before it looks at its client again.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// Who holds a lock: a client session and one of its threads.
pub(crate) type Owner = (u64, u32);

/// A lock's state (Lock, RLock, and the lock inside a Condition).
#[derive(Debug, Default)]
pub(crate) struct LockState {
    pub(crate) owner: Option<Owner>,
    /// Recursion depth (RLock, Condition); 1 for a held Lock.
    pub(crate) count: u32,
    /// The last holder's client died holding it; the next acquirer is told.
    pub(crate) owner_died: bool,
}

/// A queue's state.
#[derive(Debug, Default)]
pub(crate) struct QueueState {
    pub(crate) items: VecDeque<Vec<u8>>,
    /// 0: unbounded.
    pub(crate) max: u64,
    /// Items put and not yet marked done (JoinableQueue).
    pub(crate) unfinished: u64,
}

/// A semaphore's state.
#[derive(Debug, Default)]
pub(crate) struct SemState {
    pub(crate) value: u64,
    /// BoundedSemaphore: the initial value, which releases may not pass.
    pub(crate) bound: Option<u64>,
    /// Permits each session took and has not given back.
    pub(crate) held: HashMap<u64, u64>,
}

/// A condition variable's state: its lock, and tickets of waiting calls.
#[derive(Debug, Default)]
pub(crate) struct CondState {
    pub(crate) lock: LockState,
    pub(crate) next_ticket: u64,
    pub(crate) waiting: VecDeque<u64>,
    pub(crate) notified: HashSet<u64>,
}

/// A barrier's state.
#[derive(Debug, Default)]
pub(crate) struct BarrierState {
    pub(crate) parties: u64,
    pub(crate) count: u64,
    /// Bumped each time the barrier trips.
    pub(crate) generation: u64,
    /// Bumped by `reset`: waiters of an older reset get `Broken`.
    pub(crate) resets: u64,
    pub(crate) broken: bool,
}

/// What an object holds. Values are the client's postcard bytes, never decoded here.
#[derive(Debug)]
pub(crate) enum State {
    Dict(BTreeMap<Vec<u8>, Vec<u8>>),
    List(Vec<Vec<u8>>),
    Namespace(BTreeMap<String, Vec<u8>>),
    Value(Vec<u8>),
    Array(Vec<Vec<u8>>),
    Queue(QueueState),
    Lock(LockState),
    Sem(SemState),
    Cond(CondState),
    Event(bool),
    Barrier(BarrierState),
}

/// One object: its kind, its state behind a mutex, and a condition variable that
/// every change which could unblock a call notifies.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) kind: Kind,
    state: Mutex<State>,
    pub(crate) cond: Condvar,
}

impl Object {
    /// A new object of `kind` from the `Open` request's `init` and `param`.
    /// `None` if the parameters make no sense for the kind.
    pub(crate) fn new(kind: Kind, init: &[u8], param: u64) -> Option<Object> {
        let state = match kind {
            Kind::Dict => State::Dict(BTreeMap::new()),
            Kind::List => State::List(Vec::new()),
            Kind::Namespace => State::Namespace(BTreeMap::new()),
            Kind::Value => State::Value(init.to_vec()),
            Kind::Array => {
                // The length is the client's word: cap it so that one request cannot
                // make the server allocate without bound.
                let bytes = (init.len() as u64).max(1).checked_mul(param)?;
                if bytes > 1 << 30 {
                    return None;
                }
                State::Array((0..param).map(|_| init.to_vec()).collect())
            }
            Kind::Queue | Kind::JoinableQueue => State::Queue(QueueState {
                max: param,
                ..QueueState::default()
            }),
            Kind::Lock | Kind::RLock => State::Lock(LockState::default()),
            Kind::Semaphore => State::Sem(SemState {
                value: param,
                ..SemState::default()
            }),
            Kind::BoundedSemaphore => State::Sem(SemState {
                value: param,
                bound: Some(param),
                ..SemState::default()
            }),
            Kind::Condition => State::Cond(CondState::default()),
            Kind::Event => State::Event(false),
            Kind::Barrier => {
                if param == 0 {
                    return None;
                }
                State::Barrier(BarrierState {
                    parties: param,
                    ..BarrierState::default()
                })
            }
        };
        Some(Object {
            kind,
            state: Mutex::new(state),
            cond: Condvar::new(),
        })
    }

    /// Locks the state (a panic elsewhere does not make it unusable: every state is
    /// valid between statements).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `ready` gives a result, as `wait` allows. The state is unlocked
    /// while the call sleeps, and every [`SLICE`] the client is checked (and sent a
    /// heartbeat now and then), so a blocked call never blocks another client and a
    /// dead client's call ends.
    pub(crate) fn block<'g, T>(
        &'g self,
        mut g: MutexGuard<'g, State>,
        ctx: &mut Ctx<'_, '_>,
        wait: Wait,
        mut ready: impl FnMut(&mut State) -> Option<T>,
    ) -> (MutexGuard<'g, State>, Result<T, WaitEnd>) {
        if let Some(t) = ready(&mut g) {
            return (g, Ok(t));
        }
        let deadline = match wait {
            Wait::Now => return (g, Err(WaitEnd::WouldBlock)),
            Wait::Forever => None,
            Wait::Nanos(n) => Instant::now().checked_add(Duration::from_nanos(n)),
        };
        let mut next_check = Instant::now() + SLICE;
        loop {
            let now = Instant::now();
            let mut slice = next_check.saturating_duration_since(now);
            if let Some(d) = deadline {
                if now >= d {
                    return (g, Err(WaitEnd::Timeout));
                }
                slice = slice.min(d - now);
            }
            g = self
                .cond
                .wait_timeout(g, slice.max(Duration::from_micros(50)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if let Some(t) = ready(&mut g) {
                return (g, Ok(t));
            }
            if Instant::now() >= next_check {
                // Talk to the socket with the state unlocked.
                drop(g);
                let alive = ctx.still_there();
                g = self.lock();
                if !alive {
                    return (g, Err(WaitEnd::Gone));
                }
                next_check = Instant::now() + SLICE;
            }
        }
    }

    /// Puts back an item taken for a client that vanished before it got it.
    pub(crate) fn requeue(&self, item: Vec<u8>) {
        if let State::Queue(q) = &mut *self.lock() {
            q.items.push_front(item);
        }
        self.cond.notify_all();
    }

    /// Gives back what session `session` held here: its locks (the next acquirer is
    /// told `OwnerDead`) and its semaphore permits.
    pub(crate) fn release_session(&self, session: u64) {
        let mut g = self.lock();
        let changed = match &mut *g {
            State::Lock(l) => release_lock_of(l, session),
            State::Cond(c) => release_lock_of(&mut c.lock, session),
            State::Sem(s) => match s.held.remove(&session) {
                Some(n) if n > 0 => {
                    s.value = s.value.saturating_add(n);
                    if let Some(b) = s.bound {
                        s.value = s.value.min(b);
                    }
                    true
                }
                _ => false,
            },
            _ => false,
        };
        drop(g);
        if changed {
            self.cond.notify_all();
        }
    }
}

fn release_lock_of(l: &mut LockState, session: u64) -> bool {
    if l.owner.is_some_and(|(s, _)| s == session) {
        l.owner = None;
        l.count = 0;
        l.owner_died = true;
        true
    } else {
        false
    }
}

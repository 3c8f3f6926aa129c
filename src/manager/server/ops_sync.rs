//! What each operation does to a lock, semaphore, condition, event or barrier.

use std::vec::Vec;

use super::link::Ctx;
use super::object::{LockState, Object, Owner, State};
use super::reply::{After, WaitEnd, done, err, wait_err};
use crate::manager::protocol::{ErrorCode, Kind, Op, Reply, Wait};

/// Runs `op` on the synchronisation object `obj` and writes the reply into `out`.
pub(crate) fn call(obj: &Object, ctx: &mut Ctx<'_, '_>, op: Op<'_>, out: &mut Vec<u8>) -> After {
    let me: Owner = (ctx.session, ctx.thread);
    let mut g = obj.lock();
    match (&mut *g, op) {
        (State::Event(e), Op::Clear) => {
            *e = false;
            done(out, Reply::Unit)
        }
        // ---- locks
        (State::Lock(_), Op::Acquire(wait)) => {
            let reentrant = obj.kind == Kind::RLock;
            let (_g, r) = obj.block(g, ctx, wait, |s| match s {
                State::Lock(l) => try_lock(l, me, reentrant),
                _ => None,
            });
            acquired(out, r)
        }
        (State::Lock(l), Op::Release) => {
            // A Lock may be released by anyone (as Python's); an RLock by its owner.
            let r = if obj.kind == Kind::RLock {
                unlock_owned(l, me)
            } else if l.owner.is_some() {
                l.owner = None;
                l.count = 0;
                Ok(true)
            } else {
                Err(ErrorCode::NotOwner)
            };
            finish_release(obj, g, out, r)
        }
        (State::Lock(l), Op::Count) => done(out, Reply::U64(u64::from(l.count))),
        (State::Cond(_), Op::Acquire(wait)) => {
            let (_g, r) = obj.block(g, ctx, wait, |s| match s {
                State::Cond(c) => try_lock(&mut c.lock, me, true),
                _ => None,
            });
            acquired(out, r)
        }
        (State::Cond(c), Op::Release) => {
            let r = unlock_owned(&mut c.lock, me);
            finish_release(obj, g, out, r)
        }
        (State::Cond(c), Op::CondWait(wait)) => {
            if c.lock.owner != Some(me) {
                return err(out, ErrorCode::NotOwner);
            }
            let depth = c.lock.count;
            c.lock.owner = None;
            c.lock.count = 0;
            let ticket = c.next_ticket;
            c.next_ticket += 1;
            c.waiting.push_back(ticket);
            obj.cond.notify_all();
            let (g, r) = obj.block(g, ctx, wait, |s| match s {
                State::Cond(c) => c.notified.remove(&ticket).then_some(()),
                _ => None,
            });
            let mut g = g;
            if let State::Cond(c) = &mut *g {
                c.waiting.retain(|&t| t != ticket);
            }
            if r == Err(WaitEnd::Gone) {
                return wait_err(out, WaitEnd::Gone);
            }
            // Take the lock back, however long that takes (Python's wait does).
            let (mut g, back) = obj.block(g, ctx, Wait::Forever, |s| match s {
                State::Cond(c) => try_lock(&mut c.lock, me, false),
                _ => None,
            });
            match back {
                Ok(_) => {
                    if let State::Cond(c) = &mut *g {
                        c.lock.count = depth;
                    }
                    done(out, Reply::Bool(r.is_ok()))
                }
                Err(e) => wait_err(out, e),
            }
        }
        (State::Cond(c), Op::Notify(n)) => {
            for _ in 0..n {
                match c.waiting.pop_front() {
                    Some(t) => {
                        c.notified.insert(t);
                    }
                    None => break,
                }
            }
            drop(g);
            obj.cond.notify_all();
            done(out, Reply::Unit)
        }
        (State::Cond(c), Op::NotifyAll) => {
            c.notified.extend(c.waiting.drain(..));
            drop(g);
            obj.cond.notify_all();
            done(out, Reply::Unit)
        }

        // ---- semaphores
        (State::Sem(_), Op::Acquire(wait)) => {
            let session = ctx.session;
            let (_g, r) = obj.block(g, ctx, wait, |s| match s {
                State::Sem(s) if s.value > 0 => {
                    s.value -= 1;
                    *s.held.entry(session).or_insert(0) += 1;
                    Some(())
                }
                _ => None,
            });
            match r {
                Ok(()) => done(out, Reply::Unit),
                Err(e) => wait_err(out, e),
            }
        }
        (State::Sem(s), Op::Release) => {
            if s.bound.is_some_and(|b| s.value >= b) {
                return err(out, ErrorCode::Overflow);
            }
            s.value += 1;
            if let Some(n) = s.held.get_mut(&ctx.session) {
                *n -= 1;
                if *n == 0 {
                    s.held.remove(&ctx.session);
                }
            }
            drop(g);
            obj.cond.notify_all();
            done(out, Reply::Unit)
        }
        (State::Sem(s), Op::Count) => done(out, Reply::U64(s.value)),

        // ---- event
        (State::Event(e), Op::EventSet) => {
            *e = true;
            drop(g);
            obj.cond.notify_all();
            done(out, Reply::Unit)
        }
        (State::Event(e), Op::IsSet) => done(out, Reply::Bool(*e)),
        (State::Event(_), Op::EventWait(wait)) => {
            let (_g, r) = obj.block(g, ctx, wait, |s| match s {
                State::Event(true) => Some(()),
                _ => None,
            });
            match r {
                Ok(()) => done(out, Reply::Bool(true)),
                Err(WaitEnd::Timeout | WaitEnd::WouldBlock) => done(out, Reply::Bool(false)),
                Err(e) => wait_err(out, e),
            }
        }

        // ---- barrier
        (State::Barrier(b), Op::BarrierWait(wait)) => {
            if b.broken {
                return err(out, ErrorCode::Broken);
            }
            let index = b.count;
            b.count += 1;
            if b.count == b.parties {
                b.count = 0;
                b.generation += 1;
                drop(g);
                obj.cond.notify_all();
                return done(out, Reply::U64(index));
            }
            let (generation, resets) = (b.generation, b.resets);
            let wait = if wait == Wait::Now {
                Wait::Nanos(0)
            } else {
                wait
            };
            let (mut g, r) = obj.block(g, ctx, wait, |s| match s {
                State::Barrier(b) if b.resets != resets || b.broken => Some(false),
                State::Barrier(b) if b.generation != generation => Some(true),
                _ => None,
            });
            match r {
                Ok(true) => done(out, Reply::U64(index)),
                Ok(false) => err(out, ErrorCode::Broken),
                Err(e) => {
                    // A waiter that times out (or whose client died) breaks the
                    // barrier for everyone, as Python's does.
                    if let State::Barrier(b) = &mut *g {
                        b.broken = true;
                    }
                    drop(g);
                    obj.cond.notify_all();
                    match e {
                        WaitEnd::Gone => wait_err(out, e),
                        _ => err(out, ErrorCode::Broken),
                    }
                }
            }
        }
        (State::Barrier(b), Op::Abort) => {
            b.broken = true;
            drop(g);
            obj.cond.notify_all();
            done(out, Reply::Unit)
        }
        (State::Barrier(b), Op::Reset) => {
            b.resets += 1;
            b.count = 0;
            b.broken = false;
            drop(g);
            obj.cond.notify_all();
            done(out, Reply::Unit)
        }
        (State::Barrier(b), Op::Parties) => done(out, Reply::U64(b.parties)),
        (State::Barrier(b), Op::NWaiting) => done(out, Reply::U64(b.count)),
        (State::Barrier(b), Op::IsBroken) => done(out, Reply::Bool(b.broken)),

        _ => err(out, ErrorCode::WrongKind),
    }
}

/// Takes `l` for `me` if it is free (or, `reentrant`, already `me`'s). `Some(true)`:
/// taken from a dead holder.
fn try_lock(l: &mut LockState, me: Owner, reentrant: bool) -> Option<bool> {
    match l.owner {
        None => {
            l.owner = Some(me);
            l.count = 1;
            Some(core::mem::take(&mut l.owner_died))
        }
        Some(o) if reentrant && o == me => {
            l.count = l.count.saturating_add(1);
            Some(false)
        }
        Some(_) => None,
    }
}

/// Releases one level of `me`'s hold on `l`; `Ok(true)` when it became free.
fn unlock_owned(l: &mut LockState, me: Owner) -> Result<bool, ErrorCode> {
    if l.owner != Some(me) {
        return Err(ErrorCode::NotOwner);
    }
    l.count -= 1;
    if l.count == 0 {
        l.owner = None;
        return Ok(true);
    }
    Ok(false)
}

fn acquired(out: &mut Vec<u8>, r: Result<bool, WaitEnd>) -> After {
    match r {
        Ok(false) => done(out, Reply::Unit),
        Ok(true) => err(out, ErrorCode::OwnerDead),
        Err(e) => wait_err(out, e),
    }
}

fn finish_release(
    obj: &Object,
    g: std::sync::MutexGuard<'_, State>,
    out: &mut Vec<u8>,
    r: Result<bool, ErrorCode>,
) -> After {
    drop(g);
    match r {
        Ok(freed) => {
            if freed {
                obj.cond.notify_all();
            }
            done(out, Reply::Unit)
        }
        Err(e) => err(out, e),
    }
}

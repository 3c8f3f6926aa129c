//! What each operation does to an object's state.

use std::string::ToString;
use std::vec::Vec;

use super::link::Ctx;
use super::object::{Object, State};
use super::reply::{After, done, encode, err, wait_err};
use crate::manager::protocol::{Bytes, ErrorCode, Kind, Op, Reply};

fn index(i: u64, len: usize) -> Result<usize, ErrorCode> {
    if i < len as u64 {
        Ok(i as usize)
    } else {
        Err(ErrorCode::IndexOutOfBounds {
            index: i,
            len: len as u64,
        })
    }
}

/// Runs `op` on `obj` for `ctx`'s client and writes the reply into `out`.
pub(crate) fn call(obj: &Object, ctx: &mut Ctx<'_, '_>, op: Op<'_>, out: &mut Vec<u8>) -> After {
    if matches!(
        obj.kind,
        Kind::Lock
            | Kind::RLock
            | Kind::Semaphore
            | Kind::BoundedSemaphore
            | Kind::Condition
            | Kind::Event
            | Kind::Barrier
    ) {
        return super::ops_sync::call(obj, ctx, op, out);
    }
    let mut g = obj.lock();
    match (&mut *g, op) {
        (State::Dict(m), Op::Len) => done(out, Reply::U64(m.len() as u64)),
        (State::List(l), Op::Len) => done(out, Reply::U64(l.len() as u64)),
        (State::Namespace(m), Op::Len) => done(out, Reply::U64(m.len() as u64)),
        (State::Array(a), Op::Len) => done(out, Reply::U64(a.len() as u64)),
        (State::Queue(q), Op::Len) => done(out, Reply::U64(q.items.len() as u64)),
        (State::Dict(m), Op::Clear) => {
            m.clear();
            done(out, Reply::Unit)
        }
        (State::List(l), Op::Clear) => {
            l.clear();
            done(out, Reply::Unit)
        }

        // ---- dict
        (State::Dict(m), Op::DictGet(k)) => {
            done(out, Reply::OptBytes(m.get(k.0).map(|v| Bytes(v))))
        }
        (State::Dict(m), Op::DictInsert(k, v)) => {
            let old = m.insert(k.0.to_vec(), v.0.to_vec());
            done(out, Reply::OptBytes(old.as_deref().map(Bytes)))
        }
        (State::Dict(m), Op::DictRemove(k)) => {
            let old = m.remove(k.0);
            done(out, Reply::OptBytes(old.as_deref().map(Bytes)))
        }
        (State::Dict(m), Op::DictContains(k)) => done(out, Reply::Bool(m.contains_key(k.0))),
        (State::Dict(m), Op::DictSetDefault(k, v)) => {
            let v = m.entry(k.0.to_vec()).or_insert_with(|| v.0.to_vec());
            done(out, Reply::Bytes(Bytes(v)))
        }
        (State::Dict(m), Op::DictUpdate(pairs)) => {
            for (k, v) in pairs {
                m.insert(k.0.to_vec(), v.0.to_vec());
            }
            done(out, Reply::Unit)
        }
        (State::Dict(m), Op::DictKeys) => {
            done(out, Reply::Seq(m.keys().map(|k| Bytes(k)).collect()))
        }
        (State::Dict(m), Op::DictValues) => {
            done(out, Reply::Seq(m.values().map(|v| Bytes(v)).collect()))
        }
        (State::Dict(m), Op::DictItems) => done(
            out,
            Reply::Pairs(m.iter().map(|(k, v)| (Bytes(k), Bytes(v))).collect()),
        ),

        // ---- list
        (State::List(l), Op::ListPush(v)) => {
            l.push(v.0.to_vec());
            done(out, Reply::Unit)
        }
        (State::List(l), Op::ListGet(i)) => done(
            out,
            Reply::OptBytes(l.get(i.min(usize::MAX as u64) as usize).map(|v| Bytes(v))),
        ),
        (State::List(l), Op::ListSet(i, v)) => match index(i, l.len()) {
            Ok(i) => {
                l[i] = v.0.to_vec();
                done(out, Reply::Unit)
            }
            Err(e) => err(out, e),
        },
        (State::List(l), Op::ListInsert(i, v)) => {
            if i > l.len() as u64 {
                return err(
                    out,
                    ErrorCode::IndexOutOfBounds {
                        index: i,
                        len: l.len() as u64,
                    },
                );
            }
            l.insert(i as usize, v.0.to_vec());
            done(out, Reply::Unit)
        }
        (State::List(l), Op::ListPop(at)) => {
            let item = match at {
                None => l.pop(),
                Some(i) if i < l.len() as u64 => Some(l.remove(i as usize)),
                Some(_) => None,
            };
            done(out, Reply::OptBytes(item.as_deref().map(Bytes)))
        }
        (State::List(l), Op::ListRemove(v)) => match l.iter().position(|x| x == v.0) {
            Some(i) => {
                l.remove(i);
                done(out, Reply::Bool(true))
            }
            None => done(out, Reply::Bool(false)),
        },
        (State::List(l), Op::ListExtend(items)) => {
            l.extend(items.into_iter().map(|b| b.0.to_vec()));
            done(out, Reply::Unit)
        }
        (State::List(l), Op::ListSlice(a, b)) => {
            let len = l.len() as u64;
            let (a, b) = (a.min(len) as usize, b.min(len) as usize);
            let s = if a < b { &l[a..b] } else { &l[..0] };
            done(out, Reply::Seq(s.iter().map(|v| Bytes(v)).collect()))
        }

        // ---- namespace
        (State::Namespace(m), Op::NsGet(name)) => {
            done(out, Reply::OptBytes(m.get(name).map(|v| Bytes(v))))
        }
        (State::Namespace(m), Op::NsSet(name, v)) => {
            m.insert(name.to_string(), v.0.to_vec());
            done(out, Reply::Unit)
        }
        (State::Namespace(m), Op::NsRemove(name)) => {
            let old = m.remove(name);
            done(out, Reply::OptBytes(old.as_deref().map(Bytes)))
        }
        (State::Namespace(m), Op::NsNames) => {
            done(out, Reply::Names(m.keys().map(|k| k.as_str()).collect()))
        }

        // ---- value, array
        (State::Value(v), Op::Get) => done(out, Reply::Bytes(Bytes(v))),
        (State::Value(v), Op::Set(new)) => {
            v.clear();
            v.extend_from_slice(new.0);
            done(out, Reply::Unit)
        }
        (State::Array(a), Op::ArrayGet(i)) => match index(i, a.len()) {
            Ok(i) => done(out, Reply::Bytes(Bytes(&a[i]))),
            Err(e) => err(out, e),
        },
        (State::Array(a), Op::ArraySet(i, v)) => match index(i, a.len()) {
            Ok(i) => {
                a[i] = v.0.to_vec();
                done(out, Reply::Unit)
            }
            Err(e) => err(out, e),
        },
        (State::Array(a), Op::ArrayAll) => {
            done(out, Reply::Seq(a.iter().map(|v| Bytes(v)).collect()))
        }

        // ---- queue
        (State::Queue(_), Op::Put(v, wait)) => {
            let (mut g, r) = obj.block(g, ctx, wait, |s| match s {
                State::Queue(q) if q.max == 0 || (q.items.len() as u64) < q.max => Some(()),
                _ => None,
            });
            match r {
                Ok(()) => {
                    if let State::Queue(q) = &mut *g {
                        q.items.push_back(v.0.to_vec());
                        q.unfinished += 1;
                    }
                    drop(g);
                    obj.cond.notify_all();
                    done(out, Reply::Unit)
                }
                Err(e) => wait_err(out, e),
            }
        }
        (State::Queue(_), Op::Take(wait)) => {
            let (g, r) = obj.block(g, ctx, wait, |s| match s {
                State::Queue(q) => q.items.pop_front(),
                _ => None,
            });
            drop(g);
            match r {
                Ok(item) => {
                    obj.cond.notify_all();
                    encode(out, &Reply::Bytes(Bytes(&item)));
                    After::Requeue(item)
                }
                Err(e) => wait_err(out, e),
            }
        }
        (State::Queue(q), Op::TaskDone) if obj.kind == Kind::JoinableQueue => {
            if q.unfinished == 0 {
                return err(out, ErrorCode::Overflow);
            }
            q.unfinished -= 1;
            let wake = q.unfinished == 0;
            drop(g);
            if wake {
                obj.cond.notify_all();
            }
            done(out, Reply::Unit)
        }
        (State::Queue(_), Op::Join(wait)) if obj.kind == Kind::JoinableQueue => {
            let (_g, r) = obj.block(g, ctx, wait, |s| match s {
                State::Queue(q) if q.unfinished == 0 => Some(()),
                _ => None,
            });
            match r {
                Ok(()) => done(out, Reply::Unit),
                Err(e) => wait_err(out, e),
            }
        }

        _ => err(out, ErrorCode::WrongKind),
    }
}

//! JSON for scripts and monitoring: the library's structs as `serde_json` values.

use serde_json::{Value, json};
use shmkit::inspect::{
    Claim, ClaimSide, Contents, Participant, PipeDirection, PipeEnd, Scalar, Sleepers, State,
};
use shmkit::segment::SegmentInfo;

use crate::format;

/// `{"id", "liveness", "pid", "tid"}`.
pub fn participant(p: &Participant) -> Value {
    json!({
        "id": p.id,
        "liveness": p.liveness.as_str(),
        "pid": p.pid,
        "tid": p.tid,
    })
}

/// `{"count", "age_secs", "stale"}`.
pub fn sleepers(s: &Sleepers) -> Value {
    json!({ "count": s.count, "age_secs": s.age_secs, "stale": s.stale })
}

/// A number where it fits JSON's integers, a string where it does not.
pub fn scalar(s: &Scalar) -> Value {
    match *s {
        Scalar::Unsigned(v) => u64::try_from(v).map_or_else(|_| json!(v.to_string()), |v| json!(v)),
        Scalar::Signed(v) => i64::try_from(v).map_or_else(|_| json!(v.to_string()), |v| json!(v)),
        Scalar::Float(v) => json!(v),
    }
}

/// What the header says.
pub fn info(info: &SegmentInfo, creator: Option<&Participant>) -> Value {
    json!({
        "kind": info.kind.map_or("unknown", |k| k.name()),
        "type": info.type_name.as_str(),
        "size": info.size,
        "value_size": info.value_size,
        "creator": creator.map(participant),
        "creator_pid": info.creator_pid,
        "created_ns": info.created_ns,
        "age_secs": format::age_of(info.created_ns),
        "shmkit_version": format!("{}.{}", info.kit_version.0, info.kit_version.1),
    })
}

fn contents(c: &Contents) -> Value {
    json!({
        "item_type": c.item_type,
        "len": c.len,
        "items": c.items.iter().map(scalar).collect::<Vec<_>>(),
    })
}

fn claim(c: &Claim) -> Value {
    json!({
        "slot": c.slot,
        "side": match c.side { ClaimSide::Put => "put", ClaimSide::Get => "get" },
        "by": participant(&c.by),
    })
}

fn end(e: &PipeEnd) -> Value {
    json!({
        "owner": e.owner.as_ref().map(participant),
        "token": e.token,
        "closed": e.closed,
    })
}

fn direction(d: &PipeDirection) -> Value {
    json!({
        "from_end": d.from,
        "to_end": 1 - d.from,
        "queued_bytes": d.queued,
        "sent_total": d.sent_total,
        "received_total": d.received_total,
        "receivers_asleep": sleepers(&d.receivers_asleep),
        "senders_asleep": sleepers(&d.senders_asleep),
    })
}

/// The decoded state.
pub fn state(state: &State) -> Value {
    match state {
        State::Queue(q) => json!({
            "capacity": q.capacity,
            "depth": q.depth,
            "head": q.head,
            "tail": q.tail,
            "closed": q.closed,
            "lost": q.lost,
            "claims": q.claims.iter().map(claim).collect::<Vec<_>>(),
            "consumers_asleep": sleepers(&q.consumers_asleep),
            "producers_asleep": sleepers(&q.producers_asleep),
            "unfinished": q.unfinished,
            "joiners_asleep": q.joiners_asleep.as_ref().map(sleepers),
        }),
        State::Pipe(p) => json!({
            "capacity": p.capacity,
            "ends": p.ends.iter().map(end).collect::<Vec<_>>(),
            "directions": p.directions.iter().map(direction).collect::<Vec<_>>(),
        }),
        State::Lock(l) => json!({
            "holder": l.holder.as_ref().map(participant),
            "waiters": l.waiters,
            "owner_died": l.owner_died,
            "not_recoverable": l.not_recoverable,
            "depth": l.depth,
            "contents": l.contents.as_ref().map(contents),
        }),
        State::Semaphore(s) => json!({
            "value": s.value,
            "bound": s.bound,
            "sleepers": sleepers(&s.sleepers),
        }),
        State::Event(e) => json!({
            "set": e.set,
            "sets": e.sets,
            "sleepers": sleepers(&e.sleepers),
        }),
        State::Barrier(b) => json!({
            "parties": b.parties,
            "arrived": b.arrived,
            "broken": b.broken,
            "round": b.round,
            "sleepers": sleepers(&b.sleepers),
        }),
        State::Condvar(c) => json!({
            "notifications": c.notifications,
            "waiters": sleepers(&c.waiters),
        }),
        State::Plain(v) => json!({ "value": scalar(v) }),
        State::HeaderOnly(why) => json!({ "decoded": false, "why": why }),
        _ => json!({ "decoded": false, "why": "a state this tool does not print" }),
    }
}

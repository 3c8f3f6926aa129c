//! The manager's requests and replies, as postcard-encoded frames.
//!
//! User values travel as opaque byte strings ([`Bytes`]): the client encodes them
//! with postcard, the server stores and returns the bytes and never decodes them, so
//! no client can make the server run code of its choosing (Python's managers unpickle
//! whatever a client sends). The server decodes only these types — our own,
//! finite-depth enums of integers, strings and byte strings — and only after the
//! connection's handshake succeeded.

use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::vec::Vec;

/// The protocol's version, sent in [`Request::Hello`].
pub(crate) const VERSION: u32 = 1;

/// A byte string on the wire, borrowed from the frame it came in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bytes<'a>(pub &'a [u8]);

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a [u8]>::deserialize(d).map(Bytes)
    }
}

/// The kinds of object a manager holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Kind {
    Dict,
    List,
    Namespace,
    Value,
    Array,
    Queue,
    JoinableQueue,
    Lock,
    RLock,
    Semaphore,
    BoundedSemaphore,
    Condition,
    Event,
    Barrier,
}

/// How long a blocking operation may wait on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wait {
    /// Not at all (`try_*`).
    Now,
    /// Until it can proceed.
    Forever,
    /// At most this many nanoseconds.
    Nanos(u64),
}

impl Wait {
    pub(crate) fn from_timeout(d: core::time::Duration) -> Wait {
        Wait::Nanos(d.as_nanos().min(u64::MAX as u128) as u64)
    }
}

/// A request, the first frame of every exchange.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request<'a> {
    /// The first request on a connection: join session `session` (0: start one).
    Hello {
        /// The protocol version the client speaks.
        version: u32,
        /// The session to join, 0 for a new one.
        session: u64,
    },
    /// Gets the object `name` of kind `kind`, creating it from `init`/`param` if it
    /// does not exist.
    Open {
        /// Its kind.
        kind: Kind,
        /// Its name.
        #[serde(borrow)]
        name: &'a str,
        /// The initial value (Value, Array element).
        init: Bytes<'a>,
        /// A size or count: queue bound, array length, permits, parties.
        param: u64,
        /// Create it if it does not exist (else [`ErrorCode::NotFound`]).
        create: bool,
    },
    /// Calls `op` on object `id`, for client thread `thread`.
    Call {
        /// The object, as [`Reply::Opened`] named it.
        id: u32,
        /// The calling thread, for lock ownership.
        thread: u32,
        /// The operation.
        #[serde(borrow)]
        op: Op<'a>,
    },
    /// The server's counters.
    Stats,
    /// Local clients: move this connection's requests to a shared-memory pipe, whose
    /// memfd follows (after the server's `Unit`) as `SCM_RIGHTS` on the Unix socket.
    FastPath,
    /// Stops the server.
    Shutdown,
}

/// The operations on objects. Each names the kinds it applies to; any other kind
/// gets [`ErrorCode::WrongKind`].
#[derive(Debug, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Op<'a> {
    /// Number of items: dict, list, namespace, array, queue.
    Len,
    /// Removes every item: dict, list. Clears an event.
    Clear,
    #[serde(borrow)]
    DictGet(Bytes<'a>),
    DictInsert(Bytes<'a>, Bytes<'a>),
    DictRemove(Bytes<'a>),
    DictContains(Bytes<'a>),
    DictSetDefault(Bytes<'a>, Bytes<'a>),
    DictUpdate(Vec<(Bytes<'a>, Bytes<'a>)>),
    DictKeys,
    DictValues,
    DictItems,
    ListPush(Bytes<'a>),
    ListGet(u64),
    ListSet(u64, Bytes<'a>),
    ListInsert(u64, Bytes<'a>),
    ListPop(Option<u64>),
    ListRemove(Bytes<'a>),
    ListExtend(Vec<Bytes<'a>>),
    ListSlice(u64, u64),
    NsGet(&'a str),
    NsSet(&'a str, Bytes<'a>),
    NsRemove(&'a str),
    NsNames,
    /// Value: the value.
    Get,
    /// Value: replace the value.
    Set(Bytes<'a>),
    ArrayGet(u64),
    ArraySet(u64, Bytes<'a>),
    ArrayAll,
    Put(Bytes<'a>, Wait),
    Take(Wait),
    TaskDone,
    Join(Wait),
    /// Lock, RLock, Condition, Semaphore.
    Acquire(Wait),
    /// Lock, RLock, Condition, Semaphore.
    Release,
    /// Semaphore: the count; Lock/RLock: 1 if held.
    Count,
    CondWait(Wait),
    Notify(u32),
    NotifyAll,
    EventSet,
    IsSet,
    EventWait(Wait),
    BarrierWait(Wait),
    Abort,
    Reset,
    Parties,
    NWaiting,
    IsBroken,
}

/// The server's counters ([`Manager::stats`](super::Manager::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Connections accepted (before the handshake).
    pub accepted: u64,
    /// Handshakes that failed (wrong key, timeout, garbage).
    pub handshakes_failed: u64,
    /// Request frames decoded — only ever after a successful handshake.
    pub requests_decoded: u64,
    /// Connections that are authenticated and open now.
    pub connections: u64,
    /// Of those, the ones whose calls go through a shared-memory pipe (local clients).
    pub fast_paths: u64,
    /// Client sessions that are live now.
    pub sessions: u64,
    /// Objects held.
    pub objects: u64,
}

/// Why the server refused an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum ErrorCode {
    NotFound,
    WrongKind,
    WouldBlock,
    Timeout,
    IndexOutOfBounds { index: u64, len: u64 },
    NotOwner,
    Overflow,
    OwnerDead,
    Broken,
    InvalidArgument,
    BadRequest,
    Closed,
}

impl From<ErrorCode> for super::Error {
    fn from(c: ErrorCode) -> Self {
        use super::Error as E;
        match c {
            ErrorCode::NotFound => E::NotFound,
            ErrorCode::WrongKind => E::WrongKind,
            ErrorCode::WouldBlock => E::WouldBlock,
            ErrorCode::Timeout => E::Timeout,
            ErrorCode::IndexOutOfBounds { index, len } => E::IndexOutOfBounds { index, len },
            ErrorCode::NotOwner => E::NotOwner,
            ErrorCode::Overflow => E::Overflow,
            ErrorCode::OwnerDead => E::OwnerDead,
            ErrorCode::Broken => E::Broken,
            ErrorCode::InvalidArgument => E::InvalidArgument,
            ErrorCode::BadRequest => E::Protocol("the server could not decode a request"),
            ErrorCode::Closed => E::Closed,
        }
    }
}

/// A reply: the last frame of every exchange ([`Reply::Pending`] frames may come
/// first, while a blocking call waits).
#[derive(Debug, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Reply<'a> {
    Unit,
    Bool(bool),
    U64(u64),
    #[serde(borrow)]
    Bytes(Bytes<'a>),
    OptBytes(Option<Bytes<'a>>),
    Seq(Vec<Bytes<'a>>),
    Pairs(Vec<(Bytes<'a>, Bytes<'a>)>),
    Names(Vec<&'a str>),
    Hello {
        session: u64,
    },
    Opened {
        id: u32,
    },
    Stats(Stats),
    /// The call still waits; the server is alive.
    Pending,
    Err(ErrorCode),
}

impl Request<'_> {
    /// The request as one frame's payload (postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }
}

/// Decodes one request frame (what the server does with every frame after the
/// handshake); the entry point of the `manager_request` fuzz target.
///
/// # Errors
///
/// [`Error::Protocol`](super::Error::Protocol) if the frame is not one request.
pub fn decode_request(frame: &[u8]) -> Result<Request<'_>, super::Error> {
    postcard::from_bytes(frame).map_err(|_| super::Error::Protocol("undecodable request"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_random_bytes_never_panic() {
        let key = [1u8, 2, 3];
        let pairs = std::vec![(Bytes(&key), Bytes(&key[..1]))];
        let requests = [
            Request::Hello {
                version: VERSION,
                session: 0,
            },
            Request::Open {
                kind: Kind::Barrier,
                name: "b",
                init: Bytes(&[]),
                param: 3,
                create: true,
            },
            Request::Call {
                id: 7,
                thread: 9,
                op: Op::DictUpdate(pairs),
            },
            Request::Call {
                id: 1,
                thread: 2,
                op: Op::Take(Wait::Nanos(5)),
            },
            Request::Stats,
            Request::FastPath,
            Request::Shutdown,
        ];
        for r in &requests {
            let bytes = r.to_bytes();
            let back = decode_request(&bytes).unwrap();
            assert_eq!(std::format!("{r:?}"), std::format!("{back:?}"));
            // Every truncation is refused, not misread.
            for cut in 0..bytes.len() {
                let _ = decode_request(&bytes[..cut]);
            }
        }
        // Random frames: decoded or refused, never a panic.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut buf = [0u8; 64];
        for _ in 0..200_000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let len = (x >> 58) as usize;
            let _ = decode_request(&buf[..len]);
        }
    }
}

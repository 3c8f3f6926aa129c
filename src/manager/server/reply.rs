//! Replies: how the server encodes them, the shorthands every operation uses, and
//! how a blocked call's end becomes an error code.

use std::vec::Vec;

use crate::manager::protocol::{ErrorCode, Reply};

/// Why a blocked call ended without its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitEnd {
    /// `Wait::Now` and it could not proceed.
    WouldBlock,
    /// Its deadline passed.
    Timeout,
    /// Its client hung up, or the server is stopping.
    Gone,
}

/// Something to undo if the reply cannot be delivered.
pub(crate) enum After {
    Nothing,
    /// A queue item was taken for a client that is gone: put it back in front.
    Requeue(Vec<u8>),
}

/// Appends the encoding of `reply` to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, reply: &Reply<'_>) {
    let start = out.len();
    let buf = core::mem::take(out);
    *out = match postcard::to_extend(reply, buf) {
        Ok(v) => v,
        // Unreachable for our own reply types; never leave half a reply behind.
        Err(_) => {
            let mut v = Vec::with_capacity(start + 4);
            v.resize(start, 0);
            postcard::to_extend(&Reply::Err(ErrorCode::BadRequest), v).unwrap_or_default()
        }
    };
}

pub(crate) fn err(out: &mut Vec<u8>, code: ErrorCode) -> After {
    encode(out, &Reply::Err(code));
    After::Nothing
}

pub(crate) fn done(out: &mut Vec<u8>, reply: Reply<'_>) -> After {
    encode(out, &reply);
    After::Nothing
}

pub(crate) fn wait_err(out: &mut Vec<u8>, end: WaitEnd) -> After {
    err(
        out,
        match end {
            WaitEnd::WouldBlock => ErrorCode::WouldBlock,
            WaitEnd::Timeout => ErrorCode::Timeout,
            WaitEnd::Gone => ErrorCode::Closed,
        },
    )
}

//! What a call sees of its connection: where its reply goes (the socket or the
//! fast-path pipe) and whether its client is still there while it blocks.

use core::time::Duration;
use std::time::Instant;

use super::Shared;
use super::reply::encode;
use crate::channel::Connection as PipeEnd;
use crate::manager::connection::Connection;
use crate::manager::fastpath::{self, CAP};
use crate::manager::protocol::Reply;

/// How often a blocked call tells its client that the server still lives.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a reply may wait for room (a client that stops reading is dropped).
pub(crate) const SEND_DEADLINE: Duration = Duration::from_secs(30);

/// Where replies go: the socket, or the fast-path pipe (the socket then only tells
/// whether the client is still there).
pub(crate) enum Link<'c> {
    Socket(&'c mut Connection),
    Fast {
        sock: &'c Connection,
        end: &'c PipeEnd<'c, CAP>,
    },
}

impl Link<'_> {
    /// Sends one encoded reply (`frame[1..]`; `frame[0]` is room for the pipe's
    /// flag byte).
    pub(crate) fn send(&mut self, frame: &mut [u8]) -> Result<(), crate::manager::Error> {
        let deadline = Instant::now() + SEND_DEADLINE;
        match self {
            Link::Socket(conn) => conn.send_encoded(Some(deadline), |f| {
                f.extend_from_slice(&frame[1..]);
                Ok(())
            }),
            Link::Fast { end, .. } => fastpath::send_prepared(end, frame, deadline),
        }
    }

    fn hung_up(&self) -> bool {
        match self {
            Link::Socket(conn) => conn.peer_hung_up(),
            Link::Fast { sock, .. } => sock.peer_hung_up(),
        }
    }
}

/// What a call may use of its connection while it blocks.
pub(crate) struct Ctx<'c, 'l> {
    pub(crate) session: u64,
    pub(crate) thread: u32,
    link: &'c mut Link<'l>,
    shared: &'c Shared,
    last_beat: Instant,
}

impl<'c, 'l> Ctx<'c, 'l> {
    /// The context of one call by `session`'s `thread`, replying over `link`.
    pub(crate) fn new(
        session: u64,
        thread: u32,
        link: &'c mut Link<'l>,
        shared: &'c Shared,
    ) -> Self {
        Ctx {
            session,
            thread,
            link,
            shared,
            last_beat: Instant::now(),
        }
    }

    /// Is the client still there (and the server not stopping)? Sends a heartbeat
    /// when one is due; a failed send means the client is gone.
    pub(crate) fn still_there(&mut self) -> bool {
        if self.shared.stopping() || self.link.hung_up() {
            return false;
        }
        if self.last_beat.elapsed() >= HEARTBEAT {
            self.last_beat = Instant::now();
            let mut frame = std::vec![0u8];
            encode(&mut frame, &Reply::Pending);
            if self.link.send(&mut frame).is_err() {
                return false;
            }
        }
        true
    }
}

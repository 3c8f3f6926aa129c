//! One client connection on the server: the handshake, then requests until it closes.

use core::time::Duration;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use std::vec::Vec;

use super::Shared;
use super::object::Object;
use super::ops::{After, call, encode};
use crate::manager::connection::Connection;
use crate::manager::protocol::{ErrorCode, Reply, Request, VERSION, decode_request};

/// How often a blocked call tells its client that the server still lives.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How often an idle connection looks up from its read to see whether the server
/// stops.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// What a call may use of its connection while it blocks.
pub(crate) struct Ctx<'c> {
    pub(crate) session: u64,
    pub(crate) thread: u32,
    conn: &'c mut Connection,
    shared: &'c Shared,
    last_beat: Instant,
}

impl Ctx<'_> {
    /// Is the client still there (and the server not stopping)? Sends a heartbeat
    /// when one is due; a failed send means the client is gone.
    pub(crate) fn still_there(&mut self) -> bool {
        if self.shared.stopping() || self.conn.peer_hung_up() {
            return false;
        }
        if self.last_beat.elapsed() >= HEARTBEAT {
            self.last_beat = Instant::now();
            let mut frame = Vec::with_capacity(8);
            encode(&mut frame, &Reply::Pending);
            let deadline = Some(Instant::now() + HEARTBEAT);
            if self.conn.send_frame_until(&frame, deadline).is_err() {
                return false;
            }
        }
        true
    }
}

/// Serves one authenticated connection until it closes.
pub(crate) fn serve_connection(shared: &Shared, mut conn: Connection) {
    let mut session = 0u64;
    // Objects this connection has used, so a call takes no global lock.
    let mut cache: HashMap<u32, Arc<Object>> = HashMap::new();
    let mut out: Vec<u8> = Vec::with_capacity(256);
    // The request being served, copied out of the read buffer: the call may need
    // the connection (heartbeats) while it runs.
    let mut frame: Vec<u8> = Vec::with_capacity(256);
    loop {
        // Wait for the next request, looking up now and then to see whether the
        // server stops.
        let got = conn.recv_with_until(conn.max_frame(), Some(Instant::now() + IDLE_CHECK), |f| {
            frame.clear();
            frame.extend_from_slice(f);
        });
        match got {
            Ok(()) => {}
            Err(crate::manager::Error::Timeout) if !shared.stopping() => continue,
            Err(_) => break,
        }
        shared.count_decoded();
        let Ok(request) = decode_request(&frame) else {
            // Garbage from an authenticated client: say so, and hang up.
            out.clear();
            encode(&mut out, &Reply::Err(ErrorCode::BadRequest));
            let _ = send_reply(&mut conn, &out);
            break;
        };
        out.clear();
        let mut stop = false;
        match request {
            Request::Hello {
                version,
                session: s,
            } => {
                if version != VERSION {
                    encode(&mut out, &Reply::Err(ErrorCode::BadRequest));
                } else {
                    if session != 0 {
                        shared.leave(session);
                    }
                    session = shared.join(s);
                    encode(&mut out, &Reply::Hello { session });
                }
            }
            Request::Open {
                kind,
                name,
                init,
                param,
                create,
            } => match shared.open(kind, name, init.0, param, create) {
                Ok((id, obj)) => {
                    cache.insert(id, obj);
                    encode(&mut out, &Reply::Opened { id });
                }
                Err(code) => encode(&mut out, &Reply::Err(code)),
            },
            Request::Call { id, thread, op } => {
                let obj = match cache.get(&id) {
                    Some(o) => Some(o.clone()),
                    None => shared.object(id).inspect(|o| {
                        cache.insert(id, o.clone());
                    }),
                };
                match obj {
                    Some(obj) if session != 0 => {
                        let mut ctx = Ctx {
                            session,
                            thread,
                            conn: &mut conn,
                            shared,
                            last_beat: Instant::now(),
                        };
                        if let After::Requeue(item) = call(&obj, &mut ctx, op, &mut out) {
                            // Deliver the item, or put it back.
                            if send_reply(&mut conn, &out).is_err() {
                                obj.requeue(item);
                                break;
                            }
                            continue;
                        }
                    }
                    _ => encode(&mut out, &Reply::Err(ErrorCode::BadRequest)),
                }
            }
            Request::Stats => encode(&mut out, &Reply::Stats(shared.stats())),
            Request::Shutdown => {
                encode(&mut out, &Reply::Unit);
                stop = true;
            }
        }
        if send_reply(&mut conn, &out).is_err() {
            break;
        }
        if stop {
            shared.stop();
            break;
        }
    }
    conn.close();
    if session != 0 {
        shared.leave(session);
    }
}

/// Sends an encoded reply as one frame (bounded: a client that stops reading is
/// dropped instead of holding this thread forever).
fn send_reply(conn: &mut Connection, reply: &[u8]) -> Result<(), crate::manager::Error> {
    conn.send_encoded(Some(Instant::now() + Duration::from_secs(30)), |f| {
        f.extend_from_slice(reply);
        Ok(())
    })
}

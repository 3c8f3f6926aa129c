//! One client connection on the server: requests until it closes, over the socket or
//! (local clients) a shared-memory pipe.

use core::time::Duration;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use std::vec::Vec;

use super::Shared;
use super::link::{Ctx, Link, SEND_DEADLINE};
use super::object::Object;
use super::ops::call;
use super::reply::{After, encode};
use crate::manager::connection::Connection;
use crate::manager::fastpath::{self, PipeMap};
use crate::manager::protocol::{ErrorCode, Reply, Request, VERSION, decode_request};

/// How often an idle connection looks up from its read to see whether the server
/// stops.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// A connection's state across requests.
struct State {
    session: u64,
    /// Objects this connection has used, so a call takes no global lock.
    cache: HashMap<u32, Arc<Object>>,
    /// The reply being built: a flag byte's room, then the encoded reply.
    out: Vec<u8>,
}

/// What to do after a request.
enum Flow {
    Continue,
    Close,
    /// The client asked for the fast path (the socket loop sets it up).
    FastPath,
}

/// Serves one authenticated connection until it closes.
pub(crate) fn serve_connection(shared: &Shared, mut conn: Connection) {
    let mut st = State {
        session: 0,
        cache: HashMap::new(),
        out: Vec::with_capacity(256),
    };
    // The request being served, copied out of the read buffer: the call may need the
    // connection (heartbeats) while it runs.
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
        match handle(shared, &mut st, &mut Link::Socket(&mut conn), &frame) {
            Flow::Continue => {}
            Flow::Close => break,
            Flow::FastPath => {
                if serve_fast(shared, &mut st, &mut conn) {
                    break;
                }
                // The pipe was refused (and the client told): go on over the socket.
            }
        }
    }
    conn.close();
    if st.session != 0 {
        shared.leave(st.session);
    }
}

/// The fast path: receive the client's pipe, then serve requests from it until the
/// client goes. Returns `false` if the pipe was refused and the client told so (the
/// socket then carries on), `true` when the connection is done.
fn serve_fast(shared: &Shared, st: &mut State, conn: &mut Connection) -> bool {
    if conn.has_buffered() || !conn.sock_is_unix() {
        return true;
    }
    let Ok(fd) = fastpath::recv_fd(conn.sock(), Instant::now() + Duration::from_secs(5)) else {
        return true;
    };
    let map = match PipeMap::from_fd(fd) {
        Ok(m) => m,
        Err(_) => {
            st.out.clear();
            encode(&mut st.out, &Reply::Err(ErrorCode::InvalidArgument));
            let told = conn.send_encoded(Some(Instant::now() + SEND_DEADLINE), |f| {
                f.extend_from_slice(&st.out);
                Ok(())
            });
            return told.is_err();
        }
    };
    st.out.clear();
    encode(&mut st.out, &Reply::Unit);
    let sent = conn.send_encoded(Some(Instant::now() + SEND_DEADLINE), |f| {
        f.extend_from_slice(&st.out);
        Ok(())
    });
    if sent.is_err() {
        return true;
    }
    let (_, end) = map.pipe().ends();
    shared
        .fast
        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let max = conn.max_frame();
    let mut frame: Vec<u8> = Vec::with_capacity(256);
    let mut assembled: Vec<u8> = Vec::new();
    loop {
        let got = fastpath::recv_chunks(&end, &mut assembled, IDLE_CHECK, max, |f| {
            frame.clear();
            frame.extend_from_slice(f);
        });
        match got {
            Ok(()) => {}
            Err(crate::manager::Error::Timeout) => {
                if shared.stopping() || conn.peer_hung_up() {
                    break;
                }
                continue;
            }
            Err(_) => break,
        }
        let mut link = Link::Fast {
            sock: conn,
            end: &end,
        };
        match handle(shared, st, &mut link, &frame) {
            Flow::Continue => {}
            Flow::Close | Flow::FastPath => break,
        }
    }
    end.close();
    shared
        .fast
        .fetch_sub(1, core::sync::atomic::Ordering::Relaxed);
    true
}

/// Decodes and serves one request, and sends its reply.
fn handle(shared: &Shared, st: &mut State, link: &mut Link<'_>, frame: &[u8]) -> Flow {
    shared.count_decoded();
    let out = &mut st.out;
    out.clear();
    out.push(0);
    let Ok(request) = decode_request(frame) else {
        // Garbage from an authenticated client: say so, and hang up.
        encode(out, &Reply::Err(ErrorCode::BadRequest));
        let _ = link.send(out);
        return Flow::Close;
    };
    let mut flow = Flow::Continue;
    match request {
        Request::Hello { version, session } => {
            if version != VERSION {
                encode(out, &Reply::Err(ErrorCode::BadRequest));
            } else {
                if st.session != 0 {
                    shared.leave(st.session);
                }
                st.session = shared.join(session);
                encode(
                    out,
                    &Reply::Hello {
                        session: st.session,
                    },
                );
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
                st.cache.insert(id, obj);
                encode(out, &Reply::Opened { id });
            }
            Err(code) => encode(out, &Reply::Err(code)),
        },
        Request::Call { id, thread, op } => {
            let obj = match st.cache.get(&id) {
                Some(o) => Some(o.clone()),
                None => shared.object(id).inspect(|o| {
                    st.cache.insert(id, o.clone());
                }),
            };
            match obj {
                Some(obj) if st.session != 0 => {
                    let mut ctx = Ctx::new(st.session, thread, link, shared);
                    if let After::Requeue(item) = call(&obj, &mut ctx, op, out) {
                        // Deliver the item, or put it back.
                        if link.send(out).is_err() {
                            obj.requeue(item);
                            return Flow::Close;
                        }
                        return Flow::Continue;
                    }
                }
                _ => encode(out, &Reply::Err(ErrorCode::BadRequest)),
            }
        }
        Request::Stats => encode(out, &Reply::Stats(shared.stats())),
        Request::Shutdown => {
            encode(out, &Reply::Unit);
            let _ = link.send(out);
            shared.stop();
            return Flow::Close;
        }
        Request::FastPath => match link {
            Link::Socket(conn) if conn.sock_is_unix() && st.session != 0 => {
                encode(out, &Reply::Unit);
                flow = Flow::FastPath;
            }
            _ => encode(out, &Reply::Err(ErrorCode::InvalidArgument)),
        },
    }
    if link.send(out).is_err() {
        return Flow::Close;
    }
    flow
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::os::fd::OwnedFd;
    use std::time::Instant;

    use crate::manager::connection::auth::{Side, handshake};
    use crate::manager::connection::client::connect_raw;
    use crate::manager::connection::{Address, Options};
    use crate::manager::fastpath::send_fd;
    use crate::manager::protocol::{ErrorCode, Reply, Request, VERSION};
    use crate::manager::session::exchange;
    use crate::manager::{Error, Manager};

    #[test]
    fn an_unsealed_memfd_is_refused_and_the_socket_carries_on() {
        let dir = std::env::temp_dir().join(std::format!("shmkit-conn-{}", std::process::id()));
        let server = Manager::bind(dir.join("s"), b"k").unwrap();
        let address: Address = server.address().clone();
        let t = std::thread::spawn(move || server.serve());
        let options = Options::new();
        let sock = connect_raw(&address, &options).unwrap();
        let mut conn = handshake(sock, b"k", &options, false, Side::Connecting).unwrap();
        let live = Duration::from_secs(10);
        let hello = Request::Hello {
            version: VERSION,
            session: 0,
        };
        exchange(&mut conn, &hello, live, |_| Ok(()))
            .unwrap()
            .unwrap();
        exchange(&mut conn, &Request::FastPath, live, |_| Ok(()))
            .unwrap()
            .unwrap();
        // A pipe-sized memfd whose size is not sealed: the client could shrink it
        // under the server's mapping.
        let fd: OwnedFd =
            rustix::fs::memfd_create(c"evil", rustix::fs::MemfdFlags::empty()).unwrap();
        rustix::fs::ftruncate(&fd, 256 * 1024).unwrap();
        send_fd(conn.sock(), &fd).unwrap();
        let verdict = conn
            .recv_with_until(1024, Some(Instant::now() + live), |f| {
                matches!(
                    postcard::from_bytes::<Reply<'_>>(f),
                    Ok(Reply::Err(ErrorCode::InvalidArgument))
                )
            })
            .unwrap();
        assert!(verdict, "the server must refuse the memfd");
        // The socket carries on.
        let stats = exchange(&mut conn, &Request::Stats, live, |r| match r {
            Reply::Stats(s) => Ok(s),
            _ => Err(Error::Protocol("?")),
        });
        assert_eq!(stats.unwrap().unwrap().fast_paths, 0);
        let _ = exchange(&mut conn, &Request::Shutdown, live, |_| Ok(()));
        t.join().unwrap().unwrap();
        let _ = std::fs::remove_dir(&dir);
    }
}

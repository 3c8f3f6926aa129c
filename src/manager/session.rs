//! A client process's session with a server: an anchor connection that lives as long
//! as the process uses the manager, and a pool of connections for calls.
//!
//! The server ties locks and permits to the session; it gives them back when the
//! session's last connection closes — when the client process dies, the kernel
//! closes them all. The anchor makes sure that happens only then: calls may drop a
//! broken pooled connection, the anchor stays.
//!
//! A session belongs to one process. A forked child finds its parent's session (the
//! memory was copied) with another owner, leaves it alone — the fork handler closed
//! its sockets in the child already — and starts its own: a child forked after
//! `Manager::start` uses the manager without doing anything.

use core::sync::atomic::{AtomicPtr, Ordering};
use std::boxed::Box;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;
use std::vec::Vec;

use super::Error;
use super::connection::auth::{Side, handshake};
use super::connection::client::connect_raw;
use super::connection::{Address, Connection, Options};
use super::fastpath::{self, FastChannel};
use super::protocol::{Reply, Request, VERSION};
use crate::primitive::my_process_id;

/// Where to connect, and how.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    pub(crate) options: Options,
}

/// A connection for calls: the socket, and (local servers) the fast-path pipe.
pub(crate) struct Pooled {
    sock: Connection,
    fast: Option<FastChannel>,
    /// The request being sent through the pipe (byte 0: the flag's room).
    buf: Vec<u8>,
}

impl Target {
    /// A new connection for calls in session `session`, moved onto a shared-memory
    /// pipe where the server is local (and the options allow).
    fn connect_pooled(&self, session: u64) -> Result<Pooled, Error> {
        let (mut sock, _) = self.connect(session)?;
        let mut fast = None;
        if self.options.fast_path && self.address.is_unix() {
            let agreed = exchange(
                &mut sock,
                &Request::FastPath,
                self.options.liveness,
                |r| match r {
                    Reply::Unit => Ok(()),
                    _ => Err(Error::Protocol("unexpected reply to fast path")),
                },
            )?;
            if agreed.is_ok() {
                let channel = fastpath::client_channel(&sock)?;
                // The server says whether it mapped the pipe.
                let max = sock.max_frame();
                let ok =
                    sock.recv_with_until(max, Some(Instant::now() + self.options.liveness), |f| {
                        matches!(postcard::from_bytes::<Reply<'_>>(f), Ok(Reply::Unit))
                    })?;
                if ok {
                    fast = Some(channel);
                }
            }
        }
        Ok(Pooled {
            sock,
            fast,
            buf: Vec::new(),
        })
    }

    /// A new authenticated connection that joins session `session` (0: a new one);
    /// returns it and the session's id.
    fn connect(&self, session: u64) -> Result<(Connection, u64), Error> {
        let sock = connect_raw(&self.address, &self.options)?;
        let mut conn = handshake(sock, &self.authkey, &self.options, true, Side::Connecting)?;
        conn.set_timeout(None);
        let id = exchange(
            &mut conn,
            &Request::Hello {
                version: VERSION,
                session,
            },
            self.options.liveness,
            |r| match r {
                Reply::Hello { session } => Ok(session),
                _ => Err(Error::Protocol("unexpected reply to hello")),
            },
        )??;
        Ok((conn, id))
    }
}

/// One process's session.
pub(crate) struct Session {
    /// The process that owns it.
    pid: u32,
    id: u64,
    /// Never used for calls: its closing (at the process's death) ends the session.
    _anchor: Connection,
    pool: Mutex<Vec<Pooled>>,
}

impl Session {
    fn open(target: &Target) -> Result<Session, Error> {
        let (anchor, id) = target.connect(0)?;
        Ok(Session {
            pid: my_process_id(),
            id,
            _anchor: anchor,
            pool: Mutex::new(Vec::new()),
        })
    }

    /// Sends `request` on a pooled connection and hands the reply to `f`.
    pub(crate) fn call<R>(
        &self,
        target: &Target,
        request: &Request<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => target.connect_pooled(self.id)?,
        };
        let liveness = target.options.liveness;
        let r = match &mut conn.fast {
            Some(fast) => exchange_fast(
                fast,
                &mut conn.buf,
                request,
                liveness,
                conn.sock.max_frame(),
                f,
            ),
            None => exchange(&mut conn.sock, request, liveness, f),
        };
        match r {
            Ok(r) => {
                self.pool
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
                r
            }
            // The connection is out of step or dead: drop it.
            Err(e) => Err(e),
        }
    }
}

/// Sends `request` and waits for its reply, skipping heartbeats; each frame must come
/// within `liveness`. Outer error: the connection failed; inner: the reply's.
pub(crate) fn exchange<R>(
    conn: &mut Connection,
    request: &Request<'_>,
    liveness: core::time::Duration,
    f: impl FnOnce(Reply<'_>) -> Result<R, Error>,
) -> Result<Result<R, Error>, Error> {
    conn.send_encoded(Some(Instant::now() + liveness), |buf| {
        postcard::to_extend(request, core::mem::take(buf))
            .map(|v| *buf = v)
            .map_err(|_| Error::Encode)
    })?;
    let mut f = Some(f);
    loop {
        let max = conn.max_frame();
        let got = conn.recv_with_until(max, Some(Instant::now() + liveness), |frame| {
            take_reply(frame, &mut f)
        })?;
        match got {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => continue,
            Err(e) => {
                conn.close();
                return Err(e);
            }
        }
    }
}

/// Decodes one reply frame: `None` for a heartbeat (`Pending`), else the reply's
/// error or what `f` (taken: a second reply is a protocol error) makes of it.
fn take_reply<R>(
    frame: &[u8],
    f: &mut Option<impl FnOnce(Reply<'_>) -> Result<R, Error>>,
) -> Result<Option<Result<R, Error>>, Error> {
    match postcard::from_bytes::<Reply<'_>>(frame) {
        Err(_) => Err(Error::Protocol("undecodable reply")),
        Ok(Reply::Pending) => Ok(None),
        Ok(Reply::Err(code)) => Ok(Some(Err(code.into()))),
        Ok(reply) => match f.take() {
            Some(f) => Ok(Some(f(reply))),
            None => Err(Error::Protocol("second reply")),
        },
    }
}

/// [`exchange`] through the fast-path pipe.
fn exchange_fast<R>(
    fast: &mut FastChannel,
    buf: &mut Vec<u8>,
    request: &Request<'_>,
    liveness: core::time::Duration,
    max: usize,
    f: impl FnOnce(Reply<'_>) -> Result<R, Error>,
) -> Result<Result<R, Error>, Error> {
    buf.clear();
    buf.push(0);
    *buf = postcard::to_extend(request, core::mem::take(buf)).map_err(|_| Error::Encode)?;
    fast.send(buf, Instant::now() + liveness)?;
    let mut f = Some(f);
    loop {
        let got = fast.recv(liveness, max, |frame| take_reply(frame, &mut f))?;
        match got {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The current process's session, created on first use (and again in a forked
/// child).
pub(crate) struct SessionCell {
    ptr: AtomicPtr<Session>,
}

impl SessionCell {
    pub(crate) fn new() -> SessionCell {
        SessionCell {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// This process's session.
    pub(crate) fn get(&self, target: &Target) -> Result<&Session, Error> {
        // Acquire: pairs with the Release of the compare_exchange below, so the
        // session's fields are visible.
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Box::into_raw` below and is freed
        // only in `drop`, by the owning process (`&mut self`), never while `self` is
        // borrowed; sessions of other processes are leaked, never freed.
        if let Some(s) = unsafe { p.as_ref() } {
            if s.pid == my_process_id() {
                return Ok(s);
            }
        }
        self.replace(p, target)
    }

    #[cold]
    fn replace(&self, old: *mut Session, target: &Target) -> Result<&Session, Error> {
        let new = Box::into_raw(Box::new(Session::open(target)?));
        match self
            .ptr
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
        {
            // `old` (if any) is a parent's session, copied by fork: leaked on purpose
            // (its sockets were closed by the fork handler; its mutex may be locked
            // by a thread that does not exist here).
            // SAFETY: `new` was just made from a Box and is now owned by the cell.
            Ok(_) => Ok(unsafe { &*new }),
            Err(current) => {
                // Another thread of this process was first: use its session.
                // SAFETY: `new` came from `Box::into_raw` above and was never shared.
                drop(unsafe { Box::from_raw(new) });
                // SAFETY: as in `get`.
                match unsafe { current.as_ref() } {
                    Some(s) if s.pid == my_process_id() => Ok(s),
                    _ => Err(Error::Protocol("manager session raced with a fork")),
                }
            }
        }
    }
}

impl Drop for SessionCell {
    fn drop(&mut self) {
        let p = *self.ptr.get_mut();
        // SAFETY: as in `get`; with `&mut self` nobody else uses the session.
        if let Some(s) = unsafe { p.as_ref() } {
            if s.pid == my_process_id() {
                // SAFETY: ours, from `Box::into_raw`, and unreachable after this.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

//! The local fast path: requests and replies through the kit's own shared-memory
//! [`Pipe`], the socket kept for authentication and liveness.
//!
//! A socket round trip costs a sleep and a wake-up on each side; a `Pipe` round trip
//! between two running threads costs a few cache-line transfers. So a client on the
//! same host (a Unix-socket address), once authenticated, creates a `Pipe` in a
//! [`Shared`] segment that keeps its memfd (sealed against shrinking and growing),
//! and passes the descriptor to the server over the socket (`SCM_RIGHTS`). From then
//! on that connection's requests go through the pipe; the socket stays open and
//! idle, so the kernel still closes it when the client dies (the server gives back
//! the client's locks), and the server still finds a dead client between wait
//! slices.
//!
//! The server maps what a client sent with `Shared::from_memfd`: the checks
//! `Shared::open` makes (magic, layout version, type fingerprint, size) and the
//! `F_SEAL_SHRINK` seal, so a client can neither hand over something else nor shrink
//! it under the server's mapping and make it fault. The pipe itself validates every
//! index and length it reads, so a client scribbling on the memory gets its
//! connection closed, nothing worse.
//!
//! Messages longer than the pipe carries travel in chunks: each message starts with a
//! byte that says whether more chunks of the same frame follow.

use core::mem::MaybeUninit;
use core::time::Duration;
use std::boxed::Box;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;
use std::vec::Vec;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use super::Error;
use super::connection::stream::{Connection as SocketConn, Sock};
use crate::Shared;
use crate::channel::{Connection as PipeEnd, Pipe};

/// Bytes per direction of a fast-path pipe.
pub(crate) const CAP: usize = 64 * 1024;
/// The pipe of a fast-path connection.
pub(crate) type FastPipe = Pipe<CAP>;
/// The longest chunk (a message is a flag byte and a chunk).
const CHUNK: usize = CAP - 8 - 1;
/// Flag byte: this is the frame's last chunk.
const LAST: u8 = 0;
/// Flag byte: more chunks of this frame follow.
const MORE: u8 = 1;

/// A `FastPipe` in a sealed memfd segment (a [`Shared`] that kept its memfd).
pub(crate) struct PipeMap(Shared<FastPipe>);

/// How long the server waits for a received segment to be READY (a client sends it
/// only once it is).
const READY_WAIT: Duration = Duration::from_millis(100);

impl PipeMap {
    /// A fresh pipe in a new sealed memfd; returns it and the descriptor to send.
    pub(crate) fn create() -> Result<(PipeMap, OwnedFd), Error> {
        // SAFETY: the slot starts zero-filled, and all-zero is a valid fresh `Pipe`.
        let shared = unsafe { Shared::<FastPipe>::new_with_fd(|_| {}) }.map_err(segment)?;
        let fd = shared
            .fd()
            .ok_or(Error::Protocol("fast path: the segment kept no memfd"))?
            .try_clone_to_owned()?;
        Ok((PipeMap(shared), fd))
    }

    /// Maps a pipe a client sent, after the checks `Shared::open` makes (magic,
    /// layout version, type, size) and a check of the seals: the client cannot
    /// shrink it under the server's mapping and make it fault.
    pub(crate) fn from_fd(fd: OwnedFd) -> Result<PipeMap, Error> {
        Shared::<FastPipe>::from_memfd(fd, READY_WAIT)
            .map(PipeMap)
            .map_err(segment)
    }

    pub(crate) fn pipe(&self) -> &FastPipe {
        &self.0
    }
}

fn segment(_: crate::SegmentError) -> Error {
    Error::Protocol("fast path: the pipe's segment failed validation")
}

fn os(e: rustix::io::Errno) -> Error {
    Error::Os(e.raw_os_error())
}

/// A client's end of a fast-path pipe.
pub(crate) struct FastChannel {
    /// Declared before `map`: dropped (closed) before the mapping goes.
    end: PipeEnd<'static, CAP>,
    map: Box<PipeMap>,
    /// A reply that came in several chunks, put together.
    assembled: Vec<u8>,
}

impl FastChannel {
    fn new(map: PipeMap) -> FastChannel {
        let map = Box::new(map);
        // SAFETY: the pipe lives in the mapping that `map` owns; the Box keeps the
        // `PipeMap` (and so the mapping) alive and in place until this channel drops,
        // and `end` — the only borrower — is dropped first (field order).
        let pipe: &'static FastPipe = unsafe { &*(map.pipe() as *const FastPipe) };
        FastChannel {
            end: pipe.ends().0,
            map,
            assembled: Vec::new(),
        }
    }

    /// Sends the frame in `buf[1..]` (`buf[0]` is reserved for the flag byte).
    pub(crate) fn send(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), Error> {
        send_prepared(&self.end, buf, deadline)
    }

    /// Receives one frame and hands it to `f`; each chunk must come within `liveness`.
    pub(crate) fn recv<R>(
        &mut self,
        liveness: Duration,
        max: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        let _ = &self.map;
        recv_chunks(&self.end, &mut self.assembled, liveness, max, f)
    }
}

/// Sends the frame in `buf[1..]` on `end`: at once if it fits one message (the
/// common case, no copy), else in chunks. `buf[0]` is the flag byte's room.
pub(crate) fn send_prepared(
    end: &PipeEnd<'_, CAP>,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), Error> {
    if buf.len() - 1 <= CHUNK {
        buf[0] = LAST;
        return send_message(end, buf, deadline);
    }
    let mut scratch = Vec::with_capacity(CHUNK + 1);
    let mut chunks = buf[1..].chunks(CHUNK).peekable();
    while let Some(c) = chunks.next() {
        scratch.clear();
        scratch.push(if chunks.peek().is_some() { MORE } else { LAST });
        scratch.extend_from_slice(c);
        send_message(end, &scratch, deadline)?;
    }
    Ok(())
}

fn send_message(end: &PipeEnd<'_, CAP>, msg: &[u8], deadline: Instant) -> Result<(), Error> {
    // The common case: room now, no clock read.
    match end.try_send_bytes(msg) {
        Err(crate::Error::WouldBlock) => {}
        r => return r.map_err(Error::from),
    }
    let left = deadline.saturating_duration_since(Instant::now());
    end.send_bytes_timeout(msg, left).map_err(Error::from)
}

/// What one message of a frame was.
enum Got<R> {
    Whole(R),
    Part { last: bool },
}

/// Receives one frame from `end` (chunks put together in `assembled`, at most `max`
/// bytes) and hands it to `f`. Each chunk must come within `liveness`.
pub(crate) fn recv_chunks<R>(
    end: &PipeEnd<'_, CAP>,
    assembled: &mut Vec<u8>,
    liveness: Duration,
    max: usize,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, Error> {
    assembled.clear();
    let mut f = Some(f);
    loop {
        if !end.poll(Some(liveness))? {
            return Err(Error::Timeout);
        }
        let got = end.recv_with(|m| -> Result<Got<R>, Error> {
            let Some((&flag, body)) = m.split_first() else {
                return Err(Error::Protocol("fast path: empty message"));
            };
            if flag == LAST && assembled.is_empty() {
                // One chunk: hand it over in place.
                let f = f.take().ok_or(Error::Protocol("fast path: chunk order"))?;
                return Ok(Got::Whole(f(body)));
            }
            if assembled.len() + body.len() > max {
                return Err(Error::FrameTooLarge {
                    len: (assembled.len() + body.len()) as u64,
                    max,
                });
            }
            assembled.extend_from_slice(body);
            Ok(Got::Part { last: flag == LAST })
        })??;
        match got {
            Got::Whole(r) => return Ok(r),
            Got::Part { last: true } => {
                let f = f.take().ok_or(Error::Protocol("fast path: chunk order"))?;
                return Ok(f(assembled));
            }
            Got::Part { last: false } => {}
        }
    }
}

/// Sends `fd` over the Unix socket `sock` (one byte of data carries it).
pub(crate) fn send_fd(sock: &Sock, fd: &impl AsFd) -> Result<(), Error> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd.as_fd()];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Error::Protocol("fast path: control buffer"));
    }
    let n = rustix::net::sendmsg(
        sock.fd(),
        &[IoSlice::new(b"F")],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(os)?;
    if n != 1 {
        return Err(Error::Disconnected);
    }
    Ok(())
}

/// Receives the descriptor a client sent with [`send_fd`] (waiting until `deadline`).
pub(crate) fn recv_fd(sock: &Sock, deadline: Instant) -> Result<OwnedFd, Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if !super::connection::stream::poll_fd(sock.fd(), rustix::event::PollFlags::IN, Some(left))? {
        return Err(Error::Timeout);
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let got = rustix::net::recvmsg(
        sock.fd(),
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
    )
    .map_err(os)?;
    let mut received = None;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            for fd in fds {
                // Keep the first; any other is closed as it drops.
                if received.is_none() {
                    received = Some(fd);
                }
            }
        }
    }
    if got.bytes != 1 || byte[0] != b'F' {
        return Err(Error::Protocol("fast path: expected the pipe's descriptor"));
    }
    received.ok_or(Error::Protocol("fast path: no descriptor came"))
}

/// Sets up the client side over an authenticated socket `conn` whose server agreed
/// to the fast path: creates the pipe, sends its descriptor.
pub(crate) fn client_channel(conn: &SocketConn) -> Result<FastChannel, Error> {
    let (map, fd) = PipeMap::create()?;
    send_fd(conn.sock(), &fd)?;
    Ok(FastChannel::new(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{MemfdFlags, SealFlags};

    fn memfd(len: u64, seals: SealFlags) -> OwnedFd {
        let fd = rustix::fs::memfd_create(c"test", MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, len).unwrap();
        if !seals.is_empty() {
            rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
        }
        fd
    }

    #[test]
    fn the_server_maps_only_sealed_pipe_segments() {
        // What a client creates passes.
        let (_map, fd) = PipeMap::create().unwrap();
        assert!(PipeMap::from_fd(fd).is_ok());
        // Raw memfds, sealed or not: no segment header.
        let len = core::mem::size_of::<FastPipe>() as u64 + 4096;
        let sealed = SealFlags::SHRINK | SealFlags::GROW;
        assert!(PipeMap::from_fd(memfd(len, sealed)).is_err());
        assert!(PipeMap::from_fd(memfd(len, SealFlags::empty())).is_err());
        // A segment of another type.
        // SAFETY: all-zero is a valid fresh pipe.
        let other = unsafe { Shared::<Pipe<1024>>::new_with_fd(|_| {}) }.unwrap();
        let fd = other.fd().unwrap().try_clone_to_owned().unwrap();
        assert!(PipeMap::from_fd(fd).is_err());
        // Not a memfd at all.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(PipeMap::from_fd(OwnedFd::from(a)).is_err());
    }

    #[test]
    fn frames_longer_than_the_pipe_travel_in_chunks() {
        let (map, _fd) = PipeMap::create().unwrap();
        let (a, b) = map.pipe().ends();
        let lens = [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17];
        std::thread::scope(|s| {
            s.spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                for len in lens {
                    let mut buf: Vec<u8> = core::iter::once(0)
                        .chain((0..len).map(|i| i as u8))
                        .collect();
                    send_prepared(&a, &mut buf, deadline).unwrap();
                }
                // Then one over the receiver's maximum.
                let _ = send_prepared(&a, &mut std::vec![0u8; 2 * CHUNK + 1], deadline);
            });
            let mut assembled = Vec::new();
            let wait = Duration::from_secs(10);
            for len in lens {
                let got = recv_chunks(&b, &mut assembled, wait, 1 << 20, |f| f.to_vec()).unwrap();
                assert_eq!(got.len(), len);
                assert!(got.iter().enumerate().all(|(i, &x)| x == i as u8));
            }
            let r = recv_chunks(&b, &mut assembled, wait, CHUNK + 10, |_| ());
            assert!(matches!(r, Err(Error::FrameTooLarge { .. })), "{r:?}");
            // The sender's last chunk is still queued; take it so it finishes.
            let _ = recv_chunks(&b, &mut assembled, wait, usize::MAX, |_| ());
        });
    }
}

//! The local fast path: requests and replies through the kit's own shared-memory
//! [`Pipe`], the socket kept for authentication and liveness.
//!
//! A socket round trip costs a sleep and a wake-up on each side; a `Pipe` round trip
//! between two running threads costs a few cache-line transfers. So a client on the
//! same host (a Unix-socket address), once authenticated, creates a memfd holding a
//! `Pipe`, seals its size (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`), and passes
//! the descriptor to the server over the socket (`SCM_RIGHTS`). From then on that
//! connection's requests go through the pipe; the socket stays open and idle, so the
//! kernel still closes it when the client dies (the server gives back the client's
//! locks), and the server still finds a dead client between wait slices.
//!
//! The server maps what a client sent only after checking that it is a regular file
//! of exactly the pipe's size whose size is sealed (a client cannot shrink it under
//! the server's mapping and make it fault). The pipe itself validates every index and
//! length it reads, so a client scribbling on the memory gets its connection closed,
//! nothing worse.
//!
//! Messages longer than the pipe carries travel in chunks: each message starts with a
//! byte that says whether more chunks of the same frame follow.

use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::time::Duration;
use std::boxed::Box;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;
use std::vec::Vec;

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use super::Error;
use super::connection::stream::{Connection as SocketConn, Sock};
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

/// A `FastPipe` in a mapping of a sealed memfd.
pub(crate) struct PipeMap {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is shared memory that every thread sees at the same address;
// `FastPipe` is `Sync` and synchronises itself.
unsafe impl Send for PipeMap {}
// SAFETY: as above; `PipeMap` hands out `&FastPipe` only.
unsafe impl Sync for PipeMap {}

fn map_len() -> usize {
    let page = crate::sys::mem::page_size();
    core::mem::size_of::<FastPipe>().div_ceil(page) * page
}

impl PipeMap {
    /// A fresh pipe in a new sealed memfd; returns the mapping and the descriptor to
    /// send.
    pub(crate) fn create() -> Result<(PipeMap, OwnedFd), Error> {
        let fd = rustix::fs::memfd_create(
            c"shmkit-manager-pipe",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .map_err(os)?;
        let len = map_len();
        rustix::fs::ftruncate(&fd, len as u64).map_err(os)?;
        // Reserve the pages now: a later shortage is an error here, not a SIGBUS.
        let _ = rustix::fs::fallocate(&fd, rustix::fs::FallocateFlags::empty(), 0, len as u64);
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .map_err(os)?;
        let base = crate::sys::mem::map_fd(&fd, len)?;
        // A fresh memfd reads as zeros, and all-zero is a valid fresh `Pipe`.
        Ok((PipeMap { base, len }, fd))
    }

    /// Maps a pipe a client sent, after checking that it cannot fault under us.
    pub(crate) fn from_fd(fd: &OwnedFd) -> Result<PipeMap, Error> {
        let len = map_len();
        let st = rustix::fs::fstat(fd).map_err(os)?;
        let regular =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
        if !regular || st.st_size != len as i64 {
            return Err(Error::Protocol("fast path: not a pipe-sized file"));
        }
        let seals = rustix::fs::fcntl_get_seals(fd).map_err(os)?;
        if !seals.contains(SealFlags::SHRINK | SealFlags::GROW) {
            return Err(Error::Protocol("fast path: the memfd's size is not sealed"));
        }
        let base = crate::sys::mem::map_fd(fd, len)?;
        Ok(PipeMap { base, len })
    }

    pub(crate) fn pipe(&self) -> &FastPipe {
        // SAFETY: the mapping is `len >= size_of::<FastPipe>()` bytes, page-aligned,
        // and lives as long as `self`; every bit pattern of a `Pipe` is handled (it
        // is `ShmSafe`: indices and lengths are validated when read).
        unsafe { self.base.cast::<FastPipe>().as_ref() }
    }
}

impl Drop for PipeMap {
    fn drop(&mut self) {
        // SAFETY: exactly our mapping; the `&FastPipe`s handed out borrow `self`, so
        // none outlives this.
        unsafe { crate::sys::mem::unmap(self.base, self.len) };
    }
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
pub(crate) fn send_fd(sock: &Sock, fd: &OwnedFd) -> Result<(), Error> {
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

    fn memfd(len: u64, seals: SealFlags) -> OwnedFd {
        let fd = rustix::fs::memfd_create(c"test", MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, len).unwrap();
        if !seals.is_empty() {
            rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
        }
        fd
    }

    #[test]
    fn the_server_maps_only_sealed_pipe_sized_memfds() {
        let len = map_len() as u64;
        let sealed = SealFlags::SHRINK | SealFlags::GROW;
        assert!(PipeMap::from_fd(&memfd(len, sealed)).is_ok());
        // Not sealed: the client could shrink it under the mapping (SIGBUS).
        assert!(PipeMap::from_fd(&memfd(len, SealFlags::empty())).is_err());
        assert!(PipeMap::from_fd(&memfd(len, SealFlags::GROW)).is_err());
        // Not the pipe's size.
        assert!(PipeMap::from_fd(&memfd(len - 4096, sealed)).is_err());
        assert!(PipeMap::from_fd(&memfd(len + 4096, sealed)).is_err());
        // Not a memfd at all.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(PipeMap::from_fd(&OwnedFd::from(a)).is_err());
        // What a client creates passes.
        let (_map, fd) = PipeMap::create().unwrap();
        assert!(PipeMap::from_fd(&fd).is_ok());
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

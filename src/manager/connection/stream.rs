//! `Connection`: one authenticated socket, framed as CPython frames it.

use core::time::Duration;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Instant;
use std::vec::Vec;

pub(crate) use super::sock::Sock;
use super::wire::{MAX_HEADER, encode_header, parse_header};
use crate::manager::Error;

/// The read buffer's starting size; most frames fit, so one `read` takes a whole one.
const READ_CHUNK: usize = 16 * 1024;
/// Frames up to this size are copied behind their header and written at once.
const COALESCE: usize = 64 * 1024;
/// A socket timeout already set this much longer than needed is left alone: the read
/// wakes a little early and the loop waits again (no `setsockopt` per call).
const SLACK: Duration = Duration::from_millis(2);
/// A read buffer that grew past this for a big frame is given back afterwards.
const KEEP_CAPACITY: usize = 1 << 20;

/// One end of an authenticated socket connection (Python's
/// `multiprocessing.connection.Connection`), from [`Listener::accept`] or
/// [`Client::connect`].
///
/// Messages are byte frames in CPython's format, so the peer may be a Python program
/// ([`send_bytes`](Self::send_bytes) ↔ `conn.recv_bytes()`, `conn.send_bytes(b)` ↔
/// [`recv_bytes`](Self::recv_bytes)). [`send_value`](Self::send_value) and
/// [`recv_value`](Self::recv_value) carry serde values as postcard bytes (for Rust
/// peers; Python's `send`/`recv` use pickle, which this side never decodes).
///
/// Every blocking call waits at most [`timeout`](Self::set_timeout) (`None`, the
/// default, waits forever): a receive that times out keeps what it read of a frame,
/// so the next call goes on with it; a send that times out mid-frame closes the
/// connection (the stream would be out of step). Frames longer than
/// [`max_frame`](Self::max_frame) (default 64 MiB) are refused before anything is
/// allocated for them, and the connection is closed.
///
/// [`Listener::accept`]: super::Listener::accept
/// [`Client::connect`]: super::Client::connect
#[derive(Debug)]
pub struct Connection {
    sock: core::mem::ManuallyDrop<Sock>,
    /// A manager's socket: its slot in the fork table and the process that owns it
    /// (see `forksafe`); `None` for the user's connections.
    private: Option<(Option<usize>, u32)>,
    /// Received bytes: `buf[start..end]` are unread.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Outgoing frame (header and payload), reused.
    wbuf: Vec<u8>,
    max_frame: usize,
    timeout: Option<Duration>,
    /// The `SO_RCVTIMEO` / `SO_SNDTIMEO` now set (`None`: blocking).
    rcv_set: Option<Duration>,
    snd_set: Option<Duration>,
    closed: bool,
}

impl Connection {
    pub(crate) fn new(sock: Sock, max_frame: usize) -> Connection {
        Connection {
            sock: core::mem::ManuallyDrop::new(sock),
            private: None,
            buf: Vec::new(),
            start: 0,
            end: 0,
            wbuf: Vec::new(),
            max_frame,
            timeout: None,
            rcv_set: None,
            snd_set: None,
            closed: false,
        }
    }

    pub(crate) fn sock(&self) -> &Sock {
        &self.sock
    }

    /// Is this a Unix-domain socket?
    pub(crate) fn sock_is_unix(&self) -> bool {
        matches!(*self.sock, Sock::Unix(_))
    }

    /// Bytes received and not yet read?
    pub(crate) fn has_buffered(&self) -> bool {
        self.end > self.start
    }

    /// Makes this a manager socket: closed in children forked from now on, and
    /// never closed by a process other than this one.
    pub(crate) fn make_private(&mut self) {
        if self.private.is_none() {
            let slot = crate::manager::forksafe::register(self.sock.fd().as_raw_fd());
            self.private = Some((slot, crate::primitive::my_process_id()));
        }
    }

    /// Sets the timeout of every blocking call on this connection (`None`: wait
    /// forever, the default).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout.map(|d| d.max(Duration::from_nanos(1)));
    }

    /// The timeout of blocking calls.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The longest frame this side accepts.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Sets the longest frame this side accepts.
    pub fn set_max_frame(&mut self, max: usize) {
        self.max_frame = max;
    }

    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|d| Instant::now() + d)
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Sends `msg` as one frame.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] (the connection is then closed), [`Error::Disconnected`],
    /// [`Error::Closed`], [`Error::Os`].
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), Error> {
        let deadline = self.deadline();
        self.send_frame_until(msg, deadline)
    }

    /// Receives one frame of at most `max` bytes (and at most
    /// [`max_frame`](Self::max_frame)).
    ///
    /// # Errors
    ///
    /// [`Error::FrameTooLarge`] (the connection is closed, as Python's
    /// `recv_bytes(maxlength)` does), [`Error::Protocol`] for a negative length,
    /// [`Error::Timeout`], [`Error::Disconnected`], [`Error::Closed`].
    pub fn recv_bytes(&mut self, max: usize) -> Result<Vec<u8>, Error> {
        let deadline = self.deadline();
        self.recv_with_until(max, deadline, <[u8]>::to_vec)
    }

    /// Receives one frame into `buf`; returns its length. A frame longer than `buf`
    /// stays queued ([`Error::BufferTooSmall`]): retry with a bigger buffer.
    ///
    /// # Errors
    ///
    /// [`Error::BufferTooSmall`], otherwise as [`recv_bytes`](Self::recv_bytes).
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let deadline = self.deadline();
        let (h, len) = self.next_frame(self.max_frame, deadline)?;
        let Some(dst) = buf.get_mut(..len) else {
            return Err(Error::BufferTooSmall { needed: len });
        };
        dst.copy_from_slice(&self.buf[self.start + h..self.start + h + len]);
        self.consume(h + len);
        Ok(len)
    }

    /// Sends a serde value, encoded with postcard, as one frame.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], otherwise as [`send_bytes`](Self::send_bytes).
    pub fn send_value<V: serde::Serialize + ?Sized>(&mut self, value: &V) -> Result<(), Error> {
        let deadline = self.deadline();
        self.send_encoded(deadline, |out| {
            postcard::to_extend(value, core::mem::take(out))
                .map(|v| *out = v)
                .map_err(|_| Error::Encode)
        })
    }

    /// Receives a value sent with [`send_value`](Self::send_value).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the frame does not decode as `V` (it is consumed),
    /// otherwise as [`recv_bytes`](Self::recv_bytes).
    pub fn recv_value<V: serde::de::DeserializeOwned>(&mut self) -> Result<V, Error> {
        let deadline = self.deadline();
        self.recv_with_until(self.max_frame, deadline, |m| {
            postcard::from_bytes::<V>(m).map_err(|_| Error::Decode)
        })?
    }

    /// Waits up to `timeout` (`None`: forever; `Some(ZERO)`: just check) until a
    /// receive would not block (data queued, or the peer gone). Returns whether that
    /// happened.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Os`].
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.check_open()?;
        if self.end > self.start {
            return Ok(true);
        }
        poll_fd(self.sock.fd(), rustix::event::PollFlags::IN, timeout)
    }

    /// Closes the connection (both directions); the peer's receives fail with its
    /// end-of-file error. Idempotent; later calls on this handle give
    /// [`Error::Closed`].
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.sock.shutdown();
        }
    }

    /// Was [`close`](Self::close) called (or did an error close the connection)?
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    // ---- crate-internal: frames with explicit deadlines ----

    /// Has the peer hung up (no data waiting to say otherwise)? One `poll`, no wait.
    pub(crate) fn peer_hung_up(&self) -> bool {
        use rustix::event::PollFlags;
        let flags = PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR;
        poll_fd(self.sock.fd(), flags, Some(Duration::ZERO)).unwrap_or(true)
    }

    /// Sends one frame, waiting for room until `deadline`.
    pub(crate) fn send_frame_until(
        &mut self,
        msg: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        self.check_open()?;
        let mut header = [0u8; MAX_HEADER];
        let h = encode_header(msg.len(), &mut header);
        if msg.len() <= COALESCE {
            let mut frame = core::mem::take(&mut self.wbuf);
            frame.clear();
            frame.extend_from_slice(&header[..h]);
            frame.extend_from_slice(msg);
            let r = self.write_all(&[&frame], deadline);
            self.wbuf = frame;
            r
        } else {
            self.write_all(&[&header[..h], msg], deadline)
        }
    }

    /// Sends one frame whose payload `encode` appends to the (empty) buffer it gets.
    pub(crate) fn send_encoded(
        &mut self,
        deadline: Option<Instant>,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.check_open()?;
        let mut frame = core::mem::take(&mut self.wbuf);
        frame.clear();
        frame.extend_from_slice(&[0; 4]);
        let r = encode(&mut frame).and_then(|()| {
            let len = frame.len() - 4;
            if len > i32::MAX as usize {
                return Err(Error::FrameTooLarge {
                    len: len as u64,
                    max: i32::MAX as usize,
                });
            }
            frame[..4].copy_from_slice(&(len as i32).to_be_bytes());
            self.write_all(&[&frame], deadline)
        });
        if frame.capacity() > KEEP_CAPACITY {
            frame = Vec::new();
        }
        self.wbuf = frame;
        r
    }

    /// Receives one frame of at most `max` bytes and hands it to `f` in place.
    pub(crate) fn recv_with_until<R>(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        let (h, len) = self.next_frame(max.min(self.max_frame), deadline)?;
        let out = f(&self.buf[self.start + h..self.start + h + len]);
        self.consume(h + len);
        Ok(out)
    }

    /// Waits until a whole frame is buffered; returns (header length, payload length).
    fn next_frame(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
    ) -> Result<(usize, usize), Error> {
        self.check_open()?;
        loop {
            match parse_header(&self.buf[self.start..self.end], max) {
                Ok(Some((h, len))) => {
                    self.fill(h + len, deadline)?;
                    return Ok((h, len));
                }
                Ok(None) => {
                    let have = self.end - self.start;
                    self.fill(have + 1, deadline)?;
                }
                Err(e) => {
                    self.close();
                    return Err(e);
                }
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > KEEP_CAPACITY {
                self.buf = Vec::new();
            }
        }
    }

    /// Reads until at least `need` unread bytes are buffered, or `deadline` passes.
    fn fill(&mut self, need: usize, deadline: Option<Instant>) -> Result<(), Error> {
        while self.end - self.start < need {
            if self.buf.len() - self.start < need {
                // Room for the whole frame (its size was checked against the maximum).
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                let want = need.max(READ_CHUNK);
                if self.buf.len() < want {
                    self.buf.resize(want, 0);
                }
            }
            arm(
                &self.sock,
                &mut self.rcv_set,
                deadline,
                Sock::set_read_timeout,
            )?;
            match self.sock.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.closed = true;
                    return Err(Error::Disconnected);
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(Error::Timeout);
                    }
                }
                Err(e) => {
                    self.close();
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Writes all of `parts` in order. On any failure the connection is closed: a
    /// partly written frame leaves the stream out of step.
    fn write_all(&mut self, parts: &[&[u8]], deadline: Option<Instant>) -> Result<(), Error> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut done = 0usize;
        while done < total {
            if let Err(e) = arm(
                &self.sock,
                &mut self.snd_set,
                deadline,
                Sock::set_write_timeout,
            ) {
                self.close();
                return Err(e);
            }
            // The parts not yet written, as slices.
            let mut skip = done;
            let mut slices: [IoSlice<'_>; 2] = [IoSlice::new(&[]), IoSlice::new(&[])];
            let mut n = 0;
            for p in parts {
                if skip >= p.len() {
                    skip -= p.len();
                    continue;
                }
                slices[n] = IoSlice::new(&p[skip..]);
                skip = 0;
                n += 1;
            }
            let r = if n == 1 {
                self.sock.write(&slices[0])
            } else {
                self.sock.write_vectored(&slices[..n])
            };
            match r {
                Ok(0) => {
                    self.close();
                    return Err(Error::Disconnected);
                }
                Ok(k) => done += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) && deadline.is_some_and(|d| Instant::now() < d) => {}
                Err(e) => {
                    self.close();
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }
}

/// The time left before `deadline` (`None`: no deadline), at least a nanosecond.
fn remaining(deadline: Option<Instant>) -> Result<Option<Duration>, Error> {
    match deadline {
        None => Ok(None),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            Ok(Some(left.max(Duration::from_millis(1))))
        }
    }
}

/// Sets a socket timeout (`SO_RCVTIMEO` with `Sock::set_read_timeout`, `SO_SNDTIMEO`
/// with `Sock::set_write_timeout`) for an I/O that must end by `deadline`, unless
/// the one now set (`set`, updated) is already about right.
fn arm(
    sock: &Sock,
    set: &mut Option<Duration>,
    deadline: Option<Instant>,
    apply: fn(&Sock, Option<Duration>) -> std::io::Result<()>,
) -> Result<(), Error> {
    let want = remaining(deadline)?;
    if needs_rearm(*set, want) {
        apply(sock, want)?;
        *set = want;
    }
    Ok(())
}

/// Must a socket timeout of `set` be changed for a wait of at most `want`?
fn needs_rearm(set: Option<Duration>, want: Option<Duration>) -> bool {
    match (set, want) {
        (None, None) => false,
        (Some(_), None) | (None, Some(_)) => true,
        // Too long a timeout would overshoot the deadline; a shorter one only wakes
        // early (the loop waits again), unless it is much shorter.
        (Some(s), Some(w)) => s > w + SLACK || s * 2 < w,
    }
}

/// `poll(2)` on one descriptor: did any of `flags` (or HUP/ERR) happen within
/// `timeout`?
pub(crate) fn poll_fd(
    fd: BorrowedFd<'_>,
    flags: rustix::event::PollFlags,
    timeout: Option<Duration>,
) -> Result<bool, Error> {
    let mut fds = [rustix::event::PollFd::new(&fd, flags)];
    let ts = timeout.map(|d| rustix::event::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    loop {
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::Os(e.raw_os_error())),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some((slot, owner)) = self.private {
            if owner != crate::primitive::my_process_id() {
                // A forked child's copy: the fork handler closed the descriptor
                // already, and its number may name something else now.
                return;
            }
            crate::manager::forksafe::unregister(slot);
        }
        // SAFETY: dropped once, here, and never used again.
        unsafe { core::mem::ManuallyDrop::drop(&mut self.sock) };
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.fd()
    }
}

impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.fd().as_raw_fd()
    }
}

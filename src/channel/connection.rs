//! `Connection`: one end of a [`Pipe`], a process-local handle.

use core::cell::Cell;
use core::time::Duration;

use bytemuck::Pod;

use super::pipe::{END_CLOSED, Pipe};
use super::ring::{Message, Reservation, Ring};
use super::{block_on, liveness_period};
use crate::error::Error;
use crate::primitive::{Deadline, Liveness, Ordering, id_liveness, my_process_id};

mod batch;

/// Hands out handle tokens, unique within a process, so that two handles on the same
/// end in one process are told apart. Process-local, never in shared memory.
#[allow(clippy::disallowed_types)]
static NEXT_TOKEN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(1);

/// One end of a [`Pipe`]: sends to the other end and receives from it (Python's
/// `multiprocessing.connection.Connection`).
///
/// A `Connection` is a process-local handle (`Send`, not `Sync`: one thread at a time
/// sends and receives on it) that borrows the pipe.
///
/// # Ownership
///
/// An end belongs to the first process — and the first handle in it — that sends,
/// receives or polls on it; the claim is recorded in the pipe. Any other handle gets
/// [`Error::EndpointInUse`], except that a process may *adopt* an end whose owner
/// has died (the peer then sees it come back). A handle that never used its end —
/// typically the parent's copy of the child's end after a fork — may be dropped or
/// [`close`](Connection::close)d with no effect on the owner, so the Python habit of
/// closing the unused copies after `fork` is harmless.
///
/// # Closing and crashes
///
/// When the owner of one end closes it, drops its handle or dies (even by
/// `kill -9`), the other end still receives every message that was fully sent, then
/// gets [`Error::Disconnected`] (Python's `EOFError`); its sends get `Disconnected`
/// too. A message is published only once completely written, so a sender killed in
/// the middle of one never delivers half of it. A dead owner is noticed when the
/// peer finds the ring empty (receiving) or full (sending): at once by the
/// non-blocking calls, within a few tens of milliseconds by blocked ones. A process
/// that has never used its end never closes it: if it exits without using it, the
/// peer is not told.
///
/// A receiver that dies while reading a message (inside [`recv_with`]) leaves that
/// message queued: a process that adopts the end receives it again.
///
/// # Errors
///
/// Every operation may return [`Error::Closed`] (this handle or end was closed),
/// [`Error::EndpointInUse`], [`Error::Corrupted`] (the shared state failed
/// validation: a scribbling peer), besides the ones listed per method.
///
/// [`recv_with`]: Connection::recv_with
pub struct Connection<'a, const CAP: usize> {
    pipe: &'a Pipe<CAP>,
    /// 0 or 1: which end this handle is.
    side: usize,
    /// This handle's token (low half of the owner record).
    token: u32,
    /// The pid under which this handle owns its end; 0 = not (yet) checked.
    bound: Cell<i32>,
    /// `close` was called on this handle.
    closed: Cell<bool>,
    /// The producer's cache of the outgoing ring's `head`.
    head_cache: Cell<u64>,
    /// When the peer's liveness may be checked again (`None`: now).
    next_check: Cell<Option<Deadline>>,
    /// The peer's owner record last found dead (0: none): sends fail fast until a
    /// new process adopts the peer's end.
    dead_peer: Cell<u64>,
}

impl<'a, const CAP: usize> Connection<'a, CAP> {
    pub(crate) fn new(pipe: &'a Pipe<CAP>, side: usize) -> Self {
        Connection {
            pipe,
            side,
            token: NEXT_TOKEN.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
            bound: Cell::new(0),
            closed: Cell::new(false),
            head_cache: Cell::new(0),
            next_check: Cell::new(None),
            dead_peer: Cell::new(0),
        }
    }

    /// The ring this end sends on.
    #[inline]
    fn tx(&self) -> &'a Ring<CAP> {
        &self.pipe.rings[self.side]
    }

    /// The ring this end receives from.
    #[inline]
    pub(crate) fn rx(&self) -> &'a Ring<CAP> {
        &self.pipe.rings[1 - self.side]
    }

    /// The owner record this handle writes when it claims its end in process `pid`.
    #[inline]
    fn owner_word(&self, pid: i32) -> u64 {
        (u64::from(pid as u32) << 32) | u64::from(self.token)
    }

    /// The largest message this pipe carries: `CAP - 8` bytes.
    pub fn max_message_len(&self) -> usize {
        Ring::<CAP>::MAX_MESSAGE
    }

    /// Claims this end for the calling process (fast: one compare once claimed).
    #[inline]
    fn bind(&self) -> Result<(), Error> {
        let pid = my_process_id() as i32;
        if self.bound.get() == pid && !self.closed.get() {
            return Ok(());
        }
        self.bind_slow(pid)
    }

    #[cold]
    #[inline(never)]
    fn bind_slow(&self, pid: i32) -> Result<(), Error> {
        if self.closed.get() {
            return Err(Error::Closed);
        }
        let end = &self.pipe.ends[self.side].0;
        let me = self.owner_word(pid);
        if self.pipe.end_closed(self.side) {
            return Err(Error::Closed);
        }
        loop {
            let owner = end.owner.load(Ordering::Acquire);
            if owner == me {
                break;
            }
            if owner != 0 {
                let owner_pid = (owner >> 32) as i32;
                // Another handle of this process, or a live (or unknown) process.
                if owner_pid == pid || id_liveness(owner_pid as u32) != Liveness::Dead {
                    return Err(Error::EndpointInUse {
                        owner: owner_pid as u32,
                    });
                }
            }
            // SYNC POINT with a previous owner's stores, through its claim (AcqRel):
            // the indices we read next are the latest it published.
            if end
                .owner
                .compare_exchange(owner, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break;
            }
        }
        // A previous owner of this end may have died after publishing a record but
        // before advancing `tail`: pick up where its records end.
        self.tx().recover_tail();
        self.head_cache.set(self.tx().indices().0);
        self.bound.set(pid);
        Ok(())
    }

    /// Has the peer closed its end, or (when `check_liveness` and a check is due)
    /// has its owner died?
    #[inline]
    fn peer_gone(&self, check_liveness: bool) -> bool {
        if self.pipe.end_closed(1 - self.side) {
            return true;
        }
        if !check_liveness && self.dead_peer.get() == 0 {
            return false;
        }
        self.peer_gone_slow(check_liveness)
    }

    #[cold]
    #[inline(never)]
    fn peer_gone_slow(&self, check_liveness: bool) -> bool {
        let peer = 1 - self.side;
        let owner_of = || self.pipe.ends[peer].0.owner.load(Ordering::Acquire);
        let dead = self.dead_peer.get();
        if dead != 0 && owner_of() == dead {
            return true;
        }
        if !check_liveness || self.next_check.get().is_some_and(|d| !d.expired()) {
            return false;
        }
        self.next_check
            .set(Some(Deadline::after(liveness_period())));
        let owner = owner_of();
        if owner != 0 && id_liveness((owner >> 32) as u32) == Liveness::Dead {
            self.dead_peer.set(owner);
            return true;
        }
        false
    }

    /// The next message, or the reason a receive would fail now; `None` = would block.
    #[inline]
    fn next_message(&self, check_liveness: bool) -> Option<Result<Message, Error>> {
        match self.rx().peek() {
            Ok(Some(m)) => Some(Ok(m)),
            Err(e) => Some(Err(e)),
            Ok(None) => self.next_message_empty(check_liveness),
        }
    }

    /// [`next_message`](Self::next_message) found the ring empty: is the peer gone?
    #[cold]
    #[inline(never)]
    fn next_message_empty(&self, check_liveness: bool) -> Option<Result<Message, Error>> {
        if !self.peer_gone(check_liveness) {
            return None;
        }
        // The peer is gone: everything it published before closing (or dying) is
        // visible now. Look once more, then report the disconnect.
        match self.rx().peek() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => Some(Err(Error::Disconnected)),
            Err(e) => Some(Err(e)),
        }
    }

    /// Waits for a message (`deadline` `None` = don't wait) and hands it to `f`; the
    /// message is removed only if `f` returns `Ok`.
    #[inline]
    fn recv_impl<R>(
        &self,
        deadline: Option<Deadline>,
        f: impl FnOnce(&[u8]) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.bind()?;
        let rx = self.rx();
        // The common case first, matched straight off the ring's answer (re-wrapping
        // it costs a store-forwarding stall per message).
        let m = match rx.peek() {
            Ok(Some(m)) => m,
            Err(e) => return Err(e),
            Ok(None) => self.recv_wait(deadline)?,
        };
        let out = rx.read(&m, f)?;
        rx.release(m);
        Ok(out)
    }

    /// `recv_impl` found the ring empty: is the peer gone, or must we wait?
    #[cold]
    #[inline(never)]
    fn recv_wait(&self, deadline: Option<Deadline>) -> Result<Message, Error> {
        match deadline {
            // Non-blocking: is the peer gone (a liveness check if one is due)?
            None => self
                .next_message_empty(true)
                .unwrap_or(Err(Error::WouldBlock)),
            // Blocking: `block_on` spins first and checks liveness only after that.
            Some(deadline) => block_on(&self.rx().wake.0.data, deadline, |check| {
                self.next_message(check)
            })
            .ok_or(Error::Timeout)?,
        }
    }

    /// Reserves room for `len` bytes (waiting up to `deadline`; `None` = don't wait),
    /// lets `fill` write them, and publishes the message.
    #[inline]
    fn send_impl<R>(
        &self,
        len: usize,
        deadline: Option<Deadline>,
        fill: impl FnOnce(&mut [u8]) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.bind()?;
        let max = Ring::<CAP>::MAX_MESSAGE;
        if len > max {
            return Err(Error::MessageTooLarge { len, max });
        }
        let tx = self.tx();
        // The common case first: the peer is there and the ring has room.
        let reservation = if self.peer_gone(false) {
            return Err(Error::Disconnected);
        } else {
            match tx.try_reserve(&self.head_cache, len) {
                Ok(Some(r)) => r,
                Err(e) => return Err(e),
                Ok(None) => self.send_wait(len, deadline)?,
            }
        };
        // An `Err` from `fill` abandons the reservation: nothing is published.
        let out = tx.fill(&reservation, fill)?;
        tx.commit(reservation);
        Ok(out)
    }

    /// `send_impl` found the ring full: is the peer gone, or must we wait for room?
    #[cold]
    #[inline(never)]
    fn send_wait(&self, len: usize, deadline: Option<Deadline>) -> Result<Reservation, Error> {
        let tx = self.tx();
        let attempt = |check: bool| -> Option<Result<Reservation, Error>> {
            if self.peer_gone(false) {
                return Some(Err(Error::Disconnected));
            }
            match tx.try_reserve(&self.head_cache, len) {
                Ok(Some(r)) => Some(Ok(r)),
                Err(e) => Some(Err(e)),
                Ok(None) if self.peer_gone(check) => Some(Err(Error::Disconnected)),
                Ok(None) => None,
            }
        };
        match deadline {
            // Non-blocking: one more attempt, with a liveness check if one is due.
            None => attempt(true).unwrap_or(Err(Error::WouldBlock)),
            // Blocking: `block_on` spins first and checks liveness only after that.
            Some(deadline) => {
                block_on(&tx.wake.0.space, deadline, attempt).ok_or(Error::Timeout)?
            }
        }
    }

    /// Sends `msg` as one message, waiting while the ring is full.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] if `msg` is longer than
    /// [`max_message_len`](Self::max_message_len); [`Error::Disconnected`] if the peer
    /// closed its end or died.
    ///
    /// # Examples
    ///
    /// ```
    /// let pipe = shmkit::Pipe::<256>::new();
    /// let (a, b) = pipe.ends();
    /// a.send_bytes(b"hello")?;
    /// let mut buf = [0u8; 16];
    /// let n = b.recv_bytes_into(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hello");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn send_bytes(&self, msg: &[u8]) -> Result<(), Error> {
        self.send_impl(msg.len(), Some(Deadline::NEVER), |buf| {
            super::copy_bytes(buf, msg);
            Ok(())
        })
    }

    /// Sends `msg` if there is room now.
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] if the ring is full; otherwise as [`send_bytes`](Self::send_bytes).
    pub fn try_send_bytes(&self, msg: &[u8]) -> Result<(), Error> {
        self.send_impl(msg.len(), None, |buf| {
            super::copy_bytes(buf, msg);
            Ok(())
        })
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the ring stayed full (never before `timeout`); otherwise
    /// as [`send_bytes`](Self::send_bytes).
    pub fn send_bytes_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_impl(msg.len(), Some(Deadline::after(timeout)), |buf| {
            super::copy_bytes(buf, msg);
            Ok(())
        })
    }

    /// Zero-copy send: reserves `len` bytes in the ring (waiting while it is full),
    /// lets `fill` write them in place, then publishes them as one message. Returns
    /// what `fill` returns. If `fill` panics, nothing is sent.
    ///
    /// # Errors
    ///
    /// As [`send_bytes`](Self::send_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let pipe = shmkit::Pipe::<256>::new();
    /// let (a, b) = pipe.ends();
    /// a.send_with(4, |buf| buf.copy_from_slice(&7u32.to_le_bytes()))?;
    /// assert_eq!(b.recv_with(|m| u32::from_le_bytes(m.try_into().unwrap()))?, 7);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn send_with<R, F: FnOnce(&mut [u8]) -> R>(&self, len: usize, fill: F) -> Result<R, Error> {
        self.send_impl(len, Some(Deadline::NEVER), |buf| Ok(fill(buf)))
    }

    /// Sends the bytes of a `Pod` value as one message.
    ///
    /// # Errors
    ///
    /// As [`send_bytes`](Self::send_bytes).
    pub fn send<T: Pod>(&self, value: &T) -> Result<(), Error> {
        self.send_bytes(bytemuck::bytes_of(value))
    }

    /// Receives one message into `buf`, waiting while none is queued; returns its
    /// length.
    ///
    /// # Errors
    ///
    /// [`Error::BufferTooSmall`] if the message is longer than `buf` (it stays queued:
    /// retry with a bigger buffer); [`Error::Disconnected`] once the peer is gone and
    /// everything it sent has been received.
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.recv_impl(Some(Deadline::NEVER), |m| copy_into(m, buf))
    }

    /// Receives one message into `buf` if one is queued now.
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] if none is queued; otherwise as
    /// [`recv_bytes_into`](Self::recv_bytes_into).
    pub fn try_recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.recv_impl(None, |m| copy_into(m, buf))
    }

    /// Receives one message into `buf`, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if none came (never before `timeout`); otherwise as
    /// [`recv_bytes_into`](Self::recv_bytes_into).
    pub fn recv_bytes_into_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, Error> {
        self.recv_impl(Some(Deadline::after(timeout)), |m| copy_into(m, buf))
    }

    /// Zero-copy receive: waits for a message and calls `f` with it in place (an
    /// 8-byte aligned slice of the ring), then removes it. If `f` panics, the message
    /// stays queued.
    ///
    /// # Errors
    ///
    /// As [`recv_bytes_into`](Self::recv_bytes_into), without `BufferTooSmall`.
    pub fn recv_with<R, F: FnOnce(&[u8]) -> R>(&self, f: F) -> Result<R, Error> {
        self.recv_impl(Some(Deadline::NEVER), |m| Ok(f(m)))
    }

    /// Receives one message as a `Pod` value.
    ///
    /// # Errors
    ///
    /// [`Error::WrongSize`] if the message's length is not `size_of::<T>()` (it stays
    /// queued); otherwise as [`recv_bytes_into`](Self::recv_bytes_into).
    pub fn recv<T: Pod>(&self) -> Result<T, Error> {
        self.recv_impl(Some(Deadline::NEVER), |m| {
            if m.len() != core::mem::size_of::<T>() {
                return Err(Error::WrongSize {
                    expected: core::mem::size_of::<T>() as u64,
                    found: m.len() as u64,
                });
            }
            Ok(bytemuck::pod_read_unaligned(m))
        })
    }

    /// Waits until a receive would not block — a message is queued, or the peer is
    /// gone — for at most `timeout` (`None`: forever; `Some(ZERO)`: just check).
    /// Returns whether that happened.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::EndpointInUse`].
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.bind()?;
        if self.next_message(true).is_some() {
            return Ok(true);
        }
        let deadline = Deadline::from_timeout(timeout);
        Ok(block_on(&self.rx().wake.0.data, deadline, |check| {
            self.next_message(check).map(|_| ())
        })
        .is_some())
    }

    /// Closes this end. If this handle owns the end, the peer receives what was sent
    /// and then [`Error::Disconnected`]; if it never used the end, only this handle is
    /// closed. Idempotent; later operations on this handle return [`Error::Closed`].
    /// Dropping the handle closes it too.
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        let pid = my_process_id() as i32;
        let end = &self.pipe.ends[self.side].0;
        if end.owner.load(Ordering::Acquire) == self.owner_word(pid) {
            // SYNC POINT with the Acquire loads of the flags in `Pipe::end_closed`:
            // every message published before this is visible to the peer after it
            // sees the flag.
            end.flags.fetch_or(END_CLOSED, Ordering::AcqRel);
            self.tx().wake.0.data.notify_all();
            self.rx().wake.0.space.notify_all();
        }
    }

    /// Was this handle, or its end, closed?
    pub fn is_closed(&self) -> bool {
        self.closed.get() || self.pipe.end_closed(self.side)
    }

    /// Loom models only: writes a message of `len` bytes into the ring without
    /// publishing it, then dies (a `kill -9` in the middle of a send).
    #[cfg(shmkit_loom)]
    #[doc(hidden)]
    pub fn __loom_die_mid_send(self, len: usize) {
        if self.bind().is_ok() {
            if let Ok(Some(r)) = self.tx().try_reserve(&self.head_cache, len) {
                self.tx().fill(&r, |b| b.fill(0xee));
            }
        }
        crate::primitive::loom_die();
        core::mem::forget(self);
    }

    /// Would a receive return at once (message, disconnect, error)? For `wait`.
    pub(crate) fn ready_now(&self) -> bool {
        if self.bind().is_err() {
            return true;
        }
        self.next_message(true).is_some()
    }

    /// Sends a value serialised with postcard, written straight into the ring.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] if serialisation fails; otherwise as
    /// [`send_bytes`](Self::send_bytes) (`MessageTooLarge` for the encoded length).
    #[cfg(feature = "serde")]
    pub fn send_value<V: serde::Serialize + ?Sized>(&self, value: &V) -> Result<(), Error> {
        let len = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
            .map_err(|_| Error::Encode)?;
        self.send_impl(len, Some(Deadline::NEVER), |buf| {
            // A value that serialises to a different length the second time (say, a
            // map with an unstable order) is refused: nothing is sent.
            match postcard::to_slice(value, buf) {
                Ok(out) if out.len() == len => Ok(()),
                _ => Err(Error::Encode),
            }
        })
    }

    /// Receives a value sent with [`send_value`](Self::send_value).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the message does not decode as `V` (it is consumed);
    /// otherwise as [`recv_bytes_into`](Self::recv_bytes_into).
    #[cfg(feature = "serde")]
    pub fn recv_value<V: serde::de::DeserializeOwned>(&self) -> Result<V, Error> {
        self.recv_impl(Some(Deadline::NEVER), |m| {
            Ok(postcard::from_bytes::<V>(m).map_err(|_| Error::Decode))
        })?
    }
}

/// Copies a message into the caller's buffer, or says how big it must be.
#[inline]
fn copy_into(msg: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
    let dst = buf
        .get_mut(..msg.len())
        .ok_or(Error::BufferTooSmall { needed: msg.len() })?;
    super::copy_bytes(dst, msg);
    Ok(msg.len())
}

impl<const CAP: usize> Drop for Connection<'_, CAP> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<const CAP: usize> core::fmt::Debug for Connection<'_, CAP> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("end", &self.side)
            .field("closed", &self.is_closed())
            .finish()
    }
}

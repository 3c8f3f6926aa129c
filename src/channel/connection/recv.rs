//! Receiving: find the next message in the incoming ring, hand it to the caller in
//! place, release it; wait while the ring is empty; readiness for `poll` and `wait`.

use core::time::Duration;

use bytemuck::Pod;

use super::super::block_on;
use super::super::ring::Message;
use super::super::ring::failpoint::failpoint;
use super::Connection;
use crate::error::Error;
use crate::primitive::Deadline;

impl<const CAP: usize> Connection<'_, CAP> {
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
        let out = rx.read(&m, f)??;
        rx.release(m);
        failpoint!("connection.recv.released");
        Ok(out)
    }

    /// `recv_impl` found the ring empty: is the peer gone, or must we wait?
    #[cold]
    #[inline(never)]
    pub(super) fn recv_wait(&self, deadline: Option<Deadline>) -> Result<Message, Error> {
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

    /// Would a receive return at once (message, disconnect, error)? For `wait`.
    pub(crate) fn ready_now(&self) -> bool {
        if self.bind().is_err() {
            return true;
        }
        self.next_message(true).is_some()
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
    super::super::copy_bytes(dst, msg);
    Ok(msg.len())
}

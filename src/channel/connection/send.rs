//! Sending: reserve room in the outgoing ring, let the caller fill it, publish;
//! wait for room when the ring is full.

use core::time::Duration;

use bytemuck::Pod;

use super::super::block_on;
use super::super::ring::failpoint::failpoint;
use super::super::ring::{Reservation, Ring};
use super::Connection;
use crate::error::Error;
use crate::primitive::Deadline;

impl<const CAP: usize> Connection<'_, CAP> {
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
        let out = tx.fill(&reservation, fill)??;
        failpoint!("connection.send.filled");
        tx.commit(reservation);
        Ok(out)
    }

    /// `send_impl` found the ring full: is the peer gone, or must we wait for room?
    #[cold]
    #[inline(never)]
    pub(super) fn send_wait(
        &self,
        len: usize,
        deadline: Option<Deadline>,
    ) -> Result<Reservation, Error> {
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
            super::super::copy_bytes(buf, msg);
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
            super::super::copy_bytes(buf, msg);
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
            super::super::copy_bytes(buf, msg);
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
}

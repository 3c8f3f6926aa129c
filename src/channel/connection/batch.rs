//! Batched transfers on a [`Connection`]: many messages per call, with one wake-up
//! check per batch on the sending side, and one publication of `head` (plus one
//! wake-up check) per batch on the receiving side.
//!
//! Sending: the records are published in batches of up to 4 KiB, each by one store
//! (the first record's header, written last: "Batches" in `ring`), so the receiver
//! reads a batch's finished lines in a stream; the wake-up check — a compiler barrier
//! and a load of the sleeper count — runs once, after the last record (and before any
//! wait for room), and the peer and the claim are checked once per call.
//!
//! Receiving: the receiver reads message after message from its own, unpublished
//! `head`, and publishes `head` (Release) once at the end of the batch. Lazy publication
//! is safe because the sender only ever writes space it saw freed: a `head` published
//! late makes it wait longer, never overwrite unread bytes; and the batch always
//! publishes before it returns, so a sender waiting for room is woken by that
//! publication (`tests/loom_pipe_batch.rs` checks both with loom).

use super::Connection;
use crate::channel::copy_bytes;
use crate::channel::ring::{Message, Reservation};
use crate::error::Error;
use crate::primitive::Deadline;

/// A batch is published once it holds this many bytes of records, so that a long
/// `send_many` lets the receiver start on its first messages while it writes the rest.
const BATCH_BYTES: u64 = 4096;

impl<const CAP: usize> Connection<'_, CAP> {
    fn send_many_impl(&self, msgs: &[&[u8]], deadline: Option<Deadline>) -> Result<usize, Error> {
        self.bind()?;
        let max = self.max_message_len();
        if let Some(m) = msgs.iter().find(|m| m.len() > max) {
            return Err(Error::MessageTooLarge { len: m.len(), max });
        }
        if msgs.is_empty() {
            return Ok(0);
        }
        if self.peer_gone(false) {
            return Err(Error::Disconnected);
        }
        let tx = self.tx();
        let mut sent = 0;
        // The open batch: its first record (not yet published) and where it ends.
        let mut open: Option<Reservation> = None;
        let mut end = tx.tail_now();
        for msg in msgs {
            let mut next = None;
            if let Some(first) = &open {
                match tx.try_reserve_at(&self.head_cache, end, msg.len()) {
                    Ok(Some(r)) if end.wrapping_sub(first.start()) < BATCH_BYTES => {
                        next = Some(r);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
                if next.is_none() {
                    // It would wrap, the ring is full, or the batch is long enough:
                    // publish the batch, and go on the usual way.
                    tx.end_batch(first, end);
                    open = None;
                }
            }
            let r = match next {
                Some(r) => r,
                None => match tx.try_reserve(&self.head_cache, msg.len()) {
                    Ok(Some(r)) => r,
                    Ok(None) | Err(_) if sent > 0 && deadline.is_none() => break,
                    Err(e) => {
                        if sent > 0 {
                            break;
                        }
                        return Err(e);
                    }
                    Ok(None) => {
                        // Full: let the receiver at what is published before waiting.
                        if sent > 0 {
                            tx.wake_consumer();
                        }
                        match self.send_wait(msg.len(), deadline) {
                            Ok(r) => r,
                            // What was sent stays sent; the error comes again next call.
                            Err(_) if sent > 0 => break,
                            Err(e) => return Err(e),
                        }
                    }
                },
            };
            if let Err(e) = tx.fill(&r, |b| copy_bytes(b, msg)) {
                if sent > 0 {
                    break;
                }
                return Err(e);
            }
            end = tx.batch_commit(&r, open.is_none());
            if open.is_none() {
                open = Some(r);
            }
            sent += 1;
        }
        if let Some(first) = &open {
            tx.end_batch(first, end);
        }
        tx.wake_consumer();
        Ok(sent)
    }

    /// Sends each of `msgs` as one message, in order, waiting while the ring is full;
    /// one wake-up check for the batch (per wait for room, if it has to wait). Returns
    /// how many were sent: all of them, unless the peer went away (or the ring failed
    /// validation) after the first — then the count sent so far, and the next call
    /// reports the error.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] if any message is longer than
    /// [`max_message_len`](Self::max_message_len) (nothing is sent);
    /// [`Error::Disconnected`] if the peer closed its end or died before anything was
    /// sent; [`Error::Closed`], [`Error::EndpointInUse`], [`Error::Corrupted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pipe = shmkit::Pipe::<1024>::new();
    /// let (a, b) = pipe.ends();
    /// assert_eq!(a.send_many(&[b"one", b"two", b"three"])?, 3);
    /// let mut got = Vec::new();
    /// assert_eq!(b.recv_many(16, |m| got.push(m.to_vec()))?, 3);
    /// assert_eq!(got, [&b"one"[..], b"two", b"three"]);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn send_many(&self, msgs: &[&[u8]]) -> Result<usize, Error> {
        self.send_many_impl(msgs, Some(Deadline::NEVER))
    }

    /// Sends as many of `msgs` (a prefix) as there is room for now.
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] if not even the first fits (and `msgs` is not empty);
    /// otherwise as [`send_many`](Self::send_many).
    pub fn try_send_many(&self, msgs: &[&[u8]]) -> Result<usize, Error> {
        self.send_many_impl(msgs, None)
    }

    #[inline]
    fn recv_many_impl(
        &self,
        max: usize,
        deadline: Option<Deadline>,
        mut f: impl FnMut(&[u8]),
    ) -> Result<usize, Error> {
        self.bind()?;
        if max == 0 {
            return Ok(0);
        }
        let rx = self.rx();
        let mut m = match rx.peek() {
            Ok(Some(m)) => m,
            Err(e) => return Err(e),
            Ok(None) => self.recv_wait(deadline)?,
        };
        let mut n = 0;
        // The last message read whose `head` is not yet published.
        let mut read: Option<Message> = None;
        loop {
            if let Err(e) = rx.read(&m, |bytes| f(bytes)) {
                // This one fails validation: publish what was read before it, and
                // report the error now (nothing read) or at the next call.
                return match read {
                    Some(last) => {
                        rx.release(last);
                        Ok(n)
                    }
                    None => Err(e),
                };
            }
            read = Some(m);
            n += 1;
            if n == max {
                break;
            }
            // The next message, read from our own position: `head` is not published
            // until the batch ends.
            if let Some(next) = rx.peek_at(m.next_head()) {
                m = next;
                continue;
            }
            // Not a plain message next: padding at the end of the array, nothing yet, or
            // corruption. Publish what was read (one more publication, once a lap), and
            // let `peek` deal with it; an error shows at the next call.
            rx.release(m);
            read = None;
            match rx.peek() {
                Ok(Some(next)) => m = next,
                Ok(None) | Err(_) => return Ok(n),
            }
        }
        // One publication of `head` (and one wake-up check) for the whole batch.
        rx.release(m);
        Ok(n)
    }

    /// Waits for at least one message, then hands every message queued now (up to
    /// `max`) to `f` in order, in place, and removes them with one publication of the
    /// ring's `head` per run of messages it finds ready: when it reaches the end of
    /// what was published (or padding at the end of the array), it publishes `head`,
    /// looks again, and goes on if more has arrived — so one call may take more
    /// messages than the ring holds at once. Returns how many `f` saw. If `f` panics,
    /// the messages not yet released stay queued.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] once the peer is gone and everything it sent has been
    /// received; [`Error::Closed`], [`Error::EndpointInUse`], [`Error::Corrupted`].
    pub fn recv_many(&self, max: usize, f: impl FnMut(&[u8])) -> Result<usize, Error> {
        self.recv_many_impl(max, Some(Deadline::NEVER), f)
    }

    /// As [`recv_many`](Self::recv_many), without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] if nothing is queued (and `max > 0`); otherwise as
    /// [`recv_many`](Self::recv_many).
    pub fn try_recv_many(&self, max: usize, f: impl FnMut(&[u8])) -> Result<usize, Error> {
        self.recv_many_impl(max, None, f)
    }
}

//! The consumer's side of a ring: find the next message (skipping padding), read it
//! in place, release it.

use super::failpoint::failpoint;
use super::layout::{HEADER, Ring, header_word, record_len};
use crate::error::Error;
use crate::primitive::Ordering;

/// The next message, found by [`Ring::peek`]; consumed by [`Ring::release`].
/// Dropping one unreleased leaves the message queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message {
    /// Payload offset in the data array.
    offset: usize,
    /// Payload length.
    pub(crate) len: usize,
    /// `head` after this record.
    next_head: u64,
}

impl Message {
    /// `head` after this record (for batches, which publish `head` once).
    #[inline]
    pub(crate) fn next_head(&self) -> u64 {
        self.next_head
    }
}

impl<const CAP: usize> Ring<CAP> {
    /// The consumer's fast check for a message at `head`, a position it has read up to
    /// but not yet published (a batch, `connection/batch.rs`, publishes `head` once, at
    /// its end). `None`: nothing there that the fast path handles (empty, padding or
    /// corrupt): [`release`](Self::release) the last message read (which publishes
    /// `head`), then [`peek`](Self::peek) handles all three.
    #[inline]
    pub(crate) fn peek_at(&self, head: u64) -> Option<Message> {
        if head % HEADER as u64 != 0 {
            return None;
        }
        let pos = Self::pos(head);
        // SYNC POINT with the Release store of the header in `publish`: the payload is
        // written.
        let word = self.data.header(pos).load(Ordering::Acquire);
        let len = word as u32;
        if word == 0 || word != header_word(head, len, false) {
            return None;
        }
        let len = len as usize;
        (len <= Self::MAX_MESSAGE && record_len(len) <= CAP - pos).then(|| Message {
            offset: pos + HEADER,
            len,
            next_head: head.wrapping_add(record_len(len) as u64),
        })
    }

    /// Finds the next message without removing it. Padding on the way is consumed (and
    /// the producer woken). `Ok(None)`: empty. Only the consumer may call it.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] if `head` or the header at it fail validation.
    #[inline]
    pub(crate) fn peek(&self) -> Result<Option<Message>, Error> {
        // Only the consumer writes `head` (Relaxed reads our own last store).
        let head = self.head.0.load(Ordering::Relaxed);
        if head % HEADER as u64 != 0 {
            return Err(Error::Corrupted);
        }
        let pos = Self::pos(head);
        // SYNC POINT with the Release store of the header in `publish`: the payload is
        // written.
        let word = self.data.header(pos).load(Ordering::Acquire);
        if word == 0 {
            return Ok(None);
        }
        let len = word as u32;
        if word == header_word(head, len, false) {
            let len = len as usize;
            if len <= Self::MAX_MESSAGE && record_len(len) <= CAP - pos {
                return Ok(Some(Message {
                    offset: pos + HEADER,
                    len,
                    next_head: head.wrapping_add(record_len(len) as u64),
                }));
            }
        }
        self.peek_slow()
    }

    /// [`peek`](Self::peek) for padding and corruption.
    #[cold]
    #[inline(never)]
    fn peek_slow(&self) -> Result<Option<Message>, Error> {
        // Only the consumer writes `head` (Relaxed reads our own last store).
        let mut head = self.head.0.load(Ordering::Relaxed);
        if head % HEADER as u64 != 0 {
            return Err(Error::Corrupted);
        }
        // A padding record is followed by a message at position 0: two rounds at most.
        for _ in 0..2 {
            let pos = Self::pos(head);
            // SYNC POINT with the Release store of the header in `publish`.
            let word = self.data.header(pos).load(Ordering::Acquire);
            if word == 0 || self.is_last_laps(pos, head, word) {
                return Ok(None);
            }
            let len = word as u32 as usize;
            let to_end = CAP - pos;
            if len > Self::MAX_MESSAGE {
                return Err(Error::Corrupted);
            }
            if word == header_word(head, len as u32, false) {
                let record = record_len(len);
                if record > to_end {
                    return Err(Error::Corrupted);
                }
                return Ok(Some(Message {
                    offset: pos + HEADER,
                    len,
                    next_head: head.wrapping_add(record as u64),
                }));
            }
            if word != header_word(head, len as u32, true) || pos == 0 || HEADER + len != to_end {
                return Err(Error::Corrupted);
            }
            head = head.wrapping_add(to_end as u64);
            // SYNC POINT with the Acquire load of `head` in `try_reserve_slow`.
            self.head.0.store(head, Ordering::Release);
            failpoint!("ring.peek.padding");
            self.wake.0.space.notify_all();
        }
        Err(Error::Corrupted)
    }

    /// Is `word`, at `pos` where the consumer stands at `head`, the header the previous
    /// lap wrote there (so: nothing new yet)? Only at position 0, which starts every lap
    /// with a record and is not zeroed ahead (see the module docs).
    #[inline]
    fn is_last_laps(&self, pos: usize, head: u64, word: u64) -> bool {
        // (Padding never starts at position 0.)
        pos == 0 && word == header_word(head.wrapping_sub(CAP as u64), word as u32, false)
    }

    /// Calls `f` with a found message's payload (8-byte aligned, in place).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] only if the message lay outside the array, which `peek`
    /// never finds.
    #[inline]
    pub(crate) fn read<R>(&self, m: &Message, f: impl FnOnce(&[u8]) -> R) -> Result<R, Error> {
        self.data.read(m.offset, m.len, f)
    }

    /// Removes a message found by `peek`; also skips a padding record right behind
    /// it if one is already published (so a producer waiting for the whole ring is
    /// not held up by padding until the next receive). Wakes the producer.
    #[inline]
    pub(crate) fn release(&self, m: Message) {
        let mut head = m.next_head;
        let pos = Self::pos(head);
        if pos != 0 {
            // SYNC POINT with the Release store of the header in `publish`.
            let word = self.data.header(pos).load(Ordering::Acquire);
            let to_end = CAP - pos;
            if word != 0 && word == header_word(head, (to_end - HEADER) as u32, true) {
                head = head.wrapping_add(to_end as u64);
            }
        }
        failpoint!("ring.release.read");
        // SYNC POINT with the Acquire load of `head` in `try_reserve_slow` (and in
        // `recover_tail`): our reads of the record are done before the producer may
        // overwrite it.
        self.head.0.store(head, Ordering::Release);
        self.wake.0.space.notify_all();
    }
}

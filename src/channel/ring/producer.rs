//! The producer's side of a ring: reserve room for a record, fill its payload,
//! publish it; and, for a process that adopts a dead producer's end, find where the
//! published records end.

use core::cell::Cell;

use super::failpoint::failpoint;
use super::layout::{HEADER, Ring, header_word, record_len, room_needed};
use crate::error::Error;
use crate::primitive::{Ordering, die_point};

/// Where a reserved record goes: made by [`Ring::try_reserve`], consumed by
/// [`Ring::commit`]. Dropping one unpublished abandons the record (nothing is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// The record's start, as a ring index (`tail` before the record).
    start: u64,
    /// Payload length (at most `MAX_MESSAGE`).
    len: usize,
}

impl Reservation {
    /// The record's start, as a ring index.
    #[inline]
    pub(crate) fn start(&self) -> u64 {
        self.start
    }
}

impl<const CAP: usize> Ring<CAP> {
    /// Reserves room for a `len`-byte payload, by the rule in "Room" (module docs).
    /// `cached_head` is the producer's process-local cache of `head`. `Ok(None)`: no
    /// room now. May publish a padding record (then wakes the consumer) even when it
    /// then finds no room for the record itself.
    ///
    /// Only the producer may call it, and each reservation must be committed (or
    /// dropped) before the next one is made: a reservation starts at `tail`, which
    /// only `commit` moves.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] for `len > MAX_MESSAGE` (callers check first, so
    /// this costs nothing once inlined); [`Error::Corrupted`] if the indices fail
    /// validation.
    #[inline]
    pub(crate) fn try_reserve(
        &self,
        cached_head: &Cell<u64>,
        len: usize,
    ) -> Result<Option<Reservation>, Error> {
        if len > Self::MAX_MESSAGE {
            return Err(Error::MessageTooLarge {
                len,
                max: Self::MAX_MESSAGE,
            });
        }
        // The common case, inline: the record fits before the end of the array and the
        // cached `head` already shows room for it (no shared load at all).
        let record = record_len(len);
        // Only the producer writes `tail`; Relaxed reads our own last store.
        let tail = self.tail.0.load(Ordering::Relaxed);
        let pos = Self::pos(tail);
        if let Ok(used) = self.check_indices(cached_head.get(), tail) {
            if record <= CAP - pos && room_needed(record, CAP) <= CAP - used {
                return Ok(Some(Reservation { start: tail, len }));
            }
        }
        self.try_reserve_slow(cached_head, len)
    }

    /// [`try_reserve`](Self::try_reserve) when the cache shows no room or the record
    /// must wrap: reloads `head`, publishes padding.
    #[cold]
    #[inline(never)]
    fn try_reserve_slow(
        &self,
        cached_head: &Cell<u64>,
        len: usize,
    ) -> Result<Option<Reservation>, Error> {
        let record = record_len(len);
        // Only the producer writes `tail`; Relaxed reads our own last store.
        let mut tail = self.tail.0.load(Ordering::Relaxed);
        let mut used = self.check_indices(cached_head.get(), tail).ok();
        for _ in 0..2 {
            let pos = Self::pos(tail);
            let to_end = CAP - pos;
            // The record, or the padding that must come first (it ends at the end of
            // the array; `pos != 0` there, so it is smaller than the array).
            let (size, pad) = if record <= to_end {
                (record, false)
            } else {
                (to_end, true)
            };
            let needed = room_needed(size, CAP);
            if used.is_none_or(|used| CAP - used < needed) {
                // Looks full (or the cache is stale): reload the consumer's index.
                // SYNC POINT with the Release stores of `head` in `release` and
                // `peek_slow`: the consumer's reads of the space we are about to
                // overwrite are done.
                let head = self.head.0.load(Ordering::Acquire);
                cached_head.set(head);
                let now = self.check_indices(head, tail)?;
                used = Some(now);
                if CAP - now < needed {
                    return Ok(None);
                }
            }
            if !pad {
                return Ok(Some(Reservation { start: tail, len }));
            }
            // The record would cross the end: fill the rest with padding, publish it
            // alone, and try again at position 0.
            self.publish(tail, (to_end - HEADER) as u32, true);
            tail = tail.wrapping_add(to_end as u64);
            failpoint!("ring.reserve.padding");
            self.wake.0.data.notify_all();
            used = used.map(|u| u + to_end);
        }
        // After padding, `tail` is at position 0 and the record fits before the end,
        // so the loop returned in its second round.
        Err(Error::Corrupted)
    }

    /// The payload space of a reservation: calls `f` with it (`len` bytes, 8-byte
    /// aligned).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] only if the reservation lay outside the array, which
    /// `try_reserve` never makes.
    #[inline]
    pub(crate) fn fill<R>(
        &self,
        r: &Reservation,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        self.data.write(Self::pos(r.start) + HEADER, r.len, f)
    }

    /// Publishes a filled reservation and wakes the consumer.
    #[inline]
    pub(crate) fn commit(&self, r: Reservation) {
        self.publish(r.start, r.len as u32, false);
        self.wake.0.data.notify_all();
    }

    /// Wakes a sleeping consumer (after a batch, [`end_batch`](Self::end_batch)).
    #[inline]
    pub(crate) fn wake_consumer(&self) {
        self.wake.0.data.notify_all();
    }

    /// Publishes the record (or padding) of `len` at ring index `start`: zeroes the
    /// next record's header word, stores this one's (Release), then advances `tail`.
    #[inline]
    fn publish(&self, start: u64, len: u32, padding: bool) {
        let next = self.publish_header(start, len, padding);
        failpoint!("ring.publish.header");
        // SYNC POINT with the Acquire loads of `tail` in `indices` and `recover_tail`
        // (a process that adopts this end, `Debug`).
        self.tail.0.store(next, Ordering::Release);
    }

    /// The first two steps of [`publish`](Self::publish): after them the consumer
    /// sees the record, though `tail` does not count it yet. Returns the index after
    /// the record.
    #[inline]
    fn publish_header(&self, start: u64, len: u32, padding: bool) -> u64 {
        let next = start.wrapping_add(record_len(len as usize) as u64);
        let next_pos = Self::pos(next);
        if next_pos != 0 {
            // The word after the record is free (the slack): keep the invariant that
            // the header word at `tail` is zero. Relaxed: the Release below orders it.
            self.data.header(next_pos).store(0, Ordering::Relaxed);
        }
        failpoint!("ring.publish.zeroed");
        // SYNC POINT with the Acquire loads of the header in `peek`, `peek_slow` and
        // `release`: the payload and the zeroed word after it are written.
        self.data
            .header(Self::pos(start))
            .store(header_word(start, len, padding), Ordering::Release);
        next
    }

    /// Where the producer's records end now (`tail`): where a batch starts.
    #[inline]
    pub(crate) fn tail_now(&self) -> u64 {
        // Only the producer writes `tail`; Relaxed reads our own last store.
        self.tail.0.load(Ordering::Relaxed)
    }

    /// Reserves room for a `len`-byte payload at `at`, the end of an open batch
    /// (see "Batches" in the module docs), if the record fits before the end of the
    /// array, does not start a lap (position 0), and there is room by the rule in
    /// "Room". `Ok(None)`: end the batch first. Never publishes padding.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] if the indices fail validation.
    #[inline]
    pub(crate) fn try_reserve_at(
        &self,
        cached_head: &Cell<u64>,
        at: u64,
        len: usize,
    ) -> Result<Option<Reservation>, Error> {
        let record = record_len(len);
        let pos = Self::pos(at);
        // Position 0 starts a lap: only a batch's first record may sit there (a stale
        // header left at 0 by a producer that died mid-batch could be read as new).
        if len > Self::MAX_MESSAGE || pos == 0 || record > CAP - pos {
            return Ok(None);
        }
        let needed = room_needed(record, CAP);
        if let Ok(used) = self.check_indices(cached_head.get(), at) {
            if needed <= CAP - used {
                return Ok(Some(Reservation { start: at, len }));
            }
        }
        // SYNC POINT with the Release stores of `head` in `release` and `peek_slow`:
        // the consumer's reads of the space we are about to overwrite are done.
        let head = self.head.0.load(Ordering::Acquire);
        cached_head.set(head);
        let used = self.check_indices(head, at)?;
        Ok((needed <= CAP - used).then_some(Reservation { start: at, len }))
    }

    /// Writes a filled reservation into a batch. The first record of a batch is not
    /// published here: only the word after it is zeroed (the invariant at `tail`);
    /// its header is stored by [`end_batch`](Self::end_batch), last. Every later record
    /// is published as usual but for `tail`. Returns the index after the record.
    #[inline]
    pub(crate) fn batch_commit(&self, r: &Reservation, first: bool) -> u64 {
        if !first {
            return self.publish_header(r.start, r.len as u32, false);
        }
        let next = r.start.wrapping_add(record_len(r.len) as u64);
        let next_pos = Self::pos(next);
        if next_pos != 0 {
            // Relaxed: the Release store of the first header (in `end_batch`) orders it.
            self.data.header(next_pos).store(0, Ordering::Relaxed);
        }
        next
    }

    /// Publishes a batch by one store: the header of its first record, whose
    /// reservation is `first`, written after every other record of the batch; then
    /// `tail = end` (the index after the last record).
    #[inline]
    pub(crate) fn end_batch(&self, first: &Reservation, end: u64) {
        failpoint!("ring.batch.before_first");
        die_point("pipe.batch.before_first");
        // SYNC POINT with the Acquire loads of the header in `peek`, `peek_slow` and
        // `release`: every record of the batch, its header and the zeroed word after
        // the last are written. A consumer waits at this header, so it never reads a
        // later record of the batch before this store.
        self.data.header(Self::pos(first.start)).store(
            header_word(first.start, first.len as u32, false),
            Ordering::Release,
        );
        failpoint!("ring.publish.header");
        // SYNC POINT with the Acquire loads of `tail` in `indices` and `recover_tail`.
        self.tail.0.store(end, Ordering::Release);
    }

    /// Loom models only: publishes a filled reservation as a producer killed right
    /// after the header store would (the real first steps of `commit`, no `tail`).
    #[cfg(shmkit_loom)]
    pub(crate) fn loom_publish_without_tail(&self, r: Reservation) {
        self.publish_header(r.start, r.len as u32, false);
    }

    /// For a process that adopts the producer's end of a dead owner: stores in `tail`
    /// where the published records end. Call only as the sole producer.
    ///
    /// The owner may have died after publishing a record (its header) but before
    /// storing `tail` for it, leaving `tail` one record behind; and the consumer may
    /// have consumed that record since, so `head` can be *past* `tail`. The walk
    /// therefore starts from whichever of the two is further on — wherever the
    /// consumer has got to, if it is ahead — and follows the published headers from
    /// there. Indices that fail validation both ways are left as they are (the next
    /// send reports `Corrupted`).
    pub(crate) fn recover_tail(&self) {
        // SYNC POINT with the Release store of `tail` in `publish` (the dead owner's).
        let tail = self.tail.0.load(Ordering::Acquire);
        // SYNC POINT with the Release stores of `head` in `release` and `peek_slow`:
        // the consumer only moves past records that were published.
        let head = self.head.0.load(Ordering::Acquire);
        let mut tail = if self.check_indices(head, tail).is_ok() {
            tail
        } else if self.check_indices(tail, head).is_ok() {
            // The consumer is ahead: it consumed what the dead owner published but did
            // not count. Carry on from where it stands.
            head
        } else {
            return;
        };
        for _ in 0..CAP / HEADER {
            let Ok(used) = self.check_indices(head, tail) else {
                break;
            };
            let pos = Self::pos(tail);
            // SYNC POINT with the Release store of the header in `publish`.
            let word = self.data.header(pos).load(Ordering::Acquire);
            let len = word as u32 as usize;
            if len > Self::MAX_MESSAGE {
                break;
            }
            let extent = if word == header_word(tail, len as u32, false) {
                record_len(len)
            } else if word == header_word(tail, len as u32, true)
                && pos != 0
                && HEADER + len == CAP - pos
            {
                CAP - pos
            } else {
                break;
            };
            if extent > CAP - pos || extent > CAP - used {
                break;
            }
            tail = tail.wrapping_add(extent as u64);
        }
        self.tail.0.store(tail, Ordering::Release);
    }
}

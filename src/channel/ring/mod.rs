//! The SPSC byte ring: variable-length records in a fixed array of `CAP` bytes.
//!
//! One producer appends records at `tail`, one consumer removes them at `head`; both
//! indices are 64-bit byte counts that only grow (they never wrap in practice: 2^64
//! bytes is centuries at any bus speed), and `index % CAP` is the position in the
//! data array. The files of this module follow its seams:
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | these docs: the protocol, the layout, the record format, the rules |
//! | `layout.rs` | the `Ring` struct, the record format's helpers, index checks |
//! | `data.rs` | the data array: header words (atomic) and payload bytes (plain) over the same bytes |
//! | `producer.rs` | reserve, fill, publish (`commit`), and `recover_tail` for an adopter |
//! | `consumer.rs` | peek, read, release |
//! | `failpoint.rs` | named crash points for crash tests (`--cfg shmkit_failpoints` only) |
//!
//! A send is `try_reserve` → `fill` → `commit`; a receive is `peek` → `read` →
//! `release`. A batch of sends is published by one store (see "Batches"); a batch of
//! receives releases its records with one store of `head`.
//!
//! ## Publication by header
//!
//! A record is published by the Release store of its 8-byte header word, written after
//! its payload; the consumer Acquire-loads the header word at `head` and finds either
//! zero (nothing yet) or a complete record. So a receiver that keeps up with the sender
//! touches one cache line per small message — the one holding the record — instead of
//! two (`tail`'s line, then the record's), which halves the latency of a round trip.
//! `tail` is still stored after each record, for the producer's own use (and for a
//! process that adopts the producer's end), but the consumer never waits on it.
//!
//! Zero means "nothing yet" only because of one invariant: **the header word at `tail`
//! is zero, or `tail` is at position 0**. The ring starts all zero, and before
//! publishing a record the producer zeroes the word right after it (the next record's
//! header), which must therefore be free space: the *slack* (see "Room" below).
//! Position 0 is never zeroed ahead (it may hold the unread first record of the lap):
//! every lap starts with a record there, so the word at 0 is either the new header or
//! the header the previous lap wrote at 0, which the consumer recognises by its seal
//! (sealed for the index one lap back) and treats as "nothing yet". The consumer frees
//! space with a Release store of `head`, which the producer Acquire-loads before it
//! overwrites the space.
//!
//! ## Batches: many records, one publication
//!
//! `send_many` writes a run of records and publishes them all with one store: every
//! record but the first is published as usual (payload, zeroed word after it, sealed
//! header), but the first record's header — the word at `tail` — is stored last
//! (`end_batch`), and `tail` only after it. A consumer stands at `tail` and sees zero
//! there until that store, so it never reads a record of the batch before the whole
//! batch is written; then it reads finished lines one after another instead of chasing
//! the producer line by line. A batch ends before a record that would wrap (padding is
//! published on its own, and no record of a batch but the first sits at position 0),
//! when the ring is full (before the producer waits), and after 4 KiB of records, so
//! the consumer works on one batch while the producer writes the next.
//!
//! A producer that dies inside a batch leaves its later records sealed behind a zero
//! first header, with `tail` still before the batch: nothing of it was published. An
//! adopting producer's `recover_tail` stops at that zero word and writes over the
//! batch; the stale sealed headers it leaves cannot be read, because a consumer (or
//! the walk of `recover_tail`) reads a header only at the end of a published record,
//! and publishing a record first zeroes the word after it — never at position 0, which
//! is why no stale header may be left there.
//!
//! ## Room: a receive frees what it received
//!
//! A message of `n` bytes takes a record of `8 + round8(n)` bytes. A record is written
//! only when the free space (`CAP - (tail - head)`) holds **the record plus 8 bytes**
//! (the slack, one header word), wherever the record ends — except a record of the
//! largest size, `CAP` bytes, which needs the whole ring empty. A record that would
//! cross the end of the array is preceded by a padding record that fills the rest of
//! the array, and padding needs room by the same rule (its size plus 8).
//!
//! So the ring never fills its last 8 bytes except with one whole-ring record, and:
//! **after a receive of a message of `n` bytes, a send of at most `n` bytes that needs
//! no padding finds room** (a sender blocked on it is woken and succeeds). A stream of
//! messages whose records tile the array (`8 + round8(n)` divides `CAP`, e.g. 8-byte
//! messages: 16-byte records) never pads, so there one receive always makes room for
//! one send of the same size. Where a send must pad, it needs the rest of the array
//! too, which the receive that frees it may not have reached yet.
//!
//! (An earlier rule, "8 bytes of slack unless the record ends at the end of the
//! array", broke this: the last record of a lap took no slack, the first of the next
//! lap needed 8 more than its receive had freed.)
//!
//! ## Layout (`#[repr(C)]`, `CAP` a power of two, 64 ≤ `CAP` ≤ 2^31)
//!
//! ```text
//! offset      size  field   written by
//!      0         8  tail    producer (Release after each record)
//!    128         8  head    consumer (Release after a record is read)
//!    256         8  data    Notifier "data available": producer wakes, consumer sleeps
//!    264         8  space   Notifier "space available": consumer wakes, producer sleeps
//!    384       CAP  bytes   records: producer writes [tail, head + CAP), consumer reads [head, tail)
//! ```
//!
//! Each index sits on a 128-byte line of its own (two 64-byte lines: the adjacent-line
//! prefetcher pulls pairs), so the two sides never write the same line on the fast path.
//!
//! ## Records
//!
//! ```text
//! +0  u32 len    payload length in bytes (DATA), or the bytes to skip after the header (PADDING)
//! +4  u32 seal   SEAL_SET | kind bit | 30 bits of a hash of (record start index, len)
//! +8  payload    len bytes, then zero to seven bytes to the next multiple of 8
//! ```
//!
//! The two halves form one little-endian `u64` word, stored and loaded atomically. The
//! seal's top bit makes every header non-zero; the next bit tells padding from data; the
//! hash ties the header to the index it was written at, so a stale header from an
//! earlier lap, or bytes a scribbler wrote, are not taken for a record (but for
//! corruption) except by a 2^-30 chance.
//!
//! Records start at multiples of 8, so every payload is 8-byte aligned (the data array
//! is 128-byte aligned) and `recv_with` hands out aligned slices. A record is always
//! contiguous: when the next one does not fit before the end of the array, the
//! producer first fills the rest with one PADDING record (as Aeron does) and starts
//! again at position 0. The padding is published on its own, even if the record itself
//! must still wait for room: so a record of the largest size always fits once the
//! consumer has caught up, wherever `tail` stood.
//!
//! ## Caches
//!
//! The producer keeps, in its process-local handle, the last value it read of `head`
//! (as rtrb does), and reloads the shared one only when the ring looks full: in a
//! steady stream it touches the consumer's line once per wrap, not once per message.
//!
//! ## Validation
//!
//! Everything read from the shared array or indices is checked before it is used:
//! `head` and `tail` must be multiples of 8 with `0 ≤ tail - head ≤ CAP` (where the
//! producer uses them); a header must carry the seal for its index, its length must
//! be at most the largest message, and its whole extent must lie inside the array
//! without crossing its end; a padding record must end exactly at the end of the
//! array and never start at position 0. A header is read once into a local, so a
//! concurrent scribbler cannot change it between the check and the use. A failure is
//! `Error::Corrupted`; nothing here panics on a value read from shared memory (the
//! data array masks every position into bounds, and its slice accessors check their
//! ranges and answer `Corrupted`), and no loop runs more than twice, except the
//! adopting producer's walk over published records, bounded by `CAP / 8` steps.

mod consumer;
mod data;
pub(crate) mod failpoint;
mod layout;
mod producer;
#[cfg(all(test, not(shmkit_loom)))]
mod tests;

pub(crate) use consumer::Message;
#[cfg(all(feature = "std", not(shmkit_loom)))]
pub(crate) use layout::{DATA_OFFSET, Wakers};
pub(crate) use layout::{Line, Ring};
pub(crate) use producer::Reservation;

//! A job, as the parent keeps it: one `map` call or one `apply_async`, its argument and
//! result bytes, and the state of each of its items. Process-local; nothing here lives
//! in shared memory.

use std::collections::VecDeque;
use std::vec::Vec;

use super::error::{PanicMessage, PoolError};
use super::task::{ITEM_NOT_RUN, ITEM_OK, ITEM_PANICKED, ITEM_STARTED};
use crate::error::Error;

/// Item state, parent side: not final yet (the same byte as a worker's "not run").
pub(crate) const PENDING: u8 = ITEM_NOT_RUN;
/// Item state, parent side: failed; the error is in `Job::failures`.
pub(crate) const FAILED: u8 = 3;
const _: () = assert!(ITEM_OK != PENDING && ITEM_PANICKED != PENDING);
const _: () = assert!(ITEM_OK != FAILED && ITEM_PANICKED != FAILED && ITEM_STARTED != FAILED);

/// What one job runs: the type-erased form of `fn(T) -> U` (or `fn(A, B) -> U`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub(crate) trampoline: u64,
    pub(crate) func: u64,
    pub(crate) sig: u64,
    pub(crate) in_size: usize,
    pub(crate) out_size: usize,
}

/// How a chunk's run ended, for [`Job::absorb`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChunkEnd {
    /// The worker published `DONE`; `panic` is the text of the panic that stopped the
    /// chunk, if one did.
    Done { panic: Option<PanicMessage> },
    /// The worker died while running it (`WorkerDied`), leaving the outcome bytes as
    /// they were; `panic` as above.
    Died {
        err: PoolError,
        panic: Option<PanicMessage>,
    },
}

/// A submitted batch of items (one `map` call, one `apply_async`, ...).
pub(crate) struct Job {
    pub(crate) spec: Spec,
    pub(crate) tag: u64,
    pub(crate) len: usize,
    pub(crate) chunk: usize,
    /// `len * in_size` argument bytes.
    pub(crate) input: Buf,
    /// First item never posted.
    pub(crate) next: usize,
    /// Ranges to post again (their worker died, or a panic stopped their chunk,
    /// before it started them).
    pub(crate) retry: Vec<(usize, usize)>,
    /// `len * out_size` result bytes.
    pub(crate) output: Buf,
    /// Per item: `PENDING`, `ITEM_OK`, `ITEM_PANICKED` or `FAILED` (a worker's raw
    /// outcome bytes pass through only inside [`Job::absorb`]).
    pub(crate) status: Vec<u8>,
    /// Failed ranges, in the order they failed: the first range holding an item is
    /// the one that failed it.
    failures: Vec<(usize, usize, PoolError)>,
    /// The text of each item that panicked.
    panics: Vec<(usize, PanicMessage)>,
    /// Items not final yet.
    pub(crate) remaining: usize,
    /// The first failure seen.
    pub(crate) first_error: Option<PoolError>,
    /// Indices in the order they became final (`imap_unordered` only).
    pub(crate) order: Option<VecDeque<usize>>,
}

impl Job {
    /// A job of `len` pending items.
    pub(crate) fn new(
        spec: Spec,
        tag: u64,
        len: usize,
        chunk: usize,
        (input, output): (Buf, Buf),
        track_order: bool,
    ) -> Job {
        Job {
            spec,
            tag,
            len,
            chunk,
            input,
            next: 0,
            retry: Vec::new(),
            output,
            status: std::vec![PENDING; len],
            failures: Vec::new(),
            panics: Vec::new(),
            remaining: len,
            first_error: None,
            order: track_order.then(VecDeque::new),
        }
    }

    /// Is there anything left to post?
    pub(crate) fn has_work(&self) -> bool {
        !self.retry.is_empty() || self.next < self.len
    }

    /// Is item `i` final?
    pub(crate) fn is_final(&self, i: usize) -> bool {
        self.status[i] != PENDING
    }

    /// Item `i`'s result bytes, or its error. Only for a final item.
    pub(crate) fn result(&self, i: usize) -> Result<&[u8], PoolError> {
        let size = self.spec.out_size;
        match self.status[i] {
            ITEM_OK => Ok(&self.output.bytes()[i * size..(i + 1) * size]),
            ITEM_PANICKED => Err(PoolError::TaskPanicked {
                message: self
                    .panics
                    .iter()
                    .find(|(k, _)| *k == i)
                    .map_or(PanicMessage::new(""), |p| p.1),
            }),
            _ => Err(self
                .failures
                .iter()
                .find(|(start, len, _)| (*start..start + len).contains(&i))
                .map_or(PoolError::Other(Error::Corrupted), |f| f.2)),
        }
    }

    fn settle(&mut self, i: usize) {
        self.remaining -= 1;
        if let Some(order) = &mut self.order {
            order.push_back(i);
        }
    }

    /// Fails every still-pending item of `start..start + len` with `err`.
    pub(crate) fn fail(&mut self, start: usize, len: usize, err: PoolError) {
        let mut any = false;
        for i in start..start + len {
            if self.status[i] == PENDING {
                self.status[i] = FAILED;
                self.settle(i);
                any = true;
            }
        }
        if any {
            self.failures.push((start, len, err));
            self.first_error.get_or_insert(err);
        }
    }

    /// Accounts for the chunk `start..start + len`, whose worker's outcome bytes were
    /// just copied over `status[start..start + len]`: each item becomes final (a
    /// result, a panic, a failure) or pending again, to be posted again. Returns
    /// whether any item is to be posted again.
    ///
    /// The bytes come from another process and are checked, never trusted: a byte
    /// that is not what the worker could have left in this situation fails its item
    /// with `Corrupted`.
    pub(crate) fn absorb(&mut self, start: usize, len: usize, end: ChunkEnd) -> bool {
        let (died, mut panic) = match end {
            ChunkEnd::Done { panic } => (None, panic),
            ChunkEnd::Died { err, panic } => (Some(err), panic),
        };
        let mut panicked = false;
        let mut run: Option<usize> = None; // start of the current run to post again
        let mut again = false;
        for k in start..start + len {
            let byte = core::mem::replace(&mut self.status[k], PENDING);
            // Items left unstarted: after a panic stopped the chunk, or by a death.
            let unstarted = byte == ITEM_NOT_RUN && (panicked || died.is_some());
            if unstarted {
                run.get_or_insert(k);
                continue;
            }
            if let Some(r) = run.take() {
                self.retry.push((r, k - r));
                again = true;
            }
            match (byte, died) {
                (ITEM_OK, _) => {
                    self.status[k] = ITEM_OK;
                    self.settle(k);
                }
                (ITEM_PANICKED, _) => {
                    // One text per chunk: it belongs to the first item that panicked.
                    let message = panic.take().unwrap_or(PanicMessage::new(""));
                    self.status[k] = ITEM_PANICKED;
                    self.panics.push((k, message));
                    self.first_error
                        .get_or_insert(PoolError::TaskPanicked { message });
                    self.settle(k);
                    panicked = true;
                }
                (ITEM_STARTED, Some(err)) => self.fail(k, 1, err),
                _ => self.fail(k, 1, PoolError::Other(Error::Corrupted)),
            }
        }
        if let Some(r) = run {
            self.retry.push((r, start + len - r));
            again = true;
        }
        again
    }
}

/// A job's argument or result bytes: its own, or a caller's buffer that outlives the
/// job (a blocking `map` lends its argument slice and its result vector, saving two
/// copies and two allocations of the whole data).
pub(crate) enum Buf {
    /// Bytes the job owns.
    Owned(Vec<u8>),
    /// A caller's buffer; see [`Buf::lend`].
    Lent { ptr: *mut u8, len: usize },
}

// SAFETY: a `Lent` buffer is only touched through the pool's mutex (the job is in
// `Inner`), and its lender, on whichever thread, does not touch it until it has
// removed the job under that mutex (see `Buf::lend`).
unsafe impl Send for Buf {}

impl Buf {
    /// Lends `bytes` to a job.
    ///
    /// # Safety
    ///
    /// Until the job holding the `Buf` is removed from `Inner` (under the pool's
    /// mutex), the buffer must stay allocated and the caller must not access it. The
    /// job may write to it (for a result buffer) only if it came from a `&mut`; an
    /// argument buffer from a `&[u8]` is only ever read.
    pub(crate) unsafe fn lend(bytes: &[u8]) -> Buf {
        Buf::Lent {
            ptr: bytes.as_ptr().cast_mut(),
            len: bytes.len(),
        }
    }

    /// Lends a result buffer. Safety: as [`Buf::lend`].
    pub(crate) unsafe fn lend_mut(bytes: &mut [u8]) -> Buf {
        Buf::Lent {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Buf::Owned(v) => v,
            // SAFETY: the lender keeps the buffer alive and untouched while the job
            // exists (`lend`'s contract); `ptr` and `len` describe it.
            Buf::Lent { ptr, len } => unsafe { core::slice::from_raw_parts(*ptr, *len) },
        }
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Buf::Owned(v) => v,
            // SAFETY: as in `bytes`; only result buffers, which were lent from a
            // `&mut [u8]` (`lend_mut`), are written.
            Buf::Lent { ptr, len } => unsafe { core::slice::from_raw_parts_mut(*ptr, *len) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(len: usize) -> Job {
        let spec = Spec {
            trampoline: 0,
            func: 0,
            sig: 0,
            in_size: 1,
            out_size: 1,
        };
        let bufs = (Buf::Owned(std::vec![0; len]), Buf::Owned(std::vec![0; len]));
        Job::new(spec, 0, len, len, bufs, true)
    }

    const DIED: PoolError = PoolError::WorkerDied {
        pid: 42,
        signal: Some(9),
    };

    #[test]
    fn miri_a_death_fails_only_the_item_in_progress() {
        let mut j = job(8);
        // Item 0 finished, item 1 was running, 2..8 never started.
        j.status[..8].copy_from_slice(&[ITEM_OK, ITEM_STARTED, 0, 0, 0, 0, 0, 0]);
        let end = ChunkEnd::Died {
            err: DIED,
            panic: None,
        };
        assert!(j.absorb(0, 8, end));
        assert_eq!(j.result(0), Ok(&[0u8][..]));
        assert_eq!(j.result(1), Err(DIED));
        assert_eq!(j.retry, [(2, 6)]);
        assert_eq!(j.remaining, 6);
        assert!((2..8).all(|i| !j.is_final(i)));
        assert_eq!(
            j.order.as_ref().unwrap().iter().collect::<Vec<_>>(),
            [&0, &1]
        );
    }

    #[test]
    fn miri_a_panic_keeps_its_text_and_the_rest_is_posted_again() {
        let mut j = job(5);
        j.status[..5].copy_from_slice(&[ITEM_OK, ITEM_PANICKED, 0, 0, 0]);
        let end = ChunkEnd::Done {
            panic: Some(PanicMessage::new("boom")),
        };
        assert!(j.absorb(0, 5, end));
        let boom = PoolError::TaskPanicked {
            message: PanicMessage::new("boom"),
        };
        assert_eq!(j.result(1), Err(boom));
        assert_eq!(j.first_error, Some(boom));
        assert_eq!(j.retry, [(2, 3)]);
    }

    #[test]
    fn miri_bytes_a_worker_could_not_have_left_fail_as_corrupted() {
        let corrupted = Err(PoolError::Other(Error::Corrupted));
        // DONE without a panic leaves nothing unstarted; STARTED only by a death;
        // 3 and 200 never.
        let mut j = job(4);
        j.status[..4].copy_from_slice(&[0, ITEM_STARTED, FAILED, 200]);
        assert!(!j.absorb(0, 4, ChunkEnd::Done { panic: None }));
        assert!((0..4).all(|i| j.result(i) == corrupted));
        assert_eq!(j.remaining, 0);
        // A death with unstarted runs around a finished item: two runs to post again.
        let mut j = job(6);
        j.status[..6].copy_from_slice(&[0, 0, ITEM_OK, 0, 9, 0]);
        let end = ChunkEnd::Died {
            err: DIED,
            panic: None,
        };
        assert!(j.absorb(0, 6, end));
        assert_eq!(j.retry, [(0, 2), (3, 1), (5, 1)]);
        assert_eq!(j.result(4), corrupted);
    }
}

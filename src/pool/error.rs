//! What a pool task can fail with: [`PoolError`], and the text of a task's panic
//! carried back from its worker, [`PanicMessage`].

use core::fmt;
use core::mem::size_of;

use crate::error::Error;

/// What a pool task can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PoolError {
    /// The worker running the task died in the middle of it (it has been replaced).
    /// Only the item it was running fails: the items of its chunk that had finished
    /// keep their results, and those it had not started run on another worker.
    WorkerDied {
        /// The dead worker's pid.
        pid: i32,
        /// The signal that killed it; `None` if it exited.
        signal: Option<i32>,
    },
    /// The task panicked (only that item fails; the worker lives on).
    TaskPanicked {
        /// What it panicked with (Python re-raises the exception; this is its text).
        message: PanicMessage,
    },
    /// The pool was closed or terminated before the task ran.
    Closed,
    /// The result was not ready in time ([`AsyncResult::get_timeout`],
    /// [`Pool::map_timeout`]).
    ///
    /// [`AsyncResult::get_timeout`]: super::AsyncResult::get_timeout
    /// [`Pool::map_timeout`]: super::Pool::map_timeout
    Timeout,
    /// The pool's zygote — the process that forks its workers — died. Its workers died
    /// with it, and the pool is finished: pending tasks fail with this error, later
    /// ones with [`PoolError::Closed`].
    ZygoteDied {
        /// The zygote's pid.
        pid: i32,
        /// The signal that killed it; `None` if it exited.
        signal: Option<i32>,
    },
    /// Another error from the kit (a corrupted mailbox, a failed fork).
    Other(Error),
}

// `Result<_, PoolError>` stays below clippy's `result_large_err` threshold (128 bytes),
// in the kit and in its users' code; that is what bounds the panic message's size.
const _: () = assert!(size_of::<PoolError>() <= 128);

impl From<Error> for PoolError {
    fn from(e: Error) -> Self {
        PoolError::Other(e)
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The same words as the data path's error.
            &PoolError::WorkerDied { pid, signal } => Error::WorkerDied { pid, signal }.fmt(f),
            PoolError::TaskPanicked { message } => write!(f, "the pool task panicked: {message}"),
            PoolError::Closed => f.write_str("the pool is closed"),
            PoolError::Timeout => f.write_str("the pool task did not finish in time"),
            PoolError::ZygoteDied {
                pid,
                signal: Some(sig),
            } => write!(
                f,
                "the pool's zygote {pid} was killed by signal {sig}; the pool is finished"
            ),
            PoolError::ZygoteDied { pid, signal: None } => {
                write!(f, "the pool's zygote {pid} exited; the pool is finished")
            }
            PoolError::Other(e) => write!(f, "pool: {e}"),
        }
    }
}

impl core::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            PoolError::Other(e) => Some(e),
            _ => None,
        }
    }
}

/// The text a pool task panicked with, as its worker saw it: at most
/// [`PanicMessage::CAPACITY`] bytes of UTF-8, cut at a character boundary.
///
/// A fixed-size inline buffer, so that [`PoolError`] stays `Copy` and small. The full
/// text, with the panic's location, is also written to the worker's stderr.
///
/// # Examples
///
/// ```
/// use shmkit::{PanicMessage, Pool, PoolError};
///
/// fn picky(x: u32) -> u32 {
///     assert!(x != 3, "three is refused");
///     x
/// }
///
/// let pool = Pool::new(1)?;
/// match pool.apply(picky, 3) {
///     Err(PoolError::TaskPanicked { message }) => {
///         assert_eq!(message.as_str(), "three is refused");
///         assert_eq!(message, PanicMessage::new("three is refused"));
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PanicMessage {
    len: u8,
    truncated: bool,
    bytes: [u8; PanicMessage::CAPACITY],
}

const _: () = assert!(PanicMessage::CAPACITY <= u8::MAX as usize);

impl PanicMessage {
    /// The most bytes of a message that are kept.
    pub const CAPACITY: usize = 112;

    /// A message holding `text`, cut to [`PanicMessage::CAPACITY`] bytes at a character
    /// boundary.
    pub fn new(text: &str) -> PanicMessage {
        let mut bytes = [0; Self::CAPACITY];
        let (n, truncated) = crate::text::copy_text(text, &mut bytes);
        PanicMessage {
            len: n as u8,
            truncated,
            bytes,
        }
    }

    /// A message from bytes a worker wrote: the longest valid UTF-8 prefix of at most
    /// [`PanicMessage::CAPACITY`] bytes (a scribbled buffer yields a shorter text, never
    /// an invalid one).
    pub(crate) fn from_worker(raw: &[u8], truncated: bool) -> PanicMessage {
        let kept = &raw[..raw.len().min(Self::CAPACITY)];
        let valid = crate::text::valid_prefix(kept);
        let mut message = PanicMessage::new(valid);
        message.truncated |= truncated || valid.len() < raw.len();
        message
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        let bytes = &self.bytes[..usize::from(self.len).min(Self::CAPACITY)];
        // Built only by `new`, from a `&str` cut at a character boundary.
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// Was the task's text longer than what is kept here?
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for PanicMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        crate::text::ellipsis(f, self.truncated)
    }
}

impl fmt::Debug for PanicMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanicMessage")
            .field("text", &self.as_str())
            .field("truncated", &self.truncated)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn miri_messages_are_cut_at_a_char_boundary_and_scribbles_stay_valid() {
        let m = PanicMessage::new("short");
        assert_eq!((m.as_str(), m.is_truncated()), ("short", false));
        assert_eq!(m.to_string(), "short");
        // 'é' is two bytes: a cut in its middle backs off to before it.
        let long: std::string::String = core::iter::repeat_n('é', 100).collect();
        let m = PanicMessage::new(&long);
        assert!(m.is_truncated());
        assert_eq!(m.as_str().len(), PanicMessage::CAPACITY);
        assert!(m.to_string().ends_with('…'));
        let odd: std::string::String = core::iter::once('x')
            .chain(core::iter::repeat_n('é', 100))
            .collect();
        assert_eq!(
            PanicMessage::new(&odd).as_str().len(),
            PanicMessage::CAPACITY - 1
        );
        // Bytes from a worker: invalid UTF-8 is cut off, oversized input is clamped.
        let m = PanicMessage::from_worker(b"ok \xff\xfe rest", false);
        assert_eq!((m.as_str(), m.is_truncated()), ("ok ", true));
        let m = PanicMessage::from_worker(&[b'a'; 300], false);
        assert_eq!(m.as_str().len(), PanicMessage::CAPACITY);
        assert_eq!(PanicMessage::from_worker(b"x", true).to_string(), "x…");
    }

    #[test]
    fn miri_pool_errors_display_their_cause() {
        let e = PoolError::TaskPanicked {
            message: PanicMessage::new("boom"),
        };
        assert_eq!(e.to_string(), "the pool task panicked: boom");
        let e = PoolError::WorkerDied {
            pid: 7,
            signal: Some(9),
        };
        assert_eq!(e.to_string(), "pool worker 7 was killed by signal 9");
    }
}

//! What `put` and `get` report when they do not move an item.

use core::fmt;

/// An error from `put`: the item is handed back.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PutError<T> {
    /// The queue is full (`try_put`): at some instant during the call, it held `N`
    /// items. (What counts, for every answer alike: a get in progress has already
    /// taken its item; a put in progress counts once a later put has completed.)
    Full(T),
    /// It stayed full until the timeout (`put_timeout`): full, as for `Full`, at an
    /// instant after the deadline.
    Timeout(T),
    /// The queue is closed.
    Closed(T),
    /// The queue is not full, but the slot the next put needs is not free, and an
    /// operation in progress in a live process, which did not finish within the wait
    /// (`try_put`: a bounded wait of about a millisecond; `put_timeout`: the timeout),
    /// stands in the way: a get still reading that slot, or a put still writing the
    /// newest position (until it completes, the queue does not count as full). That
    /// process is stopped (`SIGSTOP`) or not scheduled; puts go on once it finishes,
    /// or dies. See the [`Queue`](super::Queue) docs.
    Stalled(T),
    /// The shared state failed validation.
    Corrupted(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(v)
            | PutError::Timeout(v)
            | PutError::Closed(v)
            | PutError::Stalled(v)
            | PutError::Corrupted(v) => v,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            PutError::Full(_) => "Full",
            PutError::Timeout(_) => "Timeout",
            PutError::Closed(_) => "Closed",
            PutError::Stalled(_) => "Stalled",
            PutError::Corrupted(_) => "Corrupted",
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(..)", self.name())
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "queue is full",
            PutError::Timeout(_) => "queue stayed full until the timeout",
            PutError::Closed(_) => "queue is closed",
            PutError::Stalled(_) => {
                "the next slot is held by an operation in progress that stalled"
            }
            PutError::Corrupted(_) => "queue state failed validation (corrupted)",
        })
    }
}

impl<T> core::error::Error for PutError<T> {}

/// An error from `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GetError {
    /// The queue is empty (`try_get`): at some instant during the call, it held no
    /// item. (A get in progress has already taken its item; a put in progress whose
    /// position no completed put follows may complete after that instant.)
    Empty,
    /// It stayed empty until the timeout (`get_timeout`): empty, as for `Empty`, at
    /// an instant after the deadline.
    Timeout,
    /// The queue is closed and drained.
    Closed,
    /// Items are queued, but the oldest position is held by a put in progress in a
    /// live process that did not finish it within the wait (`try_get`: a bounded
    /// wait of about a millisecond; `get_timeout`: the timeout). That process is
    /// stopped (`SIGSTOP`) or not scheduled; the items behind it follow once it
    /// finishes its put, or dies (its slot is then reclaimed). See the
    /// [`Queue`](super::Queue) docs.
    Stalled,
    /// The shared state failed validation.
    Corrupted,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GetError::Empty => "queue is empty",
            GetError::Timeout => "queue stayed empty until the timeout",
            GetError::Closed => "queue is closed and drained",
            GetError::Stalled => "the oldest item is held by a put in progress that stalled",
            GetError::Corrupted => "queue state failed validation (corrupted)",
        })
    }
}

impl core::error::Error for GetError {}

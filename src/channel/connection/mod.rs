//! `Connection`: one end of a [`Pipe`], a process-local handle.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the handle, `Pipe::ends`, the rules of ownership (docs) |
//! | `owner.rs` | claiming an end, adopting a dead owner's, handing one to a child, closing, the peer's liveness |
//! | `send.rs` | sends: reserve, fill, publish, wait for room |
//! | `recv.rs` | receives, `poll`, readiness for `wait` |

use core::cell::Cell;

use super::anchor::Anchor;
use super::pipe::Pipe;
use super::ring::Ring;
use crate::primitive::Deadline;

mod batch;
#[cfg(shmkit_loom)]
mod loom_hooks;
#[cfg(feature = "std")]
mod owned;
#[cfg(feature = "std")]
pub use owned::OwnedConnection;
mod owner;
mod recv;
mod send;
#[cfg(all(test, feature = "std", not(shmkit_loom)))]
mod tests;

/// Counts the handles this process made: with the process's id, it makes each
/// handle's token (see [`token`]). Process-local, never in shared memory (a forked
/// child inherits the count, and its copies of handles keep their tokens).
#[allow(clippy::disallowed_types)]
static NEXT_TOKEN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(1);

/// The token of the `n`-th handle made by process `id`: distinct for distinct `n` in
/// one process (an odd multiplier and an xor are bijections), and salted with the id
/// so that handles made in different processes (siblings forked from one parent
/// inherit the same count) have different tokens but by a 2^-32 chance. Only a
/// forked *copy* of a handle shares its token: that is how a child recognises an end
/// its parent is handing over.
fn token(id: u32, n: u32) -> u32 {
    n.wrapping_mul(0x9E37_79B9) ^ id.wrapping_mul(0x85EB_CA6B).rotate_left(16)
}

/// One end of a [`Pipe`]: sends to the other end and receives from it (Python's
/// `multiprocessing.connection.Connection`).
///
/// A `Connection` is a process-local handle (`Send`, not `Sync`: one thread at a time
/// sends and receives on it). It either borrows the pipe ([`Pipe::ends`], also without
/// `std`) or, as an [`OwnedConnection`] (`Connection<'static, CAP>`, with `std`), keeps
/// the pipe's segment alive itself ([`Pipe::pair`], [`Pipe::owned_ends`]), so that a
/// pipe and its ends can live in one struct. Both kinds follow the rules below.
///
/// # Ownership
///
/// An end belongs to one process — and one handle in it — at a time; the claim is
/// recorded in the pipe:
///
/// - **First use.** An unowned end is claimed by the first handle that sends,
///   receives or polls on it. Any other handle gets [`Error::EndpointInUse`].
/// - **Moved into a child.** A handle moved into a [`Process::spawn`] closure
///   passes its end to the child: when the parent drops its copy of the closure (right
///   after the fork), the end is claimed for the child — whether the parent had used
///   the handle or not. So the end is the child's from the start: the parent cannot
///   use it ([`Error::EndpointInUse`]), and if the child dies, even before its first
///   use of the end, the peer sees [`Error::Disconnected`] as for any dead owner.
///   (`Process::spawn` starts the child's closure only after the parent has handed
///   the end over.) Python's habit of closing the parent's copy of the child's end
///   after a fork is not needed: there is no such copy left.
/// - **Adoption.** A process may take over an end whose owner has died (the peer
///   then sees it come back); it carries on where the dead owner's published records
///   end, and the dead owner's sleeps are forgotten.
/// - **Unused handles.** A handle that never used its end, and is dropped or
///   [`close`](Connection::close)d anywhere else than in a spawn closure, has no
///   effect on the end.
///
/// While the peer end is merely unclaimed (nobody has used it yet), this end never
/// reports [`Error::Disconnected`]: receives wait (or say [`Error::WouldBlock`]), and
/// sends fill the ring.
///
/// # Closing and crashes
///
/// When the owner of one end closes it, drops its handle or dies (even by
/// `kill -9`), the other end still receives every message that was fully sent, then
/// gets [`Error::Disconnected`] (Python's `EOFError`); its sends get `Disconnected`
/// too. A message is published only once completely written, so a sender killed in
/// the middle of one never delivers half of it. A dead owner is noticed when the
/// peer finds the ring empty (receiving) or full (sending): at once by the
/// non-blocking calls, within a few tens of milliseconds by blocked ones.
///
/// A receiver that dies while reading a message (inside [`recv_with`]) leaves that
/// message queued: a process that adopts the end receives it again.
///
/// # Room
///
/// A send needs room for its record plus 8 bytes (see [`Pipe`]); a receive frees
/// what it received, so a sender waiting to send `n` bytes is woken by the receive
/// of an `n`-byte message (unless its record must first skip the rest of the ring's
/// array).
///
/// # Errors
///
/// Every operation may return [`Error::Closed`] (this handle or end was closed),
/// [`Error::EndpointInUse`], [`Error::Corrupted`] (the shared state failed
/// validation: a scribbling peer), besides the ones listed per method.
///
/// [`recv_with`]: Connection::recv_with
/// [`OwnedConnection`]: crate::OwnedConnection
/// [`Pipe::pair`]: crate::Pipe::pair
/// [`Pipe::owned_ends`]: crate::Pipe::owned_ends
/// [`Process::spawn`]: crate::process::Process::spawn
/// [`Error::EndpointInUse`]: crate::Error::EndpointInUse
/// [`Error::Disconnected`]: crate::Error::Disconnected
/// [`Error::WouldBlock`]: crate::Error::WouldBlock
/// [`Error::Closed`]: crate::Error::Closed
/// [`Error::Corrupted`]: crate::Error::Corrupted
pub struct Connection<'a, const CAP: usize> {
    /// The pipe: borrowed for `'a`, or kept alive by this handle (owned ends).
    pipe: Anchor<'a, Pipe<CAP>>,
    /// 0 or 1: which end this handle is.
    side: usize,
    /// This handle's token (low half of the owner record).
    token: u32,
    /// The participant id under which this handle owns its end; 0 = not (yet) checked.
    bound: Cell<u32>,
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

impl<const CAP: usize> Pipe<CAP> {
    /// The two ends, borrowing the pipe: the first sends to the second, and the second
    /// to the first. (With `std`, [`Pipe::pair`] and [`Pipe::owned_ends`] give ends
    /// that own a share of the segment instead, for structs and threads.)
    ///
    /// Handles are cheap and process-local; each end is *claimed* by the first
    /// process (and handle) that sends or receives on it, or by the child process
    /// its handle is moved into (see [`Connection`]). Calling `ends` again gives
    /// fresh handles, which the same rules govern (a second handle in the owner's
    /// process gets [`Error::EndpointInUse`](crate::Error::EndpointInUse)).
    pub fn ends(&self) -> (Connection<'_, CAP>, Connection<'_, CAP>) {
        (
            Connection::new(Anchor::borrowed(self), 0),
            Connection::new(Anchor::borrowed(self), 1),
        )
    }
}

impl<'a, const CAP: usize> Connection<'a, CAP> {
    fn new(pipe: Anchor<'a, Pipe<CAP>>, side: usize) -> Self {
        Connection {
            pipe,
            side,
            token: token(
                crate::primitive::my_process_id(),
                NEXT_TOKEN.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
            ),
            bound: Cell::new(0),
            closed: Cell::new(false),
            head_cache: Cell::new(0),
            next_check: Cell::new(None),
            dead_peer: Cell::new(0),
        }
    }

    /// The ring this end sends on.
    #[inline]
    fn tx(&self) -> &Ring<CAP> {
        &self.pipe.rings[self.side]
    }

    /// The ring this end receives from.
    #[inline]
    pub(crate) fn rx(&self) -> &Ring<CAP> {
        &self.pipe.rings[1 - self.side]
    }

    /// The largest message this pipe carries: `CAP - 8` bytes.
    pub fn max_message_len(&self) -> usize {
        Ring::<CAP>::MAX_MESSAGE
    }
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

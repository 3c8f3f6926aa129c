//! Owned ends (std): handles that keep their pipe's mapping alive themselves, so a
//! pipe and its ends can live in one struct, a `Vec`, a thread, or a spawn closure
//! without borrowing anything.

use std::sync::Arc;

use super::Connection;
use crate::channel::anchor::Anchor;
use crate::channel::pipe::Pipe;
use crate::segment::Shared;

/// A pipe end that keeps its pipe alive itself: a [`Connection`] that borrows
/// nothing (`Connection<'static, CAP>`), from [`Pipe::pair`], [`Pipe::owned_ends`] or
/// [`Pipe::owned_ends_in`]. With `std` only.
///
/// It is the same handle as a borrowing [`Connection`] — the same methods, the same
/// ownership rules (an end belongs to the first process and handle that uses it; a
/// handle moved into a [`Process::spawn`](crate::Process::spawn) closure hands its end
/// to the child), `Send` but not `Sync`, no allocation or extra work on the data path —
/// and it holds an `Arc` of the segment (or of whatever holds the pipe), cloned once
/// when the end is made. The mapping is unmapped when the last handle and the last
/// `Arc` are gone.
///
/// # Examples
///
/// A pipe and its ends in one struct (no borrow, no `Box::leak`), one end handed to a
/// child process:
///
/// ```
/// use std::sync::Arc;
/// use shmkit::{OwnedConnection, Pipe, Process, Shared};
///
/// struct Link {
///     pipe: Arc<Shared<Pipe<4096>>>,
///     here: OwnedConnection<4096>,
///     there: OwnedConnection<4096>,
/// }
///
/// impl Link {
///     fn new() -> Result<Link, shmkit::Error> {
///         let pipe = Arc::new(Shared::<Pipe<4096>>::new_zeroed()?);
///         let (here, there) = Pipe::owned_ends(&pipe);
///         Ok(Link { pipe, here, there })
///     }
/// }
///
/// let Link { pipe, here, there } = Link::new()?;
/// let mut child = Process::spawn(move || {
///     // `there` was moved in: the end is the child's from the start.
///     let n: u64 = there.recv().unwrap();
///     there.send(&(n + 1)).unwrap();
///     0
/// })?;
/// here.send(&41u64)?;
/// assert_eq!(here.recv::<u64>()?, 42);
/// assert!(child.join()?.success());
/// assert_eq!(here.recv::<u64>(), Err(shmkit::Error::Disconnected));
/// drop(pipe); // `here` still keeps the mapping alive
/// assert!(here.try_send_bytes(b"x").is_err());
/// # Ok::<(), shmkit::Error>(())
/// ```
///
/// `Send` (it may move to another thread or into a child) but not `Sync` (one thread
/// at a time uses an end):
///
/// ```
/// fn send<T: Send + 'static>() {}
/// send::<shmkit::OwnedConnection<64>>();
/// ```
///
/// ```compile_fail
/// fn sync<T: Sync>() {}
/// sync::<shmkit::OwnedConnection<64>>(); // error: `Cell<..>` is not `Sync`
/// ```
pub type OwnedConnection<const CAP: usize> = Connection<'static, CAP>;

impl<const CAP: usize> Pipe<CAP> {
    /// A fresh pipe in an anonymous segment of its own, and its two owned ends
    /// (Python's `Pipe()`): the first sends to the second, the second to the first.
    /// The segment goes away with the last of the two. With `std` only.
    ///
    /// # Errors
    ///
    /// As [`Shared::new_zeroed`] (the mapping could not be made), as an
    /// [`Error`](crate::Error).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmkit::{Pipe, Process};
    ///
    /// let (parent, child) = Pipe::<4096>::pair()?;
    /// let mut p = Process::spawn(move || {
    ///     child.send_bytes(b"hello").unwrap(); // `child` belongs to the child now
    ///     0
    /// })?;
    /// let mut buf = [0u8; 16];
    /// let n = parent.recv_bytes_into(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hello");
    /// assert!(p.join()?.success());
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[cfg(not(shmkit_loom))]
    pub fn pair() -> Result<(OwnedConnection<CAP>, OwnedConnection<CAP>), crate::Error> {
        let pipe = Arc::new(Shared::<Pipe<CAP>>::new_zeroed()?);
        Ok(Pipe::owned_ends(&pipe))
    }

    /// Owned ends of the pipe in `segment`, anonymous or named: each holds a clone of
    /// the `Arc`. Calling it again gives fresh handles on the same two ends, under the
    /// same rules as [`ends`](Pipe::ends) (a second handle on an end its process
    /// already uses gets [`Error::EndpointInUse`](crate::Error::EndpointInUse)). With
    /// `std` only.
    ///
    /// See [`OwnedConnection`] for an example.
    pub fn owned_ends(
        segment: &Arc<Shared<Pipe<CAP>>>,
    ) -> (OwnedConnection<CAP>, OwnedConnection<CAP>) {
        Pipe::owned_ends_in(segment, |s| &**s)
    }

    /// Owned ends of a pipe inside a larger shared value — a field of your struct in
    /// a [`Shared`], one of an array of pipes — found by `pipe` in `owner`'s value.
    /// Each end holds a clone of `owner`. With `std` only.
    ///
    /// # Examples
    ///
    /// One segment with a result pipe per worker:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use shmkit::{Pipe, Shared, ShmSafe, Zeroable};
    ///
    /// #[derive(ShmSafe, Zeroable)]
    /// #[repr(C)]
    /// struct Results {
    ///     pipes: [Pipe<1024>; 4],
    /// }
    ///
    /// let results = Arc::new(Shared::<Results>::new_zeroed()?);
    /// let ends: Vec<_> = (0..4)
    ///     .map(|i| Pipe::owned_ends_in(&results, |r| &r.pipes[i]))
    ///     .collect();
    /// ends[2].1.send(&7u32)?;
    /// assert_eq!(ends[2].0.recv::<u32>()?, 7);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn owned_ends_in<O: Send + Sync + 'static>(
        owner: &Arc<O>,
        pipe: impl for<'b> FnOnce(&'b O) -> &'b Pipe<CAP>,
    ) -> (OwnedConnection<CAP>, OwnedConnection<CAP>) {
        let anchor = Anchor::owned(owner, pipe);
        (
            Connection::new(anchor.share(), 0),
            Connection::new(anchor, 1),
        )
    }
}

#[cfg(all(test, not(shmkit_loom)))]
mod tests {
    use std::sync::Arc;

    use crate::channel::pipe::Pipe;
    use crate::error::Error;

    /// Owned ends over a pipe on the heap (no mapping): they keep it alive after the
    /// `Arc` is gone, and the last one frees it.
    #[test]
    fn owned_ends_over_a_heap_pipe() {
        let pipe = Arc::new(Pipe::<256>::new());
        let (a, b) = Pipe::owned_ends_in(&pipe, |p| p);
        assert_eq!(Arc::strong_count(&pipe), 3);
        drop(pipe);
        a.send(&5u64).unwrap();
        a.send_bytes(&[7u8; 100]).unwrap();
        drop(a);
        assert_eq!(b.recv::<u64>(), Ok(5));
        let mut buf = [0u8; 100];
        assert_eq!(b.recv_bytes_into(&mut buf), Ok(100));
        assert_eq!(buf, [7u8; 100]);
        assert_eq!(b.recv::<u64>(), Err(Error::Disconnected));
    }
}

//! `wait`: blocks until any of several connections or queues is ready to receive.

use core::time::Duration;

use super::{FIRST_SLICE, MAX_SLICE, earlier};
use crate::error::Error;
use crate::primitive::Deadline;
use crate::sync::strategy::{Look, spin_phase};
use crate::sync::{WaitStrategy, wait_strategy};

pub(crate) mod sealed {
    /// Seals [`Waitable`](super::Waitable), and gives `wait` the futex to sleep on.
    pub trait Sealed {
        /// The notifier that is woken when the object may have become ready.
        #[doc(hidden)]
        fn ready_notifier(&self) -> ReadyNotifier<'_>;
    }

    /// An opaque reference to an object's "ready" notifier.
    #[doc(hidden)]
    #[derive(Clone, Copy)]
    pub struct ReadyNotifier<'a>(pub(crate) &'a crate::sync::notifier::Notifier);
}
use sealed::ReadyNotifier;

/// Something [`wait`] can wait on: a [`Connection`](super::Connection) (ready when a
/// receive would not block), a [`Queue`](super::Queue) or
/// [`JoinableQueue`](super::JoinableQueue) (ready when a get would not block: an item,
/// or closed and drained), or a [`Shared`](crate::Shared) holding one. Sealed.
pub trait Waitable: sealed::Sealed {
    /// Would a receive (or get) return at once, with an item or an error?
    fn is_ready(&self) -> bool;
}

/// The set of ready objects that [`wait`] returns: indices into its slice, as a
/// 64-bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ready {
    bits: u64,
}

impl Ready {
    /// The most objects one `wait` takes.
    pub const MAX: usize = 64;

    /// Is object `index` ready?
    pub fn contains(&self, index: usize) -> bool {
        index < Self::MAX && self.bits & (1 << index) != 0
    }

    /// Is none ready? (Only after a timeout.)
    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// How many are ready.
    pub fn len(&self) -> usize {
        self.bits.count_ones() as usize
    }

    /// The ready indices, ascending.
    pub fn iter(&self) -> ReadyIter {
        ReadyIter { bits: self.bits }
    }

    /// The set as bits (bit `i` = object `i`).
    pub fn bits(&self) -> u64 {
        self.bits
    }
}

/// Iterates over the indices in a [`Ready`], ascending.
#[derive(Debug, Clone)]
pub struct ReadyIter {
    bits: u64,
}

impl Iterator for ReadyIter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.bits == 0 {
            return None;
        }
        let i = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(i)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bits.count_ones() as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ReadyIter {}

impl IntoIterator for Ready {
    type Item = usize;
    type IntoIter = ReadyIter;
    fn into_iter(self) -> ReadyIter {
        self.iter()
    }
}

impl IntoIterator for &Ready {
    type Item = usize;
    type IntoIter = ReadyIter;
    fn into_iter(self) -> ReadyIter {
        self.iter()
    }
}

/// Which objects are ready now.
fn scan(objects: &[&dyn Waitable]) -> Ready {
    let mut bits = 0u64;
    for (i, o) in objects.iter().enumerate() {
        if o.is_ready() {
            bits |= 1 << i;
        }
    }
    Ready { bits }
}

/// Waits until at least one of `objects` is ready to receive, or `timeout` passes
/// (`None`: forever; `Some(ZERO)`: just check). Returns every object ready at that
/// moment; an empty set only after the timeout (or for an empty slice, at once).
///
/// Sleeps on all the objects' futexes at once with `futex_waitv` (Linux ≥ 5.16; on
/// older kernels it polls in short sleeps).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for more than [`Ready::MAX`] objects.
///
/// # Examples
///
/// ```
/// use core::time::Duration;
/// use shmkit::{Pipe, Queue, wait};
///
/// let pipe = Pipe::<256>::new();
/// let (a, b) = pipe.ends();
/// let queue = Queue::<u32, 4>::new();
/// queue.put(7).unwrap();
/// let ready = wait(&[&b, &queue], Some(Duration::from_secs(1)))?;
/// assert!(!ready.contains(0) && ready.contains(1));
/// a.send_bytes(b"x")?;
/// assert_eq!(wait(&[&b, &queue], None)?.len(), 2);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Result<Ready, Error> {
    if objects.len() > Ready::MAX {
        return Err(Error::InvalidArgument);
    }
    let ready = scan(objects);
    if !ready.is_empty() || objects.is_empty() {
        return Ok(ready);
    }
    let deadline = Deadline::from_timeout(timeout);
    let spins = match wait_strategy() {
        WaitStrategy::Spin => u32::MAX,
        WaitStrategy::Park => 0,
        _ => 64,
    };
    let spun = spin_phase(spins, 0, deadline, |_| {
        let ready = scan(objects);
        if ready.is_empty() {
            Look::NotYet
        } else {
            Look::Ready(ready)
        }
    });
    if let Some(ready) = spun {
        return Ok(ready);
    }
    let mut slice = FIRST_SLICE;
    loop {
        if deadline.expired() {
            return Ok(scan(objects));
        }
        for o in objects {
            o.ready_notifier().0.announce();
        }
        // One barrier for all the announcements (it is a system call).
        let synced = crate::primitive::heavy_barrier();
        let mut expected = [0u32; Ready::MAX];
        for (e, o) in expected.iter_mut().zip(objects) {
            *e = o.ready_notifier().0.sleep_value();
        }
        if !synced {
            // Wakers may have skipped their barrier unseen: keep the sleeps short.
            slice = FIRST_SLICE;
        }
        // Re-check after announcing ourselves: a waker that changed the state before
        // our announcement is seen here; one after it will bump a futex word.
        let ready = scan(objects);
        if ready.is_empty() {
            sleep_on(
                objects,
                &expected,
                earlier(deadline, Deadline::after(slice)),
            );
        }
        for o in objects {
            o.ready_notifier().0.end_sleep();
        }
        if !ready.is_empty() {
            return Ok(ready);
        }
        let ready = scan(objects);
        if !ready.is_empty() {
            return Ok(ready);
        }
        slice = (slice * 2).min(MAX_SLICE);
    }
}

/// Sleeps until one of the objects' futex words moves off its expected value, or
/// `until`.
fn sleep_on(objects: &[&dyn Waitable], expected: &[u32], until: Deadline) {
    let mut words = [(objects[0].ready_notifier().0.word(), 0u32); Ready::MAX];
    for (i, pair) in words.iter_mut().enumerate().take(objects.len()) {
        *pair = (objects[i].ready_notifier().0.word(), expected[i]);
    }
    crate::primitive::futex_waitv(&words[..objects.len()], until);
}

impl<W: Waitable + crate::segment::ShmSafe> sealed::Sealed for crate::segment::Shared<W> {
    fn ready_notifier(&self) -> ReadyNotifier<'_> {
        (**self).ready_notifier()
    }
}

impl<W: Waitable + crate::segment::ShmSafe> Waitable for crate::segment::Shared<W> {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
}

impl<const CAP: usize> sealed::Sealed for super::Connection<'_, CAP> {
    fn ready_notifier(&self) -> ReadyNotifier<'_> {
        ReadyNotifier(&self.rx().wake.0.data)
    }
}

impl<const CAP: usize> Waitable for super::Connection<'_, CAP> {
    fn is_ready(&self) -> bool {
        self.ready_now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_set_operations() {
        let r = Ready {
            bits: (1 << 3) | (1 << 0) | (1 << 63),
        };
        assert_eq!(r.len(), 3);
        assert!(r.contains(0) && r.contains(3) && r.contains(63) && !r.contains(1));
        assert!(!r.contains(64));
        let v: [usize; 3] = {
            let mut it = r.iter();
            [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(v, [0, 3, 63]);
        assert!(Ready::default().is_empty());
        assert_eq!((&r).into_iter().len(), 3);
    }
}

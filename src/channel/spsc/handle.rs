//! What the [`Producer`](super::Producer) and the [`Consumer`](super::Consumer) do
//! alike: waiting on their notifier, and the methods around their claim (binding on
//! first use, closing, the peer's state, dropping).

use crate::channel::block_on;
use crate::error::Error;
use crate::primitive::Deadline;
use crate::sync::notifier::Notifier;

/// Waits on `notifier` (up to `deadline`; `None`: no wait, one look that checks the
/// peer's liveness) until `attempt` says something other than `WouldBlock`;
/// [`Error::Timeout`] if the deadline passes first. `attempt(check_liveness)` is a
/// handle's look at its ring (`items` or `room`).
#[inline]
pub(super) fn wait_for(
    notifier: &Notifier,
    deadline: Option<Deadline>,
    mut attempt: impl FnMut(bool) -> Result<usize, Error>,
) -> Result<usize, Error> {
    let Some(deadline) = deadline else {
        return attempt(true);
    };
    block_on(notifier, deadline, |check| match attempt(check) {
        Err(Error::WouldBlock) => None,
        r => Some(r),
    })
    .unwrap_or(Err(Error::Timeout))
}

/// The methods and impls both handle types have word for word. `$Handle` has fields
/// `ring` and `claim`, its process-local index `$index`, and a method
/// `adopt(head, tail)` that takes the indices over from the segment after a fresh
/// claim (or an adoption); the doc strings are the side's own.
macro_rules! end_handle {
    (
        $Handle:ident, $index:ident, peer: $peer:literal,
        close: $close_doc:literal, abandoned: $abandoned_doc:literal $(,)?
    ) => {
        impl<'a, T: Pod, const N: usize> $Handle<'a, T, N> {
            /// Claims the end on first use (one compare once claimed).
            #[inline(always)]
            fn bind(&mut self) -> Result<(), Error> {
                if self.claim.is_bound_here() {
                    return Ok(());
                }
                self.bind_slow()
            }

            #[cold]
            #[inline(never)]
            fn bind_slow(&mut self) -> Result<(), Error> {
                if self.claim.bind_slow(&self.ring.ends.0)? == Bound::Fresh {
                    // The last owner's published indices (0 in a fresh ring).
                    let (head, tail) = self.ring.indices();
                    used(head, tail, N)?;
                    self.adopt(head, tail);
                }
                Ok(())
            }

            /// The ring (for the chunk API, which loom models do not build).
            #[cfg_attr(shmkit_loom, allow(dead_code))]
            pub(crate) fn ring(&self) -> &'a Spsc<T, N> {
                self.ring
            }

            #[doc = $close_doc]
            pub fn close(&mut self) {
                self.claim.close(&self.ring.ends.0);
            }

            /// Was this handle, or its end, closed?
            pub fn is_closed(&self) -> bool {
                self.claim.is_closed(&self.ring.ends.0)
            }

            #[doc = concat!("Has the ", $peer, " closed its end or died? ", $abandoned_doc)]
            pub fn is_abandoned(&mut self) -> bool {
                self.claim.peer_gone(&self.ring.ends.0, true)
            }
        }

        impl<T: Pod, const N: usize> Drop for $Handle<'_, T, N> {
            fn drop(&mut self) {
                self.claim.drop_or_hand_off(&self.ring.ends.0);
            }
        }

        impl<T: Pod, const N: usize> fmt::Debug for $Handle<'_, T, N> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($Handle))
                    .field(stringify!($index), &self.$index)
                    .field("closed", &self.is_closed())
                    .finish()
            }
        }
    };
}

pub(super) use end_handle;

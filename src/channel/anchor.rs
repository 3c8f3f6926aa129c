//! `Anchor`: how a handle reaches the shared object it works on — by a borrow, or
//! (with `std`) by keeping the object's owner alive itself.
//!
//! A borrowing handle (`Connection<'a, CAP>` from [`Pipe::ends`](crate::Pipe::ends))
//! holds an `Anchor<'a, T>` made from a `&'a T`: the borrow checker keeps the object
//! alive. An owned handle holds an `Anchor<'static, T>` that points into an
//! `Arc<O>`'s value and holds a clone of that `Arc`, so the object lives as long as
//! the handle (the mapping of a `Shared<Pipe<CAP>>` is unmapped only when the last
//! handle goes). Either way the handle reaches the object only through
//! [`Anchor::deref`], whose reference lives no longer than the borrow of the anchor:
//! an owned handle's `'static` never turns into a `&'static T`.
//!
//! Cost: one pointer (plus, with `std`, an `Option<Arc<..>>` that only creation and
//! drop touch); the data path reads the pointer as it read the borrow before.

use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

#[cfg(feature = "std")]
use std::sync::Arc;

/// What an owned anchor keeps alive: any `Send + Sync` value (its type is forgotten).
#[cfg(feature = "std")]
trait Keep: Send + Sync {}
#[cfg(feature = "std")]
impl<O: Send + Sync + ?Sized> Keep for O {}

/// A `&T` that either borrows (`'a`) or keeps its owner alive (`Anchor<'static, T>`).
pub(crate) struct Anchor<'a, T> {
    /// The object. Valid while `'a` lasts (a borrow) or while `keep` is held.
    ptr: NonNull<T>,
    /// The owner that keeps `*ptr` alive, for owned anchors.
    #[cfg(feature = "std")]
    keep: Option<Arc<dyn Keep>>,
    /// Borrowed anchors borrow `T` for `'a`; covariant, as `&'a T` is.
    _borrow: PhantomData<&'a T>,
}

impl<'a, T> Anchor<'a, T> {
    /// An anchor that borrows `value`.
    #[inline]
    pub(crate) fn borrowed(value: &'a T) -> Self {
        Anchor {
            ptr: NonNull::from(value),
            #[cfg(feature = "std")]
            keep: None,
            _borrow: PhantomData,
        }
    }
}

#[cfg(feature = "std")]
impl<T> Anchor<'static, T> {
    /// An anchor on the `T` that `project` finds in `owner`'s value, holding a clone
    /// of `owner`.
    ///
    /// Sound for any `project`: it must return a reference that lives as long as the
    /// borrow of `O` it was given, for *every* such borrow, so the `T` lives as long
    /// as `O` does and nothing mutates `O` by `&mut` (an `Arc` with a clone held
    /// elsewhere never gives `&mut O`). The clone held here keeps `O` alive.
    pub(crate) fn owned<O: Send + Sync + 'static>(
        owner: &Arc<O>,
        project: impl for<'b> FnOnce(&'b O) -> &'b T,
    ) -> Self {
        let ptr = NonNull::from(project(owner));
        let keep: Arc<dyn Keep> = owner.clone();
        Anchor {
            ptr,
            keep: Some(keep),
            _borrow: PhantomData,
        }
    }

    /// Another anchor on the same object (a clone of the `Arc`, no allocation).
    pub(crate) fn share(&self) -> Self {
        Anchor {
            ptr: self.ptr,
            keep: self.keep.clone(),
            _borrow: PhantomData,
        }
    }
}

impl<T> Deref for Anchor<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: `ptr` came from a `&T` that is valid for `'a` (borrowed; `self`
        // cannot outlive `'a`), or that lives as long as the owner `keep` holds
        // (owned: see `Anchor::owned`), and `keep` is dropped only with `self`. The
        // returned reference lives no longer than the borrow of `self`.
        unsafe { self.ptr.as_ref() }
    }
}

// SAFETY: an anchor gives out `&T` only, so moving it to another thread is sharing
// `&T` with it: sound for `T: Sync`. The kept owner is `Send + Sync` (`Keep`).
unsafe impl<T: Sync> Send for Anchor<'_, T> {}
// SAFETY: as above: `&Anchor` gives out `&T` only.
unsafe impl<T: Sync> Sync for Anchor<'_, T> {}

#[cfg(all(test, feature = "std", not(shmkit_loom)))]
mod tests {
    use super::Anchor;
    use std::sync::Arc;

    #[test]
    fn miri_an_owned_anchor_keeps_its_owner_alive() {
        let owner = Arc::new([1u64, 2, 3]);
        let a = Anchor::owned(&owner, |o| &o[1]);
        let b = a.share();
        assert_eq!(Arc::strong_count(&owner), 3);
        drop(owner);
        assert_eq!((*a, *b), (2, 2));
        drop(a);
        assert_eq!(*b, 2);
    }

    #[test]
    fn miri_a_borrowed_anchor_reads_through() {
        let x = 7u32;
        let a = Anchor::borrowed(&x);
        assert_eq!(*a, 7);
    }
}

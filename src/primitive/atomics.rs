//! What the algorithms are built from at the instruction level: the atomics (with
//! `Ordering`; `fence` under loom, for the barrier model), `UnsafeCell`, and the spin
//! and yield hints.
//!
//! Outside loom these are `core`'s, behind newtypes of the same layout; under
//! `shmkit_loom` they are loom's, so the model checker sees every access. This file is
//! the one place that names `core::sync::atomic` and `core::cell::UnsafeCell` for the
//! algorithms (see `clippy.toml`).
#![allow(clippy::disallowed_types)]

#[cfg(not(shmkit_loom))]
pub(crate) use core::sync::atomic::Ordering;

/// Defines the facade's atomics outside loom: `#[repr(transparent)]` newtypes over
/// `core`'s, so they have the same layout in shared memory, `const fn new` for statics,
/// and every method through `Deref`. Being types of their own lets `clippy.toml` forbid
/// `core::sync::atomic` everywhere but here.
#[cfg(not(shmkit_loom))]
macro_rules! facade_atomics {
    ($($name:ident($int:ty)),* $(,)?) => {
        $(
            #[doc = concat!("`core::sync::atomic::", stringify!($name), "` (loom's under `shmkit_loom`).")]
            #[repr(transparent)]
            #[derive(Default)]
            pub(crate) struct $name(core::sync::atomic::$name);

            impl $name {
                /// A new atomic holding `value`.
                #[inline]
                pub(crate) const fn new(value: $int) -> Self {
                    $name(core::sync::atomic::$name::new(value))
                }
            }

            impl core::ops::Deref for $name {
                type Target = core::sync::atomic::$name;
                #[inline]
                fn deref(&self) -> &Self::Target {
                    &self.0
                }
            }

            impl core::ops::DerefMut for $name {
                #[inline]
                fn deref_mut(&mut self) -> &mut Self::Target {
                    &mut self.0
                }
            }

            impl core::fmt::Debug for $name {
                fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                    core::fmt::Debug::fmt(&self.0, f)
                }
            }
        )*
    };
}

#[cfg(not(shmkit_loom))]
facade_atomics!(AtomicU32(u32), AtomicU64(u64));
#[cfg(shmkit_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// Marks a `const fn` that can be `const` only outside loom (loom's atomics have no
/// `const` constructors). Write `loom_const_fn! { pub const fn new() -> Self { .. } }`.
macro_rules! loom_const_fn {
    ($(#[$meta:meta])* $vis:vis const fn $($rest:tt)*) => {
        #[cfg(not(shmkit_loom))]
        $(#[$meta])* $vis const fn $($rest)*
        #[cfg(shmkit_loom)]
        $(#[$meta])* $vis fn $($rest)*
    };
}
pub(crate) use loom_const_fn;

/// A spin-wait hint (`pause`); under loom, a yield to the model's scheduler.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(shmkit_loom))]
    core::hint::spin_loop();
    #[cfg(shmkit_loom)]
    loom::thread::yield_now();
}

/// `UnsafeCell` with the closure-based accessors loom needs to track accesses.
///
/// Outside loom it is `#[repr(transparent)]` over `core::cell::UnsafeCell<T>`, so it
/// has `T`'s layout and can sit in shared memory.
#[cfg(not(shmkit_loom))]
#[repr(transparent)]
#[derive(Default)]
pub(crate) struct UnsafeCell<T: ?Sized>(core::cell::UnsafeCell<T>);

#[cfg(not(shmkit_loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[inline]
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    /// Unwraps the value.
    #[inline]
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(shmkit_loom))]
impl<T: ?Sized> UnsafeCell<T> {
    /// Calls `f` with a shared raw pointer to the contents.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a unique raw pointer to the contents.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }

    /// The contents, through exclusive access (for unit tests that scribble on a slot).
    #[cfg(test)]
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

#[cfg(shmkit_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Gives the CPU to another runnable thread (`sched_yield`); under loom, a yield to
/// the model's scheduler.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(shmkit_loom))]
    rustix::thread::sched_yield();
    #[cfg(shmkit_loom)]
    loom::thread::yield_now();
}

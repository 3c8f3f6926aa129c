//! The marker for types that may live in shared memory.
// Allowed: the marker is implemented for `core`'s atomics, which users put in segments.
#![allow(clippy::disallowed_types)]

/// A type that may live in memory shared between processes.
///
/// Several processes map the same bytes, each at its own address, each perhaps built
/// from a different compilation of the same source. A `ShmSafe` type stays correct
/// under that.
///
/// # Safety
///
/// Implement it only for a type that meets every point:
///
/// 1. **No pointers or references**, nor anything that holds one (`Box`, `Vec`,
///    `&T`, `String`, function pointers, trait objects): an address means nothing in
///    another process's address space.
/// 2. **A fixed layout**: `#[repr(C)]` or `#[repr(transparent)]` (or a primitive), with
///    fixed-width fields (`u32`/`u64`, never `usize`, so 32- and 64-bit builds agree),
///    and every field itself `ShmSafe`.
/// 3. **Every bit pattern that a correct peer can write is handled**: a `bool`, `char`
///    or enum read after a faulty or dying peer wrote it can be an invalid value, which
///    is undefined behaviour. Use integers and decode them.
/// 4. **Sharing across processes is like sharing across threads**: the type is `Sync`
///    for real (interior mutation only through atomics or a lock), and has no
///    process-local state (no cached pid, no file descriptor, no thread-local).
/// 5. **It needs no `Drop`** to stay correct: a segment is unmapped, never dropped in
///    place, since other processes may still use the value.
///
/// # Examples
///
/// ```
/// use core::sync::atomic::AtomicU64;
/// use shmkit::ShmSafe;
///
/// #[repr(C)]
/// struct Stats {
///     hits: AtomicU64,
///     misses: AtomicU64,
/// }
/// // SAFETY: repr(C), two atomics of fixed width, no pointers, no Drop.
/// unsafe impl ShmSafe for Stats {}
/// ```
pub unsafe trait ShmSafe: Send + Sync {}

macro_rules! impl_shm_safe {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: a primitive of fixed width with every bit pattern valid (or an
            // atomic wrapper of one), no pointers, no Drop.
            unsafe impl ShmSafe for $t {}
        )*
    };
}

impl_shm_safe!(
    (),
    u8,
    u16,
    u32,
    u64,
    u128,
    i8,
    i16,
    i32,
    i64,
    i128,
    f32,
    f64,
    core::sync::atomic::AtomicU8,
    core::sync::atomic::AtomicU16,
    core::sync::atomic::AtomicU32,
    core::sync::atomic::AtomicU64,
    core::sync::atomic::AtomicI8,
    core::sync::atomic::AtomicI16,
    core::sync::atomic::AtomicI32,
    core::sync::atomic::AtomicI64,
);

// SAFETY: an array of ShmSafe elements is a fixed layout of ShmSafe values.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}

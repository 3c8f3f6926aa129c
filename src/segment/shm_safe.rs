//! The marker for types that may live in shared memory.
// Allowed: the marker is implemented for `core`'s atomics, which users put in segments.
#![allow(clippy::disallowed_types)]

use super::identity::{Kind, LayoutHasher, TypeName};

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
/// # Identity: how two programs agree on a type
///
/// A segment's header records the type's [`KIND`](ShmSafe::KIND), its
/// [`type_name`](ShmSafe::type_name), a digest of its [`layout`](ShmSafe::layout) and
/// shmkit's major.minor version; `Shared::open` compares all four. The defaults are
/// conservative: `core::any::type_name` (which carries the crate path, so only builds of
/// the same crate agree) and a layout of size and alignment only. `#[derive(ShmSafe)]`
/// does better: the bare type name (or `#[type_name("…")]`) and every field's offset
/// and layout, so two separately built programs that share the struct's definition
/// meet on a named segment.
///
/// # Examples
///
/// Derive it on a `#[repr(C)]` struct; `Zeroable` (also derivable) makes
/// [`Shared::new_zeroed`](crate::Shared::new_zeroed) and
/// [`Shared::create_zeroed`](crate::Shared::create_zeroed) available:
///
/// ```
/// use core::sync::atomic::{AtomicU64, Ordering};
/// use shmkit::{Mutex, Shared, ShmSafe, Zeroable};
///
/// #[derive(ShmSafe, Zeroable)]
/// #[repr(C)]
/// #[type_name("myapp.Stats")] // optional: the default is the bare name, `Stats`
/// struct Stats {
///     hits: AtomicU64,
///     misses: AtomicU64,
///     last: Mutex<[u8; 16]>,
/// }
///
/// let stats = Shared::<Stats>::new_zeroed()?;
/// stats.hits.fetch_add(1, Ordering::Relaxed);
/// stats.last.lock()?.copy_from_slice(b"0123456789abcdef");
/// # Ok::<(), shmkit::Error>(())
/// ```
///
/// A plain-data struct (`Pod`) goes into a [`Mutex`](crate::Mutex), a
/// [`Queue`](crate::Queue) or a [`Value`](crate::Value) the same way: `Queue` and
/// `Value` take any `Pod` item, and a `Mutex<T>` needs `T: ShmSafe`, one more word in
/// the derive list. (A blanket `impl<T: Pod> ShmSafe for T` would clash with the
/// impls for atomics and arrays, and would name types by their crate path.)
///
/// ```
/// use shmkit::{Mutex, Pod, Shared, ShmSafe, Zeroable};
///
/// #[derive(Clone, Copy, Pod, Zeroable, ShmSafe)]
/// #[repr(C)]
/// struct Book {
///     price: u64,
///     qty: u32,
///     _pad: [u8; 4], // Pod forbids padding: make it a field
/// }
///
/// let book = Shared::new(Mutex::new(Book { price: 10, qty: 3, _pad: [0; 4] }))?;
/// book.lock()?.qty += 1;
/// # Ok::<(), shmkit::Error>(())
/// ```
///
/// By hand, with the default (binary-dependent) identity:
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
///
/// # What the derive refuses
///
/// A pointer (or reference, `Box`, `Vec`, ...) field:
///
/// ```compile_fail
/// #[derive(shmkit::ShmSafe)]
/// #[repr(C)]
/// struct Node {
///     next: *const u8,
/// }
/// ```
///
/// A struct without `#[repr(C)]` (Rust's default layout may differ between builds):
///
/// ```compile_fail
/// #[derive(shmkit::ShmSafe)]
/// struct Loose {
///     a: u64,
/// }
/// ```
///
/// A `bool`, `char` or `usize` field (a peer can write an invalid `bool`):
///
/// ```compile_fail
/// #[derive(shmkit::ShmSafe)]
/// #[repr(C)]
/// struct Flag {
///     on: bool,
/// }
/// ```
///
/// An enum, as the type or as a field:
///
/// ```compile_fail
/// #[derive(shmkit::ShmSafe)]
/// #[repr(u32)]
/// enum State { Idle, Busy }
/// ```
///
/// ```compile_fail
/// #[derive(Clone, Copy)]
/// #[repr(u32)]
/// enum State { Idle, Busy }
///
/// #[derive(shmkit::ShmSafe)]
/// #[repr(C)]
/// struct Job {
///     state: State,
/// }
/// ```
///
/// A type with a lifetime (it holds a reference):
///
/// ```compile_fail
/// #[derive(shmkit::ShmSafe)]
/// #[repr(C)]
/// struct View<'a> {
///     data: &'a [u8; 4],
/// }
/// ```
///
/// A type with `Drop` (a segment is unmapped, never dropped in place):
///
/// ```compile_fail
/// #[derive(shmkit::ShmSafe, shmkit::Zeroable)]
/// #[repr(C)]
/// struct Noisy {
///     n: u64,
/// }
/// impl Drop for Noisy {
///     fn drop(&mut self) {}
/// }
/// let _ = shmkit::Shared::<Noisy>::new_zeroed();
/// ```
///
/// And `#[derive(Pod)]` refuses padding, with the fix in its message:
///
/// ```compile_fail
/// #[derive(Clone, Copy, shmkit::Pod, shmkit::Zeroable)]
/// #[repr(C)]
/// struct Book {
///     qty: u32, // 4 bytes of padding follow, to align `price`
///     price: u64,
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot live in shared memory: it is not `ShmSafe`",
    label = "not `ShmSafe`",
    note = "for your own struct: `#[derive(shmkit::ShmSafe)]` with `#[repr(C)]`, every field `ShmSafe` (fixed-width integers, floats, atomics, arrays of them, the kit's types)",
    note = "`bool`, `char`, `usize`, enums, references, pointers and heap types are not: store integers and decode them"
)]
pub unsafe trait ShmSafe: Send + Sync + Sized {
    /// What kind of object this is, recorded in a segment's header for tools
    /// (`shmkit ls`). Your own types keep the default, [`Kind::User`].
    const KIND: Kind = Kind::User;

    /// The version of this type's shared layout: the kit bumps it for its own types
    /// whenever the meaning of their bytes changes (a lock word's bits, a ring's
    /// header), so that a segment made by another build is refused instead of being
    /// read with different rules. Bump yours the same way when a field keeps its type
    /// but changes its meaning.
    const LAYOUT: u32 = 0;

    /// For a type that is an array of items (the kit's [`Queue`](crate::Queue)): the
    /// bytes from one item's record to the next, recorded in the segment header so
    /// that tools (`shmkit inspect`) can find each item's state without knowing the
    /// item type. 0 (the default) for everything else; leave it so for your own types.
    const ITEM_STRIDE: u32 = 0;

    /// Writes the type's stable name. The default is `core::any::type_name::<Self>()`,
    /// which includes the crate path: override it (or derive) to meet other binaries.
    fn type_name(name: &mut TypeName) {
        name.push_str(core::any::type_name::<Self>());
    }

    /// Describes the type's layout. The default covers [`LayoutHasher::shape`] (size,
    /// alignment, kind, [`LAYOUT`](ShmSafe::LAYOUT)); the derive adds every field's
    /// offset and, recursively, its layout.
    fn layout(layout: &mut LayoutHasher) {
        layout.shape::<Self>();
    }
}

macro_rules! impl_shm_safe {
    ($($t:ty => $name:literal),* $(,)?) => {
        $(
            // SAFETY: a primitive of fixed width with every bit pattern valid (or an
            // atomic wrapper of one), no pointers, no Drop.
            unsafe impl ShmSafe for $t {
                const KIND: Kind = Kind::Plain;
                fn type_name(name: &mut TypeName) {
                    name.push_str($name);
                }
            }
        )*
    };
}

impl_shm_safe!(
    () => "()",
    u8 => "u8",
    u16 => "u16",
    u32 => "u32",
    u64 => "u64",
    u128 => "u128",
    i8 => "i8",
    i16 => "i16",
    i32 => "i32",
    i64 => "i64",
    i128 => "i128",
    f32 => "f32",
    f64 => "f64",
    core::sync::atomic::AtomicU8 => "AtomicU8",
    core::sync::atomic::AtomicU16 => "AtomicU16",
    core::sync::atomic::AtomicU32 => "AtomicU32",
    core::sync::atomic::AtomicU64 => "AtomicU64",
    core::sync::atomic::AtomicI8 => "AtomicI8",
    core::sync::atomic::AtomicI16 => "AtomicI16",
    core::sync::atomic::AtomicI32 => "AtomicI32",
    core::sync::atomic::AtomicI64 => "AtomicI64",
);

// SAFETY: an array of ShmSafe elements is a fixed layout of ShmSafe values.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {
    const KIND: Kind = Kind::Plain;

    fn type_name(name: &mut TypeName) {
        name.push_str("[");
        name.push_type::<T>();
        name.push_str("; ");
        name.push_u64(N as u64);
        name.push_str("]");
    }

    fn layout(layout: &mut LayoutHasher) {
        layout.shape::<Self>();
        layout.write_u64(N as u64);
        layout.field::<T>(0);
    }
}

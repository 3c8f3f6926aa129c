//! What a segment says about the type it holds: a [`Kind`], a stable [`TypeName`]
//! and a layout digest ([`LayoutHasher`]), none of which depends on the binary.
//!
//! Two programs built separately meet on a named segment when they agree on all three
//! (and on shmkit's major.minor version): the name is what the type *is called* (the
//! user chooses it with `#[type_name("…")]` on `#[derive(ShmSafe)]`), the layout digest
//! is what its bytes *are* (size, alignment, every field's offset, type name and,
//! recursively, layout, plus the layout version of each kit type inside).

use core::fmt;

use crate::fingerprint::Fnv;
pub use crate::fingerprint::{TYPE_NAME_MAX, TypeName};

/// What a segment's top-level value is, recorded in its header for tools that list
/// segments (`shmkit ls`). Stated by [`ShmSafe::KIND`](crate::ShmSafe::KIND).
///
/// The numbers are part of the segment layout: they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Kind {
    /// A user's own type (the default for `ShmSafe` impls and `#[derive(ShmSafe)]`).
    User = 0,
    /// A primitive: an integer, a float, an atomic, or an array of them.
    Plain = 1,
    /// [`Queue`](crate::Queue).
    Queue = 2,
    /// [`JoinableQueue`](crate::JoinableQueue).
    JoinableQueue = 3,
    /// [`Pipe`](crate::Pipe).
    Pipe = 4,
    /// [`Mutex`](crate::Mutex).
    Mutex = 5,
    /// [`ReentrantMutex`](crate::ReentrantMutex).
    ReentrantMutex = 6,
    /// [`Semaphore`](crate::Semaphore).
    Semaphore = 7,
    /// [`BoundedSemaphore`](crate::BoundedSemaphore).
    BoundedSemaphore = 8,
    /// [`Condvar`](crate::Condvar).
    Condvar = 9,
    /// [`Event`](crate::Event).
    Event = 10,
    /// [`Barrier`](crate::Barrier).
    Barrier = 11,
    /// [`Value`](crate::Value).
    Value = 12,
    /// [`Array`](crate::Array).
    Array = 13,
    /// The kit's own plumbing (a pool's mailboxes).
    Internal = 14,
}

impl Kind {
    /// Every kind, in numeric order.
    pub const ALL: [Kind; 15] = [
        Kind::User,
        Kind::Plain,
        Kind::Queue,
        Kind::JoinableQueue,
        Kind::Pipe,
        Kind::Mutex,
        Kind::ReentrantMutex,
        Kind::Semaphore,
        Kind::BoundedSemaphore,
        Kind::Condvar,
        Kind::Event,
        Kind::Barrier,
        Kind::Value,
        Kind::Array,
        Kind::Internal,
    ];

    /// The kind recorded as `raw` in a header; `None` for a number this build does
    /// not know (a newer shmkit, or a scribbled header).
    pub fn from_u32(raw: u32) -> Option<Kind> {
        Kind::ALL.get(raw as usize).copied()
    }

    /// The kind's name, as `shmkit ls` shows it ("Queue", "Mutex", "user", ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Plain => "plain",
            Kind::Queue => "Queue",
            Kind::JoinableQueue => "JoinableQueue",
            Kind::Pipe => "Pipe",
            Kind::Mutex => "Mutex",
            Kind::ReentrantMutex => "ReentrantMutex",
            Kind::Semaphore => "Semaphore",
            Kind::BoundedSemaphore => "BoundedSemaphore",
            Kind::Condvar => "Condvar",
            Kind::Event => "Event",
            Kind::Barrier => "Barrier",
            Kind::Value => "Value",
            Kind::Array => "Array",
            Kind::Internal => "internal",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Accumulates a type's layout digest: sizes, alignments, field offsets, kinds and
/// layout versions, recursively. See [`ShmSafe::layout`](crate::ShmSafe::layout).
#[derive(Debug, Clone, Copy)]
pub struct LayoutHasher {
    hash: Fnv,
}

impl LayoutHasher {
    /// An empty digest.
    pub const fn new() -> LayoutHasher {
        LayoutHasher { hash: Fnv::new() }
    }

    /// The digest of `T`'s layout, as its [`ShmSafe::layout`](crate::ShmSafe::layout)
    /// describes it.
    pub fn of<T: crate::ShmSafe>() -> u64 {
        let mut h = LayoutHasher::new();
        T::layout(&mut h);
        h.finish()
    }

    /// Describes `T` itself: its size, alignment, kind and layout version. Every
    /// `layout` implementation starts with this for `Self`.
    pub fn shape<T: crate::ShmSafe>(&mut self) {
        self.hash.bytes(b"shape");
        self.hash.u64(core::mem::size_of::<T>() as u64);
        self.hash.u64(core::mem::align_of::<T>() as u64);
        self.hash.u64(T::KIND as u64);
        self.hash.u64(u64::from(T::LAYOUT));
    }

    /// Describes a field of type `F` at byte `offset`: `F`'s name and (recursively)
    /// its layout. (A `u32` field and an `i32` field have the same layout, not the same
    /// meaning.)
    pub fn field<F: crate::ShmSafe>(&mut self, offset: usize) {
        self.hash.bytes(b"field");
        self.hash.u64(offset as u64);
        self.hash.u64(TypeName::of::<F>().digest());
        F::layout(self);
    }

    /// Describes a plain-data parameter `T` (a `Queue`'s items): size and alignment.
    /// Every bit pattern of a `Pod` type is valid, so that is all safety needs.
    pub fn pod<T: bytemuck::Pod>(&mut self) {
        self.hash.bytes(b"pod");
        self.hash.u64(core::mem::size_of::<T>() as u64);
        self.hash.u64(core::mem::align_of::<T>() as u64);
    }

    /// Mixes in any number (a capacity, a version of your own).
    pub fn write_u64(&mut self, v: u64) {
        self.hash.u64(v);
    }

    /// The digest.
    pub fn finish(&self) -> u64 {
        self.hash.finish()
    }
}

impl Default for LayoutHasher {
    fn default() -> Self {
        LayoutHasher::new()
    }
}

/// The parts of [`TypeName`] that name kit types: they need [`ShmSafe`](crate::ShmSafe),
/// which lives above the fingerprint.
impl TypeName {
    /// The name of `T`, as its [`ShmSafe::type_name`](crate::ShmSafe::type_name) writes it.
    pub fn of<T: crate::ShmSafe>() -> TypeName {
        let mut name = TypeName::new();
        T::type_name(&mut name);
        name
    }

    /// Appends the name of the `ShmSafe` type `T` (a generic argument).
    pub fn push_type<T: crate::ShmSafe>(&mut self) {
        T::type_name(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miri_kinds_round_trip() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(*k as u32, i as u32);
            assert_eq!(Kind::from_u32(i as u32), Some(*k));
        }
        assert_eq!(Kind::from_u32(99), None);
    }
}

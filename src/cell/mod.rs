//! Cells: [`Value<T>`] and [`Array<T, N>`], Python's shared `Value` and `Array`.
//!
//! Both hold `bytemuck::Pod` data behind a robust [`Mutex`](crate::Mutex). Since every
//! bit pattern of a `Pod` type is valid, a holder that died mid-write leaves data that
//! may be stale or half-updated but never undefined behaviour, so the cells recover
//! from a dead holder by themselves: [`Value::lock`] and [`Array::lock`] return the
//! guard directly, never `OwnerDead`.
//!
//! Python's `RawValue` (no lock) is a plain atomic: `AtomicU64` and friends are
//! [`ShmSafe`](crate::ShmSafe) as they are, so `Shared::new(AtomicU64::new(0))` is one.

mod array;
mod value;

pub use array::Array;
pub use value::Value;

//! The layout layer: what may live in shared memory, and the segments that hold it.
//!
//! - [`ShmSafe`]: the marker for types with a fixed, pointer-free layout.
//! - [`Shared<T>`]: one `T` in its own mapping, anonymous (shared with forked
//!   children) or named (opened by unrelated processes), behind a validated header.

mod header;
mod shared;
mod shm_safe;

pub use shared::Shared;
pub use shm_safe::ShmSafe;

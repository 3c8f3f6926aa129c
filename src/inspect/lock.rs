//! `Mutex`, `ReentrantMutex`, and the locked cells `Value` and `Array`: the robust lock
//! word (see `sync::raw_mutex`), and the cells' contents when their item type is a
//! primitive.

use std::vec::Vec;

use super::participant::Participant;
use super::view::{Corrupted, View, corrupt};
use super::{Ctx, generic_args};
use crate::sync::raw_mutex::{NOT_RECOVERABLE, OWNER_DIED, TID_MASK, WAITERS};
use crate::sync::{Mutex, ReentrantMutex};

/// The live state of a robust lock word.
#[derive(Debug, Clone, PartialEq)]
pub struct LockState {
    /// The holder (a thread participant), if the lock is held.
    pub holder: Option<Participant>,
    /// Someone may sleep on the word (`WAITERS`).
    pub waiters: bool,
    /// Taken over from a dead holder and not yet declared consistent (`OWNER_DIED`).
    pub owner_died: bool,
    /// Never to be taken again (an `OwnerDead` guard was dropped unrepaired).
    pub not_recoverable: bool,
    /// For a `ReentrantMutex` that is held: how many guards its holder has.
    pub depth: Option<u32>,
    /// For a `Value` or `Array` of a primitive type: its items, read without the lock
    /// (a snapshot that a writer may be changing).
    pub contents: Option<Contents>,
}

/// The items of a `Value` (one) or an `Array` (the first few), when their type is a
/// primitive this tool can print.
#[derive(Debug, Clone, PartialEq)]
pub struct Contents {
    /// The item type's name (`u64`, `f32`, ...).
    pub item_type: &'static str,
    /// How many items the cell holds.
    pub len: u64,
    /// The first items (at most [`Contents::SHOWN`]).
    pub items: Vec<Scalar>,
}

impl Contents {
    /// How many items are read at most.
    pub const SHOWN: usize = 8;
}

/// One primitive item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    /// An unsigned integer.
    Unsigned(u128),
    /// A signed integer.
    Signed(i128),
    /// A float.
    Float(f64),
}

impl core::fmt::Display for Scalar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Scalar::Unsigned(v) => write!(f, "{v}"),
            Scalar::Signed(v) => write!(f, "{v}"),
            Scalar::Float(v) => write!(f, "{v}"),
        }
    }
}

/// Size and decoder of the primitive named `name`.
fn primitive(name: &str) -> Option<(&'static str, usize)> {
    const ALL: [&str; 12] = [
        "u8", "u16", "u32", "u64", "u128", "i8", "i16", "i32", "i64", "i128", "f32", "f64",
    ];
    let name = ALL.into_iter().find(|p| *p == name)?;
    let size = match name {
        "u8" | "i8" => 1,
        "u16" | "i16" => 2,
        "u32" | "i32" | "f32" => 4,
        "u64" | "i64" | "f64" => 8,
        _ => 16,
    };
    Some((name, size))
}

fn scalar(name: &str, b: &[u8]) -> Scalar {
    let mut le = [0u8; 16];
    le[..b.len()].copy_from_slice(b);
    let u = u128::from_le_bytes(le);
    let bits = b.len() as u32 * 8;
    match name.as_bytes()[0] {
        b'u' => Scalar::Unsigned(u),
        b'i' => {
            let shift = 128 - bits;
            Scalar::Signed(((u << shift) as i128) >> shift)
        }
        _ if bits == 32 => Scalar::Float(f64::from(f32::from_bits(u as u32))),
        _ => Scalar::Float(f64::from_bits(u as u64)),
    }
}

/// A `Kind::Plain` value: a primitive or an atomic of one (`u64`, `AtomicU32`);
/// `None` for the other plain types (arrays, `()`).
pub(crate) fn plain(value: &View<'_>, type_name: &str) -> Result<Option<Scalar>, Corrupted> {
    let item = type_name
        .strip_prefix("Atomic")
        .map_or_else(|| type_name.into(), |rest| rest.to_ascii_lowercase());
    let Some((name, size)) = primitive(&item) else {
        return Ok(None);
    };
    if value.len() != size {
        corrupt!("a {type_name} of {} bytes (it has {size})", value.len());
    }
    let mut buf = [0u8; 16];
    value.bytes(0, &mut buf[..size])?;
    Ok(Some(scalar(name, &buf[..size])))
}

/// Where the lock word sits in every lock type (and the cells, which wrap a `Mutex`).
const WORD: usize = core::mem::offset_of!(Mutex<u64>, raw);
const _: () = assert!(core::mem::offset_of!(ReentrantMutex<u64>, raw) == WORD);
const DEPTH: usize = core::mem::offset_of!(ReentrantMutex<u64>, count);

/// Decodes the lock word at the start of `value`.
pub(crate) fn word(value: &View<'_>, ctx: &Ctx) -> Result<LockState, Corrupted> {
    let word = value.u32(WORD)?;
    let id = word & TID_MASK;
    let not_recoverable = id == NOT_RECOVERABLE;
    Ok(LockState {
        holder: (id != 0 && !not_recoverable).then(|| ctx.judge.participant(id)),
        waiters: word & WAITERS != 0,
        owner_died: word & OWNER_DIED != 0,
        not_recoverable,
        depth: None,
        contents: None,
    })
}

/// A `Mutex<T>`: the word (any `T`).
pub(crate) fn mutex(value: &View<'_>, ctx: &Ctx) -> Result<LockState, Corrupted> {
    if value.len() < 4 {
        corrupt!(
            "a Mutex of {} bytes has no room for its lock word",
            value.len()
        );
    }
    word(value, ctx)
}

/// A `ReentrantMutex<T>`: the word and the holder's depth.
pub(crate) fn reentrant(value: &View<'_>, ctx: &Ctx) -> Result<LockState, Corrupted> {
    if value.len() < DEPTH + 4 {
        corrupt!(
            "a ReentrantMutex of {} bytes has no room for its lock word and depth",
            value.len()
        );
    }
    let mut state = word(value, ctx)?;
    if state.holder.is_some() {
        state.depth = Some(value.u32(DEPTH)?);
    }
    Ok(state)
}

/// A `Value<T>` (`type_name` `shmkit::Value<T>`) or an `Array<T, N>`
/// (`shmkit::Array<T, N>`): the word, and the items when `T` is a primitive.
pub(crate) fn cell(
    value: &View<'_>,
    type_name: &str,
    array: bool,
    ctx: &Ctx,
) -> Result<LockState, Corrupted> {
    let mut state = mutex(value, ctx)?;
    let args = generic_args(type_name);
    let (item, len) = match (array, args.as_deref()) {
        (false, Some([t])) => (*t, 1u64),
        (true, Some([t, n])) => match n.parse::<u64>() {
            Ok(n) => (*t, n),
            Err(_) => return Ok(state),
        },
        _ => return Ok(state),
    };
    let Some((item_type, size)) = primitive(item) else {
        return Ok(state);
    };
    // `Mutex<T>` puts the data at T's alignment, at least 4 (primitives align to
    // their size here, 16-byte ones to 16 or 8: take it from the layout).
    let data = WORD + 4;
    let data = data.next_multiple_of(size.min(core::mem::align_of::<u128>()));
    let needed = len
        .checked_mul(size as u64)
        .and_then(|n| n.checked_add(data as u64));
    if needed.is_none_or(|n| n > value.len() as u64) {
        corrupt!(
            "a {type_name} needs {} bytes, the value has {}",
            needed.map_or_else(|| "more than 2^64".into(), |n| std::format!("{n}")),
            value.len()
        );
    }
    let mut items = Vec::new();
    let mut buf = [0u8; 16];
    for i in 0..(len as usize).min(Contents::SHOWN) {
        value.bytes(data + i * size, &mut buf[..size])?;
        items.push(scalar(item_type, &buf[..size]));
    }
    state.contents = Some(Contents {
        item_type,
        len,
        items,
    });
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_decode_little_endian_with_sign() {
        assert_eq!(scalar("u16", &[1, 2]), Scalar::Unsigned(0x0201));
        assert_eq!(scalar("i8", &[0xFF]), Scalar::Signed(-1));
        assert_eq!(scalar("i32", &(-5i32).to_le_bytes()), Scalar::Signed(-5));
        assert_eq!(scalar("f32", &1.5f32.to_le_bytes()), Scalar::Float(1.5));
        assert_eq!(
            scalar("f64", &(-2.25f64).to_le_bytes()),
            Scalar::Float(-2.25)
        );
        assert_eq!(primitive("usize"), None);
    }
}

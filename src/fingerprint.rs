//! What a segment header's fingerprint is made of, below every module that uses it:
//! the FNV-1a digest, a type's stable [`TypeName`] and the kit's `major.minor`.
//! [`segment`](crate::segment) builds headers from them and [`error`](crate::error)
//! reports mismatches with them, so they sit under both.

use core::fmt;

/// 64-bit FNV-1a: small, `no_std`, stable across builds and platforms. Not a
/// defence against an adversary choosing collisions: a hostile peer can write any
/// header it likes, and the kit is safe against that by validation, not by hashing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) const fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

/// The longest type name a segment header (and an error) keeps, in bytes. Longer names
/// are cut at a character boundary; the type check still covers the whole name.
pub const TYPE_NAME_MAX: usize = 160;

/// A type's stable name, as written into a segment header and compared on `open`.
///
/// Built by [`ShmSafe::type_name`](crate::ShmSafe::type_name): kit types write
/// `shmkit::Queue<u64, 1024>`, `#[derive(ShmSafe)]` writes the bare type name (or the one
/// given with `#[type_name("…")]`) followed by its generic arguments. It keeps the first
/// [`TYPE_NAME_MAX`] bytes for display and a 64-bit digest of the whole name for the
/// check.
#[derive(Clone, Copy)]
pub struct TypeName {
    buf: [u8; TYPE_NAME_MAX],
    len: u16,
    truncated: bool,
    hash: Fnv,
}

impl TypeName {
    /// An empty name.
    pub const fn new() -> TypeName {
        TypeName {
            buf: [0; TYPE_NAME_MAX],
            len: 0,
            truncated: false,
            hash: Fnv::new(),
        }
    }

    /// Appends `s`.
    pub fn push_str(&mut self, s: &str) {
        self.hash.bytes(s.as_bytes());
        if self.truncated {
            return;
        }
        let len = self.len as usize;
        let (take, cut) = crate::text::copy_text(s, &mut self.buf[len..]);
        self.truncated = cut;
        self.len = (len + take) as u16;
    }

    /// Appends `v` in decimal (a const generic argument).
    pub fn push_u64(&mut self, v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = v;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        // Digits are ASCII.
        if let Ok(s) = core::str::from_utf8(&digits[i..]) {
            self.push_str(s);
        }
    }

    /// Appends the name of a plain-data type `T` (the item type of a `Queue`, a
    /// `Value`): `core::any::type_name` without module paths, so that two binaries that
    /// define `Book` in different crates agree. Safe to use for `Pod` types only, whose
    /// every bit pattern is valid: two different types with the same name and size can
    /// then read wrong values from each other, never undefined behaviour.
    pub fn push_pod<T: bytemuck::Pod>(&mut self) {
        push_without_paths(self, core::any::type_name::<T>());
    }

    /// The name (its first [`TYPE_NAME_MAX`] bytes).
    pub fn as_str(&self) -> &str {
        // Built from `&str`s cut at character boundaries.
        core::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }

    /// Was the name longer than [`TYPE_NAME_MAX`]?
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The digest of the whole name.
    pub(crate) fn digest(&self) -> u64 {
        self.hash.finish()
    }

    /// A name read back from a header: `bytes` as stored, `digest` of the full name.
    /// Invalid UTF-8 (a scribbled header) is cut at the first bad byte.
    pub(crate) fn from_stored(bytes: &[u8], truncated: bool, digest: u64) -> TypeName {
        let mut name = TypeName::new();
        let bytes = &bytes[..bytes.len().min(TYPE_NAME_MAX)];
        let valid = crate::text::valid_prefix(bytes);
        name.push_str(valid);
        name.truncated = truncated || valid.len() < bytes.len();
        name.hash = Fnv(digest);
        name
    }

    /// The stored bytes (for the header).
    pub(crate) fn stored(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl Default for TypeName {
    fn default() -> Self {
        TypeName::new()
    }
}

impl PartialEq for TypeName {
    fn eq(&self, other: &Self) -> bool {
        self.digest() == other.digest() && self.as_str() == other.as_str()
    }
}

impl Eq for TypeName {}

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        crate::text::ellipsis(f, self.truncated)
    }
}

impl fmt::Debug for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Appends `full` with every `path::` prefix removed: `app::data::Book` becomes `Book`,
/// `[app::Book; 4]` becomes `[Book; 4]`.
fn push_without_paths(name: &mut TypeName, full: &str) {
    let bytes = full.as_bytes();
    let mut i = 0;
    let mut out_from = 0; // start of the text not yet pushed
    let mut ident_start = None;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() || b == b'_' {
            ident_start.get_or_insert(i);
            i += 1;
            continue;
        }
        if b == b':' && bytes.get(i + 1) == Some(&b':') {
            // `ident::`: drop the path segment and its separator.
            if let Some(start) = ident_start.take() {
                name.push_str(&full[out_from..start]);
            } else {
                name.push_str(&full[out_from..i]);
            }
            i += 2;
            out_from = i;
            continue;
        }
        ident_start = None;
        i += 1;
    }
    name.push_str(&full[out_from..]);
}

/// shmkit's `major.minor` as `major << 16 | minor` (`0.1` is `0x0000_0001`): builds of
/// different minor versions (before 1.0) or major versions do not share segments.
pub(crate) const KIT_VERSION: u32 = {
    let major = parse_u16(env!("CARGO_PKG_VERSION_MAJOR"));
    let minor = parse_u16(env!("CARGO_PKG_VERSION_MINOR"));
    ((major as u32) << 16) | minor as u32
};

const fn parse_u16(s: &str) -> u16 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v: u16 = 0;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as u16;
        i += 1;
    }
    v
}

/// Formats a [`KIT_VERSION`]-style number as `major.minor`.
pub(crate) struct KitVersion(pub(crate) u32);

impl fmt::Display for KitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 >> 16, self.0 & 0xFFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn miri_paths_are_stripped() {
        for (full, short) in [
            ("app::data::Book", "Book"),
            ("[app::Book; 4]", "[Book; 4]"),
            ("a::W<b::c::X, u8>", "W<X, u8>"),
            ("u64", "u64"),
        ] {
            let mut n = TypeName::new();
            push_without_paths(&mut n, full);
            assert_eq!(n.as_str(), short);
        }
    }

    #[test]
    fn miri_long_names_are_cut_but_fully_hashed() {
        let mut a = TypeName::new();
        let mut b = TypeName::new();
        let long = "é".repeat(200); // 400 bytes, 2-byte chars
        a.push_str(&long);
        b.push_str(&long);
        b.push_str("x");
        assert!(a.is_truncated());
        assert!(a.as_str().len() <= TYPE_NAME_MAX);
        assert_eq!(a.as_str(), b.as_str());
        assert_ne!(a.digest(), b.digest());
        assert!(a.to_string().ends_with('…'));
    }

    #[test]
    fn miri_numbers_and_versions() {
        let mut n = TypeName::new();
        n.push_u64(0);
        n.push_str(",");
        n.push_u64(18446744073709551615);
        assert_eq!(n.as_str(), "0,18446744073709551615");
        assert_eq!(
            KitVersion(KIT_VERSION).to_string(),
            std::format!(
                "{}.{}",
                env!("CARGO_PKG_VERSION_MAJOR"),
                env!("CARGO_PKG_VERSION_MINOR")
            )
        );
    }
}

//! Text in fixed-size buffers, as the kit keeps it in segment headers, errors and shared
//! slots: copied in cut at a character boundary, read back as the longest valid UTF-8
//! prefix (a scribbled buffer gives a shorter text, never an invalid one), shown with an
//! ellipsis where it was cut.

use core::fmt;

/// Copies as much of `text` as fits into `out`, cut at a character boundary; returns
/// the bytes written and whether the text was cut.
pub(crate) fn copy_text(text: &str, out: &mut [u8]) -> (usize, bool) {
    let mut n = text.len().min(out.len());
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    (n, n < text.len())
}

/// The longest prefix of `bytes` that is valid UTF-8.
pub(crate) fn valid_prefix(bytes: &[u8]) -> &str {
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        // The prefix up to the error is valid UTF-8.
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// Writes `…` where a text was cut.
pub(crate) fn ellipsis(f: &mut fmt::Formatter<'_>, truncated: bool) -> fmt::Result {
    if truncated {
        f.write_str("…")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miri_cuts_at_character_boundaries_and_reads_back_valid_prefixes() {
        let mut out = [0u8; 5];
        // "héllo": 'é' is two bytes; five bytes hold "héll".
        assert_eq!(copy_text("héllo", &mut out), (5, true));
        assert_eq!(valid_prefix(&out), "héll");
        // Four bytes would split 'é' at three: cut before it.
        assert_eq!(copy_text("aaé", &mut out[..3]), (2, true));
        assert_eq!(copy_text("ab", &mut out), (2, false));
        assert_eq!(valid_prefix(&[b'o', b'k', 0xC3]), "ok");
        assert_eq!(valid_prefix(&[0xFF]), "");
    }
}

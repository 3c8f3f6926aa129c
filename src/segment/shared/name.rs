//! Segment names, as the kernel wants them.

use core::ffi::CStr;

use crate::error::{MAX_NAME, SegmentError, SegmentErrorKind};

/// A segment name as the kernel wants it: `/`, the name, NUL.
#[derive(Clone, Copy)]
pub(super) struct Name {
    pub(super) buf: [u8; MAX_NAME + 2],
    pub(super) len: u8,
}

impl Name {
    pub(super) fn new(name: &str) -> Result<Name, SegmentError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_NAME || bytes.iter().any(|&b| b == b'/' || b == 0)
        {
            return Err(SegmentError::new(SegmentErrorKind::InvalidName, name));
        }
        let mut buf = [0u8; MAX_NAME + 2];
        buf[0] = b'/';
        buf[1..=bytes.len()].copy_from_slice(bytes);
        Ok(Name {
            buf,
            len: bytes.len() as u8,
        })
    }

    /// `/name` with its NUL.
    pub(super) fn c_str(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.buf[..self.len as usize + 2])
            .expect("validated: one NUL, at the end")
    }

    /// The name as the user gave it.
    pub(super) fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[1..=self.len as usize]).expect("built from a &str")
    }
}

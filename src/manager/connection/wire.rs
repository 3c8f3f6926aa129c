//! Framing, as CPython's `multiprocessing.connection` writes it.
//!
//! A frame is a 4-byte big-endian **signed** length and that many bytes. A payload
//! longer than `i32::MAX` bytes is announced by the length `-1` followed by an 8-byte
//! big-endian unsigned length (Python 3.3+). Any other negative length is a protocol
//! error; a length above the receiver's maximum is refused *before* anything is
//! allocated for it.

use crate::manager::Error;

/// The most a frame header takes: `-1` and an 8-byte length.
pub(crate) const MAX_HEADER: usize = 12;

/// Writes the header for a payload of `len` bytes into `out`; returns its length (4
/// or 12).
pub(crate) fn encode_header(len: usize, out: &mut [u8; MAX_HEADER]) -> usize {
    if len > i32::MAX as usize {
        out[..4].copy_from_slice(&(-1i32).to_be_bytes());
        out[4..12].copy_from_slice(&(len as u64).to_be_bytes());
        12
    } else {
        out[..4].copy_from_slice(&(len as i32).to_be_bytes());
        4
    }
}

/// Parses a frame header at the start of `buf`, refusing payloads over `max` bytes.
///
/// `Ok(None)`: not enough bytes yet. `Ok(Some((header_len, payload_len)))`: the
/// payload follows the header.
///
/// # Errors
///
/// [`Error::Protocol`] for a negative length other than `-1`;
/// [`Error::FrameTooLarge`] for a length over `max`.
pub fn parse_header(buf: &[u8], max: usize) -> Result<Option<(usize, usize)>, Error> {
    let Some(first) = buf.get(..4) else {
        return Ok(None);
    };
    let n = i32::from_be_bytes([first[0], first[1], first[2], first[3]]);
    let (header, len) = if n == -1 {
        let Some(long) = buf.get(4..12) else {
            return Ok(None);
        };
        let mut b = [0u8; 8];
        b.copy_from_slice(long);
        (12, u64::from_be_bytes(b))
    } else if n < 0 {
        return Err(Error::Protocol("negative frame length"));
    } else {
        (4, n as u64)
    };
    if len > max as u64 {
        return Err(Error::FrameTooLarge { len, max });
    }
    Ok(Some((header, len as usize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_refuse_hostile_lengths() {
        let mut h = [0u8; MAX_HEADER];
        assert_eq!(encode_header(5, &mut h), 4);
        assert_eq!(&h[..4], &[0, 0, 0, 5]);
        assert_eq!(parse_header(&h[..4], 5).unwrap(), Some((4, 5)));
        assert_eq!(parse_header(&h[..3], 5).unwrap(), None);
        assert!(matches!(
            parse_header(&h[..4], 4),
            Err(Error::FrameTooLarge { len: 5, max: 4 })
        ));
        let big = i32::MAX as usize + 1;
        assert_eq!(encode_header(big, &mut h), 12);
        assert_eq!(&h[..4], &[0xff; 4]);
        assert_eq!(parse_header(&h, usize::MAX).unwrap(), Some((12, big)));
        assert_eq!(parse_header(&h[..11], usize::MAX).unwrap(), None);
        assert!(matches!(
            parse_header(&h, 1 << 20),
            Err(Error::FrameTooLarge { .. })
        ));
        assert!(matches!(
            parse_header(&(-2i32).to_be_bytes(), 100),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            parse_header(&i32::MIN.to_be_bytes(), 100),
            Err(Error::Protocol(_))
        ));
        // Python's 8-byte form may carry a small length; it is accepted.
        let mut small = [0xffu8; 12];
        small[4..].copy_from_slice(&3u64.to_be_bytes());
        assert_eq!(parse_header(&small, 10).unwrap(), Some((12, 3)));
    }
}

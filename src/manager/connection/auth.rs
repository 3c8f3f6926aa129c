//! The authkey handshake of CPython's `multiprocessing.connection`, both ways.
//!
//! One side *delivers* a challenge, the other *answers* it; then they swap, so each
//! side proves to the other that it holds the key (mutual authentication). The server
//! (the side that accepted) delivers first.
//!
//! ```text
//! deliverer                                  answerer
//!   #CHALLENGE#{sha256}<40 random bytes>  ->
//!                                         <-  {sha256}HMAC-SHA256(key, "{sha256}<40 bytes>")
//!   #WELCOME#  (or #FAILURE#, then close) ->
//! ```
//!
//! This is Python 3.12+'s form. Python ≤ 3.11 sends 20 random bytes with no `{digest}`
//! prefix and answers every challenge with a bare 16-byte HMAC-MD5; a 3.12+ side
//! accepts that for compatibility. MD5 is weak, so here it is accepted — and answered —
//! only when [`Options::allow_legacy_md5`](super::Options::allow_legacy_md5) says so.
//! Digests are compared in constant time (`hmac`'s `verify_slice`).
//!
//! Every frame of the handshake is capped at 256 bytes and the whole handshake at
//! [`Options::handshake_timeout`](super::Options::handshake_timeout); nothing else is
//! read before it succeeds.

use std::time::Instant;
use std::vec::Vec;

use hmac::{Hmac, Mac};

use super::Options;
use super::stream::{Connection, Sock};
use crate::manager::Error;

/// Which end of a new connection this side is: the accepting side challenges first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The listener's end: delivers its challenge, then answers the client's.
    Accepting,
    /// The client's end: answers the listener's challenge, then delivers its own.
    Connecting,
}

/// Runs the handshake on a fresh socket within [`Options::handshake_timeout`]
/// (reading frames of at most [`HANDSHAKE_MAX`] bytes), then applies `options`'
/// frame cap and timeout. `private`: a manager socket, closed in children forked
/// from now on ([`Connection::make_private`]).
pub(crate) fn handshake(
    sock: Sock,
    authkey: &[u8],
    options: &Options,
    private: bool,
    side: Side,
) -> Result<Connection, Error> {
    let mut conn = Connection::new(sock, HANDSHAKE_MAX);
    if private {
        conn.make_private();
    }
    let deadline = Instant::now() + options.handshake_timeout;
    if side == Side::Accepting {
        deliver_challenge(&mut conn, authkey, options, deadline)?;
        answer_challenge(&mut conn, authkey, options, deadline)?;
    } else {
        answer_challenge(&mut conn, authkey, options, deadline)?;
        deliver_challenge(&mut conn, authkey, options, deadline)?;
    }
    conn.set_max_frame(options.max_frame);
    conn.set_timeout(options.timeout);
    Ok(conn)
}

/// `#CHALLENGE#`: starts every challenge.
pub(crate) const CHALLENGE: &[u8] = b"#CHALLENGE#";
/// `#WELCOME#`: the answer was right.
pub(crate) const WELCOME: &[u8] = b"#WELCOME#";
/// `#FAILURE#`: the answer was wrong.
pub(crate) const FAILURE: &[u8] = b"#FAILURE#";
/// The longest handshake frame either side reads (Python's `recv_bytes(256)`).
pub(crate) const HANDSHAKE_MAX: usize = 256;
/// Random bytes in a challenge (Python 3.12+'s `MESSAGE_LENGTH`).
const MESSAGE_LENGTH: usize = 40;
/// A legacy (Python ≤ 3.11) challenge: 20 bytes, no prefix.
const LEGACY_MESSAGE_LENGTH: usize = 20;
/// A legacy answer: a bare HMAC-MD5.
const MD5_LEN: usize = 16;

/// The digests this side computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digest {
    /// HMAC-MD5: Python ≤ 3.11's only digest; opt-in.
    Md5,
    /// HMAC-SHA256: what both sides use by default.
    Sha256,
    /// HMAC-SHA384: accepted if a peer chooses it.
    Sha384,
}

impl Digest {
    fn from_name(name: &[u8]) -> Option<Digest> {
        match name {
            b"md5" => Some(Digest::Md5),
            b"sha256" => Some(Digest::Sha256),
            b"sha384" => Some(Digest::Sha384),
            _ => None,
        }
    }

    fn name(self) -> &'static [u8] {
        match self {
            Digest::Md5 => b"md5",
            Digest::Sha256 => b"sha256",
            Digest::Sha384 => b"sha384",
        }
    }

    /// HMAC of `msg` under `key`.
    fn mac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        match self {
            Digest::Md5 => mac_of::<Hmac<md5::Md5>>(key, msg),
            Digest::Sha256 => mac_of::<Hmac<sha2::Sha256>>(key, msg),
            Digest::Sha384 => mac_of::<Hmac<sha2::Sha384>>(key, msg),
        }
    }

    /// Does `mac` equal the HMAC of `msg` under `key`? In constant time.
    fn verify(self, key: &[u8], msg: &[u8], mac: &[u8]) -> bool {
        match self {
            Digest::Md5 => verify_of::<Hmac<md5::Md5>>(key, msg, mac),
            Digest::Sha256 => verify_of::<Hmac<sha2::Sha256>>(key, msg, mac),
            Digest::Sha384 => verify_of::<Hmac<sha2::Sha384>>(key, msg, mac),
        }
    }
}

fn mac_of<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut m) = <M as Mac>::new_from_slice(key) else {
        return Vec::new();
    };
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn verify_of<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8], mac: &[u8]) -> bool {
    let Ok(mut m) = <M as Mac>::new_from_slice(key) else {
        return false;
    };
    m.update(msg);
    m.verify_slice(mac).is_ok()
}

/// Splits a challenge or an answer into its digest and payload, as Python's
/// `_get_digest_name_and_payload` does: 16- or 20-byte messages are legacy (MD5, no
/// prefix); anything else must start with `{name}`.
fn digest_and_payload(message: &[u8]) -> Result<(Option<Digest>, &[u8]), Error> {
    if message.len() == MD5_LEN || message.len() == LEGACY_MESSAGE_LENGTH {
        return Ok((None, message));
    }
    if message.first() == Some(&b'{') {
        // Python looks for the '}' within the longest allowed name (`sha3_384`).
        if let Some(end) = message.iter().take(10).position(|&b| b == b'}') {
            if let Some(d) = Digest::from_name(&message[1..end]) {
                return Ok((Some(d), &message[end + 1..]));
            }
            return Err(Error::Authentication("unsupported digest"));
        }
    }
    Err(Error::Authentication(
        "unsupported message length or missing digest prefix",
    ))
}

/// Sends a challenge and checks the answer; sends `#WELCOME#` or `#FAILURE#`.
pub(crate) fn deliver_challenge(
    conn: &mut Connection,
    key: &[u8],
    options: &Options,
    deadline: Instant,
) -> Result<(), Error> {
    let mut random = [0u8; MESSAGE_LENGTH];
    getrandom::fill(&mut random).map_err(|e| Error::Os(e.raw_os_error().unwrap_or(0)))?;
    let mut message = Vec::with_capacity(8 + MESSAGE_LENGTH);
    message.extend_from_slice(b"{sha256}");
    message.extend_from_slice(&random);
    let mut frame = Vec::with_capacity(CHALLENGE.len() + message.len());
    frame.extend_from_slice(CHALLENGE);
    frame.extend_from_slice(&message);
    conn.send_frame_until(&frame, Some(deadline))?;
    let verdict = conn.recv_with_until(HANDSHAKE_MAX, Some(deadline), |answer| {
        let (digest, mac) = digest_and_payload(answer)?;
        let digest = match digest {
            None | Some(Digest::Md5) if !options.allow_legacy_md5 => {
                return Err(Error::Authentication(
                    "the peer answered with HMAC-MD5 (Python <= 3.11); \
                     enable Options::allow_legacy_md5 to accept it",
                ));
            }
            None => Digest::Md5,
            Some(d) => d,
        };
        if digest.verify(key, &message, mac) {
            Ok(())
        } else {
            Err(Error::Authentication("digest received was wrong"))
        }
    })?;
    match verdict {
        Ok(()) => conn.send_frame_until(WELCOME, Some(deadline)),
        Err(e) => {
            let _ = conn.send_frame_until(FAILURE, Some(deadline));
            Err(e)
        }
    }
}

/// Answers the peer's challenge and waits for its verdict.
pub(crate) fn answer_challenge(
    conn: &mut Connection,
    key: &[u8],
    options: &Options,
    deadline: Instant,
) -> Result<(), Error> {
    let answer = conn.recv_with_until(HANDSHAKE_MAX, Some(deadline), |frame| {
        let Some(message) = frame.strip_prefix(CHALLENGE) else {
            return Err(Error::Authentication(
                "protocol error: expected a challenge",
            ));
        };
        if message.len() < LEGACY_MESSAGE_LENGTH {
            return Err(Error::Authentication("challenge too short"));
        }
        let (digest, _) = digest_and_payload(message)?;
        match digest {
            None | Some(Digest::Md5) if !options.allow_legacy_md5 => Err(Error::Authentication(
                "the peer challenges with HMAC-MD5 (Python <= 3.11); \
                 enable Options::allow_legacy_md5 to answer it",
            )),
            // Legacy: a bare HMAC-MD5 of the whole message.
            None => Ok(Digest::Md5.mac(key, message)),
            Some(d) => {
                let mut out = Vec::with_capacity(2 + d.name().len() + 48);
                out.push(b'{');
                out.extend_from_slice(d.name());
                out.push(b'}');
                out.extend_from_slice(&d.mac(key, message));
                Ok(out)
            }
        }
    })??;
    conn.send_frame_until(&answer, Some(deadline))?;
    let welcomed = conn.recv_with_until(HANDSHAKE_MAX, Some(deadline), |r| r == WELCOME)?;
    if welcomed {
        Ok(())
    } else {
        Err(Error::Authentication("digest sent was rejected"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_prefixes_parse_as_python_does() {
        assert_eq!(digest_and_payload(&[7u8; 16]).unwrap().0, None);
        assert_eq!(digest_and_payload(&[7u8; 20]).unwrap().0, None);
        let (d, p) = digest_and_payload(b"{sha256}0123456789abcdefghijklmn").unwrap();
        assert_eq!(
            (d, p),
            (Some(Digest::Sha256), &b"0123456789abcdefghijklmn"[..])
        );
        assert!(digest_and_payload(b"{sha3_512}0123456789abcdefghij").is_err());
        assert!(digest_and_payload(b"0123456789abcdefghijklmnop").is_err());
        assert!(digest_and_payload(b"").is_err());
    }

    #[test]
    fn hmac_matches_known_vectors() {
        // RFC 4231 test case 2 (HMAC-SHA256) and RFC 2202 test case 2 (HMAC-MD5).
        let mac = Digest::Sha256.mac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            mac,
            [
                0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
                0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
                0x64, 0xec, 0x38, 0x43
            ]
        );
        let md5 = Digest::Md5.mac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            md5,
            [
                0x75, 0x0c, 0x78, 0x3e, 0x6a, 0xb0, 0xb5, 0x03, 0xea, 0xa8, 0x6e, 0x31, 0x0a, 0x5d,
                0xb7, 0x38
            ]
        );
        assert!(Digest::Sha256.verify(b"Jefe", b"what do ya want for nothing?", &mac));
        assert!(!Digest::Sha256.verify(b"Jeff", b"what do ya want for nothing?", &mac));
        assert!(!Digest::Sha256.verify(b"Jefe", b"what do ya want for nothing?", &mac[..31]));
    }
}

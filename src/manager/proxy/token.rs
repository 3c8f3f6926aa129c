//! `Token`: names a manager object, to be sent to another process.

use serde::{Deserialize, Serialize};
use std::string::String;
use std::vec::Vec;

use crate::manager::{Error, Kind};

/// Names one object of a manager: its kind and its name. Send it anywhere — through
/// a manager [`Queue`](super::Queue), a shared-memory `Pipe`
/// ([`to_bytes`](Token::to_bytes)), a file — and turn it back into a proxy with
/// [`Manager::proxy`](crate::manager::Manager::proxy) on a handle to the same
/// manager.
///
/// ```
/// use shmkit::manager::{Dict, Manager, Proxy, Token};
///
/// let m = Manager::start()?;
/// let d = m.dict::<u32, u32>("scores")?;
/// d.insert(&1, &10)?;
/// let bytes = d.token().to_bytes();
/// // ... elsewhere, with a handle on the same manager:
/// let again: Dict<u32, u32> = m.proxy(&Token::from_bytes(&bytes)?)?;
/// assert_eq!(again.get(&1)?, Some(10));
/// # Ok::<(), shmkit::manager::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Token {
    /// The object's kind.
    pub kind: Kind,
    /// The object's name in its manager.
    pub name: String,
}

impl Token {
    /// The token as bytes (postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// A token from [`to_bytes`](Token::to_bytes)'s bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if they are not a token.
    pub fn from_bytes(bytes: &[u8]) -> Result<Token, Error> {
        postcard::from_bytes(bytes).map_err(|_| Error::Decode)
    }
}

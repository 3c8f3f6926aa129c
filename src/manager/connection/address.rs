//! Addresses: a Unix socket path or a TCP `host:port`.

use core::fmt;
use core::net::SocketAddr;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use crate::manager::Error;

/// Where a [`Listener`](super::Listener) listens and a [`Client`](super::Client)
/// connects: a Unix socket (local, the default) or a TCP host and port.
///
/// Parsed from text by [`Address::parse`]: `unix:/run/app/socket`, a bare path
/// holding a `/` (`/tmp/app/socket`, `./socket`), `tcp:host:port`, or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A Unix-domain stream socket at this path.
    Unix(PathBuf),
    /// A TCP address: `host:port` (a name, an IPv4 address, or `[v6]`).
    Tcp(String),
}

impl Address {
    /// Parses `unix:PATH`, a path holding `/`, `tcp:HOST:PORT` or `HOST:PORT`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`] for anything else (an empty path, no port).
    pub fn parse(text: &str) -> Result<Address, Error> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(Error::InvalidAddress);
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        let tcp = text.strip_prefix("tcp:").unwrap_or(text);
        if tcp.len() == text.len() && text.contains('/') {
            return Ok(Address::Unix(PathBuf::from(text)));
        }
        match tcp.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Address::Tcp(tcp.to_string()))
            }
            _ => Err(Error::InvalidAddress),
        }
    }

    /// The TCP socket addresses this resolves to (empty for a Unix address).
    pub(crate) fn resolve(&self) -> Result<Vec<SocketAddr>, Error> {
        match self {
            Address::Unix(_) => Ok(Vec::new()),
            Address::Tcp(hp) => {
                let addrs: Vec<SocketAddr> = hp
                    .to_socket_addrs()
                    .map_err(|_| Error::InvalidAddress)?
                    .collect();
                if addrs.is_empty() {
                    return Err(Error::InvalidAddress);
                }
                Ok(addrs)
            }
        }
    }

    /// Is this a Unix socket address?
    pub fn is_unix(&self) -> bool {
        matches!(self, Address::Unix(_))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Tcp(hp) => write!(f, "tcp:{hp}"),
        }
    }
}

impl core::str::FromStr for Address {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Address::parse(s)
    }
}

/// Anything that names an [`Address`]: text (parsed by [`Address::parse`]), a path,
/// a socket address, or an `Address`.
pub trait ToAddress {
    /// The address this names.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`] if it names none.
    fn to_address(&self) -> Result<Address, Error>;
}

/// A reference names what it refers to (`&str`, `&Path`, `&Address`, ...).
impl<T: ToAddress + ?Sized> ToAddress for &T {
    fn to_address(&self) -> Result<Address, Error> {
        (**self).to_address()
    }
}
impl ToAddress for Address {
    fn to_address(&self) -> Result<Address, Error> {
        Ok(self.clone())
    }
}
impl ToAddress for str {
    fn to_address(&self) -> Result<Address, Error> {
        Address::parse(self)
    }
}
impl ToAddress for Path {
    fn to_address(&self) -> Result<Address, Error> {
        Ok(Address::Unix(self.to_path_buf()))
    }
}
impl ToAddress for SocketAddr {
    fn to_address(&self) -> Result<Address, Error> {
        Ok(Address::Tcp(self.to_string()))
    }
}
impl ToAddress for String {
    fn to_address(&self) -> Result<Address, Error> {
        self.as_str().to_address()
    }
}
impl ToAddress for PathBuf {
    fn to_address(&self) -> Result<Address, Error> {
        self.as_path().to_address()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let unix = |p: &str| Address::Unix(p.into());
        let tcp = |a: &str| Address::Tcp(a.into());
        for (text, want) in [
            ("unix:/a/b", unix("/a/b")),
            ("/a/b", unix("/a/b")),
            ("tcp:127.0.0.1:80", tcp("127.0.0.1:80")),
            ("localhost:9", tcp("localhost:9")),
            ("[::1]:9", tcp("[::1]:9")),
        ] {
            assert_eq!(Address::parse(text), Ok(want), "{text}");
        }
        for bad in ["", "unix:", "tcp:", "host", "host:", ":80", "host:99999"] {
            assert_eq!(Address::parse(bad), Err(Error::InvalidAddress), "{bad}");
        }
    }
}

//! `Client`: connects to a [`Listener`](super::Listener) (or a Python one).

use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use super::stream::{Connection, Sock};
use super::{Address, Options, ToAddress, auth};
use crate::manager::Error;

/// Connects to a listener and authenticates (Python's
/// `multiprocessing.connection.Client`).
///
/// The handshake mirrors the listener's: this side answers the listener's challenge
/// first, then challenges it, so a client learns that the server holds the key too.
/// See [`Listener`](super::Listener) for an example.
#[derive(Debug)]
pub struct Client(());

impl Client {
    /// Connects to `address` with the default [`Options`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`]; [`Error::Os`] (`ECONNREFUSED`, `ENOENT` for a
    /// missing socket); [`Error::Authentication`] if the keys differ;
    /// [`Error::Timeout`] if the handshake does not finish in time.
    pub fn connect(address: impl ToAddress, authkey: &[u8]) -> Result<Connection, Error> {
        Client::connect_with(address, authkey, &Options::default())
    }

    /// Connects to `address` with `options`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub fn connect_with(
        address: impl ToAddress,
        authkey: &[u8],
        options: &Options,
    ) -> Result<Connection, Error> {
        let address = address.to_address()?;
        let sock = connect_raw(&address, options)?;
        auth::handshake(sock, authkey, options, false, auth::Side::Connecting)
    }
}

/// Opens the socket, without the handshake.
pub(crate) fn connect_raw(address: &Address, options: &Options) -> Result<Sock, Error> {
    match address {
        Address::Unix(path) => Ok(Sock::Unix(UnixStream::connect(path)?)),
        Address::Tcp(_) => {
            let mut last = Error::InvalidAddress;
            for a in address.resolve()? {
                match TcpStream::connect_timeout(&a, options.handshake_timeout) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok(Sock::Tcp(s));
                    }
                    Err(e) => last = e.into(),
                }
            }
            Err(last)
        }
    }
}
